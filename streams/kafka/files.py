"""Input files for ``nerstream produce``: jsonl, csv or Avro container files of records.

Rows are validated exactly as the worker validates messages (:func:`schemas.codecs.decode_record`),
so a row the worker would dead-letter is refused here, with its line number, before it is sent.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

import fastavro

from errors import UsageError
from schemas.codecs import RECORD, InputRecord, decode_record, iso_millis, validate_record
from schemas.errors import DecodeError
from streams.kafka.admin import KafkaToolError

InputFileFormat = Literal["jsonl", "csv", "avro"]
INPUT_FILE_FORMATS: tuple[InputFileFormat, ...] = ("jsonl", "csv", "avro")
#: CSV columns that are record fields; every other column becomes a metadata entry.
RECORD_COLUMNS = ("id", "source", "text", "created_at")


class InputFileError(UsageError, KafkaToolError):
    """An input file that cannot be read as records at all (exit 2)."""


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
        raise InputFileError(
            f"cannot tell the format of {path.name}; pass --format jsonl, csv or avro"
        ) from None


def read_input_file(
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
            raise InputFileError(f"{path}: the CSV header must have a 'text' column")
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
            raise InputFileError(f"{path}: not an Avro file of Records ({exc})") from exc
        for number, datum in enumerate(reader, start=1):
            try:
                yield validate_record(
                    RECORD.from_datum(cast(dict[str, Any], datum)), max_text_chars
                )
            except DecodeError as exc:
                yield RowError(number, str(exc.error_code), exc.message)
