"""Against a broker that requires TLS, SASL/SCRAM and ACLs (:mod:`.secure_kafka`): the worker,
``produce`` and ``consume`` work with the right credentials, are refused with a clear error
with wrong ones, and a worker that may not write its entity topic stops (exit 3) without
committing. No password ever shows in a log or in ``nerstream settings``."""

from __future__ import annotations

import dataclasses
import json
import secrets
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclOperation,
    AclPermissionType,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from errors import EXIT_CRASH_STOP
from streams.cli import EXIT_FAILED, EXIT_OK, main
from streams.settings import KafkaSettings, Settings, load_settings
from tests.conftest import TEST_KAFKA_ROOT, free_port
from tests.integration.secure_kafka import ADMIN, SecureBroker, make_tls
from tests.integration.worker_process import WorkerProcess, committed_offsets, wait_committed_to_end

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WORKER = "ner-worker"
#: May do everything the worker does except write the entity topic.
NO_WRITE = "ner-no-write"
PREFIX = "sec-"


@pytest.fixture(scope="module")
def broker() -> Iterator[SecureBroker]:
    data_dir = TEST_KAFKA_ROOT / f"secure-{uuid.uuid4().hex[:12]}"
    data_dir.mkdir(parents=True)
    passwords = {user: secrets.token_urlsafe(16) for user in (ADMIN, WORKER, NO_WRITE)}
    secure = SecureBroker(data_dir, free_port(), make_tls(data_dir / "tls"), passwords)
    try:
        secure.start(controller_port=free_port())
        for user in (WORKER, NO_WRITE):
            for resource in (ResourceType.TOPIC, ResourceType.GROUP):
                secure.allow(
                    user, resource, PREFIX, [AclOperation.ALL], pattern=ResourcePatternType.PREFIXED
                )
        yield secure
    finally:
        secure.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@dataclasses.dataclass(frozen=True)
class Topics:
    records: str
    entities: str
    dead_letter: str


@pytest.fixture
def topics(broker: SecureBroker) -> Topics:
    prefix = f"{PREFIX}{uuid.uuid4().hex[:8]}"
    names = Topics(f"{prefix}.records", f"{prefix}.entities", f"{prefix}.dead-letter")
    new = [NewTopic(name, 1, 1) for name in dataclasses.astuple(names)]
    admin = broker.admin()
    for future in admin.create_topics(new).values():
        future.result(timeout=30)
    return names


def settings_for(kafka: KafkaSettings, topics: Topics, tmp_path: Path) -> Settings:
    base = load_settings({}, env={})
    return dataclasses.replace(
        base,
        kafka=kafka,
        topics=dataclasses.replace(
            base.topics,
            inputs=(topics.records,),
            entities=topics.entities,
            dead_letter=topics.dead_letter,
        ),
        worker=dataclasses.replace(
            base.worker, group_id=f"{topics.records}.ner", data_dir=tmp_path / "worker"
        ),
    )


def cli_flags(kafka: KafkaSettings) -> list[str]:
    flags = {
        "kafka.bootstrap_servers": kafka.bootstrap_servers,
        "kafka.security_protocol": kafka.security_protocol,
        "kafka.sasl_mechanism": kafka.sasl_mechanism,
        "kafka.sasl_username": kafka.sasl_username,
        "kafka.sasl_password": kafka.sasl_password.reveal(),
        "kafka.ssl_cafile": kafka.ssl_cafile,
    }
    return [arg for key, value in flags.items() for arg in ("--set", f"{key}={value}")]


def start_worker(settings: Settings, tmp_path: Path, model_dir: Path, name: str) -> WorkerProcess:
    overrides = {
        "model.model_dir": str(model_dir),
        "worker.worker_id": name,
        # settings_env passes what `nerstream settings` shows, where the password is masked.
        "kafka.sasl_password": settings.kafka.sasl_password.reveal(),
    }
    return WorkerProcess(settings, tmp_path / f"{name}.log", overrides=overrides).start()


def write_records(path: Path, count: int) -> Path:
    rows = [{"id": f"s{i}", "source": "news", "text": f"新华社北京{i}月电"} for i in range(count)]
    path.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in rows), "utf-8")
    return path


