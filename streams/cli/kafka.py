"""Kafka tooling commands: ``local``, ``produce``, ``consume`` and ``topics``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from errors import EXIT_FAILED, EXIT_OK, UsageError
from streams.cli.common import Subparsers, progress, setting_flag
from streams.settings import Settings

# --- local Kafka -------------------------------------------------------------------------------


def cmd_local(args: argparse.Namespace, settings: Settings) -> int:
    from streams.kafka import local as local_kafka
    from streams.kafka import local_registry

    if args.action == "up":
        info = local_kafka.up(settings, log=progress)
        print(f"Kafka {info.version} is up at {info.bootstrap_servers} (pid {info.pid})")
        print(f"data: {info.data_dir}")
        if args.registry:
            registry = local_registry.up(settings, log=progress)
            print(
                f"Schema registry (Apicurio {registry.version}) is up at {registry.url} "
                f"(pid {registry.pid})"
            )
            print(f"registry mode: export NERSTREAM_SCHEMA_REGISTRY_URL={registry.url}")
        return EXIT_OK
    if args.action == "down":
        if local_registry.down(settings, log=progress):
            print("Schema registry stopped")
        stopped = local_kafka.down(settings, wipe=args.wipe, log=progress)
        print("Kafka stopped" if stopped else "Kafka was not running")
        return EXIT_OK
    status = local_kafka.status(settings)
    registry_status = local_registry.status(settings)
    print(json.dumps({**status.as_dict(), "schema_registry": registry_status}, indent=2))
    registry_fine = registry_status["healthy"] or registry_status["pid"] is None
    return EXIT_OK if status.healthy and registry_fine else EXIT_FAILED


def add_local(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "local", help="run a single-node Apache Kafka (KRaft), and a schema registry, on 127.0.0.1"
    )
    parser.add_argument("action", choices=["up", "down", "status"])
    setting_flag(parser, "--port", "local.port", "broker port (default 9092)")
    parser.add_argument(
        "--registry",
        action="store_true",
        help="with up: also run a schema registry (Apicurio, in memory) for registry mode",
    )
    setting_flag(parser, "--registry-port", "local.registry_port", "registry port (default 8081)")
    setting_flag(parser, "--partitions", "topics.partitions", "partitions per project topic")
    parser.add_argument("--wipe", action="store_true", help="with down: delete the broker data")
    parser.set_defaults(handler=cmd_local)


# --- produce / consume / topics ----------------------------------------------------------------


def cmd_produce(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from streams.kafka.files import guess_file_format, read_input_file
    from streams.kafka.produce import produce_records

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    file_format = args.format or guess_file_format(path)
    records = read_input_file(path, file_format, settings.worker.max_text_chars)
    with tqdm(desc=f"produce {path.name}", unit="rec", file=sys.stderr) as bar:
        report = produce_records(
            settings,
            args.topic,
            records,
            value_format=args.value_format,
            rate=args.rate,
            on_progress=bar.update,
        )
    for row in report.invalid[:20]:
        progress(f"{path}:{row.line}: {row.error_code}: {row.message}")
    if len(report.invalid) > 20:
        progress(f"... and {len(report.invalid) - 20} more invalid rows")
    for error, count in report.delivery_errors.items():
        progress(f"not delivered: {count} x {error}")
    print(
        f"{report.delivered} of {report.sent} records delivered to {args.topic}; "
        f"{len(report.invalid)} invalid rows, "
        f"{sum(report.delivery_errors.values())} delivery failures"
    )
    return EXIT_FAILED if report.failed else EXIT_OK


def add_produce(sub: Subparsers) -> None:
    parser = sub.add_parser("produce", help="send records from a jsonl, csv or Avro file")
    parser.add_argument("file", help="records: .jsonl, .csv (header row) or .avro container")
    parser.add_argument(
        "--topic",
        required=True,
        help="input topic; {source} in it is replaced by each record's source, "
        "e.g. nerstream.records.{source}",
    )
    parser.add_argument(
        "--format", choices=["jsonl", "csv", "avro"], help="file format (default: by extension)"
    )
    parser.add_argument(
        "--value-format",
        choices=["avro", "json"],
        default="avro",
        help="message encoding: Avro Record (default) or JSON with a content-type header",
    )
    parser.add_argument(
        "--rate", type=float, help="records per second (default: as fast as possible)"
    )
    parser.set_defaults(handler=cmd_produce)


def cmd_consume(args: argparse.Namespace, settings: Settings) -> int:
    from streams.kafka.consume import consume_outputs, format_output

    outputs = consume_outputs(
        settings,
        args.topic or settings.topics.entities,
        from_beginning=args.from_beginning,
        max_messages=args.max,
        group=args.group,
        idle_timeout_s=args.idle_timeout,
    )
    as_table = sys.stdout.isatty() if args.output == "auto" else args.output == "table"
    undecodable = 0
    for output in outputs:
        undecodable += output.value is None
        if as_table:
            print(format_output(output), flush=True)
        else:
            print(json.dumps(output.as_json(), ensure_ascii=False), flush=True)
    if undecodable:
        progress(f"{undecodable} message(s) could not be decoded")
    return EXIT_FAILED if undecodable else EXIT_OK


def add_consume(sub: Subparsers) -> None:
    parser = sub.add_parser("consume", help="print entity events or dead letters")
    parser.add_argument("--topic", help="topic to read (default: the entities topic)")
    parser.add_argument("--from-beginning", action="store_true", help="start at the oldest message")
    parser.add_argument("--max", type=int, metavar="N", help="stop after N messages")
    parser.add_argument("--group", help="consumer group that commits (default: none, no commits)")
    parser.add_argument(
        "--idle-timeout", type=float, metavar="S", help="stop after S seconds without a message"
    )
    parser.add_argument(
        "--output",
        choices=["auto", "json", "table"],
        default="auto",
        help="JSON lines, or a table (default: table on a terminal, else JSON lines)",
    )
    parser.set_defaults(handler=cmd_consume)


def cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    from streams.kafka.admin import create_topics, list_topics

    if args.action == "list":
        for name, partitions in list_topics(settings.kafka).items():
            print(f"{name}\t{partitions}")
        return EXIT_OK
    outcome = create_topics(
        settings.kafka,
        args.names or settings.topics.all,
        partitions=settings.topics.partitions,
        replication_factor=settings.topics.replication_factor,
    )
    for name, what in outcome.items():
        print(f"{name}: {what}")
    return EXIT_OK


def add_topics(sub: Subparsers) -> None:
    parser = sub.add_parser("topics", help="create or list topics on the cluster")
    parser.add_argument("action", choices=["create", "list"])
    parser.add_argument("names", nargs="*", help="topics to create (default: all project topics)")
    setting_flag(parser, "--partitions", "topics.partitions", "partitions per new topic")
    setting_flag(
        parser, "--replication-factor", "topics.replication_factor", "replicas per partition"
    )
    parser.set_defaults(handler=cmd_topics)
