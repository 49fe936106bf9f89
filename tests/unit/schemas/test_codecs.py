"""The Avro contract: exact bytes, round trips, rejected inputs and schema evolution."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import pytest

from schemas import codecs
from schemas.codecs import (
    DEAD_LETTER,
    ENTITY_EVENT,
    EVENT_ID_NAMESPACE,
    RECORD,
    REVIEW_TASK,
    DeadLetter,
    EntityEvent,
    EntitySpan,
    Header,
    InputPosition,
    InputRecord,
    ModelInfo,
    ReviewTask,
    content_type_from_headers,
    decode_record,
    event_id,
    load_schema,
    parse_schema,
    read_datum,
    to_json,
    write_datum,
)
from schemas.errors import DecodeError, ErrorCode

SCHEMA_FILES = sorted(codecs.SCHEMA_DIR.glob("*.avsc"))
FIXTURES = Path(__file__).parents[2] / "data" / "avro"
MAX_CHARS = 1000
CREATED = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)  # 1_700_000_000_000 ms

RECORD_VALUE = InputRecord(
    id="r1", source="medical", text="张三", created_at=CREATED, metadata={"k": "v"}
)
EVENT = EntityEvent(
    record_id="r-😀",
    source="news",
    entities=(
        EntitySpan(type="PER", text="王小明", start=2, end=5, score=0.875),
        EntitySpan(type="LOC", text="北京", start=6, end=8, score=0.5),
    ),
    model=ModelInfo(name="bilstm-crf-msra", version="1.2.0"),
    input=InputPosition(topic="nerstream.records.news", partition=3, offset=2**40),
    created_at=CREATED,
    processed_at=CREATED + timedelta(milliseconds=37),
    event_id="dd98211c-71e8-5d79-8b21-1c52e2b9da70",
)
LETTER = DeadLetter(
    key=b"r1",
    value=b"\x00\xff garbage",
    headers=(Header("content-type", b"application/json"), Header("trace", None)),
    input=InputPosition(topic="nerstream.records.medical", partition=0, offset=7),
    error_code=ErrorCode.DECODE_JSON,
    error_message="not JSON: Expecting value at line 1 column 1",
    worker_id="nerstream-worker-0",
    failed_at=CREATED,
)


_ABSENT = object()


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def _record_json(**changes: Any) -> bytes:
    obj: dict[str, Any] = {"id": "r1", "text": "张三在北京", "created_at": 1_700_000_000_000}
    obj.update(changes)
    return _json({key: value for key, value in obj.items() if value is not _ABSENT})


# --- The .avsc files ----------------------------------------------------------------------------


def _fields(schema: Any) -> list[tuple[str, dict[str, Any]]]:
    """(record name, field) for every field of every record nested in a raw schema."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(schema, list):
        for branch in schema:
            found += _fields(branch)
    elif isinstance(schema, dict):
        if schema.get("type") == "record":
            for field in schema["fields"]:
                found.append((schema["name"], field))
                found += _fields(field["type"])
        for nested in ("items", "values"):
            found += _fields(schema.get(nested))
    return found


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda path: path.name)
def test_every_schema_parses_and_documents_every_field(path: Path) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    fastavro.parse_schema(raw)
    assert raw["namespace"] == "nerstream.v1"
    assert raw["doc"].strip()
    fields = _fields(raw)
    assert fields
    undocumented = [f"{record}.{field['name']}" for record, field in fields if not field.get("doc")]
    assert undocumented == []


def test_the_four_schemas_exist() -> None:
    assert [path.name for path in SCHEMA_FILES] == [
        "dead_letter.avsc",
        "entity_event.avsc",
        "record.avsc",
        "review_task.avsc",
    ]


