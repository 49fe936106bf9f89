"""The service's commands: ``worker``, ``passthrough`` and ``settings``."""

from __future__ import annotations

import argparse
import json

from errors import EXIT_OK
from streams.cli.common import Subparsers, load_served_model, model_flags, setting_flag
from streams.settings import Settings

# --- settings ----------------------------------------------------------------------------------


def cmd_settings(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps(settings.describe(), indent=2, ensure_ascii=False))
    return EXIT_OK


def add_settings(sub: Subparsers) -> None:
    parser = sub.add_parser("settings", help="print the effective settings (secrets masked)")
    parser.set_defaults(handler=cmd_settings)


# --- the pass-through slice --------------------------------------------------------------------


def cmd_passthrough(args: argparse.Namespace, settings: Settings) -> int:
    from streams.worker.passthrough import run_passthrough

    run_passthrough(settings, source=args.source, sink=args.sink)
    return EXIT_OK


def add_passthrough(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "passthrough", help="a Faust worker that copies every record of one topic to another"
    )
    parser.add_argument("--source", required=True, help="topic to read")
    parser.add_argument("--sink", required=True, help="topic to write")
    setting_flag(parser, "--group", "worker.group_id", "consumer group id")
    setting_flag(parser, "--web-port", "worker.web_port", "Faust web server port")
    parser.set_defaults(handler=cmd_passthrough)


# --- the NER worker ----------------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from streams.model_loader import load_model
    from streams.worker.agents import run_worker
    from streams.worker.logs import use_json_logs

    if settings.worker.log_format == "json":
        use_json_logs()
    run_worker(
        settings,
        load_served_model(settings),
        lambda directory: load_model(settings.model, Path(directory)),
    )
    return EXIT_OK


def add_worker(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "worker", help="run the NER worker: input topics -> entity events and dead letters"
    )
    setting_flag(parser, "--inputs", "topics.inputs", "comma-separated input topics")
    setting_flag(parser, "--group", "worker.group_id", "consumer group id")
    setting_flag(parser, "--worker-id", "worker.worker_id", "this instance's name")
    setting_flag(parser, "--web-port", "worker.web_port", "port of /healthz, /readyz, /metrics")
    setting_flag(parser, "--max-batch", "worker.max_batch", "most records per inference batch")
    setting_flag(
        parser,
        "--latency-target-ms",
        "worker.latency_target_ms",
        "adaptive batching target (0: fixed batches of --max-batch)",
    )
    setting_flag(
        parser, "--max-in-flight", "worker.max_in_flight_batches", "batches between fetch and ack"
    )
    model_flags(parser, threads=False)
    setting_flag(
        parser, "--model-store", "model.store_dir", "serve a model store's current version"
    )
    parser.set_defaults(handler=cmd_worker)
