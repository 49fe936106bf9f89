"""Client-side Kafka helpers behind ``nerstream produce``, ``consume`` and ``topics``.

All of them use confluent-kafka with the configured security settings, so they work against a
real cluster as well as the local broker. Input rows are validated exactly as the worker
validates them (:func:`schemas.codecs.decode_record`), so a row the worker would dead-letter is
refused here, with its line number, before it is sent.
"""

from __future__ import annotations

import csv
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

import fastavro
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from schemas.codecs import (
    CONTENT_TYPE_HEADER,
    DEAD_LETTER,
    ENTITY_EVENT,
    RECORD,
    DeadLetter,
    EntityEvent,
    InputRecord,
    decode_record,
    iso_millis,
    to_json,
    validate_record,
)
from schemas.errors import DecodeError
from streams.cli import EXIT_USAGE, CommandError
from streams.pipeline import DEAD_LETTER_SCHEMA, ENTITY_EVENT_SCHEMA, SCHEMA_HEADER
from streams.settings import KafkaSettings, Settings

InputFileFormat = Literal["jsonl", "csv", "avro"]
ValueFormat = Literal["avro", "json"]
INPUT_FILE_FORMATS: tuple[InputFileFormat, ...] = ("jsonl", "csv", "avro")
#: Entities shown per line of ``consume``'s table (JSON output has them all).
TABLE_ENTITIES = 12
#: CSV columns that are record fields; every other column becomes a metadata entry.
RECORD_COLUMNS = ("id", "source", "text", "created_at")


class KafkaToolError(CommandError):
    """A produce/consume/topics operation failed in a way the user can act on."""


# --- topics -----------------------------------------------------------------------------------


def admin_client(kafka: KafkaSettings) -> AdminClient:
    config: dict[str, str | int | float | bool] = {**kafka.confluent_config()}
    return AdminClient(config)


def create_topics(
    kafka: KafkaSettings,
    names: Iterable[str],
    partitions: int,
    replication_factor: int,
    timeout_s: float = 30.0,
) -> dict[str, str]:
    """Create topics; return ``{name: "created" | "exists"}``. Existing topics are kept as is."""
    admin = admin_client(kafka)  # must outlive its futures
    wanted = [NewTopic(name, partitions, replication_factor) for name in names]
    outcome: dict[str, str] = {}
    if not wanted:
        return outcome
    futures = admin.create_topics(wanted, operation_timeout=timeout_s, request_timeout=timeout_s)
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            outcome[name] = "created"
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise KafkaToolError(f"cannot create topic {name}: {error.str()}") from exc
            outcome[name] = "exists"
    return outcome


def list_topics(kafka: KafkaSettings, timeout_s: float = 10.0) -> dict[str, int]:
    """Topic name -> partition count, internal topics left out."""
    try:
        metadata = admin_client(kafka).list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise KafkaToolError(f"cannot list topics: {exc.args[0].str()}") from exc
    return {
        name: len(topic.partitions)
        for name, topic in sorted(metadata.topics.items())
        if not name.startswith("__")
    }


# --- reading input files ----------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    """An input row that cannot become a valid record."""

    line: int
    error_code: str
    message: str


def guess_file_format(path: Path) -> InputFileFormat:
    """The input file format its extension names."""
    by_suffix: dict[str, InputFileFormat] = {
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".json": "jsonl",
        ".csv": "csv",
        ".avro": "avro",
    }
    try:
        return by_suffix[path.suffix.lower()]
    except KeyError:
        raise KafkaToolError(
            f"cannot tell the format of {path.name}; pass --format jsonl, csv or avro", EXIT_USAGE
        ) from None


