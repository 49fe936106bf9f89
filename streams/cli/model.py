"""The model's commands: ``train``, ``evaluate``, ``export`` (need the ``train`` extra),
``annotate`` and ``models`` (the model store).

``train``, ``evaluate`` and ``export`` call into ``training`` (torch) with imports inside the
command, so no other command, and nothing under ``streams.worker``, ever imports it. Every command
that loads a model does so through :func:`streams.model_loader.load_model` and takes the same
model flags (``--model-dir``, alias ``--model``; ``--provider``; ``--precision``; ``--threads``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from errors import EXIT_OK, PermanentError, UsageError
from streams.cli.common import Subparsers, model_flags, progress, setting_flag
from streams.settings import Settings


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from training.config import load_config, with_corrections
    from training.export import export_model
    from training.train import train

    try:
        config = load_config(args.config, args.config_set or [])
    except (OSError, ValueError) as exc:
        raise UsageError(f"{args.config}: {exc}") from exc
    try:
        config = with_corrections(config, args.corrections or [], args.version or "")
    except (OSError, ValueError) as exc:
        raise UsageError(f"--corrections: {exc}") from exc
    if config.corrections:
        progress(f"training {config.name} {config.version} with corrections {config.corrections}")
    run_dir = args.output or Path("runs") / config.name
    # A bad corpus raises training.corpora.CorpusError, a PermanentError: exit 1.
    result = train(config, run_dir)
    print(result.best_dev.table())
    model_dir = export_model(result.checkpoint, run_dir / "model")
    print(f"best checkpoint: {result.checkpoint} (step {result.best_step})")
    print(f"model directory: {model_dir}")
    return EXIT_OK


def add_train(sub: Subparsers) -> None:
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
    parser.add_argument(
        "--corrections",
        action="append",
        metavar="FILE[*N]",
        help="corrections from `nerstream review` as extra training data, repeated N times "
        "(its weight); repeatable",
    )
    parser.add_argument(
        "--version",
        help="the new model's version (default: the config's; with --corrections, the config's "
        "+corrections.<hash of the files>)",
    )
    parser.set_defaults(handler=cmd_train)


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from streams.model_loader import load_model
    from training.data import read_data
    from training.evaluate import error_records, evaluate_model

    if args.errors and (args.report or args.compare):
        raise UsageError("--errors lists one model's errors on --data (no --report, --compare)")
    if args.compare:
        return _compare(args, settings)
    if bool(args.data) == args.report:
        raise UsageError("evaluate needs either --data or --report")
    # CorpusError and ModelError are PermanentErrors: exit 1.
    model = load_model(settings.model)
    if args.report:
        from training.report import build_report, render_markdown, write_report

        result = build_report(model)
        written = write_report(result, args.output or model.directory)
        print(render_markdown(result))
        print("written: " + " and ".join(str(path) for path in written), file=sys.stderr)
        return EXIT_OK
    examples = read_data(args.data, args.format)
    types = [name.strip() for name in args.types.split(",")] if args.types else None
    evaluation = evaluate_model(model, examples, types)
    report = evaluation.report
    print(f"{model.manifest.name} {model.manifest.version} ({model.precision}, {model.provider})")
    print(f"{args.data}: {len(examples)} sentences")
    print(report.table())
    if args.json:
        args.json.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    if args.errors:
        with args.errors.open("w", encoding="utf-8") as file:
            for record in error_records(examples, evaluation.predicted, evaluation.entity_types):
                file.write(json.dumps(record, ensure_ascii=False) + "\n")
    return EXIT_OK


def _compare(args: argparse.Namespace, settings: Settings) -> int:
    """``evaluate --compare OLD NEW``: both models on the same sets, side by side."""
    import dataclasses

    from streams.model_loader import load_model
    from training.compare import compare_models, render
    from training.data import read_data

    if args.report:
        raise UsageError("--compare and --report do not go together")
    sets = [(args.data, read_data(args.data, args.format))] if args.data else []
    sets += [(str(path), read_data(path, "jsonl")) for path in args.corrections or []]
    if not sets:
        raise UsageError("--compare needs --data and/or --corrections to score the models on")
    old, new = (
        load_model(dataclasses.replace(settings.model, model_dir=str(directory)))
        for directory in args.compare
    )
    comparisons = compare_models(old, new, sets, progress=True)
    print(
        render(
            f"{old.manifest.name} {old.manifest.version} ({args.compare[0]})",
            f"{new.manifest.name} {new.manifest.version} ({args.compare[1]})",
            comparisons,
        )
    )
    if args.json:
        document = {
            "old": {"name": old.manifest.name, "version": old.manifest.version},
            "new": {"name": new.manifest.name, "version": new.manifest.version},
            "sets": {
                c.name: {"sentences": c.sentences, "old": c.old.as_dict(), "new": c.new.as_dict()}
                for c in comparisons
            },
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return EXIT_OK


def add_evaluate(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "evaluate", help="entity-level precision/recall/F1 of a model directory on a corpus"
    )
    parser.add_argument(
        "--data",
        help="corpus file, or a data set name: msra-test, weibo-dev, resume-dev, "
        "cluener-heldout, boson-heldout, cmeee-heldout, ... (training.datasets)",
    )
    parser.add_argument(
        "--format", choices=["bmes", "bio", "jsonl"], help="corpus format (default: inferred)"
    )
    parser.add_argument(
        "--types", help="comma-separated types to score (default: the model's types in the data)"
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the scores as JSON")
    parser.add_argument(
        "--errors",
        type=Path,
        metavar="OUT",
        help="--data: also write every error as a JSON line (sentence index and text; kind: "
        "missed, boundary, type or spurious; the gold entity and the predictions over it)",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="the full evaluation report: every dev set with Baidu LAC side by side, medical "
        "false positives, NUM, batch invariance, speed (evaluation.json + EVALUATION.md)",
    )
    parser.add_argument(
        "--output", type=Path, help="--report: directory to write to (default: the model's)"
    )
    parser.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("OLD", "NEW"),
        help="score two model directories side by side on --data and --corrections",
    )
    parser.add_argument(
        "--corrections",
        type=Path,
        action="append",
        metavar="FILE",
        help="--compare: also score on these corrections (nerstream review output); repeatable",
    )
    model_flags(parser)
    parser.set_defaults(handler=cmd_evaluate)


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from training.export import export_model, requantize_model

    if args.checkpoint is not None:
        if not args.checkpoint.is_file():
            raise PermanentError(f"{args.checkpoint}: no such checkpoint")
        print(f"model directory: {export_model(args.checkpoint, args.output)}")
        return EXIT_OK
    if not args.version:
        raise UsageError("--from-model needs --version: the rebuilt model is a new version")
    try:
        output = requantize_model(args.from_model, args.output, args.version)
    except ValueError as exc:
        raise PermanentError(str(exc)) from exc
    print(f"model directory: {output}")
    return EXIT_OK


def add_export(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "export",
        help="checkpoint -> model directory (ONNX float, int8 and fp16, manifest); or rebuild "
        "a model directory's int8 and fp16 models",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="a training checkpoint")
    source.add_argument(
        "--from-model",
        type=Path,
        metavar="DIR",
        help="a model directory: rebuild its int8 and fp16 models from its float model with "
        "this checkout's quantizer (calibrated on its training sources)",
    )
    parser.add_argument("--version", help="--from-model: the rebuilt model's version")
    parser.add_argument("--output", type=Path, required=True, help="model directory to write")
    parser.set_defaults(handler=cmd_export)


def cmd_annotate(args: argparse.Namespace, settings: Settings) -> int:
    from contextlib import ExitStack

    from models.annotate import annotate, read_lines
    from streams.model_loader import load_model

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
            # InputError and ModelError are PermanentErrors: exit 1.
            count = annotate(load_model(settings.model), read_lines(sources), output)
        except OSError as exc:
            raise PermanentError(f"{exc.filename}: {exc.strerror}") from exc
    progress(f"annotated {count} lines")
    return EXIT_OK


def add_annotate(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "annotate", help="tag text lines or JSON lines with entities, offline (no Kafka)"
    )
    parser.add_argument(
        "files", nargs="*", type=Path, metavar="FILE", help="input files (default: stdin)"
    )
    parser.add_argument("--output", type=Path, help="output JSONL file (default: stdout)")
    model_flags(parser)
    parser.set_defaults(handler=cmd_annotate)


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from models.manifest import read_manifest
    from streams.model_store import ModelStoreError, add, current_version, promote, versions

    if not settings.model.store_dir:
        raise UsageError("name the model store with --store DIR (or NERSTREAM_MODEL_STORE_DIR)")
    store = Path(settings.model.store_dir)
    if args.action == "add":
        for directory in args.targets:
            print(f"added {add(store, Path(directory))}")
        return EXIT_OK
    if args.action == "promote":
        if len(args.targets) != 1:
            raise UsageError("promote takes one version")
        promote(store, args.targets[0])
        print(f"current -> {args.targets[0]}")
        return EXIT_OK
    try:
        serving = current_version(store)
    except ModelStoreError:
        serving = ""
    for version in versions(store):
        manifest = read_manifest(store / version, verify_files=False)
        mark = "*" if version == serving else " "
        print(f"{mark} {version:<40} {manifest.name}  created {manifest.created_at}")
    return EXIT_OK


def add_models(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "models",
        help="the model store: list versions, add a model directory, promote (or roll back)",
        description="A model store holds model versions and a `current` pointer; workers started "
        "with --model-store switch to the promoted version without a restart.",
    )
    parser.add_argument("action", choices=["list", "add", "promote"])
    parser.add_argument(
        "targets",
        nargs="*",
        metavar="DIR|VERSION",
        help="add: model directories; promote: one version",
    )
    setting_flag(parser, "--store", "model.store_dir", "the model store directory")
    parser.set_defaults(handler=cmd_models)
