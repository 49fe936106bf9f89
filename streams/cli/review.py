"""``nerstream review``: correct the worker's uncertain predictions in a local web app, and move
corrections to and from Label Studio."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from errors import EXIT_OK, PermanentError
from streams.cli.common import Subparsers, progress, setting_flag
from streams.settings import Settings


def cmd_review(args: argparse.Namespace, settings: Settings) -> int:
    from streams.review.labelstudio import LABEL_CONFIG, export_tasks, import_tasks
    from streams.review.sources import pull_topic, read_task_file
    from streams.review.store import ReviewStore
    from streams.review.tasks import ReviewInputError, ReviewItem, ReviewSpan

    review = settings.review
    store = ReviewStore(review.state_dir, review.lease_s, args.output)
    for path in args.tasks or []:
        progress(f"{path}: {store.add(read_task_file(path))} new task(s)")
    if args.from_topic:
        progress(f"reading review tasks from {settings.topics.review} ...")
        read = pull_topic(settings, store.add)
        progress(f"{settings.topics.review}: {read} message(s) read")
    if args.import_label_studio:
        try:
            document = json.loads(args.import_label_studio.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ReviewInputError(f"{args.import_label_studio}: {exc}") from exc
        imported = import_tasks(document)
        for item, spans, reviewer in imported:
            store.add([item])
            store.record(item.id, reviewer, [span.as_json() for span in spans], "done")
        progress(
            f"imported {len(imported)} annotated task(s); corrections: {store.corrections_path}"
        )
    if args.export_label_studio:
        entries: list[tuple[ReviewItem, tuple[ReviewSpan, ...] | None, str]] = []
        for item in store.items():
            decision = store.decision(item.id)
            if decision is not None and decision.kind == "done":
                entries.append((item, decision.spans, decision.reviewer))
            else:
                entries.append((item, None, ""))
        args.export_label_studio.write_text(
            json.dumps(export_tasks(entries), ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
        progress(f"wrote {len(entries)} Label Studio task(s) to {args.export_label_studio}")
        progress(f"labeling config: {LABEL_CONFIG}")
    if args.import_label_studio or args.export_label_studio:
        return EXIT_OK
    if not store.items():
        raise PermanentError(
            f"no review tasks in {review.state_dir}; give --tasks FILE or --from-topic"
        )
    from streams.review.web import serve

    counts = store.progress()
    progress(
        f"{counts['done']} of {counts['total']} task(s) reviewed; corrections go to "
        f"{store.corrections_path}"
    )
    progress(f"open http://{review.host}:{review.port}/ (Ctrl-C stops)")
    serve(store, review.host, review.port)
    return EXIT_OK


def add_review(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "review",
        help="correct predictions in a local web app; Label Studio import/export",
        description="Serve review tasks (from --tasks files and/or the review topic, kept in "
        "review.state_dir) in a local web app; corrections are written as a JSONL corpus.",
    )
    parser.add_argument(
        "--tasks",
        type=Path,
        action="append",
        metavar="FILE",
        help="JSONL review tasks (nerstream consume --json, or annotate output); repeatable",
    )
    parser.add_argument(
        "--from-topic", action="store_true", help="also take the new tasks on topics.review"
    )
    parser.add_argument(
        "--output", type=Path, help="corrections JSONL (default: <state dir>/corrections.jsonl)"
    )
    setting_flag(parser, "--state-dir", "review.state_dir", "where tasks and decisions are kept")
    setting_flag(parser, "--host", "review.host", "address to bind (default 127.0.0.1)")
    setting_flag(parser, "--port", "review.port", "port of the web app (default 6070)")
    parser.add_argument(
        "--export-label-studio",
        type=Path,
        metavar="OUT",
        help="write the tasks (predictions, and corrections as annotations) as Label Studio "
        "JSON, then exit",
    )
    parser.add_argument(
        "--import-label-studio",
        type=Path,
        metavar="FILE",
        help="take the annotations of a Label Studio export as corrections, then exit",
    )
    parser.set_defaults(handler=cmd_review)
