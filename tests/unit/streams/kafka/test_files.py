"""Reading input files for ``nerstream produce``: formats, defaults, validation, line numbers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import fastavro
import pytest

from schemas.codecs import (
    RECORD,
    InputRecord,
)
from streams.kafka.admin import KafkaToolError
from streams.kafka.files import RowError, guess_file_format, read_input_file

WHEN = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)


def test_jsonl_rows_get_defaults_and_bad_rows_keep_their_line(tmp_path: Path) -> None:
    path = tmp_path / "news.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps(
                    {
                        "id": "a",
                        "source": "news",
                        "text": "北京",
                        "created_at": "2024-05-01T08:30:00Z",
                    }
                ),
                json.dumps({"text": "上海", "metadata": {"doc": "7"}}),
                "",
                "{not json",
                json.dumps({"id": "c", "text": "   "}),
                json.dumps({"text": "x" * 11}),
            ]
        ),
        encoding="utf-8",
    )
    items = list(read_input_file(path, "jsonl", max_text_chars=10))
    first, second, *errors = items
    assert isinstance(first, InputRecord) and first.created_at == WHEN and first.source == "news"
    assert isinstance(second, InputRecord)
    assert second.id == "news-2" and second.source == "other" and second.metadata == {"doc": "7"}
    assert [(e.line, e.error_code) for e in errors if isinstance(e, RowError)] == [
        (4, "DECODE_JSON"),
        (5, "EMPTY_TEXT"),
        (6, "TEXT_TOO_LONG"),
    ]


def test_csv_columns_beyond_the_record_fields_become_metadata(tmp_path: Path) -> None:
    path = tmp_path / "records.csv"
    path.write_text(
        'id,source,text,created_at,tenant\nm1,medical,"患者张三,男",2024-05-01T08:30:00Z,t9\n',
        encoding="utf-8",
    )
    (record,) = read_input_file(path, "csv", max_text_chars=100)
    assert record == InputRecord(
        id="m1", source="medical", text="患者张三,男", created_at=WHEN, metadata={"tenant": "t9"}
    )


def test_csv_without_a_text_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,body\n1,x\n", encoding="utf-8")
    with pytest.raises(KafkaToolError, match="'text' column"):
        list(read_input_file(path, "csv", max_text_chars=100))


def test_avro_container_files_are_read_and_validated(tmp_path: Path) -> None:
    path = tmp_path / "records.avro"
    datums = [
        RECORD.to_datum(InputRecord(id="a1", text="广州", created_at=WHEN)),
        RECORD.to_datum(InputRecord(id="a2", text="", created_at=WHEN)),
    ]
    with path.open("wb") as handle:
        fastavro.writer(handle, RECORD.schema, datums)
    good, bad = read_input_file(path, "avro", max_text_chars=100)
    assert isinstance(good, InputRecord) and good.text == "广州"
    assert isinstance(bad, RowError) and (bad.line, bad.error_code) == (2, "EMPTY_TEXT")


def test_file_format_from_extension() -> None:
    assert guess_file_format(Path("a.jsonl")) == "jsonl"
    assert guess_file_format(Path("a.CSV")) == "csv"
    assert guess_file_format(Path("a.avro")) == "avro"
    with pytest.raises(KafkaToolError, match="--format"):
        guess_file_format(Path("a.txt"))
