"""The Avro contract of the stream: ``record.avsc`` in, ``entity_event.avsc`` and
``dead_letter.avsc`` out, the codecs that turn their bytes into typed values, and the Confluent
wire format of registry mode (:mod:`schemas.framing`)."""

from schemas.codecs import (
    CONTENT_TYPE_HEADER,
    DEAD_LETTER,
    DEAD_LETTER_SCHEMA,
    ENTITY_EVENT,
    ENTITY_EVENT_SCHEMA,
    FORMATS,
    RECORD,
    SCHEMA_HEADER,
    SOURCES,
    AvroCodec,
    DeadLetter,
    EntityEvent,
    EntitySpan,
    Header,
    InputPosition,
    InputRecord,
    ModelInfo,
    content_type_from_headers,
    decode_record,
    load_schema,
    to_json,
)
from schemas.errors import DecodeError, ErrorCode

__all__ = [
    "CONTENT_TYPE_HEADER",
    "DEAD_LETTER",
    "DEAD_LETTER_SCHEMA",
    "ENTITY_EVENT",
    "ENTITY_EVENT_SCHEMA",
    "FORMATS",
    "RECORD",
    "SCHEMA_HEADER",
    "SOURCES",
    "AvroCodec",
    "DeadLetter",
    "DecodeError",
    "EntityEvent",
    "EntitySpan",
    "ErrorCode",
    "Header",
    "InputPosition",
    "InputRecord",
    "ModelInfo",
    "content_type_from_headers",
    "decode_record",
    "load_schema",
    "to_json",
]
