"""Fault scenarios against the real broker: crash-restart, rebalances, a fuzzed poison stream.

Each scenario accounts for every input message: its input position must have an output (an
entity event or a dead letter); positions with more than one are duplicates (at-least-once
allows them after a crash, and every duplicate carries its original's ``event_id``).

Marked ``scenario`` so they run alone (``pytest -m scenario``). Sizes are scaled by
``NERSTREAM_SCENARIO_SCALE`` (default 0.1: CI-sized; ``python -m bench.scenarios`` runs them at
1.0 and writes the report). With ``NERSTREAM_SCENARIO_REPORT`` set to a folder, each scenario
writes its row (sent, events, dead letters, lost, duplicates, recovery) there as JSON.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from schemas.codecs import RECORD, DeadLetter, EntityEvent, event_id
from tests.integration import test_worker
from tests.integration.test_worker import Pipeline, read_all
from tests.integration.worker_process import (
    committed_offsets,
    end_offsets,
    wait_committed_to_end,
)
from tests.records import mixed_records

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.scenario]

#: The worker tests' fixture (fresh topics, group and workers), under its name.
pipeline = test_worker.pipeline

SCALE = float(os.environ.get("NERSTREAM_SCENARIO_SCALE", "0.1"))
REPORT_DIR = os.environ.get("NERSTREAM_SCENARIO_REPORT", "")


def scaled(full: int, least: int) -> int:
    return max(int(full * SCALE), least)


def send(
    pipeline: Pipeline, values: list[tuple[bytes, bytes | None, list[Any]]], rate: float
) -> None:
    """Send (key, value, headers) to the input topic at ``rate`` messages per second."""
    producer = Producer({**pipeline.settings.kafka.confluent_config(), "linger.ms": 5})
    started = time.monotonic()
    for index, (key, value, headers) in enumerate(values):
        time.sleep(max(started + index / rate - time.monotonic(), 0.0))
        producer.produce(pipeline.input_topic, value, key=key, headers=headers)
        producer.poll(0)
    assert producer.flush(60) == 0


def account(pipeline: Pipeline, sent: int) -> dict[str, Any]:
    """Wait until the input is committed to its end, then count outputs per input position."""
    settings = pipeline.settings
    committed = wait_committed_to_end(
        settings, pipeline.group, pipeline.input_topic, pipeline.partitions, timeout_s=600
    )
    ends = end_offsets(settings, pipeline.input_topic, pipeline.partitions)
    assert committed == ends, "\n".join(worker.log_tail(20) for worker in pipeline.workers)
    assert sum(ends.values()) == sent
    events = [out.value for out in read_all(settings, settings.topics.entities, 2)]
    letters = [out.value for out in read_all(settings, settings.topics.dead_letter, 1)]
    per_position: Counter[tuple[int, int]] = Counter()
    for value in events:
        assert isinstance(value, EntityEvent)
        # A duplicate is recognisable for sure: same input, same model, same id.
        assert value.event_id == event_id(value.input, value.model)
        per_position[(value.input.partition, value.input.offset)] += 1
    for value in letters:
        assert isinstance(value, DeadLetter)
        per_position[(value.input.partition, value.input.offset)] += 1
    expected = {(p, o) for (_, p), end in ends.items() for o in range(end)}
    return {
        "sent": sent,
        "events": len(events),
        "dead_letters": len(letters),
        "lost": len(expected - set(per_position)),
        "duplicates": sum(per_position.values()) - len(per_position),
    }


def report(name: str, row: dict[str, Any]) -> None:
    print(f"scenario {name}: {json.dumps(row)}")
    if REPORT_DIR:
        folder = Path(REPORT_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.json").write_text(json.dumps({"scenario": name, **row}, indent=2))


def valid_values(count: int, seed: int) -> list[tuple[bytes, bytes | None, list[Any]]]:
    return [
        (record.id.encode(), RECORD.encode(record), [])
        for record in mixed_records(count, seed=seed)
    ]


def in_background(target: Any, *args: Any) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


@pytest.mark.timeout(1800)
def test_crash_restart_with_kill_9_at_random_moments(pipeline: Pipeline) -> None:
    records, kills = scaled(50_000, 3_000), 10 if SCALE >= 1 else 3
    # Records keep flowing through every kill and restart.
    rate = min(150.0, records / (kills * 12))
    rng = random.Random(5)
    sender = in_background(send, pipeline, valid_values(records, seed=5), rate)
    worker = pipeline.worker("crash")
    worker.wait_ready(timeout_s=300)
    recoveries = []
    group = pipeline.group
    tps = [(pipeline.input_topic, p) for p in range(pipeline.partitions)]
    for _ in range(kills):
        time.sleep(rng.uniform(1.0, 5.0))
        worker.kill()
        before = committed_offsets(pipeline.settings, group, tps)
        ends = end_offsets(pipeline.settings, pipeline.input_topic, pipeline.partitions)
        waiting = [tp for tp in tps if ends[tp] > max(before[tp], 0)]
        restarted = time.monotonic()
        # The same name: the same static member, rejoining with its old assignment (on another
        # web port, which Faust's own assignor would refuse).
        worker = pipeline.worker("crash")
        # Recovered: every partition that had records waiting has committed past its offset.
        deadline = restarted + 300
        while True:
            now = committed_offsets(pipeline.settings, group, tps)
            if all(now[tp] > before[tp] for tp in waiting):
                break
            worker.assert_running()
            assert time.monotonic() < deadline, worker.log_tail()
            time.sleep(0.1)
        if waiting:
            recoveries.append(round(time.monotonic() - restarted, 2))
        worker.wait_ready(timeout_s=300)
    sender.join()
    row = account(pipeline, records)
    row.update(
        kills=kills,
        duplicates_per_crash=round(row["duplicates"] / kills, 1),
        recovery_s=recoveries,
        recovery_median_s=statistics.median(recoveries) if recoveries else None,
    )
    report("crash_restart", row)
    assert row["lost"] == 0
    assert row["dead_letters"] == 0


@pytest.mark.parametrize("pipeline", [6], indirect=True)
@pytest.mark.timeout(1800)
def test_rebalances_on_six_partitions_with_workers_joining_leaving_and_killed(
    pipeline: Pipeline,
) -> None:
    records = scaled(50_000, 4_000)
    rate = 200.0
    sender = in_background(send, pipeline, valid_values(records, seed=6), rate)
    first = pipeline.worker("w1")
    first.wait_ready(timeout_s=300)
    phase = records / rate / 5
    time.sleep(phase)
    second, third = pipeline.worker("w2"), pipeline.worker("w3")
    second.wait_ready(timeout_s=300)
    third.wait_ready(timeout_s=300)
    time.sleep(phase)
    stopped_at = time.monotonic()
    assert first.stop() == 0, first.log_tail()
    # A static member that stops gracefully still leaves, so its partitions move on at once.
    assert "LeaveGroup request succeeded" in first.log_path.read_text(encoding="utf-8")
    time.sleep(phase)
    second.kill()
    killed_at = time.monotonic()
    # The survivor owns every partition once the killed worker's session has expired.
    deadline = killed_at + 120
    while True:
        third.assert_running()
        status, body = third.get("/readyz")
        if status == 200 and isinstance(body, dict) and body["partitions"] == pipeline.partitions:
            break
        assert time.monotonic() < deadline, third.log_tail()
        time.sleep(0.2)
    takeover_s = round(time.monotonic() - killed_at, 2)
    sender.join()
    row = account(pipeline, records)
    row.update(
        workers="w1 alone; w2, w3 join; w1 stops (SIGTERM); w2 killed (SIGKILL)",
        graceful_stop_s_ago=round(time.monotonic() - stopped_at, 1),
        survivor_owns_all_after_kill_s=takeover_s,
    )
    report("rebalance_6_partitions", row)
    assert row["lost"] == 0
    assert third.stop() == 0, third.log_tail()


def fuzzed_values(count: int, seed: int) -> list[tuple[bytes, bytes | None, list[Any]]]:
    """Seeded junk: random bytes, truncated and bit-flipped Avro, JSON of wrong shapes and
    types, invalid UTF-8, huge and deeply nested values, empty values."""
    rng = random.Random(seed)
    json_header = [("content-type", b"application/json")]
    valid = [RECORD.encode(record) for record in mixed_records(50, seed=seed)]
    makers = [
        lambda: (rng.randbytes(rng.randrange(1, 200)), []),
        lambda: (rng.choice(valid)[: rng.randrange(1, 20)], []),
        lambda: (_flip(rng, rng.choice(valid)), []),
        lambda: (json.dumps(rng.choice([[], 1, "x", None, {"text": 7}])).encode(), json_header),
        lambda: (b'{"id": "f", "text": "\xff\xfe", "created_at": 0}', json_header),
        lambda: (b"[" * 100_000 + b"]" * 100_000, json_header),
        lambda: (
            json.dumps({"id": "f", "text": "长" * 3_000, "created_at": 0}).encode(),
            json_header,
        ),
        lambda: (b"", []),
        lambda: (rng.randbytes(50), [("content-type", rng.randbytes(8))]),
    ]
    values: list[tuple[bytes, bytes | None, list[Any]]] = []
    for index in range(count):
        value, headers = makers[index % len(makers)]()
        values.append((f"fuzz-{index}".encode(), value, headers))
    return values


def _flip(rng: random.Random, value: bytes) -> bytes:
    flipped = bytearray(value)
    for _ in range(3):
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
    return bytes(flipped)


@pytest.mark.timeout(1800)
def test_a_fuzzed_poison_stream_mixed_with_valid_records(pipeline: Pipeline) -> None:
    fuzzed = fuzzed_values(scaled(10_000, 1_000), seed=9)
    valid = valid_values(len(fuzzed), seed=9)
    mixed = [item for pair in zip(valid, fuzzed, strict=True) for item in pair]
    random.Random(9).shuffle(mixed)
    worker = pipeline.worker("fuzz")
    worker.wait_ready(timeout_s=300)
    send(pipeline, mixed, rate=2_000.0)
    row = account(pipeline, len(mixed))
    worker.assert_running()  # zero crashes: the same process from first to last message
    row.update(valid=len(valid), fuzzed=len(fuzzed))
    report("poison_stream", row)
    assert row["lost"] == 0 and row["duplicates"] == 0
    # Every valid record has its event; a fuzzed message may decode by chance, never crash.
    assert row["events"] >= len(valid)
    assert worker.stop() == 0, worker.log_tail()
