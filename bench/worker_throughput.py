"""The worker benchmark: end-to-end throughput against the model alone, latency at fixed input
rates, 1 vs 2 workers, adaptive vs fixed batching, resident memory and a py-spy profile — all in
one run against a real broker; ``--scale N`` instead runs the seed's scale (N records, streamed).

    .venv/bin/python -m bench [--records 15000] [--model-dir DIR] [--profile-s 15]
        [--latency-rates 0.25,0.5,0.75,1] [--scale-out-records N] [--batching-records N]
        [--fixed-batches 32,256,256@0.05] [--worker-root DIR] [--baseline-root DIR]
    .venv/bin/python -m bench --scale 1000000 [--scale-workers 1] [--scale-partitions 4]

1. Starts a private single-node Kafka (``streams.kafka.local``, free loopback ports, temp dir)
   unless ``--bootstrap-servers`` names one, and creates fresh topics per phase (the entity
   topic stamps messages with the broker's clock: ``LogAppendTime``).
2. Model only: ``NerModel.predict`` over the records in batches of ``--max-batch``, in order,
   in this process; measured before and after step 3, and averaged (the load may drift).
3. End to end at maximum rate: the records are produced first (not timed); then a real
   ``nerstream worker`` process starts, and the clock runs from the moment it is ready
   (partitions assigned) until the broker holds one output per record. Meanwhile py-spy
   samples the worker (``--profile-s``) and its resident memory is read from ``/proc``.
4. Latency: records are produced at fixed fractions of the measured end-to-end rate (1 = the
   maximum rate itself), each with ``created_at`` = the moment it is sent; an independent
   consumer reads the entity events and takes ``broker timestamp - created_at``; p50/p95/p99.
5. Scale-out: the same ``--scale-out-records`` records through 1 and then 2 workers of one group
   on 4 partitions (production streamed alongside, timed from the first send to the last output).
6. Batching: per configuration (adaptive ``worker.latency_target_ms``; fixed: each
   ``--fixed-batches`` ``max_batch[@max_wait_s]`` with the target 0), a fresh worker drains
   ``--batching-records`` records at maximum load, then gets records at 25 % of step 3's rate:
   throughput at maximum load and p99 at low load, against the best fixed setting.

Writes ``bench/results/worker_throughput.json`` (``worker_scale.json`` for ``--scale``) and a
Markdown summary beside it, with the machine's load average before and after (the machine is
shared: read the figures with it). ``--worker-root`` runs the main worker from another checkout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import harness, stats
from bench import profile as pyspy
from bench.harness import fresh_settings, progress, rss_mib
from models.runtime import NerModel
from schemas.codecs import InputRecord
from streams.kafka import local as local_kafka
from streams.model_loader import load_model
from streams.settings import KAFKA_VERSION, Settings, load_settings
from tests.conftest import free_port
from tests.integration.worker_process import WorkerProcess
from tests.records import mixed_records

RESULTS = Path(__file__).parent / "results" / "worker_throughput.json"
SCALE_RESULTS = Path(__file__).parent / "results" / "worker_scale.json"
PARTITIONS = 2
#: Partitions of the scale-out phase (issue #12: 1 vs 2 workers on 4 partitions).
SCALE_OUT_PARTITIONS = 4
#: Seconds of warm-up before the profile and the "after warm-up" memory reading.
WARM_UP_S = 3.0
#: Samples of a memory series kept in the results.
SERIES_POINTS = 40


def model_only(model: NerModel, texts: list[str], max_batch: int) -> float:
    """Records per second of the model alone, in the worker's batch size and order."""
    model.predict(texts[:max_batch])  # warm-up, as the worker's first batch pays it too
    started = time.perf_counter()
    for index in range(0, len(texts), max_batch):
        model.predict(texts[index : index + max_batch])
        if index // max_batch % 5 == 0:
            progress(f"model only: {min(index + max_batch, len(texts))}/{len(texts)}")
    return len(texts) / (time.perf_counter() - started)


