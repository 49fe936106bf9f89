"""``nerstream serve``: the HTTP side (aiohttp) of the synchronous API.

Routes: ``POST /v1/entities`` (:mod:`.api` parses and shapes, :mod:`.dispatcher` merges requests
into model calls), ``GET /healthz``, ``/readyz``, ``/metrics`` and ``/openapi.json``. Every error
is a JSON body ``{"error": {"code", "message", ["limit", "max"]}}``; a failure inside a handler
is logged and answered with 500, never taken down with the server.

Admission: at most ``serve.max_pending_requests`` requests are between arrival and answer; one
more is answered 429 at once rather than queued. Auth (optional): ``/v1/*`` needs
``Authorization: Bearer <token>``, compared in constant time; the probes, metrics and the
OpenAPI document stay open (kubelet and Prometheus reach them without a token).
"""

from __future__ import annotations

import asyncio
import hmac
import importlib.metadata
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from errors import UsageError
from models.runtime import NerModel
from schemas.codecs import ModelInfo
from streams.serve.api import (
    ENTITIES_PATH,
    ApiError,
    RequestLimits,
    encode_json,
    openapi_document,
    over_limit,
    parse_request,
    response_body,
    too_large_body,
    unauthorized,
)
from streams.serve.dispatcher import Dispatcher
from streams.serve.inference import ThreadInference
from streams.serve.metrics import ServeMetrics
from streams.settings import Secret, Settings
from streams.worker.batching import AdaptiveBatcher, BatchLimits
from streams.worker.pipeline import InferenceError

logger = logging.getLogger(__name__)

#: The text of the warm-up call that makes the server ready (it exercises the whole path).
WARM_UP_TEXT = "王小明在北京的清华大学读书。"
#: Seconds between progress lines (only while requests come in).
PROGRESS_INTERVAL_S = 10.0
#: Seconds a stopping server gives the requests in flight.
SHUTDOWN_TIMEOUT_S = 30.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(document: Any, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        body=encode_json(document),
        status=status,
        content_type="application/json",
        charset="utf-8",
        headers=headers or None,
    )


def error_response(error: ApiError) -> web.Response:
    return json_response(error.body(), error.status, **error.headers)


