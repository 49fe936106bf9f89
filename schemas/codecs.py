"""Typed values in, plain Avro binary out, and back: one codec per schema in this folder.

Wire format: every Kafka value nerstream reads or writes as Avro is the *schemaless* Avro binary
encoding of one record, exactly what ``fastavro.schemaless_writer`` writes: no Object Container
File header. In registry mode (``schema_registry.url`` set) that body is wrapped in the Confluent
wire format (:mod:`schemas.framing`): outputs always, inputs when they start with magic byte 0,
decoded with the writer schema the registry holds under their id. Without a registry a framed
input is not recognised: a Record whose id is empty also starts with byte 0.

Input records may also arrive as JSON; :func:`decode_record` picks the format from the message's
``content-type`` header, else from the topic's configured format, and validates the text. Every
failure raises :class:`~schemas.errors.DecodeError` with a stable error code and a message that
never quotes the record text.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

import fastavro
from fastavro.read import SchemaResolutionError

from schemas.errors import DecodeError, ErrorCode
from schemas.framing import Schema, WriterSchemaLookup, is_framed, unframe

SCHEMA_DIR = Path(__file__).parent
#: The Kafka header that names a message's format, e.g. ``application/json``.
CONTENT_TYPE_HEADER = "content-type"
#: Input formats a topic can be configured with.
FORMATS = ("avro", "json")
_FORMAT_OF_MEDIA_TYPE = {
    "application/avro": "avro",
    "avro/binary": "avro",
    "application/json": "json",
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_MAX_QUOTED = 80


def parse_schema(raw: dict[str, Any]) -> Schema:
    """Parse a record schema given as JSON-like dicts."""
    parsed = fastavro.parse_schema(raw)
    if not isinstance(parsed, dict):
        raise TypeError("a nerstream schema is a record schema (a JSON object)")
    return parsed


def load_schema(path: Path) -> Schema:
    """Parse an ``.avsc`` file, e.g. an older version of a schema used as the writer schema."""
    return parse_schema(json.loads(path.read_text(encoding="utf-8")))


def write_datum(schema: Schema, datum: Mapping[str, Any]) -> bytes:
    """Schemaless Avro binary of ``datum``."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, datum)
    return buffer.getvalue()


def read_datum(
    data: bytes,
    writer_schema: Schema,
    reader_schema: Schema | None = None,
    mismatch_code: ErrorCode = ErrorCode.SCHEMA_MISMATCH,
) -> Any:
    """Read schemaless Avro binary written with ``writer_schema``, resolved to ``reader_schema``.

    Schema resolution is Avro's: fields the writer lacks take the reader's defaults, fields the
    reader lacks are skipped, unknown enum symbols become the reader enum's default. All of
    ``data`` must be consumed: bytes left over mean it was written with another schema.
    A writer schema that cannot be resolved to the reader's raises ``mismatch_code``.
    """
    name = (reader_schema or writer_schema)["name"]
    buffer = io.BytesIO(data)
    try:
        datum = fastavro.schemaless_reader(buffer, writer_schema, reader_schema)
    except SchemaResolutionError as exc:
        raise DecodeError(
            mismatch_code,
            f"writer schema cannot be read as {name}: {str(exc)[:200]}",
        ) from exc
    except Exception as exc:  # fastavro signals bad bytes with EOFError, IndexError, ...
        raise DecodeError(
            ErrorCode.DECODE_AVRO,
            f"not Avro binary of {name} ({type(exc).__name__} after {buffer.tell()} bytes)",
        ) from exc
    left_over = len(data) - buffer.tell()
    if left_over:
        raise DecodeError(
            ErrorCode.SCHEMA_MISMATCH,
            f"{left_over} of {len(data)} bytes left after reading a {name}; "
            "written with another schema, or garbage appended",
        )
    return datum