def test_shared_named_types_are_identical_in_every_file() -> None:
    """Shared named types are written out in several files; they must not drift."""
    definitions: dict[str, list[str]] = {}

    def collect(schema: Any) -> None:
        if isinstance(schema, dict) and schema.get("type") in {"record", "enum"}:
            definitions.setdefault(schema["name"], []).append(json.dumps(schema, sort_keys=True))
            for field in schema.get("fields", []):
                collect(field["type"])
        elif isinstance(schema, dict):
            collect(schema.get("items"))
        elif isinstance(schema, list):
            for branch in schema:
                collect(branch)

    for path in SCHEMA_FILES:
        collect(json.loads(path.read_text(encoding="utf-8")))
    assert len(definitions["Source"]) == 3
    assert len(definitions["InputPosition"]) == 3
    assert len(definitions["EntitySpan"]) == 2
    assert len(definitions["ModelInfo"]) == 2
    for name, copies in definitions.items():
        assert len(set(copies)) == 1, f"{name} differs between schema files"


def test_every_error_code_is_documented_in_the_dead_letter_schema() -> None:
    raw = json.loads((codecs.SCHEMA_DIR / "dead_letter.avsc").read_text(encoding="utf-8"))
    doc = next(field["doc"] for field in raw["fields"] if field["name"] == "error_code")
    assert [code for code in ErrorCode if f"{code.value}:" not in doc] == []


# --- Exact bytes --------------------------------------------------------------------------------


def test_input_record_encodes_to_hand_computed_bytes() -> None:
    expected = bytes.fromhex(
        "04 7231"  # id: length 2 -> zigzag 4; "r1"
        "02"  # source: enum index 1 ("medical") -> zigzag 2
        "0c e5bca0 e4b889"  # text: 6 UTF-8 bytes -> zigzag 12; "张三"
        # created_at 1_700_000_000_000 -> zigzag 3_400_000_000_000 = 0x317_9FCA_D000,
        # 7-bit groups low first 00 20 2b 7e 79 62, continuation bit on all but the last:
        "80 a0 ab fe f9 62"
        "02 026b 0276 00"  # metadata: block of 1 pair; "k" -> "v"; end of blocks
    )
    assert RECORD.encode(RECORD_VALUE) == expected
    assert RECORD.decode(expected) == RECORD_VALUE


def test_negative_timestamp_and_empty_map_bytes() -> None:
    record = InputRecord(
        id="", source="news", text="a", created_at=datetime(1969, 12, 31, 23, 59, 59, 999_000, UTC)
    )
    # id "", source 0, text "a", created_at -1 -> zigzag 1, metadata: no blocks.
    assert RECORD.encode(record) == bytes.fromhex("00 00 0261 01 00")


# --- Round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "张三在北京工作。",
        "患者😀王某，男，45岁，于2023年3月入住北京协和医院 (PUMC) — dose 5mg/kg.",
        "第一条 " + "合同双方应当遵循公平原则确定各方的权利和义务。" * 40,
        "𠀀𠀁 emoji 👩‍⚕️ and café",
    ],
    ids=["chinese", "mixed-scripts-emoji", "long-legal", "astral-and-zwj"],
)
def test_input_record_round_trips_through_avro_and_json(text: str) -> None:
    record = InputRecord(id="r-7", source="medical", text=text, created_at=CREATED)
    assert record.metadata == {}
    assert decode_record(RECORD.encode(record), None, "avro", MAX_CHARS) == record
    json_bytes = _json(to_json(record))
    assert decode_record(json_bytes, "application/json", "avro", MAX_CHARS) == record


def test_entity_event_round_trips() -> None:
    assert ENTITY_EVENT.decode(ENTITY_EVENT.encode(EVENT)) == EVENT
    empty = EntityEvent(
        record_id="r2",
        model=ModelInfo(name="m"),
        input=InputPosition(topic="t", partition=0, offset=0),
        created_at=CREATED,
        processed_at=CREATED,
    )
    assert ENTITY_EVENT.decode(ENTITY_EVENT.encode(empty)) == empty


