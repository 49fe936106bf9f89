"""A broker outage mid-stream: deliveries fail temporarily, the worker waits it out. And a
worker killed while the broker is frozen, with later batches inferred but unacknowledged.

Runs its own broker (the session broker is shared by other tests), stops it for a few seconds
while records flow, and starts it again on the same data.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from schemas.codecs import EntityEvent
from streams.kafka import local as local_kafka
from streams.settings import Settings, load_settings
from streams.worker.agents import EXIT_CRASH_STOP
from tests.conftest import free_port
from tests.integration.test_worker import check_events, produce_mix, read_all
from tests.integration.worker_process import (
    WorkerProcess,
    committed_offsets,
    end_offsets,
    wait_committed_to_end,
    wait_for_outputs,
)
from tests.records import mixed_records

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RECORDS = 1500
OUTAGE_S = float(os.environ.get("NERSTREAM_IT_OUTAGE_S", "8"))
#: Longer than the worker's whole delivery budget in the test below (3 x 2 s plus back-off).
LONG_OUTAGE_S = float(os.environ.get("NERSTREAM_IT_LONG_OUTAGE_S", "20"))


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Settings]:
    port, controller = free_port(), free_port()
    settings = load_settings(
        {
            "local.data_dir": str(tmp_path / "kafka"),
            "local.port": str(port),
            "local.controller_port": str(controller),
            "kafka.bootstrap_servers": f"127.0.0.1:{port}",
            "topics.inputs": "records",
            "topics.entities": "entities",
            "topics.dead_letter": "dead-letter",
            "topics.partitions": "2",
            "worker.group_id": "ner",
            "worker.data_dir": str(tmp_path / "worker"),
        },
        env={},
    )
    try:
        local_kafka.up(settings)  # also creates the three topics, with 2 partitions each
        yield settings
    finally:
        local_kafka.down(settings, wipe=True)


@pytest.mark.timeout(600)
def test_the_worker_rides_out_a_broker_outage_and_loses_nothing(
    own_broker: Settings, tmp_path: Path, serving_model_dir: Path
) -> None:
    settings = own_broker
    worker = WorkerProcess(
        settings, tmp_path / "worker.log", overrides={"model.model_dir": str(serving_model_dir)}
    ).start()
    try:
        worker.wait_ready()
        records = list(mixed_records(RECORDS, seed=13))
        with ThreadPoolExecutor(max_workers=1) as background:
            produced = background.submit(
                produce_mix, settings, "records", records, [], rate=RECORDS / 15
            )
            wait_for_outputs(settings, worker, RECORDS // 5)
            local_kafka.down(settings)
            time.sleep(OUTAGE_S)
            local_kafka.up(settings)
            produced.result()

        committed = wait_committed_to_end(settings, "ner", "records", 2, timeout_s=300)
        assert committed == end_offsets(settings, "records", 2), worker.log_tail()
        worker.assert_running()
        assert worker.get("/readyz")[0] == 200
        events = [out.value for out in read_all(settings, "entities", 2)]
        check_events(records, events, exactly_once=False)  # type: ignore[arg-type]
    finally:
        assert worker.stop() == 0, worker.log_tail()


def batches_in_flight(metrics: object) -> float:
    assert isinstance(metrics, str)
    found = re.search(r"^nerstream_batches_in_flight (\S+)$", metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@pytest.mark.timeout(600)
def test_a_worker_killed_with_later_batches_inferred_but_unacknowledged_loses_nothing(
    own_broker: Settings, tmp_path: Path, serving_model_dir: Path
) -> None:
    """The broker is frozen (SIGSTOP) mid-stream, so no delivery report comes while the worker
    keeps inferring what it already fetched; once three batches are in flight (the first
    waiting for its acknowledgement, later ones inferred and produced behind it) the worker is
    killed (SIGKILL, no shutdown code runs). Nothing may be committed ahead of its output, and
    a fresh worker must produce an event for every record."""
    settings = own_broker
    # A backlog the worker cannot drain between its 20th event and the freeze (400 records were
    # all done by then once, on a fast machine, and no batch was left to be in flight).
    records = list(mixed_records(2 * RECORDS, seed=21))
    produce_mix(settings, "records", records, [])
    overrides = {
        "model.model_dir": str(serving_model_dir),
        "worker.max_batch": "20",
        "worker.max_in_flight_batches": "4",
        "worker.session_timeout_s": "6",
    }
    doomed = WorkerProcess(
        settings, tmp_path / "doomed.log", overrides={**overrides, "worker.worker_id": "doomed"}
    ).start()
    doomed.wait_ready()
    wait_for_outputs(settings, doomed, 20)
    broker = local_kafka.status(settings).pid
    assert broker is not None
    os.kill(broker, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 120
        while batches_in_flight(doomed.get("/metrics")[1]) < 3:
            doomed.assert_running()
            assert time.monotonic() < deadline, doomed.log_tail()
            time.sleep(0.05)
    finally:
        doomed.kill()  # before the broker wakes, and after a failed wait: no worker outlives it
        os.kill(broker, signal.SIGCONT)

    # Whatever was committed before the kill, every offset below it has its event.
    committed = committed_offsets(settings, "ner", end_offsets(settings, "records", 2))
    delivered: dict[int, set[int]] = {0: set(), 1: set()}
    for output in read_all(settings, "entities", 2):
        assert isinstance(output.value, EntityEvent)
        delivered[output.value.input.partition].add(output.value.input.offset)
    for (_, partition), offset in committed.items():
        missing = set(range(max(offset, 0))) - delivered[partition]
        assert not missing, f"partition {partition} committed to {offset} without {missing}"
    assert sum(len(offsets) for offsets in delivered.values()) < len(records), "killed mid-way"

    after = WorkerProcess(
        settings, tmp_path / "after.log", overrides={**overrides, "worker.worker_id": "after"}
    ).start()
    try:
        after.wait_ready()
        committed = wait_committed_to_end(settings, "ner", "records", 2, timeout_s=300)
        assert committed == end_offsets(settings, "records", 2), after.log_tail()
        # Records delivered before the kill come again: at-least-once.
        events = [out.value for out in read_all(settings, "entities", 2)]
        check_events(records, events, exactly_once=False)  # type: ignore[arg-type]
    finally:
        after.stop()


@pytest.mark.timeout(600)
def test_an_outage_longer_than_the_delivery_timeout_stops_the_worker_and_a_restart_completes(
    own_broker: Settings, tmp_path: Path, serving_model_dir: Path
) -> None:
    """The broker goes away for longer than the worker may take to deliver (3 attempts of
    ``worker.delivery_timeout_s``): the worker crash-stops with exit code 3, committing nothing
    it has not delivered; once the broker is back, a restarted worker completes the work."""
    settings = own_broker
    records = list(mixed_records(RECORDS, seed=17))
    produce_mix(settings, "records", records, [])
    overrides = {
        "model.model_dir": str(serving_model_dir),
        "worker.delivery_timeout_s": "2",
        "worker.max_batch": "50",
    }
    first = WorkerProcess(
        settings, tmp_path / "first.log", overrides={**overrides, "worker.worker_id": "first"}
    ).start()
    first.wait_ready()
    wait_for_outputs(settings, first, 50)
    local_kafka.down(settings)
    outage_started = time.monotonic()
    assert first.process is not None
    assert first.process.wait(timeout=120) == EXIT_CRASH_STOP, first.log_tail()
    assert "crash-stop" in first.log_path.read_text(encoding="utf-8")
    time.sleep(max(LONG_OUTAGE_S - (time.monotonic() - outage_started), 0.0))
    local_kafka.up(settings)

    second = WorkerProcess(
        settings, tmp_path / "second.log", overrides={**overrides, "worker.worker_id": "second"}
    ).start()
    try:
        second.wait_ready()
        committed = wait_committed_to_end(settings, "ner", "records", 2, timeout_s=300)
        assert committed == end_offsets(settings, "records", 2), second.log_tail()
        events = [out.value for out in read_all(settings, "entities", 2)]
        check_events(records, events, exactly_once=False)  # type: ignore[arg-type]
    finally:
        assert second.stop() == 0, second.log_tail()