def test_worker_produce_and_consume_work_with_the_right_credentials(
    broker: SecureBroker,
    topics: Topics,
    tmp_path: Path,
    serving_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kafka = broker.kafka(WORKER)
    flags = cli_flags(kafka)
    records = write_records(tmp_path / "records.jsonl", 5)
    assert main([*flags, "produce", str(records), "--topic", topics.records]) == EXIT_OK
    assert "5 of 5 records delivered" in capsys.readouterr().out

    settings = settings_for(kafka, topics, tmp_path)
    worker = start_worker(settings, tmp_path, serving_model_dir, "secure-1")
    try:
        worker.wait_ready()
        committed = wait_committed_to_end(settings, settings.worker.group_id, topics.records, 1)
        assert sum(committed.values()) == 5
    finally:
        assert worker.stop() == 0

    # A group the worker's ACLs cover (the default, a random name, is not allowed).
    group = f"{topics.records}.consume"
    consume = ["consume", "--topic", topics.entities, "--from-beginning", "--max", "5"]
    consume += ["--group", group]
    assert main([*flags, *consume, "--output", "json"]) == EXIT_OK
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(event["record_id"] for event in events) == [f"s{i}" for i in range(5)]

    assert main([*flags, "settings"]) == EXIT_OK
    printed = capsys.readouterr()
    password = kafka.sasl_password.reveal()
    assert json.loads(printed.out)["kafka"]["sasl_password"] == "****"
    assert password not in printed.out + printed.err
    assert password not in worker.log_path.read_text(encoding="utf-8")


def test_wrong_credentials_are_refused_with_a_clear_error_and_no_retry_loop(
    broker: SecureBroker,
    topics: Topics,
    tmp_path: Path,
    serving_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = broker.kafka(WORKER, password="not-" + broker.passwords[WORKER])
    records = write_records(tmp_path / "records.jsonl", 2)
    started = time.monotonic()
    code = main([*cli_flags(wrong), "produce", str(records), "--topic", topics.records])
    printed = capsys.readouterr()
    assert code == EXIT_FAILED
    assert "the broker refused the client" in printed.err and "invalid credentials" in printed.err
    # At once, not after librdkafka's delivery timeout.
    assert time.monotonic() - started < 45
    consume = ["consume", "--topic", topics.records, "--idle-timeout", "30"]
    assert main([*cli_flags(wrong), *consume]) == EXIT_FAILED
    printed_consume = capsys.readouterr()
    assert "the broker refused the client" in printed_consume.err
    password = wrong.sasl_password.reveal()
    assert password not in printed.out + printed.err + printed_consume.out + printed_consume.err

    worker = start_worker(settings_for(wrong, topics, tmp_path), tmp_path, serving_model_dir, "bad")
    assert worker.process is not None
    # It gives up by itself, once: a clear error and a failure exit code, no endless retrying.
    code = worker.process.wait(timeout=120)
    log = worker.log_path.read_text(encoding="utf-8")
    assert code != 0
    assert "SaslAuthenticationFailed" in log and "invalid credentials" in log
    assert wrong.sasl_password.reveal() not in log


def test_a_worker_without_write_on_the_entity_topic_stops_and_commits_nothing(
    broker: SecureBroker, topics: Topics, tmp_path: Path, serving_model_dir: Path
) -> None:
    broker.allow(
        NO_WRITE,
        ResourceType.TOPIC,
        topics.entities,
        [AclOperation.WRITE],
        permission=AclPermissionType.DENY,
    )
    admin = broker.kafka(ADMIN)
    records = write_records(tmp_path / "records.jsonl", 3)
    assert main([*cli_flags(admin), "produce", str(records), "--topic", topics.records]) == 0
    settings = settings_for(broker.kafka(NO_WRITE), topics, tmp_path)
    worker = start_worker(settings, tmp_path, serving_model_dir, "no-write")
    assert worker.process is not None
    assert worker.process.wait(timeout=300) == EXIT_CRASH_STOP, worker.log_tail()
    assert "crash-stop" in worker.log_path.read_text(encoding="utf-8")
    committed = committed_offsets(settings, settings.worker.group_id, [(topics.records, 0)])
    assert committed == {(topics.records, 0): -1001}, "nothing may be committed"


def test_consume_without_read_permission_fails_clearly(
    broker: SecureBroker, topics: Topics, capsys: pytest.CaptureFixture[str]
) -> None:
    # The worker's principal may use groups under PREFIX only; a random group is refused.
    flags = cli_flags(broker.kafka(WORKER))
    code = main([*flags, "consume", "--topic", topics.entities, "--group", "not-allowed"])
    assert code == EXIT_FAILED
    assert "GROUP_AUTHORIZATION_FAILED" in capsys.readouterr().err.upper().replace(" ", "_")
