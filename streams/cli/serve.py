"""``nerstream serve``: the synchronous HTTP API (:mod:`streams.serve`)."""

from __future__ import annotations

import argparse

from errors import EXIT_OK
from streams.cli.common import Subparsers, load_served_model, model_flags, setting_flag
from streams.settings import Settings


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from streams.serve.server import run_server

    # The token first: a missing token file fails before the model loads.
    token = settings.serve.bearer_token()
    run_server(settings, load_served_model(settings), token)
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
