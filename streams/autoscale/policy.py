"""The autoscaling policy, pure: observations of a consumer group in, desired replicas out.

No I/O and no clock: every function takes what it needs (offsets, times, the previous state) and
returns values, so each rule is tested as a named scenario (``tests/unit/streams/autoscale``).

The drain target is a budget: the lag, in seconds of processing (backlog / what the replicas
process per second), may grow up to ``drain_target_s`` but not past it. Every tick the policy
projects the backlog second by second, arrivals going on at their current rate and trend (the
smallest rise between consecutive intervals, so a step is not extrapolated):

- **hold** while the lag projected at the current replicas stays within the target for
  ``interval_s + startup_s`` (until a scale-up decided at the next tick could be processing):
  arrivals above the capacity build a bounded backlog, worked off when they fall;
- **scale up** when it does not: to the fewest replicas that keep the projected lag within the
  target from when they are ready until ``scale_up_horizon_s`` (rising traffic gets fewer,
  larger steps), or to the cap when none does;
- **scale down** only to replicas that keep up with arrivals and work the backlog off within
  the target, ``need = (arrival_rate + backlog / drain_target_s) / replica_rate`` (rounded up
  with a small tolerance), once every recommendation has been below the current replicas for
  ``scale_down_window_s`` and as long since the last change, in one step to the highest
  recommendation of that window (the flapping guard).

Only replica counts that add capacity are considered (with P partitions a group of r replicas
works only as fast as its busiest member, which owns ceil(P / r) partitions: with 12, 5 work
like 4), capped at the partition count and ``max_replicas``, never below ``min_replicas`` while
there is work. After ``scale_to_zero_after_s`` seconds without arrivals or backlog the group
may go to zero, and it comes back on the first arrival.

Lag edge cases, per partition (compare :func:`streams.worker.telemetry.partition_lag`):

- **missing partition**: no end offset (leader away, topic being recreated): it is left out of
  the backlog and the rates, and reported; it still counts towards the partition cap;
- **no commit yet**: the whole retained log, ``highwater - earliest``, because the worker starts
  from the earliest offset;
- **committed below the log start**: retention deleted what the group never read; only
  ``highwater - earliest`` can still be processed;
- never negative (a commit may be read after an older end offset);
- **stuck partition**: lag > 0 and a committed offset that has not moved for ``stuck_after_s``
  while the group has live members: another replica would not help (a poison record, a hung
  owner), so its lag does not drive scale-up. It is reported, and alerting is the remedy.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from streams.settings import AutoscaleSettings

PartitionKey = tuple[str, int]


@dataclass(frozen=True)
class PartitionOffsets:
    """One partition of an input topic, as read at one moment."""

    topic: str
    partition: int
    #: The group's committed offset (next record to process); None when nothing is committed.
    committed: int | None
    #: The log end offset; None when it could not be read (the partition is "missing").
    highwater: int | None
    #: The first offset still in the log; None when unknown (taken as 0).
    earliest: int | None = None

    @property
    def key(self) -> PartitionKey:
        return (self.topic, self.partition)


@dataclass(frozen=True)
class Observation:
    """Everything the policy sees at one tick."""

    #: Seconds on any monotonic clock.
    at: float
    partitions: tuple[PartitionOffsets, ...]
    #: Replicas the scale target has now (asked for, not necessarily ready).
    replicas: int
    #: Members of the consumer group, when known; 0 means nobody is consuming.
    members: int | None = None


_DEFAULTS = AutoscaleSettings()


@dataclass(frozen=True)
class PolicyConfig:
    """The policy's knobs; defaults and meanings are the ``autoscale.*`` settings'
    (:class:`streams.settings.AutoscaleSettings`), kept in that one place."""

    min_replicas: int = _DEFAULTS.min_replicas
    max_replicas: int = _DEFAULTS.max_replicas
    drain_target_s: float = _DEFAULTS.drain_target_s
    replica_rate: float = _DEFAULTS.replica_rate
    scale_down_window_s: float = _DEFAULTS.scale_down_window_s
    scale_to_zero_after_s: float = _DEFAULTS.scale_to_zero_after_s
    stuck_after_s: float = _DEFAULTS.stuck_after_s
    rate_window_s: float = _DEFAULTS.rate_window_s
    interval_s: float = _DEFAULTS.interval_s
    startup_s: float = _DEFAULTS.startup_s
    scale_up_horizon_s: float = _DEFAULTS.scale_up_horizon_s
    #: ``need`` may exceed a whole number by this much before it rounds up (noise guard).
    tolerance: float = 0.1

    @classmethod
    def from_settings(cls, settings: AutoscaleSettings) -> PolicyConfig:
        return cls(
            min_replicas=settings.min_replicas,
            max_replicas=settings.max_replicas,
            drain_target_s=settings.drain_target_s,
            replica_rate=settings.replica_rate,
            scale_down_window_s=settings.scale_down_window_s,
            scale_to_zero_after_s=settings.scale_to_zero_after_s,
            stuck_after_s=settings.stuck_after_s,
            rate_window_s=settings.rate_window_s,
            interval_s=settings.interval_s,
            startup_s=settings.startup_s,
            scale_up_horizon_s=settings.scale_up_horizon_s,
        )


@dataclass(frozen=True)
class Decision:
    """What the policy decided at one tick, and why."""

    at: float
    current: int
    desired: int
    #: The recommendation before the scale-down window.
    recommended: int
    reason: str
    lag: int
    #: The lag that drives scaling: all partitions but the stuck ones.
    backlog: int
    arrival_rate: float
    #: How fast arrivals rise, records/s per s (0 when steady or falling).
    arrival_trend: float
    replica_rate: float
    #: "observed" (measured while saturated) or "configured".
    rate_source: str
    partitions: int
    stuck: tuple[PartitionKey, ...] = ()
    missing: tuple[PartitionKey, ...] = ()

    @property
    def direction(self) -> str:
        if self.desired > self.current:
            return "up"
        return "down" if self.desired < self.current else "hold"

    def explain(self) -> str:
        """One log line: the decision and every input that led to it."""
        drain = self.backlog / (self.replica_rate * max(self.desired, 1))
        text = (
            f"{self.direction} {self.current}->{self.desired}: {self.reason}; "
            f"backlog {self.backlog} of lag {self.lag} records "
            f"(~{drain:.1f} s at {max(self.desired, 1)} replicas), "
            f"arrivals {self.arrival_rate:.0f}/s (rising {self.arrival_trend:.0f}/s per s), "
            f"{self.replica_rate:.0f}/s per replica ({self.rate_source}), "
            f"{self.partitions} partitions"
        )
        if self.stuck:
            text += f", stuck: {_keys(self.stuck)}"
        if self.missing:
            text += f", missing: {_keys(self.missing)}"
        return text


@dataclass(frozen=True)
class PolicyState:
    """What the policy remembers between ticks (returned anew by :func:`decide`)."""

    history: tuple[Observation, ...] = ()
    #: (time, recommendation) within the scale-down window.
    recommendations: tuple[tuple[float, int], ...] = ()
    #: Per partition: the committed offset and since when it has been that.
    commits: Mapping[PartitionKey, tuple[int, float]] = field(default_factory=dict)
    #: The last time anything arrived or waited; None before the first observation.
    last_active_at: float | None = None
    #: When the target's replica count last changed (seen in the observations).
    last_change_at: float | None = None
    #: Since when every recommendation has been below the replicas; None while not.
    below_since: float | None = None


def partition_lag(offsets: PartitionOffsets) -> int | None:
    """Records of one partition the group has yet to process; None when it is missing."""
    if offsets.highwater is None:
        return None
    earliest = offsets.earliest or 0
    start = earliest if offsets.committed is None else max(offsets.committed, earliest)
    return max(offsets.highwater - start, 0)


def useful_replicas(replicas: int, partitions: int) -> int:
    """The smallest replica count with the capacity of ``replicas``: the busiest of r replicas
    owns ceil(P / r) partitions, so e.g. with 12 partitions 5 replicas work like 4."""
    if replicas <= 0 or partitions <= 0:
        return max(replicas, 0)
    per_member = math.ceil(partitions / min(replicas, partitions))
    return math.ceil(partitions / per_member)


def capacity_replicas(replicas: int, partitions: int) -> float:
    """How many replicas' worth of records/s ``replicas`` process on ``partitions``."""
    if replicas <= 0 or partitions <= 0:
        return 0.0
    return partitions / math.ceil(partitions / min(replicas, partitions))