def test_entity_event_json_is_readable() -> None:
    assert to_json(EVENT) == {
        "record_id": "r-😀",
        "source": "news",
        "entities": [
            {"type": "PER", "text": "王小明", "start": 2, "end": 5, "score": 0.875},
            {"type": "LOC", "text": "北京", "start": 6, "end": 8, "score": 0.5},
        ],
        "model": {"name": "bilstm-crf-msra", "version": "1.2.0"},
        "input": {"topic": "nerstream.records.news", "partition": 3, "offset": 2**40},
        "created_at": "2023-11-14T22:13:20.000Z",
        "processed_at": "2023-11-14T22:13:20.037Z",
        "event_id": "dd98211c-71e8-5d79-8b21-1c52e2b9da70",
    }


def test_event_id_is_a_uuid5_of_input_position_and_model() -> None:
    # The documented derivation, spelled out: any language can reproduce it.
    name = '["nerstream.records.news",3,1099511627776,"bilstm-crf-msra","1.2.0"]'
    assert event_id(EVENT.input, EVENT.model) == str(uuid.uuid5(EVENT_ID_NAMESPACE, name))
    assert event_id(EVENT.input, EVENT.model) == EVENT.event_id
    # Each part counts; separators inside names cannot make two positions collide.
    position, model = EVENT.input, EVENT.model
    others = {
        event_id(dataclasses.replace(position, offset=position.offset + 1), model),
        event_id(dataclasses.replace(position, partition=2), model),
        event_id(dataclasses.replace(position, topic="nerstream.records.medical"), model),
        event_id(position, ModelInfo(name=model.name, version="1.2.1")),
        event_id(position, ModelInfo(name="a,b", version="c")),
        event_id(position, ModelInfo(name="a", version="b,c")),
    }
    assert len(others) == 6 and EVENT.event_id not in others


def test_old_entity_events_read_with_the_current_schema_have_no_event_id() -> None:
    old_schema = load_schema(FIXTURES / "entity_event_v1.avsc")
    datum = codecs._entity_event_to_datum(EVENT)
    del datum["event_id"]
    old_bytes = write_datum(old_schema, datum)
    old_event = ENTITY_EVENT.decode(old_bytes, writer_schema=old_schema)
    assert old_event == dataclasses.replace(EVENT, event_id="")
    # The field is last: the new bytes are the old ones plus the id.
    assert ENTITY_EVENT.encode(EVENT).startswith(old_bytes)


def test_dead_letter_round_trips() -> None:
    assert DEAD_LETTER.decode(DEAD_LETTER.encode(LETTER)) == LETTER
    bare = DeadLetter(
        input=InputPosition(topic="t", partition=1, offset=2),
        error_code=ErrorCode.EMPTY_VALUE,
        failed_at=CREATED,
    )
    assert DEAD_LETTER.decode(DEAD_LETTER.encode(bare)) == bare
    assert to_json(LETTER)["value"] == "AP8gZ2FyYmFnZQ=="


def test_dead_letter_survives_a_message_with_a_lone_surrogate() -> None:
    letter = DeadLetter(
        input=InputPosition(topic="t", partition=0, offset=0),
        error_code="X",
        error_message="bad \ud800 char",
        failed_at=CREATED,
    )
    assert DEAD_LETTER.decode(DEAD_LETTER.encode(letter)).error_message == "bad ? char"


def test_timestamps_are_truncated_to_milliseconds_and_must_be_aware() -> None:
    record = InputRecord(id="r", text="x", created_at=CREATED + timedelta(microseconds=1999))
    assert RECORD.decode(RECORD.encode(record)).created_at == CREATED + timedelta(milliseconds=1)
    with pytest.raises(ValueError, match="timezone-aware"):
        RECORD.encode(InputRecord(id="r", text="x", created_at=datetime(2024, 1, 1)))