def read_records(
    path: Path, file_format: InputFileFormat, max_text_chars: int
) -> Iterator[InputRecord | RowError]:
    """Records of a jsonl, csv or Avro container file, validated like the worker does.

    jsonl and csv rows need ``text``; ``id`` defaults to ``<file stem>-<line>``, ``source`` to
    ``other`` and ``created_at`` to now. Avro files are Object Container Files of Records.
    """
    if file_format == "avro":
        yield from _avro_records(path, max_text_chars)
        return
    rows = _jsonl_rows(path) if file_format == "jsonl" else _csv_rows(path)
    for line, row in rows:
        if isinstance(row, RowError):
            yield row
            continue
        row.setdefault("id", f"{path.stem}-{line}")
        if row.get("created_at") in (None, ""):
            row["created_at"] = iso_millis(datetime.now(UTC))
        try:
            value = json.dumps(row, ensure_ascii=False).encode("utf-8")
            yield decode_record(value, "application/json", "json", max_text_chars)
        except DecodeError as exc:
            yield RowError(line, str(exc.error_code), exc.message)


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    with path.open(encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield line_number, RowError(line_number, "DECODE_JSON", exc.msg)
                continue
            if not isinstance(row, dict):
                yield line_number, RowError(line_number, "SCHEMA_MISMATCH", "not a JSON object")
                continue
            yield line_number, row


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "text" not in reader.fieldnames:
            raise KafkaToolError(f"{path}: the CSV header must have a 'text' column", EXIT_USAGE)
        for row in reader:
            fields: dict[str, Any] = {
                name: value for name, value in row.items() if name in RECORD_COLUMNS and value
            }
            metadata = {
                name: value
                for name, value in row.items()
                if name not in RECORD_COLUMNS and name is not None and value
            }
            if metadata:
                fields["metadata"] = metadata
            yield reader.line_num, fields


def _avro_records(path: Path, max_text_chars: int) -> Iterator[InputRecord | RowError]:
    with path.open("rb") as handle:
        try:
            reader = fastavro.reader(handle, reader_schema=RECORD.schema)
        except Exception as exc:  # not an Avro container file, or an incompatible schema
            raise KafkaToolError(
                f"{path}: not an Avro file of Records ({exc})", EXIT_USAGE
            ) from exc
        for number, datum in enumerate(reader, start=1):
            try:
                yield validate_record(
                    RECORD.from_datum(cast(dict[str, Any], datum)), max_text_chars
                )
            except DecodeError as exc:
                yield RowError(number, str(exc.error_code), exc.message)


# --- producing --------------------------------------------------------------------------------


@dataclass
class ProduceReport:
    """What ``nerstream produce`` did."""

    sent: int = 0
    delivered: int = 0
    #: Rows refused before sending, and outputs the broker did not acknowledge.
    invalid: list[RowError] = field(default_factory=list)
    delivery_errors: Counter[str] = field(default_factory=Counter)

    @property
    def failed(self) -> int:
        return len(self.invalid) + sum(self.delivery_errors.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "delivered": self.delivered,
            "invalid_rows": len(self.invalid),
            "delivery_errors": dict(self.delivery_errors),
        }


def encode_record(record: InputRecord, value_format: ValueFormat) -> tuple[bytes, list[Any]]:
    """The Kafka value and headers of a record: plain Avro, or JSON with a content-type."""
    if value_format == "avro":
        return RECORD.encode(record), []
    value = json.dumps(to_json(record), ensure_ascii=False).encode("utf-8")
    return value, [(CONTENT_TYPE_HEADER, b"application/json")]


def produce_records(
    settings: Settings,
    topic: str,
    records: Iterable[InputRecord | RowError],
    *,
    value_format: ValueFormat = "avro",
    rate: float | None = None,
    on_progress: Callable[[int], None] = lambda _: None,
) -> ProduceReport:
    """Send records keyed by id (idempotent, acks=all); wait for every delivery report.

    ``topic`` may contain ``{source}``, replaced by each record's source (news, medical, other).
    """
    report = ProduceReport()
    producer = Producer(
        {
            **settings.kafka.confluent_config(),
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": "murmur2_random",
        }
    )

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        if error is None:
            report.delivered += 1
        else:
            report.delivery_errors[error.str()] += 1
        on_progress(1)

    started = time.monotonic()
    for item in records:
        if isinstance(item, RowError):
            report.invalid.append(item)
            on_progress(1)
            continue
        if rate:
            # Pace by schedule, not by sleeping a fixed gap: the average rate stays exact.
            delay = started + report.sent / rate - time.monotonic()
            if delay > 0:
                producer.poll(delay)
        value, headers = encode_record(item, value_format)
        while True:
            try:
                producer.produce(
                    topic.replace("{source}", item.source),
                    value=value,
                    key=item.id.encode("utf-8"),
                    headers=headers,
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                producer.poll(0.1)
        report.sent += 1
        producer.poll(0)
    left = producer.flush(60)
    if left:
        report.delivery_errors["not delivered within 60 s"] += left
    return report


# --- consuming --------------------------------------------------------------------------------

OutputValue = EntityEvent | DeadLetter


@dataclass(frozen=True)
class ConsumedOutput:
    """One message of the entities or dead-letter topic, decoded."""

    partition: int
    offset: int
    value: OutputValue | None
    #: Why ``value`` is None.
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        where = {"partition": self.partition, "offset": self.offset}
        if self.value is None:
            return {"kind": "undecodable", **where, "error": self.error}
        kind = "entity_event" if isinstance(self.value, EntityEvent) else "dead_letter"
        return {"kind": kind, **where, **to_json(self.value)}


def decode_output(message: Message, dead_letter_topic: str) -> ConsumedOutput:
    """Decode by the ``nerstream-schema`` header, else by topic: dead-letter topic or not."""
    schema = dict(message.headers() or ()).get(SCHEMA_HEADER)
    if schema is None:
        schema = DEAD_LETTER_SCHEMA if message.topic() == dead_letter_topic else ENTITY_EVENT_SCHEMA
    codec = DEAD_LETTER if schema == DEAD_LETTER_SCHEMA else ENTITY_EVENT
    partition, offset = message.partition() or 0, message.offset() or 0
    try:
        return ConsumedOutput(partition, offset, codec.decode(message.value() or b""))
    except DecodeError as exc:
        return ConsumedOutput(partition, offset, None, f"{exc.error_code}: {exc.message}")


def consume_outputs(
    settings: Settings,
    topic: str,
    *,
    from_beginning: bool = False,
    max_messages: int | None = None,
    group: str | None = None,
    idle_timeout_s: float | None = None,
) -> Iterator[ConsumedOutput]:
    """Yield decoded outputs until ``max_messages`` or ``idle_timeout_s`` without a message.

    Without ``group`` a throw-away group is used and nothing is committed; with one, offsets
    are committed as usual, so a second run continues where the first stopped.
    """
    consumer = Consumer(
        {
            **settings.kafka.confluent_config(),
            "group.id": group or f"nerstream-consume-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": group is not None,
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "enable.partition.eof": False,
        }
    )
    try:
        consumer.subscribe([topic])
        count = 0
        last_message_at = time.monotonic()
        while max_messages is None or count < max_messages:
            message = consumer.poll(0.5)
            if message is None:
                if (
                    idle_timeout_s is not None
                    and time.monotonic() - last_message_at > idle_timeout_s
                ):
                    return
                continue
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaToolError(f"consuming {topic}: {error.str()}")
                continue
            last_message_at = time.monotonic()
            count += 1
            yield decode_output(message, settings.topics.dead_letter)
    finally:
        consumer.close()


def format_output(output: ConsumedOutput) -> str:
    """One human-readable line (for a terminal): position, record, entities or error."""
    where = f"{output.partition}:{output.offset}"
    value = output.value
    if value is None:
        return f"{where:>10}  UNDECODABLE  {output.error}"
    if isinstance(value, DeadLetter):
        return (
            f"{where:>10}  DEAD LETTER  {value.error_code}  "
            f"from {value.input.topic}[{value.input.partition}]@{value.input.offset}  "
            f"{value.error_message}"
        )
    shown = [f"{span.text}/{span.type}" for span in value.entities[:TABLE_ENTITIES]]
    if len(value.entities) > TABLE_ENTITIES:
        shown.append(f"... (+{len(value.entities) - TABLE_ENTITIES} more)")
    return f"{where:>10}  {value.record_id}  {value.source:<7}  {'  '.join(shown) or '(none)'}"
