"""The autoscaler's Prometheus metrics: each decision's inputs and outcome."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from streams.autoscale.policy import Decision


class AutoscaleMetrics:
    """All metrics of one autoscaler, in a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.lag = Gauge(
            "nerstream_autoscale_lag", "Records the group has yet to commit.", registry=r
        )
        self.backlog = Gauge(
            "nerstream_autoscale_backlog",
            "Lag that drives scaling (all partitions but the stuck ones).",
            registry=r,
        )
        self.arrival_rate = Gauge(
            "nerstream_autoscale_arrival_rate", "Records/s arriving on the inputs.", registry=r
        )
        self.replica_rate = Gauge(
            "nerstream_autoscale_replica_rate",
            "Records/s one replica processes (observed or configured).",
            registry=r,
        )
        self.current = Gauge("nerstream_autoscale_current_replicas", "Replicas now.", registry=r)
        self.desired = Gauge(
            "nerstream_autoscale_desired_replicas", "Replicas decided.", registry=r
        )
        self.stuck = Gauge(
            "nerstream_autoscale_stuck_partitions", "Partitions with stuck lag.", registry=r
        )
        self.missing = Gauge(
            "nerstream_autoscale_missing_partitions",
            "Partitions without an end offset.",
            registry=r,
        )
        self.decisions = Counter(
            "nerstream_autoscale_decisions",
            "Decisions, by direction (up, down, hold).",
            ["direction"],
            registry=r,
        )
        self.errors = Counter(
            "nerstream_autoscale_errors", "Ticks that failed with a temporary error.", registry=r
        )

    def observe(self, decision: Decision) -> None:
        self.lag.set(decision.lag)
        self.backlog.set(decision.backlog)
        self.arrival_rate.set(decision.arrival_rate)
        self.replica_rate.set(decision.replica_rate)
        self.current.set(decision.current)
        self.desired.set(decision.desired)
        self.stuck.set(len(decision.stuck))
        self.missing.set(len(decision.missing))
        self.decisions.labels(decision.direction).inc()

    def serve(self, host: str, port: int) -> None:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread."""
        start_http_server(port, addr=host, registry=self.registry)
