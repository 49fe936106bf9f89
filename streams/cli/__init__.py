"""``nerstream``: one CLI, thin commands over importable functions.

Belongs here: argument parsing, printing results, and :func:`main`, the one place where errors
become exit codes. The commands live in one module per group: :mod:`.worker` (worker,
passthrough, settings), :mod:`.kafka` (local, produce, consume, topics), :mod:`.model` (train,
evaluate, export, annotate, models), :mod:`.review`, :mod:`.autoscale` and :mod:`.serve`;
:mod:`.common` holds what they share. Each command imports what it needs inside itself, so
``nerstream --help`` and light commands start fast and the serving commands never import torch.

Does not belong here: the work itself (``streams.worker``, ``streams.kafka``, ``models``,
``training``), which returns data or raises ``errors.NerstreamError`` subclasses.

Exit codes (``errors``): 0 success, 1 the work failed, 2 bad usage or settings, 3 the worker
stopped because an output could not be delivered.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, NerstreamError
from streams.cli import autoscale, kafka, model, review, serve, worker
from streams.cli.common import COMMAND_SET, Handler, set_flag, settings_overrides
from streams.settings import SettingsError, load_settings

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

_COMMANDS = (
    kafka.add_local,
    worker.add_settings,
    worker.add_passthrough,
    worker.add_worker,
    kafka.add_produce,
    kafka.add_consume,
    kafka.add_topics,
    model.add_train,
    model.add_evaluate,
    model.add_export,
    model.add_annotate,
    model.add_models,
    review.add_review,
    autoscale.add_autoscale,
    serve.add_serve,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nerstream",
        description="Streaming Chinese named-entity recognition over Kafka.",
    )
    parser.add_argument(
        "--bootstrap-servers",
        dest="setting__kafka__bootstrap_servers",
        metavar="HOSTS",
        help="Kafka bootstrap servers (env NERSTREAM_KAFKA_BOOTSTRAP_SERVERS)",
    )
    parser.add_argument(
        "--schema-registry",
        dest="setting__schema_registry__url",
        metavar="URL",
        help="registry mode: Confluent wire format via this schema registry "
        "(env NERSTREAM_SCHEMA_REGISTRY_URL; default: plain Avro)",
    )
    set_flag(parser, "set")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _COMMANDS:
        add(sub)
    for command in sub.choices.values():
        # After the command too (`nerstream local up --set local.controller_port=19093`),
        # except where the command has a --set of its own (train: its config keys).
        if "--set" not in command._option_string_actions:
            set_flag(command, COMMAND_SET)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every error nerstream raises on purpose becomes its exit code here."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings(settings_overrides(args))
        handler: Handler = args.handler
        return handler(args, settings)
    except SettingsError as exc:
        print(f"nerstream: invalid settings: {exc}", file=sys.stderr)
        return exc.exit_code
    except NerstreamError as exc:
        print(f"nerstream {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
