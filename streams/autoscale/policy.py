"""The autoscaling policy, pure: observations of a consumer group in, desired replicas out.

No I/O and no clock: every function takes what it needs (offsets, times, the previous state) and
returns values, so each rule is tested as a named scenario (``tests/unit/streams/autoscale``).

The rule: enough replicas to keep up with what arrives **and** work off the backlog within
``drain_target_s``::

    need = (arrival_rate + backlog / drain_target_s) / replica_rate

rounded up (with a small tolerance), then moved to the smallest replica count that gives the
same capacity (with P partitions a group of r replicas works only as fast as its busiest member,
which owns ceil(P / r) partitions), capped at the partition count and ``max_replicas``, never
below ``min_replicas`` while there is work. Scale-up is immediate and uses the latest arrival
rate (the higher of the last interval's and the window's); scale-down waits until
``scale_down_window_s`` have passed since the last change of replicas, then goes to the highest
recommendation of that window in one step (the flapping guard). After ``scale_to_zero_after_s``
seconds without arrivals or backlog the group may go to zero, and it comes back on the first
arrival.

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
            f"arrivals {self.arrival_rate:.0f}/s, "
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
    arrival = max(arrival, _rates(history[-2:])[0])
    rate, rate_source = _replica_rate(history, processed, config)
    partitions = len(lags)
    active = backlog > 0 or arrival > 0
    last_active_at = now if active or state.last_active_at is None else state.last_active_at
    cap = max(min(config.max_replicas, partitions), 0)

    if active:
        need = (arrival + backlog / config.drain_target_s) / rate
        whole = max(math.ceil(need - config.tolerance), 1)
        recommended = min(replicas_for(whole, partitions) if partitions else whole, cap)
        recommended = max(recommended, min(config.min_replicas, cap), min(1, cap))
        reason = f"need {need:.2f} replicas to keep up and drain in {config.drain_target_s:g} s"
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
    current = observation.replicas
    previous = state.history[-1].replicas if state.history else current
    last_change_at = (
        now if state.last_change_at is None or previous != current else (state.last_change_at)
    )
    if recommended >= current:
        desired = recommended
    elif now - last_change_at < config.scale_down_window_s:
        desired = current
        reason += f"; held: last change {now - last_change_at:.0f} s ago"
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
    )
    return decision, new_state


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
