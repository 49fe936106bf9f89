"""``nerstream topics``, ``produce`` and ``consume`` against the real broker, with a worker."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from streams.cli import EXIT_FAILED, EXIT_OK, main
from tests.conftest import KafkaScope
from tests.integration.worker_process import WorkerProcess, wait_committed_to_end

pytestmark = pytest.mark.integration


def test_topics_create_is_idempotent_and_listed(
    kafka: KafkaScope, capsys: pytest.CaptureFixture[str]
) -> None:
    names = [f"{kafka.prefix}.a", f"{kafka.prefix}.b"]
    base = ["--bootstrap-servers", kafka.bootstrap_servers, "topics"]
    assert main([*base, "create", *names, "--partitions", "3"]) == EXIT_OK
    assert capsys.readouterr().out.splitlines() == [f"{name}: created" for name in names]
    assert main([*base, "create", *names]) == EXIT_OK
    assert capsys.readouterr().out.splitlines() == [f"{name}: exists" for name in names]
    deadline = time.monotonic() + 15
    listed: dict[str, str] = {}
    while not set(names) <= set(listed):  # new topics reach the metadata a moment later
        assert time.monotonic() < deadline, f"{names} not listed: {listed}"
        assert main([*base, "list"]) == EXIT_OK
        listed = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert listed[names[0]] == "3" and listed[names[1]] == "3"


def test_produce_then_worker_then_consume(
    kafka: KafkaScope,
    tmp_path: Path,
    serving_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    news = kafka.topic("records-news", partitions=2)
    medical = kafka.topic("records-medical")
    by_source = f"{kafka.prefix}.records-{{source}}"
    entities = kafka.topic("entities")
    dead_letter = kafka.topic("dead-letter")
    common = [
        "--bootstrap-servers",
        kafka.bootstrap_servers,
        "--set",
        f"topics.entities={entities}",
        "--set",
        f"topics.dead_letter={dead_letter}",
    ]
    jsonl = tmp_path / "records.jsonl"
    rows = [{"id": f"j{i}", "source": "news", "text": f"新华社北京{i}月电"} for i in range(1, 6)]
    jsonl.write_text(
        "\n".join([*(json.dumps(row, ensure_ascii=False) for row in rows), '{"text": ""}']),
        encoding="utf-8",
    )
    csv_file = tmp_path / "records.csv"
    csv_file.write_text("id,source,text\nc1,medical,患者李四入住华西医院\n", encoding="utf-8")

    # The empty row is refused locally (exit 1); the five others are sent, as Avro.
    assert main([*common, "produce", str(jsonl), "--topic", by_source]) == EXIT_FAILED
    out = capsys.readouterr()
    assert "5 of 5 records delivered" in out.out and "1 invalid rows" in out.out
    assert f"{jsonl}:6: EMPTY_TEXT" in out.err
    # The CSV row goes as JSON with a content-type header (and, being medical, to the medical
    # topic); the worker reads both.
    code = main([*common, "produce", str(csv_file), "--topic", by_source, "--value-format", "json"])
    assert code == EXIT_OK
    capsys.readouterr()

    settings = dataclasses.replace(
        kafka.settings,
        topics=dataclasses.replace(
            kafka.settings.topics,
            inputs=(news, medical),
            entities=entities,
            dead_letter=dead_letter,
        ),
        worker=dataclasses.replace(kafka.settings.worker, group_id=kafka.group("ner")),
    )
    worker = WorkerProcess(
        settings, tmp_path / "worker.log", overrides={"model.model_dir": str(serving_model_dir)}
    ).start()
    try:
        worker.wait_ready()
        group = settings.worker.group_id
        assert sum(wait_committed_to_end(settings, group, news, 2).values()) == 5
        assert sum(wait_committed_to_end(settings, group, medical, 1).values()) == 1
    finally:
        assert worker.stop() == 0

    args = ["consume", "--topic", entities, "--from-beginning", "--max", "6", "--output", "json"]
    assert main([*common, *args]) == EXIT_OK
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(event["record_id"] for event in events) == ["c1", "j1", "j2", "j3", "j4", "j5"]
    assert {event["kind"] for event in events} == {"entity_event"}
    for event in events:
        for entity in event["entities"]:
            assert entity["end"] > entity["start"]

    # Nothing was dead-lettered: consuming the dead-letter topic finds nothing and stops.
    args = ["consume", "--topic", dead_letter, "--from-beginning", "--idle-timeout", "3"]
    assert main([*common, *args, "--output", "table"]) == EXIT_OK
    assert capsys.readouterr().out == ""
