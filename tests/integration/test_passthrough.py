"""The pass-through slice end to end: ``nerstream passthrough`` as a real process on real Kafka."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from streams.settings import Settings
from tests.conftest import KafkaScope, free_port
from tests.integration.worker_process import committed_offsets, end_offsets

RECORDS = 1000
DEADLINE_S = 90.0


def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for key, value in records:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


def _consume(
    bootstrap: str, topic: str, group: str, count: int, worker: subprocess.Popen[bytes]
) -> list[tuple[bytes, bytes]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    received: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + DEADLINE_S
    try:
        while len(received) < count and time.monotonic() < deadline:
            assert worker.poll() is None, f"the worker exited with {worker.returncode}"
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            key, value = message.key(), message.value()
            assert key is not None and value is not None
            received.append((key, value))
    finally:
        consumer.close()
    return received


def _lag(settings: Settings, topic: str, group: str, partitions: int) -> dict[int, int]:
    """Per partition: end offset minus the group's committed offset (no commit = all)."""
    ends = end_offsets(settings, topic, partitions)
    committed = committed_offsets(settings, group, ends)
    return {p: end - max(committed[(t, p)], 0) for (t, p), end in ends.items()}


@pytest.mark.integration
@pytest.mark.slow
def test_passthrough_copies_every_record_and_commits(kafka: KafkaScope, tmp_path: Path) -> None:
    source = kafka.topic("source", partitions=4)
    sink = kafka.topic("sink", partitions=4)
    group = kafka.group("passthrough")
    records = [(f"key-{i}".encode(), bytes([i % 256]) + f"值-{i}".encode()) for i in range(RECORDS)]
    _produce(kafka.bootstrap_servers, source, records)

    web_port = free_port()
    env = {
        **os.environ,
        "NERSTREAM_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "NERSTREAM_WORKER_DATA_DIR": str(tmp_path / "worker"),
    }
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streams.cli",
                "passthrough",
                "--source",
                source,
                "--sink",
                sink,
                "--group",
                group,
                "--web-port",
                str(web_port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        received = _consume(kafka.bootstrap_servers, sink, kafka.group("reader"), RECORDS, worker)
        assert sorted(received) == sorted(records)

        # The web server answers on loopback (and only there: web_bind is 127.0.0.1).
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/", timeout=10) as response:
            assert response.status == 200

        deadline = time.monotonic() + DEADLINE_S
        lag = _lag(kafka.settings, source, group, 4)
        while any(lag.values()) and time.monotonic() < deadline:
            time.sleep(1)
            lag = _lag(kafka.settings, source, group, 4)
        assert lag == dict.fromkeys(lag, 0), f"uncommitted records per partition: {lag}"

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    except AssertionError:
        print(log_path.read_text(errors="replace")[-8000:])
        raise
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    # Nothing more than the copies reached the sink (no duplicates from a re-read).
    assert sum(end_offsets(kafka.settings, sink, 4).values()) == RECORDS
