"""``nerstream serve``: the synchronous HTTP API (:mod:`streams.serve`)."""

from __future__ import annotations

import argparse

from errors import EXIT_OK, UsageError
from streams.cli.common import Subparsers, model_flags, setting_flag
from streams.settings import Settings


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from models.manifest import ModelError
    from streams.model_loader import load_model
    from streams.serve.server import run_server

    token = settings.serve.bearer_token()
    try:
        model = load_model(settings.model)
    except ModelError as exc:
        # As for the worker, the model directory is configuration: refuse to start (exit 2).
        raise UsageError(f"cannot load the model: {exc}") from exc
    run_server(settings, model, token)
    return EXIT_OK


def add_serve(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "serve", help="serve the model over HTTP: POST /v1/entities, with dynamic batching"
    )
    setting_flag(parser, "--host", "serve.host", "address to bind (default 127.0.0.1)")
    setting_flag(parser, "--port", "serve.port", "TCP port (default 8080)")
    setting_flag(
        parser, "--batch-window-ms", "serve.batch_window_ms", "wait for requests to merge (ms)"
    )
    setting_flag(parser, "--max-batch", "serve.max_batch", "most texts per model call")
    setting_flag(
        parser, "--auth-token-file", "serve.auth_token_file", "file holding the bearer token"
    )
    model_flags(parser)
    parser.set_defaults(handler=cmd_serve)