# --- Format choice ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "default_format", "value"),
    [
        (None, "avro", RECORD.encode(RECORD_VALUE)),
        ("application/avro", "json", RECORD.encode(RECORD_VALUE)),
        ("avro/binary", "json", RECORD.encode(RECORD_VALUE)),
        (None, "json", _json(to_json(RECORD_VALUE))),
        ("", "json", _json(to_json(RECORD_VALUE))),
        ("Application/JSON; charset=utf-8", "avro", _json(to_json(RECORD_VALUE))),
    ],
)
def test_content_type_header_wins_over_the_topic_format(
    content_type: str | None, default_format: str, value: bytes
) -> None:
    assert decode_record(value, content_type, default_format, MAX_CHARS) == RECORD_VALUE


def test_content_type_is_read_from_kafka_headers() -> None:
    headers = [("trace", b"1"), ("Content-Type", b"application/json")]
    assert content_type_from_headers(headers) == "application/json"
    assert content_type_from_headers([("trace", None)]) is None
    assert content_type_from_headers(None) is None


def test_json_input_variants() -> None:
    iso = decode_record(
        _record_json(created_at="2023-11-15T06:13:20.000+08:00", source=None, metadata=None),
        None,
        "json",
        MAX_CHARS,
    )
    assert iso == InputRecord(id="r1", source="other", text="张三在北京", created_at=CREATED)
    extra = decode_record(_record_json(language="zh"), None, "json", MAX_CHARS)
    assert extra.created_at == CREATED
    escaped = decode_record(b'{"id":"r","text":"\\ud83d\\ude00","created_at":0}', None, "json", 5)
    assert escaped.text == "😀"


# --- Rejected inputs ----------------------------------------------------------------------------

_AVRO = RECORD.encode(RECORD_VALUE)
_BAD_SOURCE_AVRO = _AVRO[:3] + b"\x06" + _AVRO[4:]  # enum index 3: no such symbol

REJECTED: list[tuple[str, bytes | None, str | None, str, str]] = [
    ("null value", None, None, "avro", "EMPTY_VALUE"),
    ("empty value", b"", None, "json", "EMPTY_VALUE"),
    ("unknown content type", _AVRO, "text/plain", "avro", "UNKNOWN_FORMAT"),
    ("unknown configured format", _AVRO, None, "protobuf", "UNKNOWN_FORMAT"),
    ("truncated avro", _AVRO[:-3], None, "avro", "DECODE_AVRO"),
    ("avro cut inside text", _AVRO[:6], None, "avro", "DECODE_AVRO"),
    ("avro giant length", b"\xfe\xff\xff\xff\x0f" + _AVRO[1:], None, "avro", "DECODE_AVRO"),
    ("avro negative length", b"\x03" + _AVRO[1:], None, "avro", "DECODE_AVRO"),
    ("avro bad enum index", _BAD_SOURCE_AVRO, None, "avro", "DECODE_AVRO"),
    ("avro invalid utf-8", _AVRO[:5] + b"\xff" + _AVRO[6:], None, "avro", "DECODE_AVRO"),
    ("avro trailing garbage", _AVRO + b"\x00\x01", None, "avro", "SCHEMA_MISMATCH"),
    ("entity event as record", ENTITY_EVENT.encode(EVENT), None, "avro", "DECODE_AVRO"),
    ("dead letter as record", DEAD_LETTER.encode(LETTER), None, "avro", "DECODE_AVRO"),
    ("json sent as avro", _record_json(), None, "avro", "DECODE_AVRO"),
    ("avro sent as json", _AVRO, "application/json", "avro", "INVALID_UTF8"),
    ("invalid utf-8 json", b'{"id":"r","text":"\xe5\xbc"}', None, "json", "INVALID_UTF8"),
    (
        "lone surrogate",
        b'{"id":"r","text":"\\ud800x","created_at":0}',
        None,
        "json",
        "INVALID_UTF8",
    ),
    ("not json", b"{id: 1}", None, "json", "DECODE_JSON"),
    ("deeply nested json", b"[" * 100_000, None, "json", "DECODE_JSON"),
    ("json array", b"[1, 2]", None, "json", "SCHEMA_MISMATCH"),
    ("json string", b'"text"', None, "json", "SCHEMA_MISMATCH"),
    ("json missing text", _record_json(text=_ABSENT), None, "json", "MISSING_TEXT"),
    ("json text null", _record_json(text=None), None, "json", "MISSING_TEXT"),
    ("json text number", _record_json(text=42), None, "json", "SCHEMA_MISMATCH"),
    ("json missing id", _record_json(id=_ABSENT), None, "json", "SCHEMA_MISMATCH"),
    ("json empty id", _record_json(id=" "), None, "json", "INVALID_FIELD"),
    ("empty text", _record_json(text=""), None, "json", "EMPTY_TEXT"),
    ("whitespace text", _record_json(text=" \t\n\u3000"), None, "json", "EMPTY_TEXT"),
    ("over-limit text", _record_json(text="字" * 1001), None, "json", "TEXT_TOO_LONG"),
    ("bad source symbol", _record_json(source="sports"), None, "json", "INVALID_FIELD"),
    ("source wrong case", _record_json(source="News"), None, "json", "INVALID_FIELD"),
    ("metadata not strings", _record_json(metadata={"a": 1}), None, "json", "SCHEMA_MISMATCH"),
    ("created_at missing", _record_json(created_at=_ABSENT), None, "json", "SCHEMA_MISMATCH"),
    ("created_at float", _record_json(created_at=1.7e12), None, "json", "SCHEMA_MISMATCH"),
    ("created_at bool", _record_json(created_at=True), None, "json", "SCHEMA_MISMATCH"),
    ("created_at garbage", _record_json(created_at="yesterday"), None, "json", "INVALID_FIELD"),
    (
        "created_at naive",
        _record_json(created_at="2024-01-01T08:00"),
        None,
        "json",
        "INVALID_FIELD",
    ),
    ("created_at huge", _record_json(created_at=10**18), None, "json", "INVALID_FIELD"),
]


