"""The controller with a fake offset reader and a fake scale target (the project's own seams,
never the Kafka or Kubernetes clients)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from prometheus_client import generate_latest

from errors import TemporaryError
from streams.autoscale.controller import Controller
from streams.autoscale.policy import Decision, Observation, PartitionOffsets, PolicyConfig
from streams.settings import load_settings


@dataclass
class FakeReader:
    """A backlog that appears at t=10; every read advances the clock by 10 s."""

    failures: int = 0
    t: float = 0.0

    def read(self, at: float, replicas: int | None = None) -> Observation:
        if self.failures:
            self.failures -= 1
            raise TemporaryError("broker away")
        self.t += 10
        highwater = 0 if self.t < 10 else 90_000
        parts = tuple(PartitionOffsets("t", p, 0, highwater) for p in range(4))
        return Observation(self.t, parts, 2 if replicas is None else replicas, members=2)


@dataclass
class FakeTarget:
    name: str = "fake"
    count: int = 1
    events: list[Decision] = field(default_factory=list)

    def replicas(self) -> int:
        return self.count

    def scale(self, replicas: int) -> None:
        self.count = replicas

    def record(self, decision: Decision) -> None:
        self.events.append(decision)


def test_a_backlog_scales_the_target_records_an_event_and_sets_metrics() -> None:
    target, lines = FakeTarget(), list[str]()
    controller = Controller(FakeReader(), target, PolicyConfig(), log=lines.append)
    decision = controller.tick()
    assert (decision.current, decision.desired, target.count) == (1, 4, 4)
    assert [e.direction for e in target.events] == ["up"]
    assert lines[0].startswith("up 1->4: projected lag 360.0 s over the 30 s target")
    metrics = generate_latest(controller.metrics.registry).decode()
    assert "nerstream_autoscale_desired_replicas 4.0" in metrics
    assert 'nerstream_autoscale_decisions_total{direction="up"} 1.0' in metrics


def test_dry_run_decides_but_never_scales() -> None:
    target, lines = FakeTarget(), list[str]()
    controller = Controller(FakeReader(), target, PolicyConfig(), dry_run=True, log=lines.append)
    controller.tick()
    assert target.count == 1 and not target.events
    assert lines[0].startswith("dry-run: up 1->4")


def test_dry_run_without_target_takes_the_members_as_current() -> None:
    controller = Controller(FakeReader(), None, PolicyConfig(), dry_run=True, log=lambda _: None)
    assert controller.tick().current == 2


def test_temporary_errors_are_logged_and_the_loop_goes_on() -> None:
    target, lines = FakeTarget(), list[str]()
    controller = Controller(FakeReader(failures=2), target, PolicyConfig(), log=lines.append)
    controller.run(0.0, threading.Event(), max_ticks=3)
    assert sum("retrying" in line for line in lines) == 2
    assert target.count == 4
    assert (
        "nerstream_autoscale_errors_total 2.0"
        in generate_latest(controller.metrics.registry).decode()
    )


def test_policy_defaults_are_the_settings_defaults() -> None:
    assert PolicyConfig() == PolicyConfig.from_settings(load_settings(env={}).autoscale)


def test_policy_config_comes_from_the_autoscale_settings() -> None:
    settings = load_settings({"autoscale.drain_target_s": "45", "autoscale.max_replicas": "6"})
    config = PolicyConfig.from_settings(settings.autoscale)
    assert (config.drain_target_s, config.max_replicas) == (45, 6)
