"""The review web app: one page and a small JSON API over a :class:`~.store.ReviewStore`.

aiohttp (which the worker already ships through Faust), bound to ``review.host`` (127.0.0.1 by
default). A reviewer is named by the page (``?reviewer=NAME``, else a name kept in the
browser); every request carries it, and the store's leases keep two reviewers off one task.

API (JSON): ``GET /api/next`` the reviewer's task (leased) and the progress; ``GET
/api/task/{id}`` open a given task; ``POST /api/draft`` persist an edit; ``POST /api/done``
persist the correction and write the corrections file; ``POST /api/skip`` hand a task back.
Errors: 400 a malformed correction, 404 an unknown task, 409 a task someone else holds.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from importlib.resources import files
from typing import Any

from aiohttp import web

from streams.review.store import LeaseConflictError, ReviewStore, UnknownTaskError
from streams.review.tasks import ENTITY_TYPES, ReviewInputError

logger = logging.getLogger(__name__)

PAGE = files("streams.review").joinpath("page.html")
STORE_KEY = web.AppKey("store", ReviewStore)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _reviewer(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 100:
        raise ReviewInputError("every request needs a reviewer name (1-100 characters)")
    return value.strip()


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ReviewInputError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    except UnknownTaskError as exc:
        return web.json_response({"error": str(exc)}, status=404)
    except LeaseConflictError as exc:
        return web.json_response({"error": str(exc)}, status=409)


def _store(request: web.Request) -> ReviewStore:
    return request.app[STORE_KEY]


async def _page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE.read_text(encoding="utf-8"), content_type="text/html")


def _with_progress(store: ReviewStore, body: dict[str, Any]) -> web.Response:
    return web.json_response({**body, "progress": store.progress(), "types": ENTITY_TYPES})


async def _next(request: web.Request) -> web.Response:
    store = _store(request)
    assignment = store.next_task(_reviewer(request.query.get("reviewer")))
    return _with_progress(store, {"task": assignment.as_json() if assignment else None})


async def _task(request: web.Request) -> web.Response:
    store = _store(request)
    reviewer = _reviewer(request.query.get("reviewer"))
    assignment = store.open_task(request.match_info["task_id"], reviewer)
    return _with_progress(store, {"task": assignment.as_json()})


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise ReviewInputError("the request body must be JSON") from exc
    if not isinstance(body, dict) or not isinstance(body.get("task"), str):
        raise ReviewInputError('the request body needs a "task" id')
    return body


def _decide(kind: str) -> Handler:
    async def decide(request: web.Request) -> web.Response:
        store = _store(request)
        body = await _body(request)
        reviewer = _reviewer(body.get("reviewer"))
        store.record(body["task"], reviewer, body.get("entities"), kind)
        if kind == "done":
            logger.info("task %s done by %s (%s)", body["task"], reviewer, store.progress())
        return _with_progress(store, {"saved": kind})

    return decide


async def _skip(request: web.Request) -> web.Response:
    store = _store(request)
    body = await _body(request)
    store.skip(body["task"], _reviewer(body.get("reviewer")))
    return _with_progress(store, {})


def create_app(store: ReviewStore) -> web.Application:
    app = web.Application(middlewares=[_errors])
    app[STORE_KEY] = store
    app.router.add_get("/", _page)
    app.router.add_get("/api/next", _next)
    app.router.add_get("/api/task/{task_id}", _task)
    app.router.add_post("/api/draft", _decide("draft"))
    app.router.add_post("/api/done", _decide("done"))
    app.router.add_post("/api/skip", _skip)
    return app


def serve(store: ReviewStore, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM."""
    web.run_app(
        create_app(store),
        host=host,
        port=port,
        print=lambda _: logger.info("review app on http://%s:%d/", host, port),
        handle_signals=True,
    )