@pytest.mark.parametrize(
    ("value", "content_type", "default_format", "code"),
    [case[1:] for case in REJECTED],
    ids=[case[0] for case in REJECTED],
)
def test_rejected_inputs_raise_their_error_code(
    value: bytes | None, content_type: str | None, default_format: str, code: str
) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_record(value, content_type, default_format, MAX_CHARS)
    assert caught.value.error_code == ErrorCode(code)
    assert "张三" not in str(caught.value) and "字字" not in str(caught.value)


def test_text_limit_counts_code_points_not_bytes() -> None:
    emoji = InputRecord(id="r", text="😀" * 10, created_at=CREATED)
    assert decode_record(RECORD.encode(emoji), None, "avro", 10) == emoji
    with pytest.raises(DecodeError) as caught:
        decode_record(RECORD.encode(emoji), None, "avro", 9)
    assert caught.value.error_code == ErrorCode.TEXT_TOO_LONG


def test_library_errors_are_chained() -> None:
    with pytest.raises(DecodeError) as caught:
        decode_record(_AVRO[:-3], None, "avro", MAX_CHARS)
    assert isinstance(caught.value.__cause__, EOFError)


# --- Schema evolution ---------------------------------------------------------------------------


def test_old_records_read_with_the_current_schema_get_the_defaults() -> None:
    old_schema = load_schema(FIXTURES / "record_v0.avsc")
    old_bytes = write_datum(old_schema, {"id": "r0", "text": "李四", "created_at": 0})
    assert RECORD.decode(old_bytes, writer_schema=old_schema) == InputRecord(
        id="r0", source="other", text="李四", created_at=datetime(1970, 1, 1, tzinfo=UTC)
    )
    # Read without resolution, the old bytes are not a current record.
    with pytest.raises(DecodeError):
        RECORD.decode(old_bytes)


def test_a_newer_reader_fills_its_extra_field_with_the_default() -> None:
    raw = json.loads((codecs.SCHEMA_DIR / "record.avsc").read_text(encoding="utf-8"))
    raw["fields"].append(
        {"name": "language", "type": "string", "default": "zh", "doc": "ISO 639-1 code."}
    )
    newer = parse_schema(raw)
    datum = read_datum(RECORD.encode(RECORD_VALUE), RECORD.schema, newer)
    assert datum["language"] == "zh"
    assert datum["text"] == RECORD_VALUE.text


