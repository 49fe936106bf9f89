"""Crash recovery, measured: ``kill -9`` a worker at random moments while records flow.

``python -m bench.recovery`` starts its own broker (or uses ``--bootstrap-servers``), sends
``--records`` records at ``--rate`` per second to a ``--partitions``-partition topic, and runs
one ``nerstream worker`` under a fixed ``worker_id``. ``--kills`` times, at a random moment
(seeded) while it processes, the worker is killed with SIGKILL and started again at once. Per
kill it measures the **recovery time**: from the restart (process launch, so Python start and
model load count) until the group's committed offset has moved past its value at the kill on
every partition that has records waiting, i.e. the restarted worker is processing (and
committing) all of the killed worker's partitions again. After the last restart it waits until
everything is committed and reads the entity topic: every record must have its event (lost = 0),
and duplicates are the events beyond one per input position.

Each mode runs side by side in one invocation, on fresh topics and groups: ``static`` (the
defaults: static group membership, 10 s session timeout, 1 s commits) and ``dynamic``
(``worker.static_membership=false``); ``--faust-defaults`` adds Faust's own timeouts (60 s
session, 3 s heartbeat, 2.8 s commits, dynamic membership), the worker as it was before.

Writes ``bench/results/recovery.json`` and ``recovery.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from bench.harness import fresh_settings
from schemas.codecs import ENTITY_EVENT, RECORD
from streams.kafka import local as local_kafka
from streams.kafka.admin import create_topics
from streams.settings import Settings, load_settings
from tests.conftest import free_port
from tests.integration.worker_process import WorkerProcess, committed_offsets, end_offsets
from tests.records import mixed_records

RESULTS = Path(__file__).parent / "results" / "recovery.json"

#: Worker settings per mode; the worker's defaults are the ``static`` mode.
MODES: dict[str, dict[str, str]] = {
    "static": {},
    "dynamic": {"worker.static_membership": "false"},
    "faust-defaults": {
        "worker.static_membership": "false",
        "worker.session_timeout_s": "60",
        "worker.heartbeat_interval_s": "3",
        "worker.commit_interval_s": "2.8",
    },
}


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def mode_settings(
    bootstrap: str, work_dir: Path, prefix: str, args: argparse.Namespace
) -> Settings:
    base = fresh_settings(bootstrap, prefix, work_dir)
    return dataclasses.replace(
        base,
        model=dataclasses.replace(
            base.model, model_dir=args.model_dir or "", provider=args.provider
        ),
    )


def send_records(settings: Settings, count: int, rate: float, sent: list[int]) -> None:
    """Send ``count`` records at ``rate`` per second; ``sent[0]`` counts them."""
    producer = Producer({**settings.kafka.confluent_config(), "linger.ms": 5})
    topic = settings.topics.inputs[0]
    started = time.monotonic()
    for index, record in enumerate(mixed_records(count, seed=3)):
        time.sleep(max(started + index / rate - time.monotonic(), 0.0))
        producer.produce(topic, RECORD.encode(record), key=record.id.encode())
        producer.poll(0)
        sent[0] = index + 1
    producer.flush(60)


def waiting_partitions(
    settings: Settings, partitions: int, committed: dict[tuple[str, int], int]
) -> dict[tuple[str, int], int]:
    """Partitions with records beyond their committed offset, and that offset."""
    ends = end_offsets(settings, settings.topics.inputs[0], partitions)
    return {tp: committed[tp] for tp, end in ends.items() if end > max(committed[tp], 0)}


def wait_recovered(
    settings: Settings, partitions: int, worker: WorkerProcess, timeout_s: float = 180.0
) -> tuple[float, float]:
    """Seconds from now until the worker has its partitions (``/readyz``), and until every
    partition with waiting records has committed past its offset of now."""
    started = time.monotonic()
    group = settings.worker.group_id
    tps = [(settings.topics.inputs[0], p) for p in range(partitions)]
    before = waiting_partitions(settings, partitions, committed_offsets(settings, group, tps))
    if not before:
        raise AssertionError("no records waiting at the restart: send longer (--records)")
    assigned_s: float | None = None
    while True:
        worker.assert_running()
        if assigned_s is None and ready(worker):
            assigned_s = time.monotonic() - started
        now = committed_offsets(settings, group, before)
        if all(now[tp] > offset for tp, offset in before.items()):
            processing_s = time.monotonic() - started
            return (processing_s if assigned_s is None else assigned_s), processing_s
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not recovered after {timeout_s} s\n{worker.log_tail()}")
        time.sleep(0.1)


def seconds_to_log_line(log: Path, offset: int, since: datetime, marker: str) -> float | None:
    """Seconds from ``since`` to the first log line from ``offset`` on that contains
    ``marker`` (the worker logs local time with milliseconds)."""
    with log.open("rb") as lines:
        lines.seek(offset)
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            if marker in line:
                logged = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
                return (logged - since).total_seconds()
    return None


def ready(worker: WorkerProcess) -> bool:
    try:
        return worker.get("/readyz")[0] == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def count_events(settings: Settings) -> Counter[tuple[str, int, int]]:
    """Events per input position on the entity topic."""
    topic = settings.topics.entities
    ends = end_offsets(settings, topic, settings.topics.partitions)
    consumer = Consumer(
        {
            **settings.kafka.confluent_config(),
            "group.id": "recovery-count",
            "enable.auto.commit": False,
        }
    )
    counts: Counter[tuple[str, int, int]] = Counter()
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p, _ in enumerate(ends)])
        remaining = sum(ends.values())
        while remaining > 0:
            message = consumer.poll(5.0)
            value = None if message is None or message.error() else message.value()
            if value is None:
                continue
            remaining -= 1
            position = ENTITY_EVENT.decode(value).input
            counts[(position.topic, position.partition, position.offset)] += 1
    finally:
        consumer.close()
    return counts


def run_mode(
    mode: str, args: argparse.Namespace, bootstrap: str, work_dir: Path, rng: random.Random
) -> dict[str, Any]:
    prefix = f"recovery-{mode}-{int(time.time())}"
    settings = mode_settings(bootstrap, work_dir / mode, prefix, args)
    topics = settings.topics
    create_topics(settings.kafka, [*topics.inputs], args.partitions, 1)
    create_topics(settings.kafka, [topics.entities], topics.partitions, 1)
    create_topics(settings.kafka, [topics.dead_letter], 1, 1)
    overrides = {"worker.worker_id": "recovery-worker", **MODES[mode]}
    sent = [0]
    sender = threading.Thread(
        target=send_records, args=(settings, args.records, args.rate, sent), daemon=True
    )
    log = work_dir / f"{mode}.log"
    worker = WorkerProcess(settings, log, overrides=overrides).start()
    worker.wait_ready()
    sender.start()
    recoveries: list[float] = []
    assignments: list[float] = []
    startups: list[float] = []
    for kill in range(args.kills):
        time.sleep(rng.uniform(1.0, args.max_run_s))
        worker.kill()
        progress(f"{mode}: kill {kill + 1}/{args.kills} after {sent[0]} records sent")
        worker = WorkerProcess(settings, log, overrides=overrides, web_port=worker.web_port)
        log_offset = log.stat().st_size
        restarted_at = datetime.now()
        worker.start()
        assigned_s, seconds = wait_recovered(settings, args.partitions, worker)
        startup = seconds_to_log_line(log, log_offset, restarted_at, "serving model")
        if startup is not None:
            startups.append(round(startup, 2))
        assignments.append(round(assigned_s, 2))
        recoveries.append(round(seconds, 2))
        progress(
            f"{mode}: partitions assigned {assigned_s:.1f} s and processing (committing) on "
            f"all of them {seconds:.1f} s after the restart"
        )
    sender.join()
    tps = end_offsets(settings, topics.inputs[0], args.partitions)
    deadline = time.monotonic() + 600
    while committed_offsets(settings, settings.worker.group_id, tps) != tps:
        worker.assert_running()
        assert time.monotonic() < deadline, "never committed to the end"
        time.sleep(1.0)
    worker.stop()
    counts = count_events(settings)
    expected = {(topics.inputs[0], p, o) for (_, p), end in tps.items() for o in range(end)}
    lost = len(expected - set(counts))
    duplicates = sum(counts.values()) - len(counts)
    return {
        "mode": mode,
        "worker_overrides": MODES[mode],
        "records": args.records,
        "events": sum(counts.values()),
        "kills": args.kills,
        "lost": lost,
        "duplicates": duplicates,
        "duplicates_per_crash": round(duplicates / max(args.kills, 1), 1),
        "startup_s": startups,
        "startup_median_s": round(statistics.median(startups), 2) if startups else None,
        "assigned_s": assignments,
        "assigned_median_s": round(statistics.median(assignments), 2) if assignments else None,
        "recovery_s": recoveries,
        "recovery_median_s": round(statistics.median(recoveries), 2) if recoveries else None,
        "recovery_max_s": max(recoveries) if recoveries else None,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Crash recovery (`python -m bench.recovery`)",
        "",
        f"{result['records']} records at {result['rate']}/s on {result['partitions']} partitions, "
        f"one worker killed with SIGKILL {result['kills']} times at random moments (seed "
        f"{result['seed']}) and restarted at once. Started: restart until the worker has loaded "
        "its model (log line `serving model`; Python start and model load). "
        "Assigned: restart until `/readyz` (partitions "
        "assigned). Recovery: restart until every partition with waiting records has committed "
        "past its offset at the restart (process start and model load included). Host: "
        f"{result['host']}, shared; compare modes within this run only.",
        "",
        "| mode | started median (s) | assigned median (s) | recovery median (s) | max (s) "
        "| lost | duplicates | per crash | events |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["modes"]:
        lines.append(
            f"| {row['mode']} | {row['startup_median_s']} | {row['assigned_median_s']} | "
            f"{row['recovery_median_s']} | "
            f"{row['recovery_max_s']} | "
            f"{row['lost']} | {row['duplicates']} | {row['duplicates_per_crash']} | "
            f"{row['events']} |"
        )
    lines += ["", "Recovery per kill (s):", ""]
    lines += [
        f"- {row['mode']}: started {row['startup_s']}, assigned {row['assigned_s']}, "
        f"processing {row['recovery_s']}"
        for row in result["modes"]
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=300.0, help="records sent per second")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--max-run-s", type=float, default=4.0, help="longest run before a kill")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--modes", default="static,dynamic", help=f"of {','.join(MODES)}")
    parser.add_argument("--model-dir", help="model directory (default: the shipped model)")
    parser.add_argument(
        "--provider",
        default="cpu",
        help="model.provider (default cpu: what a CPU node runs; auto first tries TensorRT "
        "where onnxruntime-gpu is installed, which costs seconds at every start)",
    )
    parser.add_argument("--bootstrap-servers", help="use this broker instead of starting one")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    args = parser.parse_args()
    modes = [mode for mode in args.modes.split(",") if mode]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes: {sorted(unknown)}")

    work_dir = Path(tempfile.mkdtemp(prefix="nerstream-recovery-"))
    broker: Settings | None = None
    rng = random.Random(args.seed)
    try:
        if args.bootstrap_servers:
            bootstrap = args.bootstrap_servers
        else:
            broker = load_settings(
                {
                    "local.data_dir": str(work_dir / "kafka"),
                    "local.port": str(free_port()),
                    "local.controller_port": str(free_port()),
                },
                env={},
            )
            bootstrap = local_kafka.up(broker, log=progress).bootstrap_servers
        rows = [run_mode(mode, args, bootstrap, work_dir, rng) for mode in modes]
    finally:
        if broker is not None:
            local_kafka.down(broker, wipe=True)
        if args.keep:
            progress(f"logs kept in {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    result = {
        "records": args.records,
        "rate": args.rate,
        "partitions": args.partitions,
        "kills": args.kills,
        "seed": args.seed,
        "host": f"{platform.machine()}, {len(os.sched_getaffinity(0))} CPUs",
        "modes": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    args.output.with_suffix(".md").write_text(markdown(result) + "\n", encoding="utf-8")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
