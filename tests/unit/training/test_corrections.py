"""Corrections from ``nerstream review`` back into training: ``nerstream train --corrections``
makes a new model version, and ``nerstream evaluate --compare`` scores old and new side by side,
on the corrected records too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from streams.cli import main
from tests.conftest import TinyModel
from training.config import TrainConfig, with_corrections

pytestmark = [pytest.mark.training, pytest.mark.slow]

#: A company no MSRA sentence names, in the corpus lines `nerstream review` writes.
CORRECTED = [
    ("喵喵科技公司发布了新产品。", [("ORG", 0, 6)]),
    ("记者从喵喵科技公司获悉，张伟将出任总经理。", [("ORG", 3, 9), ("PER", 12, 14)]),
    ("喵喵科技公司在上海设立了研发中心。", [("ORG", 0, 6), ("LOC", 7, 9)]),
    ("王芳加入了喵喵科技公司。", [("PER", 0, 2), ("ORG", 5, 11)]),
]


def write_corrections(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as file:
        for number, (text, spans) in enumerate(CORRECTED):
            entities = [{"type": kind, "start": start, "end": end} for kind, start, end in spans]
            line = {"id": f"r{number}", "text": text, "entities": entities, "reviewer": "alice"}
            file.write(json.dumps(line, ensure_ascii=False) + "\n")
    return path


def test_with_corrections_names_a_new_version_by_the_files(tmp_path: Path) -> None:
    corrections = write_corrections(tmp_path / "c.jsonl")
    base = TrainConfig(version="1.0.0")
    first = with_corrections(base, [f"{corrections}*5"])
    assert first.corrections == (f"{corrections}*5",)
    assert first.version.startswith("1.0.0+corrections.")
    assert with_corrections(base, [f"{corrections}*5"]).version == first.version
    assert with_corrections(base, [str(corrections)]).version != first.version
    assert with_corrections(base, [str(corrections)], version="1.1.0").version == "1.1.0"
    assert with_corrections(base, []).version == "1.0.0"


def test_train_with_corrections_then_compare(
    tiny_model: TinyModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corrections = write_corrections(tmp_path / "corrections.jsonl")
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--config",
                "training/configs/tiny.json",
                "--set",
                "max_sentences=300",
                "--set",
                "entity_types=PER,LOC,ORG,NUM",
                "--corrections",
                f"{corrections}*40",
                "--output",
                str(run),
            ]
        )
        == 0
    )
    manifest = json.loads((run / "model" / "manifest.json").read_text("utf-8"))
    assert manifest["version"].startswith("0.0.1+corrections.")
    assert manifest["training"]["corrections"] == [f"{corrections}*40"]
    assert manifest["data"]["train_sentences_by_source"][str(corrections)] == len(CORRECTED)

    capsys.readouterr()
    scores = tmp_path / "compare.json"
    compare = ["--compare", str(tiny_model.model_dir), str(run / "model")]
    args = ["evaluate", *compare, "--corrections", str(corrections), "--json", str(scores)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "OLD = tiny 0.0.1" in printed
    assert f"NEW = tiny {manifest['version']}" in printed
    assert f"{corrections}: {len(CORRECTED)} sentences" in printed
    document = json.loads(scores.read_text("utf-8"))
    on_corrections = document["sets"][str(corrections)]
    assert set(on_corrections["old"]["per_type"]) >= {"PER", "LOC", "ORG"}
    # Trained on them (weight 40), the new model gets the corrected records more right.
    assert on_corrections["new"]["micro"]["f1"] > on_corrections["old"]["micro"]["f1"]