def replicas_for(need: float, partitions: int) -> int:
    """The fewest replicas whose capacity is at least ``need`` replicas' worth (capped at P)."""
    for replicas in range(1, partitions + 1):
        if capacity_replicas(replicas, partitions) >= need:
            return replicas
    return partitions


def decide(
    state: PolicyState, observation: Observation, config: PolicyConfig
) -> tuple[Decision, PolicyState]:
    """One tick of the policy: the decision, and the state for the next tick."""
    now = observation.at
    lags = {p.key: partition_lag(p) for p in observation.partitions}
    missing = tuple(sorted(key for key, lag in lags.items() if lag is None))
    known = {key: lag for key, lag in lags.items() if lag is not None}
    commits = _track_commits(state.commits, observation.partitions, now)
    alive = observation.replicas > 0 and (observation.members is None or observation.members > 0)
    stuck = tuple(
        sorted(
            key
            for key, lag in known.items()
            if alive
            and lag > 0
            and key in commits
            and now - commits[key][1] >= config.stuck_after_s
        )
    )
    lag = sum(known.values())
    backlog = sum(value for key, value in known.items() if key not in stuck)
    history = tuple(o for o in (*state.history, observation) if now - o.at <= config.rate_window_s)
    arrival, processed = _rates(history)
    arrival = _rates(history[-2:])[0]
    trend = _arrival_trend(history)
    rate, rate_source = _replica_rate(history, processed, config)
    partitions = len(lags)
    active = backlog > 0 or arrival > 0
    last_active_at = now if active or state.last_active_at is None else state.last_active_at
    cap = max(min(config.max_replicas, partitions), 0)
    current = observation.replicas
    load = Load(backlog, arrival, trend, rate, partitions)
    hold_horizon_s = config.interval_s + config.startup_s
    projected = load.projected_lag_s(current, current, config, hold_horizon_s)

    if active:
        floor = max(min(config.min_replicas, cap), min(1, cap))
        need = (arrival + backlog / config.drain_target_s) / rate
        keep_up = max(math.ceil(need - config.tolerance), 1)
        if projected <= config.drain_target_s:
            # Within the target until a scale-up decided next tick could be ready: hold, and let
            # a bounded backlog build while arrivals exceed the capacity; or go down, but only
            # to replicas that keep up with arrivals and work the backlog off in the target.
            recommended = next(
                (
                    r
                    for r in _useful_counts(floor, min(current, cap), partitions)
                    if capacity_replicas(r, partitions) >= keep_up
                    and load.projected_lag_s(current, r, config, hold_horizon_s)
                    <= config.drain_target_s
                ),
                min(current, cap),
            )
            recommended = max(recommended, floor)
            reason = (
                f"projected lag {projected:.1f} s within the {config.drain_target_s:g} s target "
                f"for the next {hold_horizon_s:g} s at {current}"
            )
            if recommended < current:
                reason += f"; {recommended} keep up and drain in {config.drain_target_s:g} s"
        else:
            # Act now: the fewest replicas that keep the projected lag within the target for
            # the scale-up horizon once they are ready (arrivals going on at their trend);
            # all that may be had if none does.
            sizing_horizon_s = max(config.scale_up_horizon_s, hold_horizon_s)
            recommended = next(
                (
                    r
                    for r in _useful_counts(max(current + 1, floor), cap, partitions)
                    if load.projected_lag_s(current, r, config, sizing_horizon_s)
                    <= config.drain_target_s
                ),
                cap,
            )
            recommended = max(recommended, floor)
            reason = (
                f"projected lag {_seconds(projected)} over the {config.drain_target_s:g} s "
                f"target within {hold_horizon_s:g} s at {current}; "
            )
            if (
                load.projected_lag_s(current, recommended, config, sizing_horizon_s)
                <= config.drain_target_s
            ):
                reason += f"{recommended} keep it within the target for {sizing_horizon_s:g} s"
            else:
                reason += f"{recommended}, the cap, work it off fastest"
        if stuck and backlog == 0:
            reason = "only stuck partitions have lag"
    elif config.scale_to_zero_after_s > 0 and now - last_active_at >= config.scale_to_zero_after_s:
        recommended = 0
        reason = f"idle for {now - last_active_at:.0f} s"
    else:
        # Waiting to go to zero: keep one replica until the idle period has passed.
        floor = 1 if config.scale_to_zero_after_s > 0 else config.min_replicas
        recommended = min(max(config.min_replicas, floor), cap)
        reason = "idle"

    window = tuple(
        (at, value)
        for at, value in (*state.recommendations, (now, recommended))
        if now - at < config.scale_down_window_s
    )
    previous = state.history[-1].replicas if state.history else current
    changed = state.last_change_at is None or previous != current
    last_change_at = now if state.last_change_at is None or changed else state.last_change_at
    # Since when every recommendation has been below the current replicas (None: not now).
    below_since: float | None = None
    if recommended < current:
        below_since = now if changed or state.below_since is None else state.below_since
    if recommended >= current:
        desired = recommended
    elif now - last_change_at < config.scale_down_window_s:
        desired = current
        reason += f"; held: last change {now - last_change_at:.0f} s ago"
    elif below_since is not None and now - below_since < config.scale_down_window_s:
        desired = current
        reason += f"; held: below {current} for only {now - below_since:.0f} s"
    else:
        desired = min(current, max(value for _, value in window))
        if desired > recommended:
            reason += f"; held at {desired} by the {config.scale_down_window_s:g} s window"
    if current == 0 and active:
        desired = max(desired, 1)  # back from zero on the first arrival
    decision = Decision(
        at=now,
        current=current,
        desired=desired,
        recommended=recommended,
        reason=reason,
        lag=lag,
        backlog=backlog,
        arrival_rate=arrival,
        arrival_trend=trend,
        replica_rate=rate,
        rate_source=rate_source,
        partitions=partitions,
        stuck=stuck,
        missing=missing,
    )
    new_state = replace(
        state,
        history=history,
        recommendations=window,
        commits=commits,
        last_active_at=last_active_at,
        last_change_at=last_change_at,
        below_since=below_since,
    )
    return decision, new_state


