"""Encoding records for ``nerstream produce``: what the worker decodes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.codecs import RECORD, InputRecord, decode_record
from schemas.framing import frame
from streams.kafka.produce import encode_record

WHEN = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize("value_format", ["avro", "json"])
def test_encoded_records_decode_as_the_worker_decodes_them(value_format: str) -> None:
    record = InputRecord(id="r", source="news", text="北京🙂", created_at=WHEN, metadata={"k": "v"})
    value, headers = encode_record(record, value_format)  # type: ignore[arg-type]
    content_type = headers[0][1].decode() if headers else None
    assert decode_record(value, content_type, "avro", 100) == record


def test_in_registry_mode_records_are_framed_with_their_schema_id() -> None:
    record = InputRecord(id="r", source="news", text="北京", created_at=WHEN)
    value, headers = encode_record(record, "avro", schema_id=42)
    assert value[:5] == frame(42, b"") and headers == []
    assert decode_record(value, None, "avro", 100, lambda _: RECORD.schema) == record
