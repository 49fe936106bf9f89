"""The worker benchmark's I/O: topics on the benchmark's broker, ``nerstream worker`` processes,
streaming production, output counting, latency phases, resident memory.

Each phase here runs real workers against a real broker and returns plain dicts; the arithmetic
over what they measure is :mod:`bench.stats` (pure), the orchestration and the report are
:mod:`bench.worker_throughput`. Memory is bounded for any record count: records are produced
from a generator, never more than ``lead`` ahead of the outputs, and outputs are counted by the
output topics' end offsets, not read.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import subprocess
import sys
import time
import urllib.error
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from bench import stats
from schemas.codecs import ENTITY_EVENT, RECORD, InputRecord
from streams.kafka.admin import create_topics
from streams.settings import Settings, load_settings
from tests.integration.worker_process import WorkerProcess, settings_env

#: Seconds a fresh group is given after every worker is ready, so that a two-worker run does not
#: time its last rebalance.
SETTLE_S = 3.0
#: Seconds between output counts while draining (each is one watermark request per partition).
COUNT_EVERY_S = 0.05


def progress(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def fresh_settings(bootstrap: str, prefix: str, data_dir: Path) -> Settings:
    """The defaults against ``bootstrap``, with topics and consumer group named ``prefix``."""
    base = load_settings({"kafka.bootstrap_servers": bootstrap}, env={})
    return dataclasses.replace(
        base,
        topics=dataclasses.replace(
            base.topics,
            inputs=(f"{prefix}.records",),
            entities=f"{prefix}.entities",
            dead_letter=f"{prefix}.dead-letter",
        ),
        worker=dataclasses.replace(base.worker, group_id=f"{prefix}.ner", data_dir=data_dir),
    )


def rss_mib(pid: int) -> float | None:
    """Resident memory of a process, from /proc (None when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def worker_pid(worker: WorkerProcess) -> int:
    assert worker.process is not None
    return worker.process.pid


def create_bench_topics(settings: Settings, partitions: int) -> None:
    create_topics(settings.kafka, [*settings.topics.inputs], partitions, 1)
    create_topics(settings.kafka, [settings.topics.dead_letter], 1, 1)
    # The entity topic stamps messages with the broker's clock: latency ends when the broker has
    # the event, whatever the worker's clock says.
    admin = AdminClient(dict(settings.kafka.confluent_config()))
    topic = NewTopic(
        settings.topics.entities,
        partitions,
        1,
        config={"message.timestamp.type": "LogAppendTime"},
    )
    for future in admin.create_topics([topic]).values():
        future.result(timeout=30)
    time.sleep(1.0)


class OutputCounter:
    """Outputs so far (entity events plus dead letters: one per input record), from the topics'
    end offsets through one long-lived consumer (a new client per count costs the shared CPUs)."""

    def __init__(self, settings: Settings, partitions: int) -> None:
        self.consumer = Consumer(
            {**settings.kafka.confluent_config(), "group.id": "bench-output-counter"}
        )
        self.partitions = [
            TopicPartition(settings.topics.entities, partition) for partition in range(partitions)
        ] + [TopicPartition(settings.topics.dead_letter, 0)]

    def count(self) -> int:
        return sum(self._end(partition) for partition in self.partitions)

    def entity_ends(self) -> list[TopicPartition]:
        """The entity topic's partitions at their current end (where a reader of new events
        starts)."""
        return [
            TopicPartition(partition.topic, partition.partition, self._end(partition))
            for partition in self.partitions[:-1]
        ]

    def _end(self, partition: TopicPartition) -> int:
        return int(self.consumer.get_watermark_offsets(partition, timeout=10)[1])

    def close(self) -> None:
        self.consumer.close()


def start_worker(
    settings: Settings,
    log_path: Path,
    overrides: Mapping[str, str],
    root: Path | None = None,
) -> WorkerProcess:
    """A ``nerstream worker`` process with ``overrides``; from the checkout ``root`` if given."""
    worker = WorkerProcess(settings, log_path, overrides=dict(overrides))
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
    """Until the worker's /readyz says its partitions are assigned (polled often: the end-to-end
    clock starts here)."""
    while True:
        worker.assert_running()
        try:
            if worker.get("/readyz")[0] == 200:
                return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.02)


def produce_all(settings: Settings, records: Iterable[InputRecord]) -> int:
    """Produce ``records`` to the input topic as fast as the client takes them; their count."""
    producer = Producer({**settings.kafka.confluent_config(), "linger.ms": 20})
    count = 0
    for record in records:
        _produce(producer, settings.topics.inputs[0], record)
        count += 1
    producer.flush(60)
    return count


def _produce(producer: Producer, topic: str, record: InputRecord) -> None:
    while True:
        try:
            producer.produce(topic, RECORD.encode(record), key=record.id.encode())
            break
        except BufferError:  # the client's queue is full: let it deliver, then retry
            producer.poll(0.1)
    producer.poll(0)


