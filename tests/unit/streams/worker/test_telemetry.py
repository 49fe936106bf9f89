"""The consumer-lag rule (a table of named scenarios) and the per-worker metrics registry."""

from __future__ import annotations

import pytest

from streams.worker.telemetry import PartitionOffsets, WorkerMetrics, partition_lag

LAG_SCENARIOS = {
    "caught up": (PartitionOffsets(highwater=100, committed=100), 0),
    "behind": (PartitionOffsets(highwater=100, committed=60), 40),
    "empty partition": (PartitionOffsets(highwater=0, earliest=0), 0),
    "end offset unknown": (PartitionOffsets(highwater=None, committed=5), None),
    "no commit yet, position known": (PartitionOffsets(highwater=100, position=30), 70),
    "no commit yet, nothing fetched": (PartitionOffsets(highwater=100, earliest=20), 80),
    "no commit, nothing known but the end": (PartitionOffsets(highwater=100), 100),
    "committed before the log start (retention)": (
        PartitionOffsets(highwater=100, committed=10, earliest=50),
        50,
    ),
    "committed read after a stale end offset": (PartitionOffsets(highwater=90, committed=95), 0),
    "commit wins over position": (PartitionOffsets(highwater=100, committed=40, position=90), 60),
}


@pytest.mark.parametrize("scenario", LAG_SCENARIOS)
def test_partition_lag(scenario: str) -> None:
    offsets, expected = LAG_SCENARIOS[scenario]
    assert partition_lag(offsets) == expected


def sample(metrics: WorkerMetrics, name: str, labels: dict[str, str] | None = None) -> float | None:
    return metrics.registry.get_sample_value(name, labels or {})


def test_two_workers_in_one_process_have_separate_registries() -> None:
    first, second = WorkerMetrics(), WorkerMetrics()
    first.records_consumed.labels(topic="news").inc(3)
    assert sample(first, "nerstream_records_consumed_total", {"topic": "news"}) == 3
    assert sample(second, "nerstream_records_consumed_total", {"topic": "news"}) is None


def test_lag_gauge_forgets_partitions_no_longer_assigned() -> None:
    metrics = WorkerMetrics()
    metrics.set_lag({("news", 0): 5, ("news", 1): 7})
    metrics.set_lag({("news", 1): 2, ("news", 2): None})
    assert sample(metrics, "nerstream_consumer_lag", {"topic": "news", "partition": "0"}) is None
    assert sample(metrics, "nerstream_consumer_lag", {"topic": "news", "partition": "1"}) == 2
    assert sample(metrics, "nerstream_consumer_lag", {"topic": "news", "partition": "2"}) is None


def test_render_is_prometheus_text_with_model_info() -> None:
    metrics = WorkerMetrics()
    metrics.set_model("msra-tiny", "1.2.0", "CPUExecutionProvider")
    metrics.records_dead_lettered.labels(topic="news", error_code="DECODE_AVRO").inc()
    metrics.batch_size.observe(17)
    payload, content_type = metrics.render()
    text = payload.decode()
    assert content_type.startswith("text/plain")
    assert (
        'nerstream_model_info{name="msra-tiny",provider="CPUExecutionProvider",version="1.2.0"} 1.0'
        in text
    )
    assert (
        'nerstream_records_dead_lettered_total{error_code="DECODE_AVRO",topic="news"} 1.0' in text
    )
    assert 'nerstream_batch_size_bucket{le="32.0"} 1.0' in text
