"""The worker benchmark: end-to-end throughput against the model alone, latency at fixed input
rates, resident memory, and a py-spy profile — all in one run against a real broker.

    .venv/bin/python -m bench.worker_throughput [--records 15000] [--model-dir DIR]
        [--latency-rates 0.25,0.5,0.75] [--profile-s 15] [--worker-root DIR]

1. Starts a private single-node Kafka (``streams.kafka.local``, free loopback ports, temp dir)
   unless ``--bootstrap-servers`` names one, and creates fresh topics (the entity topic stamps
   messages with the broker's clock: ``LogAppendTime``).
2. Model only: ``NerModel.predict`` over the records in batches of ``--max-batch``, in order,
   in this process; measured before and after step 3, and averaged (the load may drift).
3. End to end at maximum rate: the records are produced first (not timed); then a real
   ``nerstream worker`` process starts, and the clock runs from the moment it is ready
   (partitions assigned) until the broker holds one output per record. Meanwhile py-spy
   samples the worker (``--profile-s``) and its resident memory is read from ``/proc``.
4. Latency: records are produced at fixed fractions of the measured end-to-end rate, each with
   ``created_at`` = the moment it is sent; an independent consumer reads the entity events and
   takes ``broker timestamp - created_at``; p50/p95/p99 per rate.

Writes ``bench/results/worker_throughput.json`` and a Markdown summary beside it, both with the
machine's load average before and after (the machine is shared: read the figures with it).
``--worker-root`` runs the worker from another checkout (e.g. an older commit, for a profile of
the code before a change).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from bench import profile as pyspy
from models.runtime import NerModel
from schemas.codecs import ENTITY_EVENT, RECORD
from streams.kafka import local as local_kafka
from streams.kafka.admin import create_topics
from streams.model_loader import load_model
from streams.settings import KAFKA_VERSION, Settings, load_settings
from tests.conftest import free_port
from tests.integration.worker_process import WorkerProcess, end_offsets, settings_env
from tests.records import mixed_records

RESULTS = Path(__file__).parent / "results" / "worker_throughput.json"
PARTITIONS = 2
#: Seconds of warm-up before the profile and the "after warm-up" memory reading.
WARM_UP_S = 3.0


def progress(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def model_only(model: NerModel, texts: list[str], max_batch: int) -> float:
    """Records per second of the model alone, in the worker's batch size and order."""
    model.predict(texts[:max_batch])  # warm-up, as the worker's first batch pays it too
    started = time.perf_counter()
    for index in range(0, len(texts), max_batch):
        model.predict(texts[index : index + max_batch])
        if index // max_batch % 5 == 0:
            progress(f"model only: {min(index + max_batch, len(texts))}/{len(texts)}")
    return len(texts) / (time.perf_counter() - started)


def rss_mib(pid: int) -> float | None:
    """Resident memory of a process, from /proc (None when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def start_worker(
    settings: Settings, work_dir: Path, root: Path | None, overrides: dict[str, str]
) -> WorkerProcess:
    worker = WorkerProcess(settings, work_dir / "worker.log", overrides=overrides)
    if root is None:
        return worker.start()
    env = settings_env(settings, {**overrides, "worker.web_port": str(worker.web_port)})
    with worker.log_path.open("ab") as log:
        worker.process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            cwd=root,
            env={**env, "PYTHONPATH": str(root)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return worker


def wait_ready(worker: WorkerProcess) -> None:
    while True:
        worker.assert_running()
        try:
            if worker.get("/readyz")[0] == 200:
                return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.02)


def outputs_done(settings: Settings) -> int:
    topics = settings.topics
    done = sum(end_offsets(settings, topics.entities, PARTITIONS).values())
    return done + sum(end_offsets(settings, topics.dead_letter, 1).values())


def end_to_end(
    settings: Settings, records: list[Any], worker: WorkerProcess, profile_s: float
) -> dict[str, Any]:
    """Records per second from worker ready to the last output acknowledged by the broker,
    with memory readings and (optionally) a py-spy profile taken while the backlog drains."""
    input_topic = settings.topics.inputs[0]
    producer = Producer({**settings.kafka.confluent_config(), "linger.ms": 20})
    for record in records:
        producer.produce(input_topic, RECORD.encode(record), key=record.id.encode())
        producer.poll(0)
    producer.flush(60)
    progress(f"produced {len(records)} records to {input_topic}")
    assert worker.process is not None
    pid = worker.process.pid
    rss = {"start": rss_mib(pid)}
    wait_ready(worker)
    started = time.perf_counter()
    progress("worker ready; timing")
    rss["ready"] = rss_mib(pid)
    profiler: ThreadPoolExecutor | None = None
    profiled: Future[str | None] | None = None
    samples: list[tuple[float, float | None]] = []
    last_report = started
    while True:
        now = time.perf_counter()
        if profile_s and profiler is None and now - started >= WARM_UP_S:
            rss["warm"] = rss_mib(pid)
            profiler = ThreadPoolExecutor(max_workers=1)
            profiled = profiler.submit(pyspy.record, pid, profile_s)
            progress(f"py-spy: profiling the worker for {profile_s:.0f} s")
        done = outputs_done(settings)
        if done >= len(records):
            break
        if now - last_report > 2:
            progress(f"end to end: {done}/{len(records)}")
            samples.append((round(now - started, 1), rss_mib(pid)))
            last_report = now
        worker.assert_running()
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    rss["end"] = rss_mib(pid)
    result: dict[str, Any] = {
        "records_per_s": len(records) / seconds,
        "seconds": round(seconds, 2),
        "mean_batch_size": mean_batch_size(worker),
        "rss_mib": rss,
        "rss_mib_over_time": samples,
    }
    if profiled is not None and profiler is not None:
        collapsed = profiled.result()
        profiler.shutdown()
        if collapsed is None:
            result["profile"] = "py-spy unavailable or failed"
        else:
            result["profile"] = pyspy.summarize(collapsed, profile_s)
            if seconds < WARM_UP_S + profile_s:
                result["profile"]["note"] = (
                    f"the backlog drained after {seconds:.1f} s, before the profile ended: "
                    "the idle tail is included"
                )
    return result


def mean_batch_size(worker: WorkerProcess) -> float | None:
    """Records per inference batch so far, from the worker's /metrics."""
    _, text = worker.get("/metrics")
    if not isinstance(text, str):
        return None
    values = {}
    for line in text.splitlines():
        if line.startswith(("nerstream_batch_size_sum ", "nerstream_batch_size_count ")):
            name, value = line.split()
            values[name] = float(value)
    count = values.get("nerstream_batch_size_count")
    return round(values["nerstream_batch_size_sum"] / count, 1) if count else None


