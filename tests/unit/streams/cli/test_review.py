"""``nerstream review``'s Label Studio modes through the CLI, and its usage errors."""

from __future__ import annotations

import json
from pathlib import Path

from streams.cli import main
from training.corpora import read_jsonl


def test_label_studio_export_then_import_gives_corrections(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    task = {
        "record_id": "x1",
        "text": "张三在北京",
        "entities": [{"type": "LOC", "start": 3, "end": 5}],
    }
    tasks.write_text(json.dumps(task, ensure_ascii=False) + "\n", "utf-8")
    exported = tmp_path / "ls.json"
    state = ["--state-dir", str(tmp_path / "state")]
    assert (
        main(["review", *state, "--tasks", str(tasks), "--export-label-studio", str(exported)]) == 0
    )
    document = json.loads(exported.read_text("utf-8"))
    # An annotator in Label Studio adds the person and keeps the place.
    result = document[0]["predictions"][0]["result"]
    person = {**result[0], "value": {"start": 0, "end": 2, "text": "张三", "labels": ["PER"]}}
    document[0]["annotations"] = [{"completed_by": {"email": "a@x"}, "result": [person, *result]}]
    exported.write_text(json.dumps(document, ensure_ascii=False), "utf-8")
    corrections = tmp_path / "corrections.jsonl"
    other_state = ["--state-dir", str(tmp_path / "other")]
    args = [
        "review",
        *other_state,
        "--import-label-studio",
        str(exported),
        "--output",
        str(corrections),
    ]
    assert main(args) == 0
    [example] = read_jsonl(corrections)
    assert [(s.start, s.end, s.type) for s in example.spans] == [(0, 2, "PER"), (3, 5, "LOC")]


def test_no_tasks_and_bad_files_are_errors(tmp_path: Path) -> None:
    assert main(["review", "--state-dir", str(tmp_path / "empty")]) == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": 1}\n', "utf-8")
    assert main(["review", "--state-dir", str(tmp_path / "s"), "--tasks", str(bad)]) == 2