def end_to_end(
    settings: Settings, records: list[InputRecord], worker: WorkerProcess, profile_s: float
) -> dict[str, Any]:
    """Records per second from worker ready to the last output acknowledged by the broker,
    with memory readings and (optionally) a py-spy profile taken while the backlog drains."""
    harness.produce_all(settings, records)
    progress(f"produced {len(records)} records to {settings.topics.inputs[0]}")
    pid = harness.worker_pid(worker)
    rss = {"start": rss_mib(pid)}
    counter = harness.OutputCounter(settings, PARTITIONS)
    harness.wait_ready(worker)
    started = time.perf_counter()
    progress("worker ready; timing")
    rss["ready"] = rss_mib(pid)
    profiler: ThreadPoolExecutor | None = None
    profiled: Future[str | None] | None = None
    samples: list[tuple[float, float | None]] = []
    last_report = started
    while True:
        now = time.perf_counter()
        if "warm" not in rss and now - started >= WARM_UP_S:
            rss["warm"] = rss_mib(pid)
            if profile_s:
                profiler = ThreadPoolExecutor(max_workers=1)
                profiled = profiler.submit(pyspy.record, pid, profile_s)
                progress(f"py-spy: profiling the worker for {profile_s:.0f} s")
        done = counter.count()
        if done >= len(records):
            break
        if now - last_report > 2:
            progress(f"end to end: {done}/{len(records)}")
            samples.append((round(now - started, 1), rss_mib(pid)))
            last_report = now
        worker.assert_running()
        time.sleep(harness.COUNT_EVERY_S)
    seconds = time.perf_counter() - started
    counter.close()
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


def bench_settings(
    args: argparse.Namespace, bootstrap: str, work_dir: Path, prefix: str
) -> Settings:
    """Fresh topics and group named ``prefix``, the worker and model options of the run."""
    base = fresh_settings(bootstrap, prefix, work_dir / prefix)
    return dataclasses.replace(
        base,
        worker=dataclasses.replace(base.worker, max_batch=args.max_batch),
        model=dataclasses.replace(base.model, model_dir=args.model_dir or "", threads=args.threads),
    )


def worker_overrides(args: argparse.Namespace) -> dict[str, str]:
    overrides = {"model.threads": str(args.threads)}
    if args.latency_target_ms is not None:
        overrides["worker.latency_target_ms"] = str(args.latency_target_ms)
    return overrides


def phase_records(count: int, seed: int, tag: str) -> list[InputRecord]:
    """``count`` fresh records with ids unique to one phase (``tag``)."""
    return [
        dataclasses.replace(record, id=f"{tag}-{record.id}")
        for record in mixed_records(count, seed=seed)
    ]


def baseline_run(
    args: argparse.Namespace, bootstrap: str, work_dir: Path, records: list[InputRecord]
) -> dict[str, Any]:
    """The same end-to-end measurement (and profile) with the worker of ``--baseline-root``."""
    settings = bench_settings(args, bootstrap, work_dir, f"bench-{os.getpid()}-baseline")
    harness.create_bench_topics(settings, PARTITIONS)
    worker = harness.start_worker(
        settings, work_dir / "baseline.log", worker_overrides(args), args.baseline_root
    )
    try:
        e2e = end_to_end(settings, records, worker, args.profile_s)
    finally:
        worker.stop()
    e2e["records_per_s"] = round(e2e["records_per_s"], 1)
    e2e["worker_code"] = str(args.baseline_root)
    progress(f"baseline end to end: {e2e['records_per_s']:.0f} records/s")
    return e2e