def latency_at(
    settings: Settings, records: list[Any], rate: float, worker: WorkerProcess
) -> dict[str, Any]:
    """Produce ``records`` at ``rate`` per second (created_at = send time); return the latency
    percentiles (entity event's broker timestamp - created_at) read by an independent consumer."""
    topics = settings.topics
    consumer = Consumer(
        {
            **settings.kafka.confluent_config(),
            "group.id": f"latency-{os.getpid()}-{time.monotonic_ns()}",
            "enable.auto.commit": False,
        }
    )
    ends = end_offsets(settings, topics.entities, PARTITIONS)
    consumer.assign(
        [TopicPartition(topic, partition, offset) for (topic, partition), offset in ends.items()]
    )
    producer = Producer({**settings.kafka.confluent_config(), "linger.ms": 1})
    wanted = {record.id for record in records}
    latencies: list[float] = []
    started = time.monotonic()
    for index, record in enumerate(records):
        time.sleep(max(started + index / rate - time.monotonic(), 0.0))
        stamped = dataclasses.replace(record, created_at=datetime.now(UTC))
        producer.produce(topics.inputs[0], RECORD.encode(stamped), key=record.id.encode())
        producer.poll(0)
        for message in consumer.consume(500, timeout=0):
            latencies.extend(_latency(message, wanted))
    producer.flush(60)
    deadline = time.monotonic() + 120
    while len(latencies) < len(records) and time.monotonic() < deadline:
        worker.assert_running()
        for message in consumer.consume(500, timeout=0.5):
            latencies.extend(_latency(message, wanted))
    consumer.close()
    latencies.sort()
    return {
        "rate_records_per_s": round(rate, 1),
        "records": len(records),
        "received": len(latencies),
        "p50_ms": _percentile(latencies, 0.50),
        "p95_ms": _percentile(latencies, 0.95),
        "p99_ms": _percentile(latencies, 0.99),
        "max_ms": round(latencies[-1], 1) if latencies else None,
    }


def _latency(message: Any, wanted: set[str]) -> list[float]:
    if message.error() is not None:
        return []
    event = ENTITY_EVENT.decode(message.value())
    if event.record_id not in wanted:
        return []
    _, broker_ms = message.timestamp()
    return [broker_ms - event.created_at.timestamp() * 1000]


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    return round(values[min(int(share * len(values)), len(values) - 1)], 1)


def create_bench_topics(settings: Settings) -> None:
    create_topics(settings.kafka, [*settings.topics.inputs], PARTITIONS, 1)
    create_topics(settings.kafka, [settings.topics.dead_letter], 1, 1)
    # The entity topic stamps messages with the broker's clock: latency ends when the broker has
    # the event, whatever the worker's clock says.
    admin = AdminClient(dict(settings.kafka.confluent_config()))
    topic = NewTopic(
        settings.topics.entities,
        PARTITIONS,
        1,
        config={"message.timestamp.type": "LogAppendTime"},
    )
    for future in admin.create_topics([topic]).values():
        future.result(timeout=30)
    time.sleep(1.0)


