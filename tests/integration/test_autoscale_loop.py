"""The autoscaler's closed loop on the real broker: a burst of records, ``nerstream autoscale``
with the local-process target starts real ``nerstream worker`` processes, the backlog drains,
the group goes back to zero, and every record has its entity event."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from errors import EXIT_OK
from streams.autoscale.controller import Controller
from streams.autoscale.lag import LagReader
from streams.autoscale.policy import Decision, PolicyConfig
from streams.autoscale.processes import LocalProcesses, settings_environment
from streams.cli import main
from streams.kafka.consume import consume_outputs
from streams.kafka.produce import produce_records
from streams.settings import Settings
from tests.conftest import KafkaScope
from tests.integration.worker_process import end_offsets, wait_committed_to_end
from tests.records import mixed_records

pytestmark = [pytest.mark.integration]

RECORDS = 2000
PARTITIONS = 2


def pipeline_settings(kafka: KafkaScope, model_dir: Path) -> Settings:
    settings = kafka.settings
    return dataclasses.replace(
        settings,
        topics=dataclasses.replace(
            settings.topics,
            inputs=(kafka.topic("records", partitions=PARTITIONS),),
            entities=kafka.topic("entities", partitions=2),
            dead_letter=kafka.topic("dead-letter"),
        ),
        worker=dataclasses.replace(
            settings.worker, group_id=kafka.group("ner"), session_timeout_s=10, lag_interval_s=5
        ),
        model=dataclasses.replace(settings.model, model_dir=str(model_dir)),
    )


@pytest.mark.slow
def test_a_burst_scales_up_drains_within_the_target_and_scales_to_zero(
    kafka: KafkaScope, tmp_path: Path, serving_model_dir: Path
) -> None:
    settings = pipeline_settings(kafka, serving_model_dir)
    topic = settings.topics.inputs[0]
    records = list(mixed_records(RECORDS, long_every=10**9))
    assert produce_records(settings, topic, records).delivered == RECORDS

    config = PolicyConfig(
        min_replicas=0,
        max_replicas=4,
        # Generous for a shared 2-core machine, where the workers' start (model load, group
        # join, rebalances) takes much of it.
        drain_target_s=90.0,
        replica_rate=5.0,  # a deliberately low prior: the backlog alone asks for every partition
        scale_down_window_s=6.0,
        scale_to_zero_after_s=10.0,
        rate_window_s=4.0,
        stuck_after_s=60.0,
        interval_s=2.0,  # the loop below ticks every 2 s
        startup_s=10.0,
    )
    target = LocalProcesses(settings_environment(settings), tmp_path / "autoscale")
    reader = LagReader(settings.kafka, settings.worker.group_id, (topic,))
    lines: list[str] = []
    controller = Controller(reader, target, config, log=lines.append)
    stop = threading.Event()
    loop = threading.Thread(target=controller.run, args=(2.0, stop), daemon=True)
    started = time.monotonic()
    loop.start()
    try:
        deadline = started + 240
        while time.monotonic() < deadline:
            done = [d for d in controller.decisions if d.desired == 0 and d.current > 0]
            if done:
                break
            time.sleep(1)
        decisions: list[Decision] = list(controller.decisions)
    finally:
        stop.set()
        loop.join(30)
        target.close()
        reader.close()
    log = "\n".join(lines[-40:])
    assert done, f"never scaled back to zero in 240 s\n{log}"

    first = decisions[0]
    assert (first.current, first.lag) == (0, RECORDS), log  # no commit yet: the whole log
    assert first.desired == PARTITIONS, log  # never more than the partitions
    up_at = first.at
    drained = next(d for d in decisions if d.lag == 0 and d.current > 0)
    # Drained within the target, measured from the scale-up decision (workers' start included).
    assert drained.at - up_at <= config.drain_target_s, log
    assert max(d.desired for d in decisions) == PARTITIONS

    # Nothing lost: every record committed, and an entity event for every record.
    ends = end_offsets(settings, topic, PARTITIONS)
    assert wait_committed_to_end(settings, settings.worker.group_id, topic, PARTITIONS) == ends
    events = list(
        consume_outputs(
            settings,
            settings.topics.entities,
            from_beginning=True,
            # Until idle, not RECORDS messages: at-least-once lets a rebalance repeat some
            # events, and a count cap would then hide missing ones.
            idle_timeout_s=20,
        )
    )
    counts = Counter(getattr(out.value, "record_id", None) for out in events)
    assert set(counts) == {record.id for record in records}
    assert target.replicas() == 0


def test_dry_run_once_against_the_real_broker(
    kafka: KafkaScope, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = kafka.topic("dry-run", partitions=3)
    records = list(mixed_records(30))
    assert produce_records(kafka.settings, topic, records).delivered == 30
    code = main(
        [
            "--bootstrap-servers",
            kafka.bootstrap_servers,
            "--set",
            f"topics.inputs={topic}",
            "autoscale",
            "--dry-run",
            "--once",
            "--group",
            kafka.group("nobody"),
        ]
    )
    assert code == EXIT_OK
    err = capsys.readouterr().err
    assert "dry-run: up 0->1:" in err, err
    assert "backlog 30 of lag 30 records" in err, err
    assert "3 partitions" in err, err
