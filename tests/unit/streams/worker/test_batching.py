"""The adaptive batching policy as a table of named scenarios (no clocks, no Kafka)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from streams.worker.batching import (
    BATCH_SHARE_OF_TARGET,
    FIXED_BATCH_S,
    AdaptiveBatcher,
    BatchLimits,
    padded_size,
)


@dataclass(frozen=True)
class Scenario:
    name: str
    #: Waiting records' sizes, in arrival order.
    lengths: list[int]
    #: Measured batches before the decision: (padded units, seconds).
    measured: list[tuple[int, float]]
    expected: int
    max_batch: int = 256
    latency_target_s: float = 0.1


# With 100 ms and the default share, a batch may take 1/3 * 0.1 - 0.001 s.
BATCH_S = 0.1 * BATCH_SHARE_OF_TARGET - FIXED_BATCH_S
#: A cost of one second per 1,000 units: a batch may hold BATCH_S * 1000 units.
SLOW = [(1000, 1.0)]
#: Cheap: 1 µs per unit.
FAST = [(1_000_000, 1.0)]

SCENARIOS = [
    Scenario("nothing waiting: nothing to send", [], SLOW, 0),
    Scenario("one record at low load goes at once", [300], SLOW, 1),
    Scenario("a record longer than the whole budget still goes, alone", [50, 10], SLOW, 1),
    Scenario("nothing measured yet: up to max_batch", [100] * 300, [], 256),
    Scenario("cheap records under backlog: the batch grows to max_batch", [100] * 300, FAST, 256),
    Scenario("max_batch bounds even cheap batches", [10] * 50, FAST, 8, max_batch=8),
    Scenario(
        "expensive records: as many as the latency budget allows",
        [10] * 8,
        SLOW,
        int(BATCH_S * 1000 / 10),
    ),
    Scenario(
        "cut by padded size: a long record pads the bucket it joins",
        # 3 short then one of 20: with it, the padded size is 4 x 20 = 80 > 32 units.
        [1, 1, 1, 20, 1],
        SLOW,
        3,
    ),
    Scenario(
        "overload, first batch: what fits the budget (later ones double, see below)",
        # 3,000 units at 1 ms each: 3 s of work, far beyond 100 ms.
        [10] * 300,
        SLOW,
        int(BATCH_S * 1000 / 10),
    ),
    Scenario(
        "no target (0): fixed batches of max_batch", [10] * 300, SLOW, 256, latency_target_s=0
    ),
    Scenario(
        "a smaller target gives smaller batches",
        [10] * 4,
        SLOW,
        int((0.05 * BATCH_SHARE_OF_TARGET - FIXED_BATCH_S) * 1000 / 10),
        latency_target_s=0.05,
    ),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_next_batch(scenario: Scenario) -> None:
    batcher = AdaptiveBatcher(
        BatchLimits(max_batch=scenario.max_batch, latency_target_s=scenario.latency_target_s)
    )
    for units, seconds in scenario.measured:
        batcher.observe(units, seconds)
    assert batcher.next_batch(scenario.lengths) == scenario.expected


def test_under_overload_batches_double_up_to_max_batch_and_shrink_when_it_clears() -> None:
    batcher = AdaptiveBatcher(BatchLimits(max_batch=256, latency_target_s=0.1))
    batcher.observe(*SLOW[0])
    fits = int(BATCH_S * 1000 / 10)
    overload = [10] * 300  # 3 s of work: the target is lost for the tail whatever the batch
    sizes = [batcher.next_batch(overload) for _ in range(8)]
    assert sizes == [min(256, fits * 2**round) for round in range(8)]
    # The backlog clears (8 records, 80 ms of work): back to what fits the budget.
    assert batcher.next_batch([10] * 8) == fits


def test_a_queue_kept_full_by_back_pressure_grows_batches_to_max_batch() -> None:
    # Sustained maximum load: the worker's queue holds max_batch records whose predicted time
    # fits the target, but more wait behind them in Kafka.
    batcher = AdaptiveBatcher(BatchLimits(max_batch=256, latency_target_s=0.1))
    batcher.observe(1_000_000, 100.0)  # 0.1 ms per unit: 256 records of 3 units take 77 ms
    full = [3] * 256
    fits = batcher.next_batch(full)
    assert fits < 256
    assert [batcher.next_batch(full) for _ in range(4)][-1] == 256


def test_records_already_late_on_arrival_grow_batches_to_max_batch() -> None:
    # A backlog in Kafka: the worker's queue is short and cheap, but its oldest record was
    # produced longer ago than the target.
    batcher = AdaptiveBatcher(BatchLimits(max_batch=256, latency_target_s=0.1))
    batcher.observe(*SLOW[0])
    fits = int(BATCH_S * 1000 / 10)
    waiting = [10] * 100  # 100 ms of work: not beyond the target by itself
    assert batcher.next_batch(waiting, waited_s=0.05) == fits
    sizes = [batcher.next_batch(waiting, waited_s=2.0) for _ in range(6)]
    assert sizes == [min(100, fits * 2 ** (round + 1)) for round in range(6)]


def test_the_cost_estimate_follows_the_measurements_smoothly() -> None:
    batcher = AdaptiveBatcher(BatchLimits(max_batch=256, latency_target_s=0.1))
    batcher.observe(1000, 1.0)
    assert batcher.seconds_per_unit == pytest.approx(1e-3)
    for _ in range(40):
        batcher.observe(1000, 0.1)
    assert batcher.seconds_per_unit == pytest.approx(1e-4, rel=1e-3)
    batcher.observe(0, 1.0)  # an empty batch teaches nothing
    assert batcher.seconds_per_unit == pytest.approx(1e-4, rel=1e-3)


def test_padded_size_is_the_runtime_buckets_rows_times_widths() -> None:
    assert padded_size([], 100, 10) == 0
    assert padded_size([5, 3, 4], 100, 10) == 15
    # Buckets of at most 2 rows: [5, 4] and [3].
    assert padded_size([5, 3, 4], 100, 2) == 10 + 3


@pytest.mark.parametrize("limits", [BatchLimits(0, 0.1), BatchLimits(8, -1.0)])
def test_impossible_limits_are_refused(limits: BatchLimits) -> None:
    with pytest.raises(ValueError):
        AdaptiveBatcher(limits)