def bench_settings(
    args: argparse.Namespace, bootstrap: str, work_dir: Path, prefix: str
) -> Settings:
    """Fresh topics and group named ``prefix``, the worker and model options of the run."""
    base = load_settings({"kafka.bootstrap_servers": bootstrap}, env={})
    return dataclasses.replace(
        base,
        topics=dataclasses.replace(
            base.topics,
            inputs=(f"{prefix}.records",),
            entities=f"{prefix}.entities",
            dead_letter=f"{prefix}.dead-letter",
        ),
        worker=dataclasses.replace(
            base.worker,
            group_id=f"{prefix}.ner",
            max_batch=args.max_batch,
            data_dir=work_dir / "worker",
        ),
        model=dataclasses.replace(base.model, model_dir=args.model_dir or "", threads=args.threads),
    )


def baseline_run(
    args: argparse.Namespace, bootstrap: str, work_dir: Path, records: list[Any]
) -> dict[str, Any]:
    """The same end-to-end measurement (and profile) with the worker of ``--baseline-root``."""
    settings = bench_settings(args, bootstrap, work_dir, f"bench-{os.getpid()}-baseline")
    create_bench_topics(settings)
    overrides = {"model.threads": str(args.threads)}
    worker = start_worker(settings, work_dir, args.baseline_root, overrides)
    try:
        e2e = end_to_end(settings, records, worker, args.profile_s)
    finally:
        worker.stop()
    e2e["records_per_s"] = round(e2e["records_per_s"], 1)
    e2e["worker_code"] = str(args.baseline_root)
    progress(f"baseline end to end: {e2e['records_per_s']:.0f} records/s")
    return e2e


def run(args: argparse.Namespace, bootstrap: str, work_dir: Path) -> dict[str, Any]:
    settings = bench_settings(args, bootstrap, work_dir, f"bench-{os.getpid()}")
    create_bench_topics(settings)
    load_before = os.getloadavg()

    records = list(mixed_records(args.records))
    texts = [record.text for record in records]
    model = load_model(settings.model)  # the model exactly as the worker loads it
    progress(f"model {model.manifest.name} {model.manifest.version} on {model.provider}")
    # Model only before and after the end-to-end run: on a shared machine the load drifts, and
    # the mean of the two brackets the end-to-end measurement.
    before = model_only(model, texts, args.max_batch)
    progress(f"model only: {before:.0f} records/s")
    overrides = {"model.threads": str(args.threads)}
    if args.latency_target_ms is not None:
        overrides["worker.latency_target_ms"] = str(args.latency_target_ms)
    worker = start_worker(settings, work_dir, args.worker_root, overrides)
    try:
        e2e = end_to_end(settings, records, worker, args.profile_s)
        e2e_rps = e2e.pop("records_per_s")
        progress(f"end to end: {e2e_rps:.0f} records/s")
        latency = []
        for index, fraction in enumerate(args.latency_rates):
            rate = fraction * e2e_rps
            count = max(int(rate * args.latency_seconds), 50)
            phase = [
                dataclasses.replace(record, id=f"lat{index}-{record.id}")
                for record in mixed_records(count, seed=100 + index)
            ]
            progress(f"latency at {fraction:.0%} of the maximum ({rate:.0f} records/s)")
            measured = latency_at(settings, phase, rate, worker)
            measured["fraction_of_max"] = fraction
            latency.append(measured)
            progress(
                f"  p50/p95/p99 {measured['p50_ms']}/{measured['p95_ms']}/{measured['p99_ms']} ms"
            )
        assert worker.process is not None
        e2e["rss_mib"]["after_latency_phases"] = rss_mib(worker.process.pid)
    finally:
        worker.stop()
    baseline = baseline_run(args, bootstrap, work_dir, records) if args.baseline_root else None
    after = model_only(model, texts, args.max_batch)
    progress(f"model only again: {after:.0f} records/s")
    model_rps = (before + after) / 2
    if baseline is not None:
        baseline["ratio_end_to_end_to_model_only"] = round(baseline["records_per_s"] / model_rps, 3)
    return {
        "benchmark": "worker_throughput",
        "command": " ".join(["python -m bench.worker_throughput", *sys.argv[1:]]),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "worker_code": str(args.worker_root or "this checkout"),
        "records": len(records),
        "mean_text_chars": round(sum(map(len, texts)) / len(texts), 1),
        "max_batch": args.max_batch,
        "latency_target_ms": args.latency_target_ms,
        "input_partitions": PARTITIONS,
        "model": {
            "name": model.manifest.name,
            "version": model.manifest.version,
            "provider": model.provider,
            "threads": args.threads,
        },
        "model_only_records_per_s": round(model_rps, 1),
        "model_only_before_and_after_records_per_s": [round(before, 1), round(after, 1)],
        "end_to_end_records_per_s": round(e2e_rps, 1),
        "ratio_end_to_end_to_model_only": round(e2e_rps / model_rps, 3),
        "end_to_end": e2e,
        "latency": latency,
        "baseline": baseline,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1_5_15_before": [round(x, 2) for x in load_before],
            "load_average_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
        },
        "kafka_version": KAFKA_VERSION,
    }


