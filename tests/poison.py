"""Messages the worker must dead-letter, one kind per error code, shared by unit and
integration tests. Every value is built from the real codecs, then broken on purpose."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.codecs import RECORD, InputRecord
from schemas.errors import ErrorCode

JSON_HEADERS: tuple[tuple[str, bytes | None], ...] = (("content-type", b"application/json"),)
CREATED_AT = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Poison:
    """One bad message and the code its dead letter must carry."""

    name: str
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    error_code: str


def _avro(text: str, record_id: str = "poison") -> bytes:
    return RECORD.encode(InputRecord(id=record_id, text=text, created_at=CREATED_AT))


def _json(document: object) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


def poison_kinds(max_text_chars: int) -> list[Poison]:
    """One poison message per dead-letter code the decoder can produce."""
    good = {"id": "p", "text": "北京", "created_at": "2024-05-01T08:30:00Z"}
    return [
        Poison("null value", None, (), ErrorCode.EMPTY_VALUE),
        Poison("empty value", b"", (), ErrorCode.EMPTY_VALUE),
        Poison(
            "unknown content-type",
            _json(good),
            (("content-type", b"text/plain"),),
            ErrorCode.UNKNOWN_FORMAT,
        ),
        Poison("truncated avro", _avro("北京欢迎你")[:-3], (), ErrorCode.DECODE_AVRO),
        Poison("random bytes as avro", b"\xff\xfe\xfd\xfc\x00\x01", (), ErrorCode.DECODE_AVRO),
        Poison(
            "avro with garbage appended", _avro("北京") + b"\x00\x00", (), ErrorCode.SCHEMA_MISMATCH
        ),
        Poison(
            "invalid utf-8 avro",
            # id "p", source news, text of 2 bytes cut from a 3-byte character, created_at 0, {}
            b"\x02p\x00\x04\xe4\xb8\x00\x00",
            (),
            ErrorCode.DECODE_AVRO,
        ),
        Poison("not json", b"{this is not json", JSON_HEADERS, ErrorCode.DECODE_JSON),
        Poison(
            "invalid utf-8 json",
            b'{"id": "p", "text": "\xe4\xb8"}',
            JSON_HEADERS,
            ErrorCode.INVALID_UTF8,
        ),
        Poison(
            "lone surrogate json",
            b'{"id": "p", "text": "\\ud800", "created_at": 0}',
            JSON_HEADERS,
            ErrorCode.INVALID_UTF8,
        ),
        Poison("json array", _json([1, 2, 3]), JSON_HEADERS, ErrorCode.SCHEMA_MISMATCH),
        Poison(
            "json text not a string",
            _json({**good, "text": 42}),
            JSON_HEADERS,
            ErrorCode.SCHEMA_MISMATCH,
        ),
        Poison(
            "json missing text",
            _json({"id": "p", "created_at": 0}),
            JSON_HEADERS,
            ErrorCode.MISSING_TEXT,
        ),
        Poison(
            "json null text", _json({**good, "text": None}), JSON_HEADERS, ErrorCode.MISSING_TEXT
        ),
        Poison("empty text", _avro(""), (), ErrorCode.EMPTY_TEXT),
        Poison("whitespace text", _avro(" \u3000\n\t"), (), ErrorCode.EMPTY_TEXT),
        Poison("empty id", _avro("北京", record_id=""), (), ErrorCode.INVALID_FIELD),
        Poison(
            "bad created_at",
            _json({**good, "created_at": "yesterday"}),
            JSON_HEADERS,
            ErrorCode.INVALID_FIELD,
        ),
        Poison(
            "text over the limit", _avro("中" * (max_text_chars + 1)), (), ErrorCode.TEXT_TOO_LONG
        ),
    ]
