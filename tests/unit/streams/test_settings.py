"""streams.settings: defaults, environment, overrides, validation and secret masking."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from streams.settings import Secret, Settings, SettingsError, load_settings


def test_defaults_are_valid_and_loopback() -> None:
    settings = load_settings(env={})
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.worker.web_host == "127.0.0.1"
    assert settings.serve.host == "127.0.0.1"
    assert settings.serve.bearer_token() is None
    assert settings.topics.all[-3:] == (
        settings.topics.entities,
        settings.topics.dead_letter,
        settings.topics.review,
    )
    # Review routing is off by default.
    review = settings.review
    assert (review.entity_score_below, review.sequence_confidence_below, review.sample_rate) == (
        0,
        0,
        0,
    )
    assert review.host == "127.0.0.1"


def test_environment_sets_typed_fields() -> None:
    settings = load_settings(
        env={
            "NERSTREAM_KAFKA_BOOTSTRAP_SERVERS": "a:1,b:2",
            "NERSTREAM_WORKER_MAX_BATCH": "32",
            "NERSTREAM_WORKER_MAX_WAIT_S": "0.5",
            "NERSTREAM_MODEL_PRECISION": "fp32",
            "NERSTREAM_TOPICS_INPUTS": "one, two ,",
            "NERSTREAM_LOCAL_DATA_DIR": "/srv/kafka",
        }
    )
    assert settings.kafka.bootstrap_servers == "a:1,b:2"
    assert settings.worker.max_batch == 32
    assert settings.worker.max_wait_s == 0.5
    assert settings.model.precision == "fp32"
    assert settings.topics.inputs == ("one", "two")
    assert settings.local.data_dir == Path("/srv/kafka")


def test_overrides_beat_environment_and_none_is_ignored() -> None:
    env = {"NERSTREAM_WORKER_GROUP_ID": "from-env", "NERSTREAM_LOCAL_PORT": "9999"}
    settings = load_settings({"worker.group_id": "from-flag", "local.port": None}, env=env)
    assert settings.worker.group_id == "from-flag"
    assert settings.local.port == 9999


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kafka.security_protocol": "TLS"}, "security_protocol"),
        ({"kafka.bootstrap_servers": " "}, "must not be empty"),
        ({"kafka.security_protocol": "SASL_SSL"}, "needs kafka.sasl_mechanism"),
        ({"kafka.sasl_mechanism": "PLAIN"}, "is set but"),
        ({"topics.entities": "x", "topics.dead_letter": "x"}, "must differ"),
        ({"topics.inputs": "x", "topics.entities": "x"}, "input topic"),
        ({"topics.inputs": ","}, "at least one"),
        ({"topics.partitions": "0"}, ">= 1"),
        ({"worker.max_batch": "0"}, "max_batch"),
        ({"worker.max_wait_s": "0"}, "max_wait_s"),
        ({"worker.web_port": "70000"}, "web_port"),
        ({"model.provider": "tpu"}, "model.provider"),
        ({"model.threads": "-1"}, "threads"),
        ({"local.port": "9093"}, "must differ"),
        ({"worker.max_batch": "many"}, "cannot read 'many' as int"),
        ({"model.precision": "fp8"}, "model.precision"),
        ({"worker.nope": "1"}, "unknown setting"),
        ({"serve.port": "0"}, "serve.port"),
        ({"serve.max_texts": "0"}, "serve.max_texts"),
        ({"serve.batch_window_ms": "-1"}, "serve.batch_window_ms"),
        ({"serve.auth_token": "t", "serve.auth_token_file": "/f"}, "not both"),
        ({"local.registry_port": "9092"}, "must differ"),
        ({"schema_registry.url": "127.0.0.1:8081"}, "http(s) URL"),
        ({"schema_registry.subject_strategy": "TopicNameStrategy"}, "subject_strategy"),
        ({"schema_registry.compatibility": "SIDEWAYS"}, "compatibility"),
        ({"schema_registry.auto_register": "maybe"}, "cannot read 'maybe'"),
        ({"schema_registry.timeout_s": "0"}, "timeout_s must be > 0"),
        ({"worker.heartbeat_interval_s": "4"}, "at most a third"),
        ({"worker.heartbeat_interval_s": "0"}, "heartbeat_interval_s"),
        ({"worker.commit_interval_s": "0"}, "commit_interval_s"),
    ],
)
def test_invalid_values_are_rejected_at_load(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings(overrides, env={})


def test_invalid_environment_value_is_rejected() -> None:
    with pytest.raises(SettingsError, match=re.escape("local.port")):
        load_settings(env={"NERSTREAM_LOCAL_PORT": "ninety"})


def test_secret_is_masked_everywhere_but_reveal() -> None:
    settings = load_settings(
        {
            "kafka.security_protocol": "SASL_SSL",
            "kafka.sasl_mechanism": "PLAIN",
            "kafka.sasl_username": "svc",
            "kafka.sasl_password": "hunter2",
        },
        env={},
    )
    password = settings.kafka.sasl_password
    assert isinstance(password, Secret)
    assert "hunter2" not in str(password)
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.describe())
    assert settings.describe()["kafka"]["sasl_password"] == "****"
    assert settings.kafka.confluent_config()["sasl.password"] == "hunter2"


def test_registry_mode_is_off_by_default_and_read_from_the_environment() -> None:
    assert not load_settings(env={}).schema_registry.enabled
    registry = load_settings(
        env={
            "NERSTREAM_SCHEMA_REGISTRY_URL": "https://registry.example:8081",
            "NERSTREAM_SCHEMA_REGISTRY_USERNAME": "key",
            "NERSTREAM_SCHEMA_REGISTRY_PASSWORD": "s3cret",
            "NERSTREAM_SCHEMA_REGISTRY_AUTO_REGISTER": "false",
            "NERSTREAM_SCHEMA_REGISTRY_SUBJECT_STRATEGY": "topic_record",
        }
    ).schema_registry
    assert registry.enabled and not registry.auto_register
    assert registry.subject_strategy == "topic_record" and registry.compatibility == "BACKWARD"
    assert isinstance(registry.password, Secret) and "s3cret" not in repr(registry)


def test_settings_are_frozen() -> None:
    settings = load_settings(env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.kafka.bootstrap_servers = "elsewhere:1"  # type: ignore[misc]


def test_describe_lists_every_section_as_text() -> None:
    described = load_settings(env={}).describe()
    assert set(described) == {f.name for f in dataclasses.fields(Settings)}
    assert described["topics"]["inputs"] == "nerstream.records.news,nerstream.records.medical"
    assert all(isinstance(v, str) for section in described.values() for v in section.values())


def test_serve_bearer_token_from_setting_or_file_stays_secret(tmp_path: Path) -> None:
    from_setting = load_settings({"serve.auth_token": "s3cret"}, env={}).serve
    token = from_setting.bearer_token()
    assert isinstance(token, Secret)
    assert token.reveal() == "s3cret"
    assert "s3cret" not in str(load_settings({"serve.auth_token": "s3cret"}, env={}).describe())
    path = tmp_path / "token"
    path.write_text("from-file\n")
    from_file = load_settings({"serve.auth_token_file": str(path)}, env={}).serve.bearer_token()
    assert from_file is not None
    assert from_file.reveal() == "from-file"
    path.write_text("  \n")
    with pytest.raises(SettingsError, match="is empty"):
        load_settings({"serve.auth_token_file": str(path)}, env={}).serve.bearer_token()
    missing = load_settings({"serve.auth_token_file": str(tmp_path / "nope")}, env={}).serve
    with pytest.raises(SettingsError, match="cannot read"):
        missing.bearer_token()


def test_model_dir_and_model_store_exclude_each_other() -> None:
    with pytest.raises(SettingsError, match="not both"):
        load_settings({"model.model_dir": "a", "model.store_dir": "b"}, env={})
    for bad in ("review.sample_rate=1.5", "review.entity_score_below=-0.1", "review.port=0"):
        key, _, value = bad.partition("=")
        with pytest.raises(SettingsError):
            load_settings({key: value}, env={})