@dataclass(frozen=True)
class Load:
    """What the group faces at one tick, and where it is heading."""

    backlog: int
    #: Records/s arriving now, and how fast that rate rises (records/s per s; never negative).
    arrival: float
    trend: float
    replica_rate: float
    partitions: int

    def projected_lag_s(
        self, current: int, replicas: int, config: PolicyConfig, horizon_s: float
    ) -> float:
        """The worst lag, in seconds of processing (backlog / capacity), over the next
        ``horizon_s`` seconds with ``replicas``, second by second, arrivals going on at their
        trend. More replicas than ``current`` process only after ``config.startup_s``, and the
        lag is counted from then (before it, every choice is the same); fewer, at once."""
        ready_s = config.startup_s if replicas > current else 0.0
        before = capacity_replicas(current, self.partitions) * self.replica_rate
        after = capacity_replicas(replicas, self.partitions) * self.replica_rate
        backlog, worst = float(self.backlog), 0.0
        for second in range(math.ceil(horizon_s) + 1):
            capacity = before if second < ready_s else after
            if second:
                arriving = self.arrival + self.trend * second
                backlog = max(backlog + arriving - capacity, 0.0)
            if second >= ready_s:
                worst = max(worst, _lag_s(backlog, capacity))
        return worst


def _lag_s(backlog: float, capacity: float) -> float:
    if backlog <= 0:
        return 0.0
    return backlog / capacity if capacity > 0 else math.inf