class ServeApp:
    """One server: the model behind a dispatcher, the limits, the metrics and the routes."""

    def __init__(
        self,
        settings: Settings,
        model: NerModel,
        token: Secret | None = None,
        metrics: ServeMetrics | None = None,
    ) -> None:
        serve = settings.serve
        self.settings = settings
        self.limits = RequestLimits.from_settings(serve)
        self.token = token.reveal().encode("utf-8") if token else None
        self.metrics = metrics or ServeMetrics()
        manifest = model.manifest
        self.model_info = ModelInfo(manifest.name, manifest.version)
        self.metrics.set_model(manifest.name, manifest.version, model.provider)
        self.batcher = AdaptiveBatcher(
            BatchLimits(
                max_batch=serve.max_batch,
                latency_target_s=serve.latency_target_ms / 1000,
                bucket_chars=settings.model.bucket_chars,
                bucket_texts=settings.model.bucket_texts,
            )
        )
        self.model = model
        self.dispatcher: Dispatcher | None = None
        self.ready = False
        self.stopping = False
        self.pending = 0
        self.openapi = encode_json(
            openapi_document(self.limits, auth=self.token is not None, version=_version())
        )
        self._tasks: set[asyncio.Task[None]] = set()

    def application(self) -> web.Application:
        # aiohttp refuses larger bodies itself (request.read() raises 413), answered as JSON.
        app = web.Application(
            client_max_size=self.limits.max_body_bytes, middlewares=[self._observe]
        )
        app.router.add_post(ENTITIES_PATH, self.entities)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics_page)
        app.router.add_get("/openapi.json", self.openapi_page)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        app.on_cleanup.append(self._on_cleanup)
        return app

    # --- lifecycle ----------------------------------------------------------------------------

    async def _on_startup(self, app: web.Application) -> None:
        self.dispatcher = Dispatcher(
            ThreadInference(self.model.predict),
            self.batcher,
            self.settings.serve.batch_window_ms / 1000,
            self.metrics,
        )
        self.dispatcher.start()
        self._spawn(self._warm_up())
        self._spawn(self._log_progress())

    def _spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    async def _warm_up(self) -> None:
        """Ready once a text went through the whole path (first calls pay ONNX Runtime's setup)."""
        assert self.dispatcher is not None
        [result] = await self.dispatcher.submit([WARM_UP_TEXT])
        if isinstance(result, InferenceError):
            logger.error("the warm-up call failed: %s; not ready", result)
            return
        self.ready = True
        logger.info("ready: the warm-up call found %d entities", len(result))

    async def _log_progress(self) -> None:
        assert self.dispatcher is not None
        stats = self.dispatcher.stats
        logged = 0
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            if stats.requests != logged:
                logger.info(
                    "progress requests=%d (+%d) texts=%d model_calls=%d pending=%d",
                    stats.requests,
                    stats.requests - logged,
                    stats.texts,
                    stats.calls,
                    self.pending,
                )
                logged = stats.requests

    async def _on_shutdown(self, app: web.Application) -> None:
        # The listener is closed; requests in flight still get their answers.
        self.stopping = True

    async def _on_cleanup(self, app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.dispatcher is not None:
            await self.dispatcher.stop()
            stats = self.dispatcher.stats
            logger.info(
                "stopped: %d requests (%d texts) answered in %d model calls",
                stats.requests,
                stats.texts,
                stats.calls,
            )

    # --- every request ------------------------------------------------------------------------

    @web.middleware
    async def _observe(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Count and time every request; turn every error into a JSON answer."""
        started = time.perf_counter()
        try:
            response = await handler(request)
        except ApiError as exc:
            response = error_response(exc)
        except web.HTTPException as exc:
            if exc.status == 413:
                response = error_response(too_large_body(self.limits))
            else:
                code = exc.reason.lower().replace(" ", "_")
                allow = {k: v for k, v in exc.headers.items() if k == "Allow"}
                message = f"{request.method} {request.path}: {exc.reason}"
                response = error_response(ApiError(exc.status, code, message, headers=allow))
        except Exception:
            logger.exception("unexpected failure answering %s %s", request.method, request.path)
            response = error_response(ApiError(500, "internal_error", "unexpected server error"))
        self.metrics.observe_request(request.path, response.status, time.perf_counter() - started)
        return response

    # --- routes -------------------------------------------------------------------------------

    async def entities(self, request: web.Request) -> web.Response:
        self._authorize(request)
        serve = self.settings.serve
        if self.stopping or self.dispatcher is None:
            raise ApiError(503, "unavailable", "the server is shutting down")
        if self.pending >= serve.max_pending_requests:
            raise over_limit(
                429,
                "max_pending_requests",
                serve.max_pending_requests,
                f"{self.pending} requests are pending already; retry later",
                headers={"Retry-After": "1"},
            )
        if (request.content_length or 0) > self.limits.max_body_bytes:
            raise too_large_body(self.limits)
        self.pending += 1
        self.metrics.pending_requests.set(self.pending)
        try:
            items = parse_request(await request.read(), self.limits)
            results = await self.dispatcher.submit([item.text for item in items])
        finally:
            self.pending -= 1
            self.metrics.pending_requests.set(self.pending)
        spans = []
        for index, result in enumerate(results):
            if isinstance(result, InferenceError):
                raise ApiError(500, "inference_failed", f"text {index}: {result}")
            spans.append(result)
        return json_response(response_body(items, spans, self.model_info))

    def _authorize(self, request: web.Request) -> None:
        if self.token is None:
            return
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode("utf-8"), self.token
        ):
            raise unauthorized()

    async def healthz(self, request: web.Request) -> web.Response:
        return json_response({"alive": True, "pending": self.pending})

    async def readyz(self, request: web.Request) -> web.Response:
        reasons = []
        if not self.ready:
            reasons.append("the model has not answered its warm-up call")
        if self.stopping:
            reasons.append("shutting down")
        body = {
            "ready": not reasons,
            "reasons": reasons,
            "model": {"name": self.model_info.name, "version": self.model_info.version},
        }
        return json_response(body, 200 if not reasons else 503)

    async def metrics_page(self, request: web.Request) -> web.Response:
        payload, content_type = self.metrics.render()
        return web.Response(body=payload, headers={"Content-Type": content_type})

    async def openapi_page(self, request: web.Request) -> web.Response:
        return web.Response(body=self.openapi, content_type="application/json", charset="utf-8")


def _version() -> str:
    try:
        return importlib.metadata.version("nerstream")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def run_server(settings: Settings, model: NerModel, token: Secret | None) -> None:
    """Serve in the foreground until SIGTERM/SIGINT; requests in flight are answered first."""
    serve = settings.serve
    server = ServeApp(settings, model, token)
    logger.info(
        "serving model %s %s on %s at http://%s:%d (auth: %s)",
        server.model_info.name,
        server.model_info.version,
        model.provider,
        serve.host,
        serve.port,
        "bearer token" if token else "none",
    )
    try:
        web.run_app(
            server.application(),
            host=serve.host,
            port=serve.port,
            access_log=None,
            print=None,
            shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        )
    except OSError as exc:
        raise UsageError(f"cannot listen on {serve.host}:{serve.port}: {exc}") from exc