def to_millis(moment: datetime) -> int:
    """Milliseconds since the epoch (floored), the value a timestamp-millis field holds."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (UTC), not naive")
    return (moment - _EPOCH) // _MILLISECOND


def from_millis(millis: int) -> datetime:
    """The UTC datetime of an epoch-milliseconds value (OverflowError beyond year 1..9999)."""
    return _EPOCH + millis * _MILLISECOND


def iso_millis(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds, e.g. ``2024-05-01T08:30:00.250Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


T = TypeVar("T")


def _load_codec(
    file_name: str,
    to_datum: Callable[[T], dict[str, Any]],
    from_datum: Callable[[dict[str, Any]], T],
) -> AvroCodec[T]:
    text = (SCHEMA_DIR / file_name).read_text(encoding="utf-8")
    return AvroCodec(parse_schema(json.loads(text)), to_datum, from_datum, text)


@dataclass(frozen=True)
class AvroCodec(Generic[T]):
    """One schema, parsed once, and the conversions between its datums and a dataclass."""

    schema: Schema
    to_datum: Callable[[T], dict[str, Any]]
    from_datum: Callable[[dict[str, Any]], T]
    #: The schema as written in its ``.avsc`` file: what is registered in a schema registry.
    schema_text: str = ""

    @property
    def name(self) -> str:
        return str(self.schema["name"])

    def encode(self, value: T) -> bytes:
        return write_datum(self.schema, self.to_datum(value))

    def decode(
        self,
        data: bytes,
        writer_schema: Schema | None = None,
        mismatch_code: ErrorCode = ErrorCode.SCHEMA_MISMATCH,
    ) -> T:
        """Decode bytes written with ``writer_schema`` (default: this schema, the current one)."""
        datum = read_datum(data, writer_schema or self.schema, self.schema, mismatch_code)
        return self.from_datum(datum)

    def decode_framed(self, value: bytes, writer_schema: WriterSchemaLookup) -> T:
        """Decode a value in the Confluent wire format, its writer schema looked up by id.

        A writer schema that cannot be read as this one is INCOMPATIBLE_SCHEMA.
        """
        schema_id, body = unframe(value)
        return self.decode(body, writer_schema(schema_id), ErrorCode.INCOMPATIBLE_SCHEMA)


# --- Input record -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class InputRecord:
    """A text to analyse (schema ``record.avsc``)."""

    id: str
    source: str = "other"
    text: str
    created_at: datetime
    metadata: dict[str, str] = field(default_factory=dict)


def _record_to_datum(record: InputRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "source": record.source,
        "text": record.text,
        "created_at": to_millis(record.created_at),
        "metadata": record.metadata,
    }


def _record_from_datum(datum: dict[str, Any]) -> InputRecord:
    return InputRecord(
        id=datum["id"],
        source=datum["source"],
        text=datum["text"],
        created_at=datum["created_at"],
        metadata=dict(datum["metadata"]),
    )


RECORD = _load_codec("record.avsc", _record_to_datum, _record_from_datum)

_SOURCE_FIELD = next(f for f in RECORD.schema["fields"] if f["name"] == "source")
#: The source symbols the current schema knows, and the one unknown sources fall back to.
SOURCES: tuple[str, ...] = tuple(_SOURCE_FIELD["type"]["symbols"])
DEFAULT_SOURCE: str = _SOURCE_FIELD["default"]


# --- Entity event -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EntitySpan:
    """One entity mention: ``text == record.text[start:end]`` (code-point offsets)."""

    type: str
    text: str
    start: int
    end: int
    #: Stored as an Avro float (32 bit): it reads back rounded to single precision.
    score: float


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str = ""


@dataclass(frozen=True)
class InputPosition:
    """Where a message was read from Kafka."""

    topic: str
    partition: int
    offset: int


#: The namespace of :func:`event_id`'s UUIDs; fixed forever, or ids change meaning.
EVENT_ID_NAMESPACE = uuid.UUID("33bb9fc1-ccb2-4169-a96b-1b69cdd6ef37")


def event_id(position: InputPosition, model: ModelInfo) -> str:
    """The deterministic id of the entity event of the message at ``position`` by ``model``.

    UUID version 5 in :data:`EVENT_ID_NAMESPACE` of the compact JSON array
    ``[topic, partition, offset, model name, model version]`` (UTF-8, no spaces): reproducible
    in any language, and unambiguous whatever the names contain.
    """
    name = json.dumps(
        [position.topic, position.partition, position.offset, model.name, model.version],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, name))


@dataclass(frozen=True, kw_only=True)
class EntityEvent:
    """The entities found in one input record (schema ``entity_event.avsc``)."""

    record_id: str
    source: str = "other"
    entities: tuple[EntitySpan, ...] = ()
    model: ModelInfo
    input: InputPosition
    created_at: datetime
    processed_at: datetime
    #: :func:`event_id` of ``input`` and ``model``; empty in events written before it existed.
    event_id: str = ""


def _entity_event_to_datum(event: EntityEvent) -> dict[str, Any]:
    # Built by hand: dataclasses.asdict deep-copies every field, which made encoding an event
    # cost more than inferring its entities (the worker encodes one per record).
    return {
        "record_id": event.record_id,
        "source": event.source,
        "entities": [
            {"type": s.type, "text": s.text, "start": s.start, "end": s.end, "score": s.score}
            for s in event.entities
        ],
        "model": {"name": event.model.name, "version": event.model.version},
        "input": {
            "topic": event.input.topic,
            "partition": event.input.partition,
            "offset": event.input.offset,
        },
        "created_at": to_millis(event.created_at),
        "processed_at": to_millis(event.processed_at),
        "event_id": event.event_id,
    }


def _entity_event_from_datum(datum: dict[str, Any]) -> EntityEvent:
    return EntityEvent(
        record_id=datum["record_id"],
        source=datum["source"],
        entities=tuple(EntitySpan(**span) for span in datum["entities"]),
        model=ModelInfo(**datum["model"]),
        input=InputPosition(**datum["input"]),
        created_at=datum["created_at"],
        processed_at=datum["processed_at"],
        # Review tasks share the event's fields, all but this one.
        event_id=datum.get("event_id", ""),
    )


ENTITY_EVENT = _load_codec("entity_event.avsc", _entity_event_to_datum, _entity_event_from_datum)


# --- Dead letter ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    key: str
    value: bytes | None


@dataclass(frozen=True, kw_only=True)
class DeadLetter:
    """A message given up on, with its original bytes (schema ``dead_letter.avsc``)."""

    key: bytes | None = None
    value: bytes | None = None
    headers: tuple[Header, ...] = ()
    input: InputPosition
    error_code: str
    error_message: str = ""
    worker_id: str = ""
    failed_at: datetime


def _dead_letter_to_datum(letter: DeadLetter) -> dict[str, Any]:
    datum = dataclasses.asdict(letter)
    # Exception text may hold lone surrogates, which UTF-8 cannot encode; losing a character
    # beats losing the dead letter.
    datum["error_message"] = letter.error_message.encode("utf-8", "replace").decode("utf-8")
    datum["failed_at"] = to_millis(letter.failed_at)
    return datum


def _dead_letter_from_datum(datum: dict[str, Any]) -> DeadLetter:
    return DeadLetter(
        key=datum["key"],
        value=datum["value"],
        headers=tuple(Header(**header) for header in datum["headers"]),
        input=InputPosition(**datum["input"]),
        error_code=datum["error_code"],
        error_message=datum["error_message"],
        worker_id=datum["worker_id"],
        failed_at=datum["failed_at"],
    )


DEAD_LETTER = _load_codec("dead_letter.avsc", _dead_letter_to_datum, _dead_letter_from_datum)

# --- Review task ------------------------------------------------------------------------------

#: Why a record was routed to review (the ``ReviewReason`` enum of ``review_task.avsc``).
REVIEW_REASONS = ("LOW_ENTITY_SCORE", "LOW_SEQUENCE_CONFIDENCE", "RANDOM_SAMPLE", "OTHER")


@dataclass(frozen=True, kw_only=True)
class ReviewTask:
    """A record whose prediction a person should check (schema ``review_task.avsc``)."""

    record_id: str
    source: str = "other"
    text: str
    entities: tuple[EntitySpan, ...] = ()
    model: ModelInfo
    reason: str
    #: Product of the entity scores; 1 without entities.
    confidence: float = 1.0
    input: InputPosition
    created_at: datetime
    processed_at: datetime


def _review_task_to_datum(task: ReviewTask) -> dict[str, Any]:
    return {
        **_entity_event_to_datum(
            EntityEvent(
                record_id=task.record_id,
                source=task.source,
                entities=task.entities,
                model=task.model,
                input=task.input,
                created_at=task.created_at,
                processed_at=task.processed_at,
            )
        ),
        "text": task.text,
        "reason": task.reason,
        "confidence": task.confidence,
    }


def _review_task_from_datum(datum: dict[str, Any]) -> ReviewTask:
    event = _entity_event_from_datum(datum)
    return ReviewTask(
        record_id=event.record_id,
        source=event.source,
        text=datum["text"],
        entities=event.entities,
        model=event.model,
        reason=datum["reason"],
        confidence=datum["confidence"],
        input=event.input,
        created_at=event.created_at,
        processed_at=event.processed_at,
    )


REVIEW_TASK = _load_codec("review_task.avsc", _review_task_to_datum, _review_task_from_datum)

#: The Kafka header that names the Avro schema of an output value (entity event or dead
#: letter), so readers pick the right codec; its values are the schemas' full names.
SCHEMA_HEADER = "nerstream-schema"
ENTITY_EVENT_SCHEMA = ENTITY_EVENT.name.encode("ascii")
DEAD_LETTER_SCHEMA = DEAD_LETTER.name.encode("ascii")
REVIEW_TASK_SCHEMA = REVIEW_TASK.name.encode("ascii")


# --- JSON -------------------------------------------------------------------------------------


def to_json(value: InputRecord | EntityEvent | DeadLetter | ReviewTask) -> dict[str, Any]:
    """A JSON-ready dict of any of the four values, for humans and JSON producers.

    Field names follow the schemas; timestamps become ISO-8601 UTC strings with milliseconds,
    bytes become base64 strings. The JSON of an InputRecord is accepted by :func:`decode_record`.
    """
    return {name: _jsonable(item) for name, item in dataclasses.asdict(value).items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return iso_millis(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


# --- Decoding input messages ------------------------------------------------------------------


def content_type_from_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> str | None:
    """The value of the last ``content-type`` header (name matched case-insensitively)."""
    found = None
    for key, value in headers or ():
        if key.lower() == CONTENT_TYPE_HEADER and value is not None:
            found = value.decode("utf-8", "replace")
    return found


def record_format(content_type: str | None, default_format: str) -> str:
    """``"avro"`` or ``"json"``: the header's format when there is one, else the topic's."""
    if content_type is None or not content_type.strip():
        if default_format not in FORMATS:
            raise DecodeError(
                ErrorCode.UNKNOWN_FORMAT,
                f"configured format {default_format[:_MAX_QUOTED]!r} is not one of {FORMATS}",
            )
        return default_format
    media_type = content_type.split(";", 1)[0].strip().lower()
    try:
        return _FORMAT_OF_MEDIA_TYPE[media_type]
    except KeyError:
        raise DecodeError(
            ErrorCode.UNKNOWN_FORMAT,
            f"content-type {media_type[:_MAX_QUOTED]!r} is not one of "
            f"{sorted(_FORMAT_OF_MEDIA_TYPE)}",
        ) from None


def decode_record(
    value: bytes | None,
    content_type: str | None,
    default_format: str,
    max_text_chars: int,
    writer_schema: WriterSchemaLookup | None = None,
) -> InputRecord:
    """Decode and validate one input message value; raise DecodeError if it is unusable.

    ``content_type`` is the message's content-type header (None when absent); it wins over the
    topic's ``default_format``. The text must have a non-whitespace character and at most
    ``max_text_chars`` code points. With a ``writer_schema`` lookup (registry mode), an Avro
    value that starts with magic byte 0 is read in the Confluent wire format.
    """
    if not value:
        raise DecodeError(ErrorCode.EMPTY_VALUE, "the message has no value")
    if record_format(content_type, default_format) == "avro":
        if writer_schema is not None and is_framed(value):
            record = RECORD.decode_framed(value, writer_schema)
        else:
            record = RECORD.decode(value)
    else:
        record = _record_from_json(value)
    return validate_record(record, max_text_chars)


def validate_record(record: InputRecord, max_text_chars: int) -> InputRecord:
    """Check what the schema cannot: a usable id and a usable text of bounded length."""
    if not record.id.strip():
        raise DecodeError(ErrorCode.INVALID_FIELD, "id is empty")
    if not record.text.strip():
        raise DecodeError(ErrorCode.EMPTY_TEXT, "text is empty or only whitespace")
    if len(record.text) > max_text_chars:
        raise DecodeError(
            ErrorCode.TEXT_TOO_LONG,
            f"text has {len(record.text)} characters, more than the maximum {max_text_chars}",
        )
    return record


def _record_from_json(value: bytes) -> InputRecord:
    try:
        document = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(
            ErrorCode.INVALID_UTF8, f"JSON value is not UTF-8: {exc.reason} at byte {exc.start}"
        ) from exc
    try:
        obj = json.loads(document)
    except json.JSONDecodeError as exc:
        raise DecodeError(
            ErrorCode.DECODE_JSON, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except (ValueError, RecursionError) as exc:  # over-long integers, too deep nesting
        raise DecodeError(ErrorCode.DECODE_JSON, f"not usable JSON: {type(exc).__name__}") from exc
    if not isinstance(obj, dict):
        raise DecodeError(
            ErrorCode.SCHEMA_MISMATCH, f"JSON value is {type(obj).__name__}, not an object"
        )
    if obj.get("text") is None:
        raise DecodeError(ErrorCode.MISSING_TEXT, "JSON record has no text")
    source = _json_string(obj, "source", DEFAULT_SOURCE)
    if source not in SOURCES:
        raise DecodeError(
            ErrorCode.INVALID_FIELD, f"source {source[:_MAX_QUOTED]!r} is not one of {SOURCES}"
        )
    return InputRecord(
        id=_json_string(obj, "id"),
        source=source,
        text=_json_string(obj, "text"),
        created_at=_json_timestamp(obj.get("created_at")),
        metadata=_json_metadata(obj.get("metadata")),
    )


def _json_string(obj: dict[str, Any], name: str, default: str | None = None) -> str:
    value = obj.get(name)
    if value is None and default is not None:
        return default
    if value is None:
        raise DecodeError(ErrorCode.SCHEMA_MISMATCH, f"JSON record has no {name}")
    if not isinstance(value, str):
        raise DecodeError(
            ErrorCode.SCHEMA_MISMATCH, f"{name} is {type(value).__name__}, not a string"
        )
    _require_encodable(value, name)
    return value


def _require_encodable(value: str, name: str) -> None:
    # JSON escapes can spell lone surrogates ("\ud800"), which no UTF-8 output can carry.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DecodeError(
            ErrorCode.INVALID_UTF8, f"{name} holds a lone surrogate at character {exc.start}"
        ) from exc


def _json_timestamp(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise DecodeError(
                ErrorCode.INVALID_FIELD, "created_at is not an ISO-8601 date-time"
            ) from exc
        if moment.tzinfo is None:
            raise DecodeError(
                ErrorCode.INVALID_FIELD, "created_at has no UTC offset (add Z or +08:00)"
            )
        millis = to_millis(moment)
    elif isinstance(value, int) and not isinstance(value, bool):
        millis = value
    else:
        raise DecodeError(
            ErrorCode.SCHEMA_MISMATCH,
            f"created_at is {type(value).__name__}, not epoch milliseconds or an ISO-8601 string",
        )
    try:
        return from_millis(millis)
    except OverflowError as exc:
        raise DecodeError(ErrorCode.INVALID_FIELD, "created_at is outside years 1 to 9999") from exc


def _json_metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise DecodeError(ErrorCode.SCHEMA_MISMATCH, "metadata is not an object of strings")
    for key, item in value.items():
        _require_encodable(key, "a metadata key")
        _require_encodable(item, f"metadata value of {key[:_MAX_QUOTED]!r}")
    metadata: dict[str, str] = value
    return metadata
