"""Replay traffic traces against a consumer-group model, for nerstream's policy and KEDA's rule.

Pure and deterministic (one-second steps, no clock, no I/O): ``nerstream autoscale simulate``
prints its table, and ``bench/results/autoscale_simulation.md`` keeps it.

The group model: arrivals are spread evenly over P partitions; a replica processes
``replica_rate`` records/s when it has work; r replicas work like ``capacity_replicas(r, P)``
(the busiest member owns ceil(P / r) partitions); a new replica is ready ``startup_s`` after it
is asked for (image start, model load, join); every change of the ready set pauses the whole
group for ``rebalance_s`` (an eager rebalance, as Faust's consumer does).

KEDA's rule (Kafka scaler, on the HPA defaults it runs under): every ``sync_s`` the metric is the
group's total lag, capped at ``lagThreshold`` x partitions; desired = ceil(lag / lagThreshold),
unless the ratio to the current replicas is within the 10 % tolerance; scale-up at most
max(4 pods, +100 %) per sync; scale-down to the highest recommendation of the last 300 s.

Measured, per trace and policy: **max lag (s)**, the longest the backlog would take the group
at that moment to work off (lag / current capacity, one replica's rate when none is ready);
**max wait (s)**, the oldest unprocessed record's age; replica-minutes; scale events.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from streams.autoscale.policy import (
    Observation,
    PartitionOffsets,
    PolicyConfig,
    PolicyState,
    capacity_replicas,
    decide,
    replicas_for,
)


@dataclass(frozen=True)
class Trace:
    name: str
    #: Records arriving in each second.
    rates: tuple[float, ...]


def burst_trace(steady: float = 800.0) -> Trace:
    """Idle 5 min, a 10x burst for 2 min, steady for 10 min, idle 5 min."""
    rates = [0.0] * 300 + [10 * steady] * 120 + [steady] * 600 + [0.0] * 300
    return Trace("idle, 10x burst, steady, idle", tuple(rates))


def sawtooth_trace(low: float = 500.0, high: float = 6000.0, period: int = 600) -> Trace:
    """Four teeth: a linear ramp from ``low`` to ``high`` records/s over ``period`` s, then drop."""
    tooth = [low + (high - low) * i / (period - 1) for i in range(period)]
    return Trace("sawtooth 500-6000/s", tuple(tooth * 4))


def step_trace(low: float = 500.0, high: float = 3500.0) -> Trace:
    """5 min at ``low`` records/s, a step to ``high`` for 15 min, back to ``low`` for 10 min."""
    rates = [low] * 300 + [high] * 900 + [low] * 600
    return Trace(f"step {low:g}-{high:g}/s", tuple(rates))


def ramp_trace(low: float = 500.0, high: float = 6000.0, ramp_s: int = 1800) -> Trace:
    """One slow ramp from ``low`` to ``high`` records/s over ``ramp_s``, then 10 min at ``high``."""
    rates = [low + (high - low) * i / (ramp_s - 1) for i in range(ramp_s)] + [high] * 600
    return Trace(f"ramp {low:g}-{high:g}/s over {ramp_s // 60} min", tuple(rates))


@dataclass(frozen=True)
class GroupModel:
    partitions: int = 12
    replica_rate: float = 1000.0
    startup_s: int = 15
    rebalance_s: int = 3


class Scaler(Protocol):
    name: str
    interval_s: int

    def desired(
        self, at: float, arrived: float, processed: float, replicas: int, ready: int
    ) -> int:
        """Desired replicas, given the cumulative records arrived and processed so far."""
        ...


@dataclass
class NerstreamScaler:
    """nerstream's policy, fed the offsets of P evenly loaded partitions."""

    config: PolicyConfig
    partitions: int
    interval_s: int = 10
    name: str = "nerstream (drain target)"
    state: PolicyState = field(default_factory=PolicyState)

    def desired(
        self, at: float, arrived: float, processed: float, replicas: int, ready: int
    ) -> int:
        share_in, share_done = arrived / self.partitions, processed / self.partitions
        partitions = tuple(
            PartitionOffsets("t", p, committed=int(share_done), highwater=int(share_in))
            for p in range(self.partitions)
        )
        observation = Observation(at, partitions, replicas, members=ready)
        decision, self.state = decide(self.state, observation, self.config)
        return decision.desired