def scale_out(
    args: argparse.Namespace, bootstrap: str, work_dir: Path, count: int
) -> list[dict[str, Any]]:
    """The same ``count`` records through 1, 2, then again 1 worker(s) of one group on 4
    partitions: the load of the shared machine drifts, and the two one-worker runs bracket the
    two-worker run (the speed-up is against their mean)."""
    rows = []
    for index, workers in enumerate((1, 2, 1)):
        name = f"bench-{os.getpid()}-scale-out-{index}"
        settings = bench_settings(args, bootstrap, work_dir, name)
        harness.create_bench_topics(settings, SCALE_OUT_PARTITIONS)
        running = harness.run_workers(settings, work_dir, name, worker_overrides(args), workers)
        progress(f"scale-out: {count} records, {workers} worker(s), 4 partitions")
        load = os.getloadavg()[0]
        try:
            drained = harness.drain(
                settings, mixed_records(count), count, running, SCALE_OUT_PARTITIONS
            )
        finally:
            harness.stop_all(running)
        drained["series"] = stats.thin(
            [(row["at_s"], sum(filter(None, row["worker_rss_mib"]))) for row in drained["series"]],
            SERIES_POINTS,
        )
        rows.append(
            {
                "workers": workers,
                "partitions": SCALE_OUT_PARTITIONS,
                "load_average_1min_at_start": round(load, 2),
                **drained,
            }
        )
        progress(f"  {drained['records_per_s']} records/s")
    rows[1]["speed_up_over_one_worker"] = stats.bracketed_ratio(
        rows[0]["records_per_s"], rows[1]["records_per_s"], rows[2]["records_per_s"]
    )
    return rows


def batching_comparison(
    args: argparse.Namespace, bootstrap: str, work_dir: Path, count: int, low_rate: float
) -> dict[str, Any]:
    """Adaptive batching against fixed batch sizes: throughput draining ``count`` records, then
    p99 latency at ``low_rate`` (the same records for every configuration)."""
    target = args.latency_target_ms if args.latency_target_ms is not None else 100.0
    configs: list[tuple[str, int, float, float | None]] = [
        ("adaptive", args.max_batch, target, None)
    ]
    configs += [
        (f"fixed {size}" + ("" if wait is None else f", wait {wait} s"), size, 0.0, wait)
        for size, wait in args.fixed_batches
    ]
    # Adaptive first and last: the load drifts, and its two runs bracket the fixed ones.
    configs.append(("adaptive (again)", *configs[0][1:]))
    low_count = stats.records_for(low_rate, args.latency_seconds)
    rows = []
    for index, (label, max_batch, latency_target, wait_s) in enumerate(configs):
        name = f"bench-{os.getpid()}-batching-{index}"
        settings = bench_settings(args, bootstrap, work_dir, name)
        harness.create_bench_topics(settings, PARTITIONS)
        overrides = {
            **worker_overrides(args),
            "worker.max_batch": str(max_batch),
            "worker.latency_target_ms": str(latency_target),
        }
        if wait_s is not None:
            overrides["worker.max_wait_s"] = str(wait_s)
        running = harness.run_workers(settings, work_dir, name, overrides, 1)
        load = os.getloadavg()[0]
        progress(f"batching {label}: {count} records at maximum load, then {low_rate:.0f}/s")
        try:
            drained = harness.drain(settings, mixed_records(count, seed=11), count, running, 2)
            batch = mean_batch_size(running[0])  # under backlog, before the low-load phase
            low = harness.latency_at(
                settings, phase_records(low_count, 200, "low"), low_rate, running, PARTITIONS
            )
        finally:
            harness.stop_all(running)
        rows.append(
            {
                "label": label,
                "max_batch": max_batch,
                "latency_target_ms": latency_target,
                "records_per_s": drained["records_per_s"],
                "max_wait_s": wait_s,
                "mean_batch_size_at_max_load": batch,
                "low_load_rate_records_per_s": round(low_rate, 1),
                **{key: low[key] for key in ("received", "p50_ms", "p95_ms", "p99_ms")},
                "low_load_records": low_count,
                "load_average_1min_at_start": round(load, 2),
            }
        )
        progress(f"  {drained['records_per_s']} records/s, p99 {low['p99_ms']} ms at low load")
    first, *fixed, last = rows
    adaptive = {
        "label": "adaptive (mean of its two runs)",
        "records_per_s": round((first["records_per_s"] + last["records_per_s"]) / 2, 1),
        "p99_ms": None
        if first["p99_ms"] is None or last["p99_ms"] is None
        else round((first["p99_ms"] + last["p99_ms"]) / 2, 1),
    }
    return {"records": count, "rows": rows, "verdict": stats.compare_batching(adaptive, fixed)}


def machine(load_before: tuple[float, float, float]) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_1_5_15_before": [round(x, 2) for x in load_before],
        "load_average_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
    }


