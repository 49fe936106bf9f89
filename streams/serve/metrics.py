"""Prometheus metrics of one ``nerstream serve`` process, in a registry of its own (as the
worker's, :mod:`streams.worker.telemetry`), served by its ``/metrics`` route."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

from streams.worker.telemetry import BATCH_SIZE_BUCKETS

#: Request latency, finer than the worker's end-to-end buckets: 1 ms to 10 s.
REQUEST_SECONDS_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0
)  # fmt: skip
#: The routes requests are counted under; anything else counts as "other" (bounded labels).
ROUTES = ("/v1/entities", "/healthz", "/readyz", "/metrics", "/openapi.json")


class ServeMetrics:
    """All metrics of one server."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "nerstream_http_requests",
            "HTTP requests answered, by route and status code.",
            ["route", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "nerstream_http_request_duration_seconds",
            "Time from a request's arrival to its answer, by route.",
            ["route"],
            buckets=REQUEST_SECONDS_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "nerstream_serve_batch_size",
            "Texts per model call (texts of several requests merged).",
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.batch_requests = Histogram(
            "nerstream_serve_batch_requests",
            "Requests merged into one model call.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.inference_seconds = Histogram(
            "nerstream_serve_inference_seconds",
            "Wall time of one model call (including one-by-one retries).",
            buckets=REQUEST_SECONDS_BUCKETS,
            registry=registry,
        )
        self.pending_requests = Gauge(
            "nerstream_serve_pending_requests",
            "Requests admitted and not yet answered.",
            registry=registry,
        )
        self.model = Info("nerstream_model", "The NER model this server serves.", registry=registry)

    def set_model(self, name: str, version: str, provider: str) -> None:
        self.model.info({"name": name, "version": version, "provider": provider})

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        route = path if path in ROUTES else "other"
        self.requests.labels(route=route, status=str(status)).inc()
        self.request_seconds.labels(route=route).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
