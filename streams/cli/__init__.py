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
from pathlib import Path

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


# --- the NER worker ----------------------------------------------------------------------------


def _cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from streams.agents import load_model, run_worker
    from streams.logs import use_json_logs

    if settings.worker.log_format == "json":
        use_json_logs()
    run_worker(settings, load_model(settings.model))
    return EXIT_OK


def _add_worker(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "worker", help="run the NER worker: input topics -> entity events and dead letters"
    )
    _setting_flag(parser, "--inputs", "topics.inputs", "comma-separated input topics")
    _setting_flag(parser, "--group", "worker.group_id", "consumer group id")
    _setting_flag(parser, "--worker-id", "worker.worker_id", "this instance's name")
    _setting_flag(parser, "--web-port", "worker.web_port", "port of /healthz, /readyz, /metrics")
    _setting_flag(parser, "--max-batch", "worker.max_batch", "most records per inference batch")
    _setting_flag(parser, "--model-dir", "model.model_dir", "model directory (default: shipped)")
    _setting_flag(parser, "--provider", "model.provider", "auto, tensorrt, cuda or cpu")
    _setting_flag(parser, "--precision", "model.precision", "auto, int8, fp32 or fp16")
    parser.set_defaults(handler=_cmd_worker)


# --- produce / consume / topics ----------------------------------------------------------------


def _cmd_produce(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from streams import kafka_tools

    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"no such file: {path}", EXIT_USAGE)
    file_format = args.format or kafka_tools.guess_file_format(path)
    records = kafka_tools.read_records(path, file_format, settings.worker.max_text_chars)
    with tqdm(desc=f"produce {path.name}", unit="rec", file=sys.stderr) as bar:
        report = kafka_tools.produce_records(
            settings,
            args.topic,
            records,
            value_format=args.value_format,
            rate=args.rate,
            on_progress=bar.update,
        )
    for row in report.invalid[:20]:
        _progress(f"{path}:{row.line}: {row.error_code}: {row.message}")
    if len(report.invalid) > 20:
        _progress(f"... and {len(report.invalid) - 20} more invalid rows")
    for error, count in report.delivery_errors.items():
        _progress(f"not delivered: {count} x {error}")
    print(
        f"{report.delivered} of {report.sent} records delivered to {args.topic}; "
        f"{len(report.invalid)} invalid rows, "
        f"{sum(report.delivery_errors.values())} delivery failures"
    )
    return EXIT_FAILED if report.failed else EXIT_OK