def _seconds(value: float) -> str:
    return "unbounded" if math.isinf(value) else f"{value:.1f} s"


def _useful_counts(low: int, high: int, partitions: int) -> Iterable[int]:
    """Replica counts from ``low`` to ``high`` that each add capacity (see useful_replicas)."""
    return (r for r in range(low, high + 1) if useful_replicas(r, partitions) == r)


def _track_commits(
    previous: Mapping[PartitionKey, tuple[int, float]],
    partitions: Iterable[PartitionOffsets],
    now: float,
) -> dict[PartitionKey, tuple[int, float]]:
    commits: dict[PartitionKey, tuple[int, float]] = {}
    for p in partitions:
        if p.committed is None:
            continue
        before = previous.get(p.key)
        commits[p.key] = before if before and before[0] == p.committed else (p.committed, now)
    return commits


def _rates(history: tuple[Observation, ...]) -> tuple[float, float]:
    """Records/s arriving and committed over the history, on partitions seen at both ends."""
    if len(history) < 2:
        return 0.0, 0.0
    first, last = history[0], history[-1]
    elapsed = last.at - first.at
    if elapsed <= 0:
        return 0.0, 0.0
    before = {p.key: p for p in first.partitions}
    arrived = processed = 0
    for p in last.partitions:
        old = before.get(p.key)
        if old is None:
            continue
        if p.highwater is not None and old.highwater is not None:
            arrived += max(p.highwater - old.highwater, 0)
        if p.committed is not None:
            start = old.committed if old.committed is not None else (old.earliest or 0)
            processed += max(p.committed - start, 0)
    return arrived / elapsed, processed / elapsed