@dataclass
class KedaScaler:
    """KEDA's Kafka scaler rule under the HPA's default behaviour."""

    lag_threshold: float
    partitions: int
    min_replicas: int = 1
    max_replicas: int = 12
    interval_s: int = 15
    scale_down_window_s: float = 300.0
    tolerance: float = 0.1
    name: str = "KEDA Kafka scaler"
    recommendations: list[tuple[float, int]] = field(default_factory=list)

    def desired(
        self, at: float, arrived: float, processed: float, replicas: int, ready: int
    ) -> int:
        lag = min(max(arrived - processed, 0.0), self.lag_threshold * self.partitions)
        if replicas == 0:
            recommended = 1 if lag > 0 else 0
        elif abs(lag / (self.lag_threshold * replicas) - 1) <= self.tolerance:
            recommended = replicas
        else:
            recommended = math.ceil(lag / self.lag_threshold)
        recommended = min(max(recommended, self.min_replicas), self.max_replicas)
        if recommended > replicas:
            recommended = min(recommended, max(replicas + 4, 2 * replicas))
        self.recommendations = [
            (t, r) for t, r in self.recommendations if at - t < self.scale_down_window_s
        ]
        self.recommendations.append((at, recommended))
        if recommended >= replicas:
            return recommended
        return min(replicas, max(r for _, r in self.recommendations))


@dataclass(frozen=True)
class Result:
    policy: str
    trace: str
    max_lag_s: float
    max_wait_s: float
    replica_minutes: float
    scale_events: int
    max_replicas: int


def simulate(trace: Trace, scaler: Scaler, model: GroupModel, initial_replicas: int = 1) -> Result:
    """Run ``trace`` second by second with ``scaler`` deciding every ``scaler.interval_s``."""
    requested = ready = initial_replicas
    starting: list[int] = []  # seconds at which replicas asked for become ready
    paused_until = 0
    arrived = processed = 0.0
    cumulative: list[float] = []
    oldest = 0  # index into cumulative of the oldest second with unprocessed records
    max_lag_s = max_wait_s = replica_seconds = 0.0
    events = top = 0
    for t, rate in enumerate(trace.rates):
        arrived += rate
        cumulative.append(arrived)
        now_ready = [s for s in starting if s <= t]
        if now_ready:
            starting = [s for s in starting if s > t]
            ready += len(now_ready)
            paused_until = t + model.rebalance_s
        capacity = capacity_replicas(ready, model.partitions) * model.replica_rate
        if t >= paused_until:
            processed = min(arrived, processed + capacity)
        lag = arrived - processed
        max_lag_s = max(max_lag_s, lag / max(capacity, model.replica_rate))
        while oldest < len(cumulative) and cumulative[oldest] <= processed + 1e-9:
            oldest += 1
        if oldest < len(cumulative):
            max_wait_s = max(max_wait_s, float(t - oldest))
        if t % scaler.interval_s == 0:
            desired = scaler.desired(float(t), arrived, processed, requested, ready)
            if desired != requested:
                events += 1
                if desired > requested:
                    starting += [t + model.startup_s] * (desired - requested)
                else:
                    drop = requested - desired
                    cancelled = min(drop, len(starting))
                    starting = sorted(starting)[: len(starting) - cancelled]
                    if drop > cancelled:
                        ready -= drop - cancelled
                        paused_until = t + model.rebalance_s
                requested = desired
        replica_seconds += requested
        top = max(top, requested)
    return Result(
        policy=scaler.name,
        trace=trace.name,
        max_lag_s=max_lag_s,
        max_wait_s=max_wait_s,
        replica_minutes=replica_seconds / 60,
        scale_events=events,
        max_replicas=top,
    )


def exact_fit_replica_minutes(trace: Trace, model: GroupModel, min_replicas: int = 1) -> float:
    """Replica-minutes of a scaler that knows every second's arrivals and has, that very second,
    the fewest replicas that keep up (no start-up, no rebalance pause, never any lag): what any
    policy that keeps lag near zero must at least spend. Only letting a backlog build on purpose
    (within the drain target) spends less."""
    replica_seconds = sum(
        max(replicas_for(rate / model.replica_rate, model.partitions), min_replicas)
        for rate in trace.rates
    )
    return replica_seconds / 60


