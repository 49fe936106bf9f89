"""Prometheus metrics of one worker, and the consumer-lag rule they report.

Each worker owns a :class:`WorkerMetrics` with its own ``CollectorRegistry`` (never the global
one), so several workers can live in one process, e.g. in tests. The registry is served as text
by the ``/metrics`` route on Faust's web server (see :mod:`streams.worker.agents`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

#: Records per inference batch; the worker caps batches at ``worker.max_batch``.
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
#: The one shape of every seconds histogram (time in the model per batch, and end-to-end
#: latency from a record's created_at to its entity event's processed_at): 5 ms to an hour.
SECONDS_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0
)  # fmt: skip


@dataclass(frozen=True)
class PartitionOffsets:
    """What the worker knows about one assigned partition when it measures lag.

    Every field may be unknown (None): the end offset before the first fetch, the committed
    offset before this worker's first commit, the position before the first fetch.
    """

    #: The offset the next produced message will get (the log end offset, "highwater").
    highwater: int | None
    #: The offset this group committed last (the next record to process), if known.
    committed: int | None = None
    #: The offset the consumer fetches next; it runs ahead of processing.
    position: int | None = None
    #: The first offset still in the log (retention may have deleted older ones).
    earliest: int | None = None


def partition_lag(offsets: PartitionOffsets) -> int | None:
    """Records of one partition that the group has yet to commit; None when unmeasurable.

    Rules, in order:
    - end offset unknown: None (nothing to report rather than a guess);
    - committed offset known: ``highwater - max(committed, earliest)``; a committed offset
      below the log start means retention deleted records the group never read, and those
      cannot be processed any more;
    - no commit yet but a position: ``highwater - position`` (an under-estimate by at most the
      records fetched but not yet committed);
    - neither: the whole retained log, ``highwater - earliest`` (``earliest`` taken as 0
      when unknown), since the worker starts from the earliest offset.
    The result is never negative: a committed offset may be read before a fresh end offset.
    """
    if offsets.highwater is None:
        return None
    if offsets.committed is not None:
        start = max(offsets.committed, offsets.earliest or 0)
    elif offsets.position is not None:
        start = offsets.position
    else:
        start = offsets.earliest or 0
    return max(offsets.highwater - start, 0)


class WorkerMetrics:
    """All metrics of one worker, registered in a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        registry = self.registry
        self.records_consumed = Counter(
            "nerstream_records_consumed",
            "Input messages taken from Kafka, by input topic.",
            ["topic"],
            registry=registry,
        )
        self.events_produced = Counter(
            "nerstream_entity_events_produced",
            "Entity events acknowledged by the broker, by input topic.",
            ["topic"],
            registry=registry,
        )
        self.records_dead_lettered = Counter(
            "nerstream_records_dead_lettered",
            "Input messages written to the dead-letter topic, by input topic and error code.",
            ["topic", "error_code"],
            registry=registry,
        )
        self.entities_found = Counter(
            "nerstream_entities_found",
            "Entity mentions in produced events, by entity type.",
            ["type"],
            registry=registry,
        )
        self.delivery_retries = Counter(
            "nerstream_delivery_retries",
            "Outputs produced again after a temporary delivery failure.",
            registry=registry,
        )
        self.inference_retries = Counter(
            "nerstream_inference_batch_retries",
            "Batches whose inference failed and whose records were retried one by one.",
            registry=registry,
        )
        self.batch_size = Histogram(
            "nerstream_batch_size",
            "Input messages per micro-batch.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.inference_seconds = Histogram(
            "nerstream_inference_seconds",
            "Wall time of model inference per batch (including one-by-one retries).",
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self.end_to_end_seconds = Histogram(
            "nerstream_end_to_end_latency_seconds",
            "processed_at - created_at of produced entity events.",
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "nerstream_consumer_lag",
            "Records not yet committed by the group, per assigned input partition.",
            ["topic", "partition"],
            registry=registry,
        )
        self.batches_in_flight = Gauge(
            "nerstream_batches_in_flight",
            "Batches taken and not yet acked: inferring, or waiting for delivery reports.",
            registry=registry,
        )
        self.assigned_partitions = Gauge(
            "nerstream_assigned_partitions",
            "Input partitions currently assigned to this worker.",
            registry=registry,
        )
        self.model = Info(
            "nerstream_model",
            "The NER model this worker serves.",
            registry=registry,
        )

    def set_model(self, name: str, version: str, provider: str) -> None:
        self.model.info({"name": name, "version": version, "provider": provider})

    def set_lag(self, lag_by_partition: Mapping[tuple[str, int], int | None]) -> None:
        """Replace the lag gauge: partitions no longer assigned disappear from it."""
        self.consumer_lag.clear()
        for (topic, partition), lag in lag_by_partition.items():
            if lag is not None:
                self.consumer_lag.labels(topic=topic, partition=str(partition)).set(lag)

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of every metric, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def observe_all(histogram: Histogram, values: Sequence[float]) -> None:
    """``histogram.observe(value)`` for every value, with one update per bucket, not per value.

    Reaches into prometheus_client's unlabelled ``Histogram`` (its ``_upper_bounds``,
    ``_buckets`` and ``_sum``, stable since 0.4): per-record ``observe`` calls take a lock and
    scan the buckets each time, which showed up in the worker's profile.
    """
    if not values:
        return
    bounds = histogram._upper_bounds
    counts = [0] * len(bounds)
    for value in values:
        counts[bisect_left(bounds, value)] += 1
    for bucket, count in zip(histogram._buckets, counts, strict=True):
        if count:
            bucket.inc(count)
    histogram._sum.inc(sum(values))
