"""``nerstream``: one CLI, thin subcommands over importable functions.

Each handler imports what it needs inside itself, so ``nerstream --help`` and light commands
start fast and the serving commands never import torch.
Exit codes: 0 success, 1 the work failed, 2 bad usage or settings.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

from streams.settings import Settings, SettingsError, load_settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """A command failed in a way the user can act on; its message is printed without a trace."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


Handler = Callable[[argparse.Namespace, Settings], int]


def _settings_overrides(args: argparse.Namespace) -> dict[str, str | None]:
    """Flags that map onto settings fields (dest ``setting__section__field``) plus ``--set``."""
    overrides: dict[str, str | None] = {}
    for dest, value in vars(args).items():
        if dest.startswith("setting__") and value is not None:
            _, section, name = dest.split("__", 2)
            overrides[f"{section}.{name}"] = str(value)
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SettingsError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = value
    return overrides


def _setting_flag(parser: argparse.ArgumentParser, flag: str, key: str, help_text: str) -> None:
    section, name = key.split(".")
    parser.add_argument(flag, dest=f"setting__{section}__{name}", metavar="VALUE", help=help_text)


# --- local Kafka -------------------------------------------------------------------------------


def _cmd_local(args: argparse.Namespace, settings: Settings) -> int:
    from streams import local_kafka

    if args.action == "up":
        info = local_kafka.up(settings, log=_progress)
        print(f"Kafka {info.version} is up at {info.bootstrap_servers} (pid {info.pid})")
        print(f"data: {info.data_dir}")
        return EXIT_OK
    if args.action == "down":
        stopped = local_kafka.down(settings, wipe=args.wipe, log=_progress)
        print("Kafka stopped" if stopped else "Kafka was not running")
        return EXIT_OK
    status = local_kafka.status(settings)
    print(json.dumps(status.as_dict(), indent=2))
    return EXIT_OK if status.healthy else EXIT_FAILED


def _add_local(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("local", help="run a single-node Apache Kafka (KRaft) on 127.0.0.1")
    parser.add_argument("action", choices=["up", "down", "status"])
    _setting_flag(parser, "--port", "local.port", "broker port (default 9092)")
    _setting_flag(parser, "--partitions", "topics.partitions", "partitions per project topic")
    parser.add_argument("--wipe", action="store_true", help="with down: delete the broker data")
    parser.set_defaults(handler=_cmd_local)


# --- settings ----------------------------------------------------------------------------------


def _cmd_settings(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps(settings.describe(), indent=2, ensure_ascii=False))
    return EXIT_OK


def _add_settings(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("settings", help="print the effective settings (secrets masked)")
    parser.set_defaults(handler=_cmd_settings)


# --- the pass-through slice --------------------------------------------------------------------


def _cmd_passthrough(args: argparse.Namespace, settings: Settings) -> int:
    from streams.passthrough import run_passthrough

    run_passthrough(settings, source=args.source, sink=args.sink)
    return EXIT_OK


def _add_passthrough(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "passthrough", help="a Faust worker that copies every record of one topic to another"
    )
    parser.add_argument("--source", required=True, help="topic to read")
    parser.add_argument("--sink", required=True, help="topic to write")
    _setting_flag(parser, "--group", "worker.group_id", "consumer group id")
    _setting_flag(parser, "--web-port", "worker.web_port", "Faust web server port")
    parser.set_defaults(handler=_cmd_passthrough)


# --- entry point -------------------------------------------------------------------------------

_COMMANDS = (_add_local, _add_settings, _add_passthrough)


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
        "--set",
        action="append",
        metavar="SECTION.FIELD=VALUE",
        help="override any setting (see `nerstream settings`); repeatable",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _COMMANDS:
        add(sub)
    return parser


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings(_settings_overrides(args))
    except SettingsError as exc:
        print(f"nerstream: invalid settings: {exc}", file=sys.stderr)
        return EXIT_USAGE
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except CommandError as exc:
        print(f"nerstream {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