def _add_produce(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    parser.set_defaults(handler=_cmd_produce)


def _cmd_consume(args: argparse.Namespace, settings: Settings) -> int:
    from streams import kafka_tools

    outputs = kafka_tools.consume_outputs(
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
            print(kafka_tools.format_output(output), flush=True)
        else:
            print(json.dumps(output.as_json(), ensure_ascii=False), flush=True)
    if undecodable:
        _progress(f"{undecodable} message(s) could not be decoded")
    return EXIT_FAILED if undecodable else EXIT_OK


def _add_consume(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    parser.set_defaults(handler=_cmd_consume)


def _cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    from streams import kafka_tools

    if args.action == "list":
        for name, partitions in kafka_tools.list_topics(settings.kafka).items():
            print(f"{name}\t{partitions}")
        return EXIT_OK
    outcome = kafka_tools.create_topics(
        settings.kafka,
        args.names or settings.topics.all,
        partitions=settings.topics.partitions,
        replication_factor=settings.topics.replication_factor,
    )
    for name, what in outcome.items():
        print(f"{name}: {what}")
    return EXIT_OK


def _add_topics(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("topics", help="create or list topics on the cluster")
    parser.add_argument("action", choices=["create", "list"])
    parser.add_argument("names", nargs="*", help="topics to create (default: all project topics)")
    _setting_flag(parser, "--partitions", "topics.partitions", "partitions per new topic")
    _setting_flag(
        parser, "--replication-factor", "topics.replication_factor", "replicas per partition"
    )
    parser.set_defaults(handler=_cmd_topics)


# --- model: train, evaluate, export, annotate --------------------------------------------------


def _cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from training.corpora import CorpusError
    from training.export import export_model
    from training.train import load_config, train

    try:
        config = load_config(args.config, args.config_set or [])
    except (OSError, ValueError) as exc:
        raise CommandError(f"{args.config}: {exc}", EXIT_USAGE) from exc
    run_dir = args.output or Path("runs") / config.name
    try:
        result = train(config, run_dir)
    except CorpusError as exc:
        raise CommandError(str(exc)) from exc
    print(result.best_dev.table())
    model_dir = export_model(result.checkpoint, run_dir / "model")
    print(f"best checkpoint: {result.checkpoint} (step {result.best_step})")
    print(f"model directory: {model_dir}")
    return EXIT_OK


def _add_train(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("train", help="train the NER model (needs the 'train' extra)")
    parser.add_argument("--config", type=Path, required=True, help="training config (JSON)")
    parser.add_argument(
        "--set",
        dest="config_set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set epochs=3; repeatable",
    )
    parser.add_argument(
        "--output", type=Path, help="run directory (default runs/<name>); the model goes to model/"
    )
    parser.set_defaults(handler=_cmd_train)


def _cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from models.manifest import ModelError
    from models.runtime import NerModel
    from training.corpora import CorpusError, read_corpus
    from training.evaluate import evaluate_model

    try:
        examples = read_corpus(args.data, args.format)
        model = NerModel.load(
            args.model or settings.model.model_dir or None,
            provider=settings.model.provider,
            threads=settings.model.threads,
            precision=settings.model.precision,
        )
    except (CorpusError, ModelError) as exc:
        raise CommandError(str(exc)) from exc
    types = [name.strip() for name in args.types.split(",")] if args.types else None
    report = evaluate_model(model, examples, types)
    print(f"{model.manifest.name} {model.manifest.version} ({model.precision}, {model.provider})")
    print(f"{args.data}: {len(examples)} sentences")
    print(report.table())
    if args.json:
        args.json.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    return EXIT_OK


def _add_evaluate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "evaluate", help="entity-level precision/recall/F1 of a model directory on a corpus"
    )
    parser.add_argument("--model", help="model directory (default: the shipped model)")
    parser.add_argument(
        "--data", required=True, help="corpus file, or msra-test / msra-train (the packaged MSRA)"
    )
    parser.add_argument(
        "--format", choices=["bmes", "bio", "jsonl"], help="corpus format (default: inferred)"
    )
    parser.add_argument(
        "--types", help="comma-separated types to score (default: the model's types in the data)"
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the scores as JSON")
    _setting_flag(parser, "--provider", "model.provider", "auto, tensorrt, cuda or cpu")
    _setting_flag(parser, "--precision", "model.precision", "auto, int8, fp32 or fp16")
    _setting_flag(parser, "--threads", "model.threads", "ONNX Runtime intra-op threads")
    parser.set_defaults(handler=_cmd_evaluate)


def _cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from training.export import export_model

    if not args.checkpoint.is_file():
        raise CommandError(f"{args.checkpoint}: no such checkpoint")
    print(f"model directory: {export_model(args.checkpoint, args.output)}")
    return EXIT_OK


def _add_export(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "export", help="checkpoint -> model directory (ONNX float + int8, manifest)"
    )
    parser.add_argument("--checkpoint", type=Path, required=True, help="a training checkpoint")
    parser.add_argument("--output", type=Path, required=True, help="model directory to write")
    parser.set_defaults(handler=_cmd_export)


def _cmd_annotate(args: argparse.Namespace, settings: Settings) -> int:
    from contextlib import ExitStack

    from models.annotate import InputError, annotate, read_records
    from models.manifest import ModelError
    from models.runtime import NerModel

    with ExitStack() as stack:
        try:
            sources = [
                (str(path), stack.enter_context(path.open(encoding="utf-8"))) for path in args.files
            ] or [("-", sys.stdin)]
            output = (
                stack.enter_context(args.output.open("w", encoding="utf-8"))
                if args.output
                else sys.stdout
            )
            model = NerModel.load(
                args.model or settings.model.model_dir or None,
                provider=settings.model.provider,
                threads=settings.model.threads,
                precision=settings.model.precision,
            )
            count = annotate(model, read_records(sources), output)
        except OSError as exc:
            raise CommandError(f"{exc.filename}: {exc.strerror}") from exc
        except (InputError, ModelError) as exc:
            raise CommandError(str(exc)) from exc
    _progress(f"annotated {count} lines")
    return EXIT_OK


def _add_annotate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "annotate", help="tag text lines or JSON lines with entities, offline (no Kafka)"
    )
    parser.add_argument(
        "files", nargs="*", type=Path, metavar="FILE", help="input files (default: stdin)"
    )
    parser.add_argument("--model", help="model directory (default: the shipped model)")
    parser.add_argument("--output", type=Path, help="output JSONL file (default: stdout)")
    _setting_flag(parser, "--provider", "model.provider", "auto, tensorrt, cuda or cpu")
    _setting_flag(parser, "--precision", "model.precision", "auto, int8, fp32 or fp16")
    _setting_flag(parser, "--threads", "model.threads", "ONNX Runtime intra-op threads")
    parser.set_defaults(handler=_cmd_annotate)


# --- entry point -------------------------------------------------------------------------------

_COMMANDS = (
    _add_local,
    _add_settings,
    _add_passthrough,
    _add_worker,
    _add_produce,
    _add_consume,
    _add_topics,
    _add_train,
    _add_evaluate,
    _add_export,
    _add_annotate,
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