def test_a_new_source_symbol_reads_as_the_default() -> None:
    raw = json.loads((codecs.SCHEMA_DIR / "record.avsc").read_text(encoding="utf-8"))
    raw["fields"][1]["type"]["symbols"].append("legal")
    newer = parse_schema(raw)
    legal = write_datum(newer, {**RECORD.to_datum(RECORD_VALUE), "source": "legal"})
    assert RECORD.decode(legal, writer_schema=newer).source == "other"


def test_an_incompatible_writer_is_a_schema_mismatch() -> None:
    raw = json.loads((codecs.SCHEMA_DIR / "record.avsc").read_text(encoding="utf-8"))
    raw["fields"][2]["type"] = "int"  # text as an int: no promotion to string exists
    incompatible = parse_schema(raw)
    data = write_datum(incompatible, {**RECORD.to_datum(RECORD_VALUE), "text": 5})
    with pytest.raises(DecodeError) as caught:
        RECORD.decode(data, writer_schema=incompatible)
    assert caught.value.error_code == ErrorCode.SCHEMA_MISMATCH


# --- Review task --------------------------------------------------------------------------------

TASK = ReviewTask(
    record_id="r1",
    source="medical",
    text="患者王小明在北京",
    entities=(EntitySpan(type="PER", text="王小明", start=2, end=5, score=0.5),),
    model=ModelInfo(name="zh-cnn-crf", version="2.0.0"),
    reason="LOW_ENTITY_SCORE",
    confidence=0.5,
    input=InputPosition(topic="nerstream.records.medical", partition=1, offset=9),
    created_at=CREATED,
    processed_at=CREATED + timedelta(milliseconds=5),
)


def test_review_task_round_trips_and_is_json_ready() -> None:
    assert REVIEW_TASK.decode(REVIEW_TASK.encode(TASK)) == TASK
    assert to_json(TASK)["reason"] == "LOW_ENTITY_SCORE"
    assert to_json(TASK)["created_at"] == "2023-11-14T22:13:20.000Z"


def test_review_task_bytes_start_with_its_record_id_and_source() -> None:
    data = REVIEW_TASK.encode(TASK)
    # "r1": zig-zag length 2 -> 0x04, then the bytes; source "medical" is enum index 1 -> 0x02.
    assert data[:4] == b"\x04r1\x02"


def test_an_unknown_review_reason_is_rejected_on_encode() -> None:
    with pytest.raises(ValueError):
        REVIEW_TASK.encode(dataclasses.replace(TASK, reason="BORED"))


def test_a_new_review_reason_reads_as_other_and_an_old_writer_without_confidence_reads() -> None:
    raw = json.loads((codecs.SCHEMA_DIR / "review_task.avsc").read_text(encoding="utf-8"))
    reason = next(field for field in raw["fields"] if field["name"] == "reason")
    reason["type"]["symbols"].append("DISAGREES_WITH_RULES")
    raw["fields"] = [field for field in raw["fields"] if field["name"] != "confidence"]
    older_or_newer = parse_schema(raw)
    datum = {**REVIEW_TASK.to_datum(TASK), "reason": "DISAGREES_WITH_RULES"}
    del datum["confidence"]
    decoded = REVIEW_TASK.decode(write_datum(older_or_newer, datum), writer_schema=older_or_newer)
    assert (decoded.reason, decoded.confidence) == ("OTHER", 1.0)
    assert decoded.entities == TASK.entities


def test_every_codec_carries_its_schema_text_for_the_registry() -> None:
    for codec in (RECORD, ENTITY_EVENT, DEAD_LETTER, REVIEW_TASK):
        assert parse_schema(json.loads(codec.schema_text)) == codec.schema