def _arrival_trend(history: tuple[Observation, ...]) -> float:
    """How fast arrivals rise, records/s per s: the smallest rise between the rates of
    consecutive intervals of the window (exact on a steady ramp; a single jump, a step or a
    burst, is not extrapolated); 0 when falling, flat or unknown."""
    rates = [
        (_rates(pair)[0], (pair[0].at + pair[1].at) / 2)
        for pair in itertools.pairwise(history)
        if pair[1].at > pair[0].at
    ]
    slopes = [
        (rate - before) / (at - then) for (before, then), (rate, at) in itertools.pairwise(rates)
    ]
    return max(min(slopes), 0.0) if slopes else 0.0


def _replica_rate(
    history: tuple[Observation, ...], processed: float, config: PolicyConfig
) -> tuple[float, str]:
    """Per-replica records/s: observed when the whole window was saturated (the same replicas
    throughout, and always at least 5 s of their work waiting), else the configured rate."""
    if len(history) < 2 or processed <= 0:
        return config.replica_rate, "configured"
    replicas = {o.replicas for o in history}
    if len(replicas) != 1 or history[0].replicas <= 0:
        return config.replica_rate, "configured"
    partitions = len(history[-1].partitions)
    lows = (
        sum(lag for lag in map(partition_lag, o.partitions) if lag is not None) for o in history
    )
    if min(lows) < processed * 5.0:
        return config.replica_rate, "configured"
    return processed / capacity_replicas(history[0].replicas, partitions), "observed"


def _keys(keys: Iterable[PartitionKey]) -> str:
    return ",".join(f"{topic}[{partition}]" for topic, partition in keys)
