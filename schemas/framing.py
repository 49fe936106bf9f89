"""The Confluent wire format: magic byte 0, a 4-byte big-endian schema id, then the Avro body.

Pure functions only: framing and unframing bytes, subject names, and reading a registry's
writer schema. Fetching schemas and registering them is I/O and lives in ``streams.registry``.

Detection: in registry mode a value that starts with byte 0 is framed. A plain Avro ``Record``
never starts with 0 when it is valid (its first field, the id, is a non-empty string whose
length is written first), so plain and framed inputs can share a topic. A plain Avro
``DeadLetter`` *can* start with 0 (a null key), which is why outputs are framed or not by
configuration, never by guessing.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import Any

import fastavro
from fastavro.schema import SchemaParseException

from schemas.errors import DecodeError, ErrorCode

MAGIC_BYTE = 0
_HEADER = struct.Struct(">bI")
#: Bytes before the Avro body: the magic byte and the schema id.
HEADER_SIZE = _HEADER.size

#: How a subject is named (the Confluent serializers' ``subject.name.strategy``):
#: ``topic``: ``<topic>-value``; ``record``: the record's full name;
#: ``topic_record``: ``<topic>-<full name>``.
SUBJECT_STRATEGIES = ("topic", "record", "topic_record")

#: The compatibility levels a registry knows (Confluent's names).
COMPATIBILITY_LEVELS = (
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
    "NONE",
)

#: A schema parsed by fastavro (a dict, with named types resolved).
Schema = dict[str, Any]

#: A writer schema by id: returns the parsed schema, raises DecodeError (UNKNOWN_SCHEMA_ID or
#: INCOMPATIBLE_SCHEMA) when the id can never be read, or a TemporaryError when the registry
#: cannot be asked right now.
WriterSchemaLookup = Callable[[int], Schema]


def frame(schema_id: int, body: bytes) -> bytes:
    """``body`` (schemaless Avro) in the Confluent wire format under ``schema_id``."""
    return _HEADER.pack(MAGIC_BYTE, schema_id) + body


def is_framed(value: bytes) -> bool:
    """Whether ``value`` starts with the magic byte (see the module doc for when that holds)."""
    return value[:1] == b"\x00"


def unframe(value: bytes) -> tuple[int, bytes]:
    """The schema id and Avro body of a framed value; DecodeError if it is too short."""
    if len(value) < HEADER_SIZE or not is_framed(value):
        raise DecodeError(
            ErrorCode.DECODE_AVRO,
            f"not in the schema-registry wire format: {len(value)} bytes, "
            f"needs magic byte 0 and a 4-byte schema id",
        )
    _, schema_id = _HEADER.unpack_from(value)
    return schema_id, value[HEADER_SIZE:]


def subject_name(strategy: str, topic: str, record_name: str) -> str:
    """The subject a value schema is registered under (see :data:`SUBJECT_STRATEGIES`)."""
    if strategy == "topic":
        return f"{topic}-value"
    if strategy == "record":
        return record_name
    if strategy == "topic_record":
        return f"{topic}-{record_name}"
    raise ValueError(f"unknown subject strategy {strategy!r}; one of {SUBJECT_STRATEGIES}")


def full_name(schema: Schema) -> str:
    """A parsed schema's full name, e.g. ``nerstream.v1.EntityEvent`` (fastavro keeps it so)."""
    return str(schema["name"])


def parse_writer_schema(schema_id: int, schema_text: str, schema_type: str = "AVRO") -> Schema:
    """A writer schema as the registry returned it, parsed; INCOMPATIBLE_SCHEMA if unusable.

    A registry also holds JSON Schema and Protobuf schemas, and Avro schemas that are not
    records: none of them can be read as a ``Record``.
    """
    if schema_type.upper() != "AVRO":
        raise DecodeError(
            ErrorCode.INCOMPATIBLE_SCHEMA,
            f"schema id {schema_id} is a {schema_type} schema, not Avro",
        )
    try:
        parsed = fastavro.parse_schema(json.loads(schema_text))
    except (ValueError, TypeError, KeyError, SchemaParseException) as exc:
        raise DecodeError(
            ErrorCode.INCOMPATIBLE_SCHEMA,
            f"schema id {schema_id} is not an Avro schema: {str(exc)[:200]}",
        ) from exc
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise DecodeError(
            ErrorCode.INCOMPATIBLE_SCHEMA, f"schema id {schema_id} is not an Avro record schema"
        )
    return parsed