def drain(
    settings: Settings,
    records: Iterable[InputRecord],
    count: int,
    workers: Sequence[WorkerProcess],
    partitions: int,
    *,
    lead: int = 20_000,
    sample_every_s: float = 2.0,
    warm_share: float = 0.05,
) -> dict[str, Any]:
    """Produce ``count`` of ``records`` while ``workers`` (ready, one group) process them; time
    from the first send to the broker holding every output.

    Production streams: at most ``lead`` records are ahead of the outputs, so the harness holds
    a bounded queue and the workers always have a backlog (maximum load). Resident memory of
    every worker is read when ``warm_share`` of the outputs are there ("after warm-up"), at the
    end, and every ``sample_every_s`` with the harness's own."""
    producer = Producer({**settings.kafka.confluent_config(), "linger.ms": 20})
    counter = OutputCounter(settings, partitions)
    pids = [worker_pid(worker) for worker in workers]
    source = iter(records)
    produced = done = chars = longest = 0
    rss_ready = [rss_mib(pid) for pid in pids]
    rss_warm: list[float | None] | None = None
    series: list[dict[str, Any]] = []
    started = time.perf_counter()
    next_sample = started
    try:
        while done < count:
            room = min(count - produced, lead - (produced - done))
            for record in itertools.islice(source, max(room, 0)):
                _produce(producer, settings.topics.inputs[0], record)
                chars += len(record.text)
                longest = max(longest, len(record.text))
                produced += 1
            done = counter.count()
            now = time.perf_counter()
            if rss_warm is None and done >= warm_share * count:
                rss_warm = [rss_mib(pid) for pid in pids]
            if now >= next_sample:
                series.append(
                    {
                        "at_s": round(now - started, 1),
                        "outputs": done,
                        "worker_rss_mib": [rss_mib(pid) for pid in pids],
                        "harness_rss_mib": rss_mib(os.getpid()),
                    }
                )
                progress(f"drain: {done}/{count} outputs, {produced} produced")
                next_sample = now + sample_every_s
            for worker in workers:
                worker.assert_running()
            time.sleep(COUNT_EVERY_S)
        seconds = time.perf_counter() - started
    finally:
        producer.flush(60)
        counter.close()
    return {
        "records": count,
        "seconds": round(seconds, 2),
        "records_per_s": round(count / seconds, 1),
        "mean_text_chars": round(chars / max(produced, 1), 1),
        "longest_text_chars": longest,
        "rss_mib_per_worker": [
            {"ready": ready, "warm": warm, "end": rss_mib(pid)}
            for ready, warm, pid in zip(
                rss_ready, rss_warm or [None] * len(pids), pids, strict=True
            )
        ],
        "series": series,
    }


def run_workers(
    settings: Settings,
    work_dir: Path,
    name: str,
    overrides: Mapping[str, str],
    workers: int,
) -> list[WorkerProcess]:
    """``workers`` processes of one group, all ready and settled."""
    started = [
        start_worker(settings, work_dir / f"{name}-{index}.log", overrides)
        for index in range(workers)
    ]
    try:
        for worker in started:
            wait_ready(worker)
        if workers > 1:
            time.sleep(SETTLE_S)
    except BaseException:
        stop_all(started)
        raise
    return started


def stop_all(workers: Iterable[WorkerProcess]) -> None:
    for worker in workers:
        if worker.process is not None and worker.process.poll() is None:
            worker.stop()


def latency_at(
    settings: Settings,
    records: Sequence[InputRecord],
    rate: float,
    workers: Sequence[WorkerProcess],
    partitions: int,
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
    counter = OutputCounter(settings, partitions)
    consumer.assign(counter.entity_ends())
    counter.close()
    producer = Producer({**settings.kafka.confluent_config(), "linger.ms": 1})
    wanted = {record.id for record in records}
    latencies: list[float] = []
    started = time.monotonic()
    for record, offset in zip(records, stats.send_offsets(len(records), rate), strict=True):
        time.sleep(max(started + offset - time.monotonic(), 0.0))
        stamped = dataclasses.replace(record, created_at=datetime.now(UTC))
        producer.produce(topics.inputs[0], RECORD.encode(stamped), key=record.id.encode())
        producer.poll(0)
        for message in consumer.consume(500, timeout=0):
            latencies.extend(_latency(message, wanted))
    producer.flush(60)
    deadline = time.monotonic() + 120
    while len(latencies) < len(records) and time.monotonic() < deadline:
        for worker in workers:
            worker.assert_running()
        for message in consumer.consume(500, timeout=0.5):
            latencies.extend(_latency(message, wanted))
    consumer.close()
    return {
        "rate_records_per_s": round(rate, 1),
        "records": len(records),
        **stats.latency_summary(latencies),
    }


def _latency(message: Any, wanted: set[str]) -> list[float]:
    if message.error() is not None:
        return []
    event = ENTITY_EVENT.decode(message.value())
    if event.record_id not in wanted:
        return []
    _, broker_ms = message.timestamp()
    return [broker_ms - event.created_at.timestamp() * 1000]