def markdown(result: dict[str, Any]) -> str:
    """A short human summary of one result."""
    machine = result["machine"]
    lines = [
        f"# Worker benchmark, {result['measured_at']}",
        "",
        f"`{result['command']}` — worker code: {result['worker_code']}; {result['records']} "
        f"records (mean {result['mean_text_chars']} chars), {result['input_partitions']} "
        f"partitions, max_batch {result['max_batch']}, model {result['model']['name']} "
        f"{result['model']['version']} on {result['model']['provider']}, "
        f"{result['model']['threads']} thread(s).",
        "",
        f"Machine: {machine['cpus']} CPUs, load average (1/5/15 min) "
        f"{machine['load_average_1_5_15_before']} before, {machine['load_average_1_5_15_after']} "
        "after — a shared machine: read every figure with it.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| model only | {result['model_only_records_per_s']} records/s "
        f"(before/after {result['model_only_before_and_after_records_per_s']}) |",
        f"| end to end | {result['end_to_end_records_per_s']} records/s |",
        f"| ratio | **{result['ratio_end_to_end_to_model_only']}** |",
        f"| worker RSS (MiB) | {result['end_to_end']['rss_mib']} |",
        "",
    ]
    if result["latency"]:
        lines += [
            "| input rate | records | p50 ms | p95 ms | p99 ms |",
            "|---|---|---|---|---|",
        ]
        for row in result["latency"]:
            lines.append(
                f"| {row['fraction_of_max']:.0%} ({row['rate_records_per_s']}/s) | "
                f"{row['received']}/{row['records']} | {row['p50_ms']} | {row['p95_ms']} | "
                f"{row['p99_ms']} |"
            )
        lines.append("")
    baseline = result.get("baseline")
    if baseline:
        lines += [
            f"Baseline worker ({baseline['worker_code']}), same records, same run: "
            f"{baseline['records_per_s']} records/s end to end, ratio "
            f"**{baseline['ratio_end_to_end_to_model_only']}**, RSS {baseline['rss_mib']} MiB.",
            "",
        ]
    for title, prof in (
        ("this checkout's worker", result["end_to_end"].get("profile")),
        ("the baseline worker", (baseline or {}).get("profile")),
    ):
        if not isinstance(prof, dict):
            continue
        lines += [
            f"py-spy of {title}, {prof['seconds']} s under backlog — busy share per thread: "
            + ", ".join(f"{name} {share:.0%}" for name, share in prof["thread_busy_share"].items()),
            "",
            "| top self functions | share of samples |",
            "|---|---|",
        ]
        lines += [
            f"| `{row['function']}` | {row['share_of_samples']:.1%} |" for row in prof["top_self"]
        ]
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=15000)
    parser.add_argument("--model-dir", help="model directory (default: the shipped model)")
    parser.add_argument("--max-batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument("--bootstrap-servers", help="use this broker instead of starting one")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--latency-rates",
        type=lambda text: [float(x) for x in text.split(",") if x],
        default=[0.25, 0.5, 0.75],
        help="fractions of the measured end-to-end rate to measure latency at ('' for none)",
    )
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="per rate")
    parser.add_argument("--latency-target-ms", type=float, help="worker.latency_target_ms")
    parser.add_argument("--profile-s", type=float, default=0.0, help="py-spy the worker (s)")
    parser.add_argument("--worker-root", type=Path, help="run the worker from this checkout")
    parser.add_argument(
        "--baseline-root",
        type=Path,
        help="also run the end-to-end phase (and profile) with the worker of this checkout",
    )
    args = parser.parse_args()

    work_dir = Path(tempfile.mkdtemp(prefix="nerstream-bench-"))
    broker: Settings | None = None
    try:
        if args.bootstrap_servers:
            bootstrap = args.bootstrap_servers
        else:
            port, controller = free_port(), free_port()
            broker = load_settings(
                {
                    "local.data_dir": str(work_dir / "kafka"),
                    "local.port": str(port),
                    "local.controller_port": str(controller),
                },
                env={},
            )
            bootstrap = local_kafka.up(broker, log=progress).bootstrap_servers
        result = run(args, bootstrap, work_dir)
    finally:
        if broker is not None:
            local_kafka.down(broker, wipe=True)
        shutil.rmtree(work_dir, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    args.output.with_suffix(".md").write_text(markdown(result) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
