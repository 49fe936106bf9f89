"""The Confluent wire format: exact bytes, subject names, writer schemas, and framed input
records read with older, newer, unknown and incompatible writer schemas."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.codecs import RECORD, InputRecord, decode_record, load_schema, write_datum
from schemas.errors import DecodeError, ErrorCode
from schemas.framing import (
    Schema,
    WriterSchemaLookup,
    frame,
    is_framed,
    parse_writer_schema,
    subject_name,
    unframe,
)

V0 = Path(__file__).parents[2] / "data" / "avro" / "record_v0.avsc"
CREATED = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
RECORD_VALUE = InputRecord(id="r1", source="medical", text="张三", created_at=CREATED)


def lookup(schemas: dict[int, Schema]) -> WriterSchemaLookup:
    def writer_schema(schema_id: int) -> Schema:
        if schema_id not in schemas:
            raise DecodeError(ErrorCode.UNKNOWN_SCHEMA_ID, f"no schema id {schema_id}")
        return schemas[schema_id]

    return writer_schema


def decode(value: bytes, schemas: dict[int, Schema] | None = None) -> InputRecord:
    return decode_record(value, None, "avro", 100, None if schemas is None else lookup(schemas))


def test_frame_is_magic_byte_then_big_endian_id_then_body() -> None:
    assert frame(1, b"\x02ab") == b"\x00\x00\x00\x00\x01\x02ab"
    assert frame(0x01020304, b"") == b"\x00\x01\x02\x03\x04"
    assert unframe(frame(2**31 + 5, b"body")) == (2**31 + 5, b"body")
    assert is_framed(frame(7, b"")) and not is_framed(b"\x02ab") and not is_framed(b"")


@pytest.mark.parametrize("value", [b"\x00", b"\x00\x00\x00\x01", b"\x01\x00\x00\x00\x01"])
def test_a_cut_short_or_unframed_value_is_refused(value: bytes) -> None:
    with pytest.raises(DecodeError) as refused:
        unframe(value)
    assert refused.value.error_code == ErrorCode.DECODE_AVRO


@pytest.mark.parametrize(
    ("strategy", "subject"),
    [
        ("topic", "nerstream.entities-value"),
        ("record", "nerstream.v1.EntityEvent"),
        ("topic_record", "nerstream.entities-nerstream.v1.EntityEvent"),
    ],
)
def test_subject_names_follow_the_confluent_strategies(strategy: str, subject: str) -> None:
    assert subject_name(strategy, "nerstream.entities", "nerstream.v1.EntityEvent") == subject


def test_an_unknown_subject_strategy_is_a_bug() -> None:
    with pytest.raises(ValueError, match="unknown subject strategy"):
        subject_name("topic_name", "t", "r")


@pytest.mark.parametrize(
    ("text", "schema_type", "message"),
    [
        (RECORD.schema_text, "PROTOBUF", "PROTOBUF schema, not Avro"),
        ('"string"', "AVRO", "not an Avro record schema"),
        ("{not json", "AVRO", "not an Avro schema"),
        (
            '{"type": "record", "name": "R", "fields": [{"name": "x", "type": "Nope"}]}',
            "AVRO",
            "Nope",
        ),
    ],
)
def test_unusable_writer_schemas_are_incompatible(
    text: str, schema_type: str, message: str
) -> None:
    with pytest.raises(DecodeError, match=message) as refused:
        parse_writer_schema(9, text, schema_type)
    assert refused.value.error_code == ErrorCode.INCOMPATIBLE_SCHEMA


def test_registry_mode_reads_framed_records_of_the_current_schema() -> None:
    schemas = {3: parse_writer_schema(3, RECORD.schema_text)}
    assert decode(frame(3, RECORD.encode(RECORD_VALUE)), schemas) == RECORD_VALUE


def test_an_older_writer_schema_is_resolved_to_the_current_record() -> None:
    old = load_schema(V0)
    body = write_datum(old, {"id": "r0", "text": "李四", "created_at": 1_700_000_000_000})
    record = decode(frame(1, body), {1: old})
    assert (record.id, record.text, record.source, record.metadata) == ("r0", "李四", "other", {})


def test_a_newer_writer_schema_with_a_field_the_reader_lacks_is_read() -> None:
    raw = json.loads(RECORD.schema_text)
    raw["fields"].append({"name": "lang", "type": "string", "default": ""})
    newer = parse_writer_schema(2, json.dumps(raw))
    datum = {**RECORD.to_datum(RECORD_VALUE), "lang": "zh"}
    assert decode(frame(2, write_datum(newer, datum)), {2: newer}) == RECORD_VALUE


def test_an_incompatible_writer_schema_is_its_own_error() -> None:
    int_id = parse_writer_schema(
        4, '{"type": "record", "name": "Record", "fields": [{"name": "id", "type": "int"}]}'
    )
    with pytest.raises(DecodeError) as refused:
        decode(frame(4, write_datum(int_id, {"id": 5})), {4: int_id})
    assert refused.value.error_code == ErrorCode.INCOMPATIBLE_SCHEMA


def test_an_unknown_schema_id_is_its_own_error() -> None:
    with pytest.raises(DecodeError) as refused:
        decode(frame(99, RECORD.encode(RECORD_VALUE)), {})
    assert refused.value.error_code == ErrorCode.UNKNOWN_SCHEMA_ID


def test_plain_avro_is_still_read_in_registry_mode() -> None:
    assert decode(RECORD.encode(RECORD_VALUE), {}) == RECORD_VALUE


def test_without_a_registry_a_framed_value_is_not_a_record() -> None:
    # Byte 0 reads as an empty id; the rest does not make a Record.
    with pytest.raises(DecodeError) as refused:
        decode(frame(3, RECORD.encode(RECORD_VALUE)))
    assert refused.value.error_code != ErrorCode.UNKNOWN_SCHEMA_ID
