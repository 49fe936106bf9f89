"""The autoscaling policy as a table of named scenarios: each is a few observations of a
consumer group over time, and the decision expected at the last one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from streams.autoscale.policy import (
    Decision,
    Observation,
    PartitionOffsets,
    PolicyConfig,
    PolicyState,
    capacity_replicas,
    decide,
    partition_lag,
    replicas_for,
    useful_replicas,
)

CONFIG = PolicyConfig(
    min_replicas=1,
    max_replicas=12,
    drain_target_s=30.0,
    replica_rate=1000.0,
    scale_down_window_s=60.0,
    stuck_after_s=120.0,
    rate_window_s=30.0,
)


def offsets(
    *pairs: tuple[int | None, int | None], topic: str = "t"
) -> tuple[PartitionOffsets, ...]:
    """(committed, highwater) per partition 0, 1, ..."""
    return tuple(
        PartitionOffsets(topic, p, committed=c, highwater=h) for p, (c, h) in enumerate(pairs)
    )


def even(partitions: int, committed: int, highwater: int) -> tuple[PartitionOffsets, ...]:
    return offsets(*[(committed, highwater)] * partitions)


@dataclass(frozen=True)
class Scenario:
    name: str
    observations: Sequence[Observation]
    desired: int
    config: PolicyConfig = CONFIG
    reason: str = ""
    stuck: tuple[tuple[str, int], ...] = ()
    missing: tuple[tuple[str, int], ...] = ()
    extra: dict[str, object] = field(default_factory=dict)


def run(observations: Sequence[Observation], config: PolicyConfig) -> list[Decision]:
    state = PolicyState()
    decisions = []
    for observation in observations:
        decision, state = decide(state, observation, config)
        decisions.append(decision)
    return decisions


SCENARIOS = [
    Scenario(
        "steady state: arrivals one replica keeps up with, no backlog -> hold at 1",
        [Observation(t, even(4, 200 * t, 200 * t + 50), 1) for t in range(0, 40, 10)],
        desired=1,
    ),
    Scenario(
        "steady state at 2.5 replicas' worth of arrivals -> 3, no more",
        [Observation(t, even(12, 208 * t, 208 * t + 100), 3) for t in range(0, 40, 10)],
        desired=3,
    ),
    Scenario(
        "burst: 8,000/s arriving and 120,000 waiting -> 12 at once (partition cap)",
        [
            Observation(0, even(12, 0, 0), 1),
            Observation(10, even(12, 800, 10_000), 1),
        ],
        desired=12,
    ),
    Scenario(
        "burst capped by max_replicas",
        [Observation(0, even(12, 0, 0), 1), Observation(10, even(12, 800, 10_000), 1)],
        desired=5,
        config=PolicyConfig(max_replicas=5),
    ),
    Scenario(
        "partition cap: 4 partitions never get more than 4 replicas",
        [Observation(0, even(4, 0, 0), 1), Observation(10, even(4, 0, 1_000_000), 1)],
        desired=4,
    ),
    Scenario(
        "useless replica counts skipped: 4 replicas out of budget -> 6 (5 work like 4)",
        [
            Observation(0, even(12, 0, 9000), 4),
            # 4,500/s arrived, 4,000/s processed, 113,000 waiting: 32 s of lag in 30 s at 4
            Observation(10, even(12, 3333, 12_750), 4),
        ],
        desired=6,
    ),
    Scenario(
        "bounded backlog: 4,500/s on 4 replicas with nothing waiting -> hold (lag stays in budget)",
        [
            Observation(0, even(12, 0, 0), 4),
            Observation(10, even(12, 3750, 3750), 4),  # 4,500/s arrived, all processed
        ],
        desired=4,
        reason="projected lag 3.8 s within the 30 s target",
    ),
    Scenario(
        "rising arrivals: 2,800/s rising 10/s per s on 2 replicas -> 4, sized for the trend, not 3",
        [
            Observation(t, even(12, (2000 * t) // 12, (2500 * t + 5 * t * t) // 12 + 2900), 2)
            for t in range(0, 40, 10)
        ],
        desired=4,
    ),
    Scenario(
        "a step is not a trend: 3,500/s after 500/s with 25,000 waiting -> 4, not the cap",
        [
            Observation(0, even(12, 0, 0), 1),
            Observation(10, even(12, 5000 // 12, 5000 // 12), 1),
            Observation(20, even(12, 10_000 // 12, 10_000 // 12), 1),
            Observation(30, even(12, 20_000 // 12, 45_000 // 12), 1),
        ],
        desired=4,
    ),
    Scenario(
        "drain: backlog of 60,000 with no arrivals -> 2 (drains in 30 s)",
        [Observation(0, even(4, 0, 15_000), 2), Observation(10, even(4, 0, 15_000), 2)],
        desired=2,
    ),
    Scenario(
        "no commit yet: the whole retained log is lag (the worker starts at the earliest)",
        [Observation(0, offsets((None, 45_000), (None, 45_000)), 1)],
        desired=2,  # 90,000 / 30 s = 3,000/s, 3 replicas but capped at 2 partitions
    ),
    Scenario(
        "no commit yet, log start moved by retention: only highwater - earliest counts",
        [
            Observation(
                0,
                (PartitionOffsets("t", 0, committed=None, highwater=100_000, earliest=70_000),),
                1,
            )
        ],
        desired=1,
    ),
    Scenario(
        "missing partition: no end offset -> left out of the backlog, reported, still capped",
        [
            Observation(0, offsets((0, 0), (0, 0), (0, None)), 1),
            Observation(10, offsets((0, 30_000), (0, 30_000), (5, None)), 1),
        ],
        desired=3,
        missing=(("t", 2),),
    ),
    Scenario(
        "stuck partition: lag but no commit for 120 s with members alive -> does not drive up",
        [
            Observation(t, offsets((500, 500_000), (1000 * t, 1000 * t)), 1, members=1)
            for t in range(0, 130, 10)
        ],
        desired=1,
        stuck=(("t", 0),),
    ),
    Scenario(
        "not stuck while nobody consumes: no members -> the lag drives scale-up",
        [Observation(t, offsets((500, 60_500), (0, 0)), 1, members=0) for t in range(0, 130, 10)],
        desired=2,
    ),
    Scenario(
        "flapping guard: the burst is over, but the last change was 20 s ago -> hold",
        [
            Observation(0, even(12, 0, 0), 12),
            Observation(10, even(12, 0, 0), 12),
            Observation(30, even(12, 100, 100), 1),  # someone scaled it to 1 just now
            Observation(40, even(12, 100, 100), 12),  # and back
            Observation(60, even(12, 100, 100), 12),
        ],
        desired=12,
        reason="held",
    ),
    Scenario(
        "flapping guard: a blip inside the window keeps the highest recommendation",
        [
            Observation(0, even(12, 0, 0), 12),
            Observation(30, even(12, 0, 0), 12),
            # 3,600/s for 10 s and 6,000 waiting: recommends 4
            Observation(40, even(12, 2500, 3000), 12),
            Observation(80, even(12, 3000, 3000), 12),
        ],
        desired=4,
    ),
    Scenario(
        "flapping guard: below the replicas for only 40 s of the 60 s window -> hold",
        [
            Observation(0, even(12, 0, 0), 6),
            Observation(60, even(12, 0, 0), 6),  # idle, but someone else changed nothing
            Observation(70, even(12, 0, 60_000), 6),  # 6,000/s arriving: 6 needed
            *[Observation(t, even(12, 60_000, 60_000), 6) for t in range(80, 130, 10)],
        ],
        desired=6,
        reason="held: below 6 for only 40 s",
    ),
    Scenario(
        "drained and idle for the window -> down to min_replicas in one step",
        [Observation(t, even(12, 5000, 5000), 12) for t in range(0, 70, 10)],
        desired=1,
    ),
    Scenario(
        "scale to zero after 300 s without arrivals (and the 60 s scale-down window)",
        [Observation(t, even(4, 100, 100), 1) for t in range(0, 370, 10)],
        desired=0,
        config=PolicyConfig(min_replicas=0, scale_to_zero_after_s=300),
    ),
    Scenario(
        "not yet zero at 290 s idle",
        [Observation(t, even(4, 100, 100), 1) for t in range(0, 300, 10)],
        desired=1,
        config=PolicyConfig(min_replicas=0, scale_to_zero_after_s=300),
    ),
    Scenario(
        "back from zero on the first arrival",
        [Observation(0, even(4, 100, 100), 0), Observation(10, even(4, 100, 101), 0)],
        desired=1,
        config=PolicyConfig(min_replicas=0, scale_to_zero_after_s=300),
    ),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(scenario: Scenario) -> None:
    decision = run(scenario.observations, scenario.config)[-1]
    assert decision.desired == scenario.desired, decision.explain()
    assert decision.stuck == scenario.stuck
    assert decision.missing == scenario.missing
    assert scenario.reason in decision.reason
    assert decision.explain().startswith(decision.direction)


def test_scale_to_zero_and_back_in_one_run() -> None:
    config = PolicyConfig(min_replicas=0, scale_to_zero_after_s=60, scale_down_window_s=30)
    replicas, seen = 2, []
    state = PolicyState()
    committed = highwater = 0
    for t in range(0, 400, 10):
        if 200 <= t < 220:
            highwater += 5000  # records arrive while at zero
        if replicas:
            committed = highwater
        decision, state = decide(
            state, Observation(t, even(4, committed, highwater), replicas), config
        )
        replicas = decision.desired
        seen.append(replicas)
    assert seen[19] == 0, seen  # idle since t=0: zero long before the arrivals at t=200
    assert seen[20] > 0, seen  # back on the first tick that sees them
    assert seen[-1] == 0, seen  # and to zero again after the idle period


def test_observed_rate_replaces_the_configured_one_when_saturated() -> None:
    # 2 replicas process 600/s each while 100,000 wait: slower than the configured 1,000/s.
    observations = [Observation(t, even(4, 300 * t, 25_000 + 300 * t), 2) for t in range(0, 40, 10)]
    decision = run(observations, CONFIG)[-1]
    assert decision.rate_source == "observed"
    assert decision.replica_rate == pytest.approx(600)
    assert decision.desired == 4  # (1,200/s + 100,000/30 s) / 600 -> 7.6, capped at 4


def test_configured_rate_while_not_saturated() -> None:
    observations = [Observation(t, even(4, 100 * t, 100 * t + 10), 1) for t in range(0, 40, 10)]
    assert run(observations, CONFIG)[-1].rate_source == "configured"


@pytest.mark.parametrize(
    ("committed", "highwater", "earliest", "lag"),
    [
        (None, None, None, None),  # missing
        (None, 500, None, 500),  # no commit yet
        (None, 500, 200, 300),  # no commit yet, retention moved the start
        (100, 500, None, 400),
        (100, 500, 300, 200),  # committed below the log start
        (600, 500, None, 0),  # a commit read after an older end offset
    ],
)
def test_partition_lag(
    committed: int | None, highwater: int | None, earliest: int | None, lag: int | None
) -> None:
    assert partition_lag(PartitionOffsets("t", 0, committed, highwater, earliest)) == lag


def test_replica_arithmetic_on_12_partitions() -> None:
    assert [useful_replicas(r, 12) for r in range(1, 14)] == [
        1,
        2,
        3,
        4,
        4,
        6,
        6,
        6,
        6,
        6,
        6,
        12,
        12,
    ]
    assert capacity_replicas(5, 12) == 4
    assert [replicas_for(need, 12) for need in (0.5, 1, 4, 4.5, 7, 13)] == [1, 1, 4, 6, 12, 12]
