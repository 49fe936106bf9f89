"""End-to-end worker throughput against model-only throughput, on the same records, same run.

    .venv/bin/python -m bench.worker_throughput [--records 15000] [--model-dir DIR]

1. Starts a private single-node Kafka (``streams.kafka.local``, free loopback ports, temp dir)
   unless ``--bootstrap-servers`` names one, and creates fresh topics.
2. Model only: ``NerModel.predict`` over the records in batches of ``--max-batch``, in order,
   in this process; measured before and after step 3, and averaged (the load may drift).
3. End to end: the records are produced first (not timed); then a real ``nerstream worker``
   process starts, and the clock runs from the moment it is ready (partitions assigned) until
   the broker holds one output per record.

Writes ``bench/results/worker_throughput.json``: both rates and their ratio (end to end / model
only). The ratio is the worker's overhead: decoding, Kafka I/O and commits around the model.
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
import urllib.error
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from models.runtime import NerModel
from schemas.codecs import RECORD
from streams.kafka import local as local_kafka
from streams.kafka.admin import create_topics
from streams.model_loader import load_model
from streams.settings import KAFKA_VERSION, Settings, load_settings
from tests.conftest import free_port
from tests.integration.worker_process import WorkerProcess, end_offsets
from tests.records import mixed_records

RESULTS = Path(__file__).parent / "results" / "worker_throughput.json"
PARTITIONS = 2


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


def end_to_end(settings: Settings, records: list[Any], work_dir: Path) -> float:
    """Records per second from worker ready to the last output acknowledged by the broker."""
    topics = settings.topics
    input_topic = topics.inputs[0]
    producer = Producer({**settings.kafka.confluent_config(), "linger.ms": 20})
    for record in records:
        producer.produce(input_topic, RECORD.encode(record), key=record.id.encode())
        producer.poll(0)
    producer.flush(60)
    progress(f"produced {len(records)} records to {input_topic}")

    worker = WorkerProcess(settings, work_dir / "worker.log").start()
    try:
        while True:
            worker.assert_running()
            try:
                if worker.get("/readyz")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.02)
        started = time.perf_counter()
        progress("worker ready; timing")
        last_report = started
        while True:
            done = sum(end_offsets(settings, topics.entities, PARTITIONS).values())
            done += sum(end_offsets(settings, topics.dead_letter, 1).values())
            now = time.perf_counter()
            if done >= len(records):
                break
            if now - last_report > 2:
                progress(f"end to end: {done}/{len(records)}")
                last_report = now
            worker.assert_running()
            time.sleep(0.02)
        return len(records) / (time.perf_counter() - started)
    finally:
        worker.stop()


def run(args: argparse.Namespace, bootstrap: str, work_dir: Path) -> dict[str, Any]:
    prefix = f"bench-{os.getpid()}"
    base = load_settings({"kafka.bootstrap_servers": bootstrap}, env={})
    settings = dataclasses.replace(
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
    create_topics(
        settings.kafka, [*settings.topics.inputs, settings.topics.entities], PARTITIONS, 1
    )
    create_topics(settings.kafka, [settings.topics.dead_letter], 1, 1)

    records = list(mixed_records(args.records))
    texts = [record.text for record in records]
    model = load_model(settings.model)  # the model exactly as the worker loads it
    progress(f"model {model.manifest.name} {model.manifest.version} on {model.provider}")
    # Model only before and after the end-to-end run: on a shared machine the load drifts, and
    # the mean of the two brackets the end-to-end measurement.
    before = model_only(model, texts, args.max_batch)
    progress(f"model only: {before:.0f} records/s")
    e2e_rps = end_to_end(settings, records, work_dir)
    progress(f"end to end: {e2e_rps:.0f} records/s")
    after = model_only(model, texts, args.max_batch)
    progress(f"model only again: {after:.0f} records/s")
    model_rps = (before + after) / 2
    return {
        "benchmark": "worker_throughput",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "records": len(records),
        "mean_text_chars": round(sum(map(len, texts)) / len(texts), 1),
        "max_batch": args.max_batch,
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
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "kafka_version": KAFKA_VERSION,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=15000)
    parser.add_argument("--model-dir", help="model directory (default: the shipped model)")
    parser.add_argument("--max-batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument("--bootstrap-servers", help="use this broker instead of starting one")
    parser.add_argument("--output", type=Path, default=RESULTS)
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
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