def keda_lag_threshold(config: PolicyConfig) -> int:
    """KEDA's lagThreshold for the same goal: the records one replica works off in the drain
    target (1,000 records/s x 30 s = 30,000 with the defaults)."""
    return round(config.replica_rate * config.drain_target_s)


def default_traces() -> tuple[Trace, ...]:
    return (burst_trace(), sawtooth_trace(), step_trace(), ramp_trace())


def compare(
    config: PolicyConfig | None = None,
    model: GroupModel | None = None,
    traces: Sequence[Trace] | None = None,
) -> list[Result]:
    """Both policies on every trace (nerstream's first, then KEDA's, per trace)."""
    config = config or PolicyConfig(max_replicas=12)
    model = model or GroupModel(replica_rate=config.replica_rate)
    results = []
    for trace in traces or default_traces():
        ours = NerstreamScaler(config, model.partitions, interval_s=round(config.interval_s))
        keda = KedaScaler(
            keda_lag_threshold(config),
            model.partitions,
            min_replicas=config.min_replicas,
            max_replicas=config.max_replicas,
        )
        results.append(simulate(trace, ours, model, config.min_replicas))
        results.append(simulate(trace, keda, model, config.min_replicas))
    return results


def markdown_table(results: Sequence[Result]) -> str:
    lines = [
        "| trace | policy | max lag (s) | max wait (s) | replica-minutes | scale events | "
        "max replicas |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.trace} | {r.policy} | {r.max_lag_s:.1f} | {r.max_wait_s:.0f} | "
            f"{r.replica_minutes:.1f} | {r.scale_events} | {r.max_replicas} |"
        )
    return "\n".join(lines)


def simulation_report(
    config: PolicyConfig,
    results: Sequence[Result],
    command: str,
    traces: Sequence[Trace] = (),
) -> str:
    """The table with its command and parameters (what ``bench/results/`` keeps); with
    ``traces`` (those of ``results``), each one's exact-fit replica-minutes beside KEDA's."""
    model = GroupModel(replica_rate=config.replica_rate)
    keda = {r.trace: r.replica_minutes for r in results if r.policy == KedaScaler.name}
    fits = [
        f"- {trace.name}: {exact:.1f} replica-minutes"
        + (f" ({exact / keda[trace.name]:.0%} of KEDA's)" if trace.name in keda else "")
        for trace in traces
        for exact in [exact_fit_replica_minutes(trace, model, config.min_replicas)]
    ]
    if fits:
        fits = [
            "",
            "Exact fit, the floor for any policy that keeps lag near zero: every second exactly "
            "the fewest replicas that keep up with that second's arrivals, with no start-up time "
            "(`exact_fit_replica_minutes`):",
            "",
            *fits,
        ]
    return "\n".join(
        [
            "# Autoscaling: nerstream's policy vs KEDA's Kafka scaler rule (simulated)",
            "",
            f"Command: `{command}` (deterministic; no Kafka, no clock).",
            "",
            f"Group model: {model.partitions} partitions, {model.replica_rate:g} records/s per "
            f"replica, a new replica ready {model.startup_s} s after it is asked for, every "
            f"change of the ready set pauses the group {model.rebalance_s} s. nerstream: drain "
            f"target {config.drain_target_s:g} s, decision every {config.interval_s:g} s, "
            f"start-up {config.startup_s:g} s, scale-up horizon {config.scale_up_horizon_s:g} s, "
            f"scale-down window {config.scale_down_window_s:g} s, rate window "
            f"{config.rate_window_s:g} s. KEDA: "
            f"lagThreshold {keda_lag_threshold(config)} (= {config.replica_rate:g} records/s x "
            f"{config.drain_target_s:g} s), HPA defaults (15 s sync, 10 % tolerance, scale-up "
            "max(4 pods, +100 %) per sync, 300 s scale-down stabilization). Both: "
            f"{config.min_replicas}-{config.max_replicas} replicas.",
            "",
            markdown_table(results),
            "",
            "max lag (s): the backlog divided by what the ready replicas process per second "
            "(one replica's rate when none is ready), at its worst; max wait (s): the age of the "
            "oldest unprocessed record, at its worst.",
            *fits,
        ]
    )
