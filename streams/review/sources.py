"""Where review tasks come from: a JSONL file, or the review topic the worker writes.

Reading the topic uses the consumer group ``<worker.group_id>-review``: it reads what is there
until the topic is quiet, and commits only after the tasks are in the state directory, so a
task is never lost between the topic and the store (one read twice is ignored there).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer, KafkaError

from errors import PermanentError, TemporaryError
from schemas.codecs import REVIEW_TASK, to_json
from schemas.errors import DecodeError
from streams.registry.client import RegistryClient
from streams.registry.wire import WriterSchemas
from streams.review.tasks import ReviewItem, item_from_json
from streams.settings import Settings


def read_task_file(path: Path) -> list[ReviewItem]:
    """Review items of a JSONL file (``nerstream consume --json`` or ``annotate`` lines)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise PermanentError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    items = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PermanentError(f"{path}:{number}: not JSON: {exc.msg}") from exc
        items.append(item_from_json(obj, f"{path}:{number}"))
    return items


def pull_topic(
    settings: Settings,
    take: Callable[[list[ReviewItem]], int],
    idle_s: float = 5.0,
    join_timeout_s: float = 60.0,
) -> int:
    """Hand every new review task on ``topics.review`` to ``take`` (which persists them), then
    commit; return how many messages were read. Undecodable messages are skipped.

    Reading stops after ``idle_s`` without a message, counted from the moment the group gave
    this consumer its partitions (joining can take seconds on a busy broker), or when no
    partitions came within ``join_timeout_s``.
    """
    consumer = Consumer(
        {
            **settings.kafka.confluent_config(),
            "group.id": f"{settings.worker.group_id}-review",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    registry = settings.schema_registry
    # Registry mode: the worker wrote the tasks in the Confluent wire format.
    writer_schema = (
        WriterSchemas(RegistryClient(registry), registry.outage_timeout_s)
        if registry.enabled
        else None
    )
    read = 0
    assigned: list[bool] = []
    try:
        consumer.subscribe(
            [settings.topics.review], on_assign=lambda _consumer, _parts: assigned.append(True)
        )
        join_deadline = time.monotonic() + join_timeout_s
        last: float | None = None
        while True:
            now = time.monotonic()
            if last is None and assigned:
                last = now
            if (last is not None and now - last >= idle_s) or (
                last is None and now > join_deadline
            ):
                break
            messages = consumer.consume(500, timeout=0.5)
            items = []
            got = 0
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                        continue  # no review task was ever written
                    raise TemporaryError(f"reading {settings.topics.review}: {error.str()}")
                got += 1
                value = message.value() or b""
                try:
                    task = (
                        REVIEW_TASK.decode(value)
                        if writer_schema is None
                        else REVIEW_TASK.decode_framed(value, writer_schema)
                    )
                except DecodeError:
                    continue
                items.append(item_from_json(to_json(task), f"offset {message.offset()}"))
            if got:
                read += got
                last = time.monotonic()
                take(items)
                consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return read
