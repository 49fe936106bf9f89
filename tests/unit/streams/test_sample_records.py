"""streams/data/sample_records.jsonl: the quick-start sample records follow the input contract."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from schemas.codecs import RECORD, decode_record

SAMPLES = Path(__file__).parents[3] / "streams" / "data" / "sample_records.jsonl"


def test_samples_decode_as_json_and_avro_records() -> None:
    lines = SAMPLES.read_bytes().splitlines()
    records = [decode_record(line, "application/json", "avro", 100_000) for line in lines]
    assert len(records) == 40
    assert len({record.id for record in records}) == len(records)
    assert Counter(record.source for record in records) == {"news": 20, "medical": 20}
    for line, record in zip(lines, records, strict=True):
        raw = json.loads(line)
        assert isinstance(raw["created_at"], int)  # epoch millis
        assert record.metadata["sample"] == "true"
        assert RECORD.decode(RECORD.encode(record)) == record
    assert sum(len(record.text) > 600 for record in records) >= 3
    assert any(ord(char) > 0xFFFF for record in records for char in record.text)  # emoji
    assert any(char.isascii() and char.isalpha() for record in records for char in record.text)
