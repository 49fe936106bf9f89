"""Hot reload against the real broker: a worker serving a model store switches versions
mid-stream when the ``current`` pointer changes, keeps its model when a version fails to load,
and processes every record exactly once, by one version or the other."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from models.runtime import default_model_dir
from schemas.codecs import RECORD, EntityEvent, InputRecord
from streams.kafka.consume import consume_outputs
from streams.model_store import POINTER, add, promote
from tests.conftest import KafkaScope
from tests.integration.worker_process import WorkerProcess, committed_offsets, end_offsets
from tests.records import mixed_records
from tests.unit.streams.test_model_store import copy_version

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Records before the swap, while it happens, and after it.
BEFORE, DURING, AFTER = 60, 240, 60
NEW = "2.0.0-hotswap"
BROKEN = "2.0.0-broken"
DEADLINE_S = 300.0


def wait_for(condition: Any, what: str, worker: WorkerProcess) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        worker.assert_running()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{worker.log_tail()}")
        time.sleep(0.5)


def test_worker_switches_model_versions_mid_stream(kafka: KafkaScope, tmp_path: Path) -> None:
    store = tmp_path / "store"
    old = add(store, default_model_dir())
    copy_version(store, NEW)
    broken = copy_version(store, BROKEN)
    (broken / "crf.npz").unlink()
    (broken / "crf.npz").write_bytes(b"not the CRF")
    promote(store, old)

    settings = dataclasses.replace(
        kafka.settings,
        topics=dataclasses.replace(
            kafka.settings.topics,
            inputs=(kafka.topic("records", partitions=2),),
            entities=kafka.topic("entities"),
            dead_letter=kafka.topic("dead-letter"),
        ),
        worker=dataclasses.replace(kafka.settings.worker, group_id=kafka.group("ner")),
    )
    topic = settings.topics.inputs[0]
    records = list(mixed_records(BEFORE + DURING + AFTER, long_every=1000))
    producer = Producer(settings.kafka.confluent_config())

    def send(batch: list[InputRecord], pause_s: float = 0.0) -> None:
        for record in batch:
            producer.produce(topic, RECORD.encode(record), key=record.id.encode())
            producer.poll(0)
            time.sleep(pause_s)
        assert producer.flush(30) == 0

    def committed() -> int:
        offsets = committed_offsets(
            settings, settings.worker.group_id, end_offsets(settings, topic, 2)
        )
        return sum(max(offset, 0) for offset in offsets.values())

    worker = WorkerProcess(
        settings,
        tmp_path / "worker.log",
        overrides={
            "model.store_dir": str(store),
            "model.reload_interval_s": "1",
            "worker.max_batch": "8",
        },
    ).start()
    try:
        worker.wait_ready()
        send(records[:BEFORE])
        wait_for(lambda: committed() >= BEFORE, "the first records", worker)

        # A broken version: the load fails, the old model keeps serving, and says why.
        (store / POINTER).write_text(BROKEN + "\n")
        failed = f"model version {BROKEN} not loaded"
        wait_for(lambda: failed in worker.log_tail(200), "the failed load", worker)
        # The good one, promoted while records keep arriving.
        promote(store, NEW)
        send(records[BEFORE : BEFORE + DURING], pause_s=0.02)
        wait_for(lambda: f"switched model {old} -> {NEW}" in worker.log_tail(400), "switch", worker)
        send(records[BEFORE + DURING :])
        wait_for(lambda: committed() >= len(records), "every record committed", worker)

        status, ready = worker.get("/readyz")
        assert status == 200 and isinstance(ready, dict)
        assert ready["model"] == {"name": "zh-cnn-crf", "version": NEW}
        _, metrics = worker.get("/metrics")
        assert f'version="{NEW}"' in str(metrics)
        log = worker.log_path.read_text(encoding="utf-8")
        assert "MODEL_CHECKSUM_MISMATCH" in log.split(failed, 1)[1].splitlines()[0]
        assert worker.stop() == 0
    finally:
        worker.kill()

    entities = settings.topics.entities
    total = end_offsets(settings, entities, 1)[(entities, 0)]
    events: list[Any] = [
        output.value
        for output in consume_outputs(
            settings, entities, from_beginning=True, max_messages=total, idle_timeout_s=30
        )
    ]
    assert all(isinstance(event, EntityEvent) for event in events)
    counts = Counter(event.record_id for event in events)
    assert counts == Counter(record.id for record in records), "every record exactly once"
    versions = Counter(event.model.version for event in events)
    assert set(versions) == {old, NEW}, versions
    # The switch falls between two batches: per input partition, old before new.
    by_partition: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for event in events:
        by_partition[event.input.partition].append((event.input.offset, event.model.version))
    for pairs in by_partition.values():
        served = [version for _, version in sorted(pairs)]
        switched_at = served.index(NEW) if NEW in served else len(served)
        assert set(served[:switched_at]) <= {old} and set(served[switched_at:]) <= {NEW}
