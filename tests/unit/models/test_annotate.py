"""``nerstream annotate``: text or JSON lines in, one JSON line with entities out; exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from models.annotate import InputError, Record, parse_line, read_lines
from streams.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from tests.conftest import TinyModel


def test_parse_line() -> None:
    assert parse_line("纯文本\n", "in.txt", 3) == Record("in.txt:3", "纯文本")
    assert parse_line('{"id": "a", "text": "文"}\r\n', "-", 1) == Record("a", "文")
    assert parse_line('{"text": "文"}', "-", 2) == Record("-:2", "文")
    for bad in ('{"text": 1}', "{broken", '{"id": 1}'):
        with pytest.raises(InputError, match="f:4:"):
            parse_line(bad, "f", 4)


def test_read_lines_numbers_lines_per_source() -> None:
    records = list(read_lines([("a", io.StringIO("x\ny\n")), ("b", io.StringIO("z\n"))]))
    assert [record.id for record in records] == ["a:1", "a:2", "b:1"]


@pytest.mark.training
def test_annotate_jsonl_file(tiny_model: TinyModel, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    texts = ["１９９７年３００多万人在北京参加了活动。", "", "新华社北京电"]
    source.write_text(
        "".join(
            json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(texts)
        ),
        encoding="utf-8",
    )
    target = tmp_path / "out.jsonl"
    argv = ["annotate", str(source), "--model", str(tiny_model.model_dir), "--output", str(target)]
    assert main(argv) == EXIT_OK
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == [0, 1, 2]
    assert [line["text"] for line in lines] == texts
    assert lines[1]["entities"] == []
    for line in lines:
        for entity in line["entities"]:
            assert line["text"][entity["start"] : entity["end"]] == entity["text"]
            assert set(entity) == {"type", "start", "end", "text", "score"}


@pytest.mark.training
def test_annotate_exit_codes(tiny_model: TinyModel, tmp_path: Path) -> None:
    model = ["--model", str(tiny_model.model_dir)]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "好"}\n{"text": \n', encoding="utf-8")
    assert main(["annotate", str(bad), *model, "--output", str(tmp_path / "o")]) == EXIT_FAILED
    assert main(["annotate", str(tmp_path / "absent"), *model]) == EXIT_FAILED
    assert main(["annotate", str(bad), "--model", str(tmp_path)]) == EXIT_FAILED
    with pytest.raises(SystemExit) as raised:
        main(["annotate", "--no-such-flag"])
    assert raised.value.code == EXIT_USAGE
