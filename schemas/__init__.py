"""The Avro contract of the stream: ``record.avsc`` in, ``entity_event.avsc`` and
``dead_letter.avsc`` out, and the codecs that turn their bytes into typed values."""

from schemas.codecs import (
    CONTENT_TYPE_HEADER,
    DEAD_LETTER,
    ENTITY_EVENT,
    FORMATS,
    RECORD,
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
    "ENTITY_EVENT",
    "FORMATS",
    "RECORD",
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
