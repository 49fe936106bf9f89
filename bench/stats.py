"""The worker benchmark's arithmetic: percentiles, memory growth, send schedules, the comparison
of adaptive against fixed batching.

Pure: numbers in, numbers out. No clocks, no Kafka, no processes — those live in
:mod:`bench.harness`; what a run measured is summarized here so that it can be unit-tested.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

Sample = TypeVar("Sample")


def percentile(ordered: Sequence[float], share: float) -> float | None:
    """The nearest-rank ``share`` percentile (0 < share <= 1) of ``ordered`` (sorted ascending);
    None when empty. Nearest rank, not interpolated: p99 is a latency some record really had."""
    if not ordered:
        return None
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    # Rounded before the ceiling so that 0.07 * 100 (7.000000000000001) is rank 7, not 8.
    rank = max(math.ceil(round(len(ordered) * share, 9)), 1)
    return round(ordered[rank - 1], 1)


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, Any]:
    """p50/p95/p99 and max of a set of latencies, in milliseconds."""
    ordered = sorted(latencies_ms)
    return {
        "received": len(ordered),
        "p50_ms": percentile(ordered, 0.50),
        "p95_ms": percentile(ordered, 0.95),
        "p99_ms": percentile(ordered, 0.99),
        "max_ms": round(ordered[-1], 1) if ordered else None,
    }


def send_offsets(count: int, rate: float) -> Iterator[float]:
    """Seconds after the start at which each of ``count`` records is sent at a fixed ``rate``
    (records per second): an open-loop trace, so a slow worker cannot slow the input down."""
    if rate <= 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    return (index / rate for index in range(count))


def records_for(rate: float, seconds: float, minimum: int = 50) -> int:
    """How many records a fixed-rate phase of ``seconds`` sends (at least ``minimum``, so the
    p99 of a slow phase still rests on more than a handful of records)."""
    return max(int(rate * seconds), minimum)


def growth(before: float | None, after: float | None) -> float | None:
    """``after`` relative to ``before`` as a share (0.1 = 10 % more); None if either is missing."""
    if before is None or after is None or before <= 0:
        return None
    return round((after - before) / before, 3)


def thin(series: Sequence[Sample], most: int) -> list[Sample]:
    """At most ``most`` evenly spaced samples of a series, keeping the first and the last (a
    million-record run samples for many minutes; the results keep its shape, not every point)."""
    if most < 2:
        raise ValueError("most must be >= 2")
    if len(series) <= most:
        return list(series)
    step = (len(series) - 1) / (most - 1)
    return [series[round(index * step)] for index in range(most)]


def bracketed_ratio(before: float, middle: float, after: float) -> float:
    """``middle`` against the mean of the two measurements taken before and after it: on a
    machine whose load drifts, the bracket cancels a linear drift."""
    return round(middle / ((before + after) / 2), 3)


def compare_batching(
    adaptive: Mapping[str, Any], fixed: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Adaptive batching against the best fixed setting on each measure, as issue #12 asks:
    lower p99 at low load, and throughput at maximum load within 5 % of the best fixed one.

    Each row has ``label``, ``records_per_s`` and ``p99_ms`` (None if nothing was received)."""
    with_p99 = [row for row in fixed if row["p99_ms"] is not None]
    if not fixed or not with_p99 or adaptive["p99_ms"] is None:
        return {"complete": False}
    best_latency = min(with_p99, key=lambda row: row["p99_ms"])
    best_throughput = max(fixed, key=lambda row: row["records_per_s"])
    throughput_share = round(adaptive["records_per_s"] / best_throughput["records_per_s"], 3)
    return {
        "complete": True,
        "best_fixed_p99": {"label": best_latency["label"], "p99_ms": best_latency["p99_ms"]},
        "best_fixed_throughput": {
            "label": best_throughput["label"],
            "records_per_s": best_throughput["records_per_s"],
        },
        "adaptive_p99_ms": adaptive["p99_ms"],
        "adaptive_records_per_s": adaptive["records_per_s"],
        "p99_better": adaptive["p99_ms"] < best_latency["p99_ms"],
        "throughput_share_of_best_fixed": throughput_share,
        "throughput_within_5_percent": throughput_share >= 0.95,
    }
