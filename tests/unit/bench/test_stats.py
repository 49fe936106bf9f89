"""The worker benchmark's arithmetic (pure: no broker, no worker)."""

from __future__ import annotations

import argparse
import itertools

import pytest

from bench import stats
from bench.worker_throughput import fixed_batches, fractions
from tests.records import mixed_records


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(value) for value in range(1, 101)]
    assert stats.percentile(values, 0.50) == 50.0
    assert stats.percentile(values, 0.99) == 99.0
    assert stats.percentile(values, 1.0) == 100.0
    # 0.07 * 100 is 7.000000000000001 in floats: still rank 7.
    assert stats.percentile(values, 0.07) == 7.0
    assert stats.percentile([3.0], 0.99) == 3.0
    assert stats.percentile([], 0.5) is None


def test_percentile_of_few_values_is_a_value_some_record_had() -> None:
    # With 10 values the p99 is the worst one, not an interpolation below it.
    assert stats.percentile([float(v) for v in range(10)], 0.99) == 9.0
    with pytest.raises(ValueError, match="share"):
        stats.percentile([1.0], 0.0)


def test_latency_summary_sorts_and_counts() -> None:
    summary = stats.latency_summary([30.0, 10.0, 20.0, 40.04])
    assert summary == {
        "received": 4,
        "p50_ms": 20.0,
        "p95_ms": 40.0,
        "p99_ms": 40.0,
        "max_ms": 40.0,
    }
    assert stats.latency_summary([]) == {
        "received": 0,
        "p50_ms": None,
        "p95_ms": None,
        "p99_ms": None,
        "max_ms": None,
    }


def test_send_offsets_are_an_open_loop_trace_at_the_rate() -> None:
    assert list(stats.send_offsets(4, rate=2.0)) == [0.0, 0.5, 1.0, 1.5]
    with pytest.raises(ValueError, match="rate"):
        stats.send_offsets(1, rate=0.0)


def test_records_for_a_phase_has_a_floor() -> None:
    assert stats.records_for(100.0, 10.0) == 1000
    assert stats.records_for(2.0, 10.0) == 50


def test_growth_is_a_share_of_the_first_reading() -> None:
    assert stats.growth(200.0, 220.0) == 0.1
    assert stats.growth(200.0, 190.0) == -0.05
    assert stats.growth(None, 220.0) is None
    assert stats.growth(200.0, None) is None


def test_thin_keeps_the_ends_and_spacing() -> None:
    series = list(range(101))
    assert stats.thin(series, 5) == [0, 25, 50, 75, 100]
    assert stats.thin(series[:3], 5) == [0, 1, 2]
    with pytest.raises(ValueError, match="most"):
        stats.thin(series, 1)


def test_bracketed_ratio_cancels_a_linear_drift() -> None:
    # One worker ran at 100/s, then (load falling) two at 300/s, then one at 200/s: the middle
    # run is 2x the mean of its brackets, not 3x the first.
    assert stats.bracketed_ratio(100.0, 300.0, 200.0) == 2.0


def row(label: str, records_per_s: float, p99_ms: float | None) -> dict[str, object]:
    return {"label": label, "records_per_s": records_per_s, "p99_ms": p99_ms}


@pytest.mark.parametrize(
    ("adaptive", "p99_better", "within"),
    [
        pytest.param(row("adaptive", 970.0, 80.0), True, True, id="wins-both"),
        pytest.param(row("adaptive", 940.0, 80.0), True, False, id="too-slow-at-max-load"),
        pytest.param(row("adaptive", 1000.0, 120.0), False, True, id="worse-p99"),
    ],
)
def test_compare_batching_takes_the_best_fixed_setting_per_measure(
    adaptive: dict[str, object], p99_better: bool, within: bool
) -> None:
    # The best fixed p99 (small batches) and the best fixed throughput (large batches) are
    # different settings: adaptive batching is held against each.
    fixed = [row("fixed 16", 600.0, 100.0), row("fixed 256", 1000.0, 900.0)]
    verdict = stats.compare_batching(adaptive, fixed)
    assert verdict["best_fixed_p99"] == {"label": "fixed 16", "p99_ms": 100.0}
    assert verdict["best_fixed_throughput"] == {"label": "fixed 256", "records_per_s": 1000.0}
    assert verdict["p99_better"] is p99_better
    assert verdict["throughput_within_5_percent"] is within


def test_compare_batching_is_incomplete_without_latencies() -> None:
    assert stats.compare_batching(row("adaptive", 1.0, None), [row("f", 1.0, 1.0)]) == {
        "complete": False
    }
    assert stats.compare_batching(row("adaptive", 1.0, 1.0), []) == {"complete": False}


def test_the_scale_trace_streams_mixed_lengths_with_windowed_notes() -> None:
    # The --scale run produces from this generator: it must be lazy (a million records are never
    # held) and mix short texts with long notes beyond the model's 100-character window.
    trace = mixed_records(1_000_000, seed=1)
    first = list(itertools.islice(trace, 200))
    lengths = [len(record.text) for record in first]
    assert {record.source for record in first} == {"news", "medical"}
    assert sum(length > 300 for length in lengths) == 200 // 25
    assert min(lengths) < 100
    assert len({record.id for record in first}) == 200


def test_command_line_lists_of_rates_and_fixed_batch_settings() -> None:
    assert fractions("0.25,0.5,1") == [0.25, 0.5, 1.0]
    assert fractions("") == []
    with pytest.raises(argparse.ArgumentTypeError, match="fraction"):
        fractions("0.5,1.5")
    assert fixed_batches("32,256@0.05") == [(32, None), (256, 0.05)]
    assert fixed_batches("") == []
