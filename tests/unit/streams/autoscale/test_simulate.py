"""The simulation: deterministic, the committed table is current, and the goals it shows."""

from __future__ import annotations

import pytest

from streams.autoscale.policy import PolicyConfig
from streams.autoscale.simulate import (
    GroupModel,
    KedaScaler,
    NerstreamScaler,
    Result,
    Trace,
    burst_trace,
    compare,
    default_traces,
    exact_fit_replica_minutes,
    keda_lag_threshold,
    ramp_trace,
    sawtooth_trace,
    simulate,
    simulation_report,
    step_trace,
)
from streams.cli.autoscale import SIMULATE_COMMAND
from tests.conftest import REPO_ROOT

CONFIG = PolicyConfig()


def by_policy(trace: Trace) -> dict[str, Result]:
    results = compare(CONFIG, traces=[trace])
    return {r.policy.split()[0]: r for r in results}


def test_the_committed_table_is_what_the_command_prints() -> None:
    committed = (REPO_ROOT / "bench/results/autoscale_simulation.md").read_text()
    assert (
        committed.strip()
        == simulation_report(
            CONFIG, compare(CONFIG), SIMULATE_COMMAND, traces=default_traces()
        ).strip()
    )


def test_keda_threshold_is_one_replicas_work_over_the_drain_target() -> None:
    assert keda_lag_threshold(CONFIG) == 30_000


@pytest.mark.parametrize("trace", [burst_trace(), sawtooth_trace()], ids=["burst", "sawtooth"])
def test_goal_wait_under_target_with_80_percent_of_kedas_replicas_and_half_its_events(
    trace: Trace,
) -> None:
    results = by_policy(trace)
    ours, keda = results["nerstream"], results["KEDA"]
    assert ours.max_wait_s <= CONFIG.drain_target_s
    assert ours.replica_minutes <= 0.8 * keda.replica_minutes
    assert ours.scale_events <= 0.5 * keda.scale_events


def test_sawtooth_lag_under_target_below_the_exact_fit_by_a_bounded_backlog() -> None:
    results = by_policy(sawtooth_trace())
    ours, keda = results["nerstream"], results["KEDA"]
    assert ours.max_lag_s <= CONFIG.drain_target_s
    assert keda.max_wait_s > CONFIG.drain_target_s
    # A scaler that knows every second's arrivals and keeps lag near zero spends more: the
    # saving is the backlog let build within the target and worked off when arrivals fall.
    assert ours.replica_minutes < exact_fit_replica_minutes(sawtooth_trace(), GroupModel())


@pytest.mark.parametrize("trace", [step_trace(), ramp_trace()], ids=["step", "ramp"])
def test_no_fall_to_work_off_in_still_within_target_and_fewer_events(trace: Trace) -> None:
    # A step, a ramp: no fall in arrivals, so no saving, but records never wait past the
    # target (KEDA's do) and the step is not extrapolated into the cap.
    results = by_policy(trace)
    ours, keda = results["nerstream"], results["KEDA"]
    assert ours.max_wait_s <= CONFIG.drain_target_s < keda.max_wait_s
    assert ours.scale_events <= 0.5 * keda.scale_events
    assert ours.max_replicas <= 6


def test_exact_fit_is_the_fewest_replicas_that_keep_up_each_second() -> None:
    # 2,500 records/s needs 2.5 replicas' worth: 3 of 12 partitions' replicas (4 partitions each).
    assert exact_fit_replica_minutes(Trace("flat", (2500.0,) * 120), GroupModel()) == 6
    # 5 replicas work like 4 on 12 partitions, so 4,500/s needs 6.
    assert exact_fit_replica_minutes(Trace("flat", (4500.0,) * 60), GroupModel()) == 6
    assert exact_fit_replica_minutes(Trace("idle", (0.0,) * 60), GroupModel(), 1) == 1


def test_no_traffic_no_scaling_and_one_replica_minute_per_minute() -> None:
    trace = Trace("idle", (0.0,) * 600)
    model = GroupModel()
    for scaler in (NerstreamScaler(CONFIG, 12), KedaScaler(30_000, 12)):
        result = simulate(trace, scaler, model)
        assert result.scale_events == 0
        assert result.replica_minutes == 10
        assert result.max_wait_s == 0


def test_a_group_that_keeps_up_has_no_wait() -> None:
    result = simulate(Trace("flat", (500.0,) * 300), NerstreamScaler(CONFIG, 12), GroupModel())
    assert result.max_wait_s == 0
    assert result.scale_events == 0