def run(args: argparse.Namespace, bootstrap: str, work_dir: Path) -> dict[str, Any]:
    settings = bench_settings(args, bootstrap, work_dir, f"bench-{os.getpid()}")
    harness.create_bench_topics(settings, PARTITIONS)
    load_before = os.getloadavg()

    records = list(mixed_records(args.records))
    texts = [record.text for record in records]
    model = load_model(settings.model)  # the model exactly as the worker loads it
    progress(f"model {model.manifest.name} {model.manifest.version} on {model.provider}")
    # Model only before and after the end-to-end run: on a shared machine the load drifts, and
    # the mean of the two brackets the end-to-end measurement.
    before = model_only(model, texts, args.max_batch)
    progress(f"model only: {before:.0f} records/s")
    worker = harness.start_worker(
        settings, work_dir / "worker.log", worker_overrides(args), args.worker_root
    )
    try:
        e2e = end_to_end(settings, records, worker, args.profile_s)
        e2e_rps = e2e.pop("records_per_s")
        progress(f"end to end: {e2e_rps:.0f} records/s")
        latency = []
        for index, fraction in enumerate(args.latency_rates):
            rate = fraction * e2e_rps
            phase = phase_records(
                stats.records_for(rate, args.latency_seconds), 100 + index, f"lat{index}"
            )
            progress(f"latency at {fraction:.0%} of the maximum ({rate:.0f} records/s)")
            measured = harness.latency_at(settings, phase, rate, [worker], PARTITIONS)
            measured["fraction_of_max"] = fraction
            latency.append(measured)
            progress(
                f"  p50/p95/p99 {measured['p50_ms']}/{measured['p95_ms']}/{measured['p99_ms']} ms"
            )
        e2e["rss_mib"]["after_latency_phases"] = rss_mib(harness.worker_pid(worker))
    finally:
        worker.stop()
    baseline = baseline_run(args, bootstrap, work_dir, records) if args.baseline_root else None
    after = model_only(model, texts, args.max_batch)
    progress(f"model only again: {after:.0f} records/s")
    model_rps = (before + after) / 2
    if baseline is not None:
        baseline["ratio_end_to_end_to_model_only"] = round(baseline["records_per_s"] / model_rps, 3)
    scale_out_count = args.scale_out_records
    if scale_out_count is None:
        scale_out_count = args.records // 2
    batching_count = args.batching_records
    if batching_count is None:
        batching_count = args.records // 4
    return {
        "benchmark": "worker_throughput",
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
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
        "scale_out": (
            scale_out(args, bootstrap, work_dir, scale_out_count) if scale_out_count else None
        ),
        "batching": (
            batching_comparison(args, bootstrap, work_dir, batching_count, 0.25 * e2e_rps)
            if batching_count and args.fixed_batches
            else None
        ),
        "machine": machine(load_before),
        "kafka_version": KAFKA_VERSION,
    }


def scale_run(args: argparse.Namespace, bootstrap: str, work_dir: Path) -> dict[str, Any]:
    """``--scale N``: N generated records (streamed, never all in memory) through
    ``--scale-workers`` workers on ``--scale-partitions`` partitions; total time and memory."""
    load_before = os.getloadavg()
    name = f"bench-{os.getpid()}-scale"
    settings = bench_settings(args, bootstrap, work_dir, name)
    harness.create_bench_topics(settings, args.scale_partitions)
    running = harness.run_workers(
        settings, work_dir, name, worker_overrides(args), args.scale_workers
    )
    progress(f"scale: {args.scale} records, {args.scale_workers} worker(s)")
    try:
        drained = harness.drain(
            settings,
            mixed_records(args.scale, seed=1),
            args.scale,
            running,
            args.scale_partitions,
            sample_every_s=5.0,
        )
        batch = [mean_batch_size(worker) for worker in running]
    finally:
        harness.stop_all(running)
    series = drained.pop("series")
    per_worker = [stats.growth(rss["warm"], rss["end"]) for rss in drained["rss_mib_per_worker"]]
    return {
        "benchmark": "worker_scale",
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "workers": args.scale_workers,
        "partitions": args.scale_partitions,
        "max_batch": args.max_batch,
        "threads": args.threads,
        **drained,
        "mean_batch_size_per_worker": batch,
        "minutes_per_million_records": round(drained["seconds"] / args.scale * 1e6 / 60, 1),
        "memory_growth_after_warm_up_per_worker": per_worker,
        "memory_over_time": stats.thin(
            [
                (row["at_s"], row["outputs"], row["worker_rss_mib"], row["harness_rss_mib"])
                for row in series
            ],
            SERIES_POINTS,
        ),
        "memory_over_time_columns": ["at_s", "outputs", "worker_rss_mib", "harness_rss_mib"],
        "machine": machine(load_before),
        "kafka_version": KAFKA_VERSION,
    }


