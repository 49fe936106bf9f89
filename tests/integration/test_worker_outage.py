"""A broker outage mid-stream: deliveries fail temporarily, the worker waits it out.

Runs its own broker (the session broker is shared by other tests), stops it for a few seconds
while records flow, and starts it again on the same data.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from streams.kafka import local as local_kafka
from streams.settings import Settings, load_settings
from tests.conftest import free_port
from tests.integration.test_worker import check_events, produce_mix, read_all
from tests.integration.worker_process import WorkerProcess, end_offsets, wait_committed_to_end
from tests.records import mixed_records

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RECORDS = 1500
OUTAGE_S = 8.0


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
            deadline = time.monotonic() + 120
            while sum(end_offsets(settings, "entities", 2).values()) < RECORDS // 5:
                assert time.monotonic() < deadline, worker.log_tail()
                time.sleep(0.1)
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
