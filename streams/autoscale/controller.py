"""The autoscaler's loop: read offsets, decide (pure policy), explain, act on a scale target.

Temporary errors (broker or API server away) are logged and counted, and the next tick tries
again; permanent ones (no such Deployment, no permission) stop the loop. ``dry_run`` reads and
decides but never touches a target.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from errors import TemporaryError
from streams.autoscale.policy import Decision, Observation, PolicyConfig, PolicyState, decide
from streams.autoscale.telemetry import AutoscaleMetrics


class OffsetReader(Protocol):
    def read(self, at: float, replicas: int | None = None) -> Observation: ...


class ScaleTarget(Protocol):
    """Something with a replica count: a Deployment, or local worker processes."""

    name: str

    def replicas(self) -> int: ...

    def scale(self, replicas: int) -> None: ...

    def record(self, decision: Decision) -> None:
        """Leave a trace of an applied decision where operators look (a Kubernetes Event)."""
        ...


@dataclass
class Controller:
    reader: OffsetReader
    #: None with ``dry_run``: the current replicas are then the group's members.
    target: ScaleTarget | None
    config: PolicyConfig
    metrics: AutoscaleMetrics = field(default_factory=AutoscaleMetrics)
    dry_run: bool = False
    clock: Callable[[], float] = time.monotonic
    log: Callable[[str], None] = print
    state: PolicyState = field(default_factory=PolicyState)
    decisions: list[Decision] = field(default_factory=list)

    def tick(self) -> Decision:
        replicas = self.target.replicas() if self.target is not None else None
        observation = self.reader.read(self.clock(), replicas)
        decision, self.state = decide(self.state, observation, self.config)
        self.metrics.observe(decision)
        prefix = "dry-run: " if self.dry_run else ""
        self.log(f"{prefix}{decision.explain()}")
        if decision.desired != decision.current and not self.dry_run and self.target:
            self.target.scale(decision.desired)
            self.target.record(decision)
        self.decisions.append(decision)
        del self.decisions[:-1000]
        return decision

    def run(self, interval_s: float, stop: threading.Event, max_ticks: int | None = None) -> None:
        """Tick every ``interval_s`` until ``stop`` is set (or ``max_ticks`` ticks)."""
        ticks = 0
        while not stop.is_set() and (max_ticks is None or ticks < max_ticks):
            started = self.clock()
            try:
                self.tick()
            except TemporaryError as exc:
                self.metrics.errors.inc()
                self.log(f"tick failed, retrying next interval: {exc}")
            ticks += 1
            if max_ticks is not None and ticks >= max_ticks:
                break
            stop.wait(max(interval_s - (self.clock() - started), 0.0))