def machine_line(machine: dict[str, Any]) -> str:
    return (
        f"Machine: {machine['cpus']} CPUs, load average (1/5/15 min) "
        f"{machine['load_average_1_5_15_before']} before, {machine['load_average_1_5_15_after']} "
        "after — a shared machine: read every figure with it."
    )


def markdown(result: dict[str, Any]) -> str:
    """A short human summary of one result."""
    lines = [
        f"# Worker benchmark, {result['measured_at']}",
        "",
        f"`{result['command']}` — worker code: {result['worker_code']}; {result['records']} "
        f"records (mean {result['mean_text_chars']} chars), {result['input_partitions']} "
        f"partitions, max_batch {result['max_batch']}, model {result['model']['name']} "
        f"{result['model']['version']} on {result['model']['provider']}, "
        f"{result['model']['threads']} thread(s).",
        "",
        machine_line(result["machine"]),
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
    lines += scale_out_and_batching_lines(result)
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


def scale_out_and_batching_lines(result: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if result.get("scale_out"):
        lines += [
            "1 vs 2 workers (one group, 4 partitions, the same records, production streamed):",
            "",
            "| workers | load (1 min) | records | seconds | records/s | speed-up | "
            "RSS MiB per worker ready → warm → end |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in result["scale_out"]:
            rss = "; ".join(
                f"{w['ready']} → {w['warm']} → {w['end']}" for w in row["rss_mib_per_worker"]
            )
            lines.append(
                f"| {row['workers']} | {row['load_average_1min_at_start']} | {row['records']} | "
                f"{row['seconds']} | {row['records_per_s']} | "
                f"{row.get('speed_up_over_one_worker', '')} | {rss} |"
            )
        lines.append("")
    batching = result.get("batching")
    if batching:
        rows = batching["rows"]
        lines += [
            f"Batching: throughput draining {batching['records']} records at "
            f"maximum load; latency at {rows[0]['low_load_rate_records_per_s']} records/s "
            "(25 % of the end-to-end maximum):",
            "",
            "| batching | load (1 min) | max_batch | latency_target_ms | records/s | "
            "mean batch at max | p50 / p95 / p99 ms at 25 % |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {row['label']} | {row['load_average_1min_at_start']} | {row['max_batch']} | "
            f"{row['latency_target_ms']} | "
            f"{row['records_per_s']} | {row['mean_batch_size_at_max_load']} | "
            f"{row['p50_ms']} / {row['p95_ms']} / {row['p99_ms']} |"
            for row in rows
        ]
        verdict = batching["verdict"]
        if verdict["complete"]:
            lines += [
                "",
                f"Adaptive (mean of its two runs) p99 {verdict['adaptive_p99_ms']} ms against "
                "the best fixed "
                f"({verdict['best_fixed_p99']['label']}) {verdict['best_fixed_p99']['p99_ms']} ms"
                f" — {'better' if verdict['p99_better'] else 'not better'}; throughput "
                f"{verdict['throughput_share_of_best_fixed']:.0%} of the best fixed "
                f"({verdict['best_fixed_throughput']['label']}) — "
                f"{'within' if verdict['throughput_within_5_percent'] else 'not within'} 5 %.",
            ]
        lines.append("")
    return lines


def scale_markdown(result: dict[str, Any]) -> str:
    """A short human summary of a ``--scale`` result."""
    lines = [
        f"# Worker benchmark at scale, {result['measured_at']}",
        "",
        f"`{result['command']}` — {result['records']} generated news and medical records (mean "
        f"{result['mean_text_chars']} chars, longest {result['longest_text_chars']}: every 25th is "
        f"a long note the model reads in windows), {result['workers']} worker(s), "
        f"{result['partitions']} partitions, max_batch {result['max_batch']}, "
        f"{result['threads']} ONNX Runtime thread(s).",
        "",
        machine_line(result["machine"]),
        "",
        f"**{result['seconds']} s** in all, {result['records_per_s']} records/s "
        f"(= {result['minutes_per_million_records']} minutes per 1,000,000 records at this "
        f"rate); mean batch {result['mean_batch_size_per_worker']}.",
        "",
        "| worker | RSS MiB ready | after warm-up | end | growth after warm-up |",
        "|---|---|---|---|---|",
    ]
    for index, (rss, share) in enumerate(
        zip(
            result["rss_mib_per_worker"],
            result["memory_growth_after_warm_up_per_worker"],
            strict=True,
        )
    ):
        lines.append(
            f"| {index} | {rss['ready']} | {rss['warm']} | {rss['end']} | "
            f"{'n/a' if share is None else f'{share:+.1%}'} |"
        )
    lines += [
        "",
        "Memory over time (sampled every 5 s, thinned):",
        "",
        "| s | outputs | worker RSS MiB | harness RSS MiB |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {at} | {outputs} | {', '.join(map(str, workers))} | {own} |"
        for at, outputs, workers, own in result["memory_over_time"]
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=15000)
    parser.add_argument("--model-dir", help="model directory (default: the shipped model)")
    parser.add_argument("--max-batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument("--bootstrap-servers", help="use this broker instead of starting one")
    parser.add_argument("--output", type=Path, help="JSON result (Markdown beside it)")
    parser.add_argument(
        "--latency-rates",
        type=fractions,
        default=[0.25, 0.5, 0.75, 1.0],
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
    parser.add_argument(
        "--scale-out-records", type=int, help="records for 1 vs 2 workers (--records/2; 0: skip)"
    )
    parser.add_argument(
        "--batching-records", type=int, help="records per batching setting (--records/4; 0: skip)"
    )
    parser.add_argument(
        "--fixed-batches",
        type=fixed_batches,
        default=fixed_batches("32,256,256@0.05"),
        help="fixed settings adaptive batching is compared with: max_batch[@max_wait_s], comma "
        "separated ('' for none)",
    )
    parser.add_argument(
        "--scale", type=int, help="only the scale run: this many records, streamed (1000000)"
    )
    parser.add_argument("--scale-workers", type=int, default=1)
    parser.add_argument("--scale-partitions", type=int, default=SCALE_OUT_PARTITIONS)
    args = parser.parse_args()
    output = args.output or (SCALE_RESULTS if args.scale else RESULTS)

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
        result = (scale_run if args.scale else run)(args, bootstrap, work_dir)
    finally:
        if broker is not None:
            local_kafka.down(broker, wipe=True)
        shutil.rmtree(work_dir, ignore_errors=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    summary = scale_markdown(result) if args.scale else markdown(result)
    output.with_suffix(".md").write_text(summary + "\n", encoding="utf-8")
    print(summary)
    return 0


def fixed_batches(text: str) -> list[tuple[int, float | None]]:
    """``32,256@0.05`` -> [(32, None), (256, 0.05)]: max_batch, and max_wait_s where given."""
    settings = []
    for item in filter(None, text.split(",")):
        size, _, wait = item.partition("@")
        settings.append((int(size), float(wait) if wait else None))
    return settings


def fractions(text: str) -> list[float]:
    """``0.25,0.5`` -> [0.25, 0.5]: fractions of the maximum rate, each in (0, 1]."""
    values = [float(x) for x in text.split(",") if x]
    if any(not 0 < value <= 1 for value in values):
        raise argparse.ArgumentTypeError("each rate is a fraction of the maximum in (0, 1]")
    return values


if __name__ == "__main__":
    sys.exit(main())
