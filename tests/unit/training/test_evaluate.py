"""Strict entity-level scores (conlleval semantics) and the ``nerstream evaluate`` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.tags import Span, tags_to_spans
from streams.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from tests.conftest import TinyModel
from training.corpora import Example
from training.evaluate import error_records
from training.metrics import EntityError, Errors, score_spans, sentence_errors


def test_perfect_prediction() -> None:
    gold = [[Span(0, 2, "PER"), Span(5, 7, "LOC")], []]
    report = score_spans(gold, gold)
    assert (report.micro.precision, report.micro.recall, report.micro.f1) == (100, 100, 100)
    assert report.per_type["PER"].support == 1


def test_boundary_and_type_errors_count_twice() -> None:
    gold = [[Span(0, 2, "PER"), Span(5, 7, "LOC"), Span(8, 9, "ORG")]]
    predicted = [[Span(0, 3, "PER"), Span(5, 7, "ORG"), Span(8, 9, "ORG")]]
    report = score_spans(gold, predicted)
    assert report.micro.correct == 1
    assert report.micro.precision == pytest.approx(100 / 3)
    assert report.micro.recall == pytest.approx(100 / 3)
    assert report.per_type["PER"].f1 == 0.0
    assert report.per_type["ORG"].precision == 50.0
    assert report.per_type["ORG"].recall == 100.0
    assert report.per_type["ORG"].f1 == pytest.approx(200 / 3)
    assert report.per_type["LOC"].as_dict()["support"] == 1


def test_errors_by_kind() -> None:
    gold = [
        [Span(0, 2, "PER"), Span(5, 7, "LOC"), Span(8, 9, "ORG"), Span(10, 12, "PER")],
        [Span(0, 4, "ORG")],
    ]
    predicted = [
        [Span(0, 3, "PER"), Span(5, 7, "ORG"), Span(8, 9, "ORG"), Span(14, 16, "LOC")],
        [Span(0, 2, "LOC"), Span(2, 4, "LOC"), Span(6, 7, "NUM")],
    ]
    report = score_spans(gold, predicted, ["PER", "LOC", "ORG"])
    # 0-2 PER and 0-4 ORG: boundary; 5-7: type; 10-12: missed; 14-16 LOC: spurious (the NUM is
    # not scored).
    assert report.errors == Errors(missed=1, boundary=2, type=1, spurious=1)
    assert report.as_dict()["errors"] == {"missed": 1, "boundary": 2, "type": 1, "spurious": 1}
    assert "1 missed, 2 boundary, 1 type; spurious predictions: 1" in report.table()
    everything = score_spans(gold, predicted)
    assert everything.errors.spurious == 2


def test_each_error_with_its_gold_entity_and_the_predictions_over_it() -> None:
    gold = {Span(0, 4, "ORG"), Span(5, 7, "LOC"), Span(8, 9, "ORG"), Span(10, 12, "PER")}
    predicted = {Span(0, 2, "LOC"), Span(2, 4, "LOC"), Span(5, 7, "ORG"), Span(8, 9, "ORG")}
    predicted |= {Span(14, 16, "LOC")}
    assert sentence_errors(gold, predicted) == [
        EntityError("boundary", Span(0, 4, "ORG"), (Span(0, 2, "LOC"), Span(2, 4, "LOC"))),
        EntityError("type", Span(5, 7, "LOC"), (Span(5, 7, "ORG"),)),
        EntityError("missed", Span(10, 12, "PER"), ()),
        EntityError("spurious", None, (Span(14, 16, "LOC"),)),
    ]


def test_error_records_name_the_text_and_score_only_the_given_types() -> None:
    examples = [
        Example("张三在北京", (Span(0, 2, "PER"), Span(3, 5, "LOC"))),
        Example("新华社", (Span(0, 3, "ORG"),)),
    ]
    predicted = [[Span(0, 2, "PER"), Span(3, 4, "LOC")], [Span(0, 2, "ORG"), Span(2, 3, "NUM")]]
    records = list(error_records(examples, predicted, ["PER", "LOC", "ORG"]))
    assert records == [
        {
            "sentence": 0,
            "kind": "boundary",
            "gold": {"type": "LOC", "start": 3, "end": 5, "text": "北京"},
            "predicted": [{"type": "LOC", "start": 3, "end": 4, "text": "北"}],
            "text": "张三在北京",
        },
        {
            "sentence": 1,
            "kind": "boundary",
            "gold": {"type": "ORG", "start": 0, "end": 3, "text": "新华社"},
            "predicted": [{"type": "ORG", "start": 0, "end": 2, "text": "新华"}],
            "text": "新华社",
        },
    ]
    report = score_spans([list(e.spans) for e in examples], predicted, ["PER", "LOC", "ORG"])
    assert sum(report.errors.as_dict().values()) == len(records)


def test_nothing_predicted_scores_zero_not_an_error() -> None:
    report = score_spans([[Span(0, 1, "PER")]], [[]])
    assert report.micro.as_dict() == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 1,
        "predicted": 0,
    }


def test_types_filter_ignores_other_types_on_both_sides() -> None:
    gold = [[Span(0, 2, "PER"), Span(3, 4, "NUM")]]
    predicted = [[Span(0, 2, "PER"), Span(5, 6, "NUM")]]
    report = score_spans(gold, predicted, ["PER", "LOC"])
    assert list(report.per_type) == ["PER", "LOC"]
    assert report.micro.f1 == 100.0
    assert report.per_type["LOC"].support == 0


def test_conlleval_example_through_tags() -> None:
    # conlleval reads the stray I-LOC as an entity of its own and the B-PER I-ORG as two.
    gold = tags_to_spans(["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "B-ORG"], "BIO")
    predicted = tags_to_spans(["B-PER", "I-ORG", "O", "O", "I-LOC", "O", "B-ORG"], "BIO")
    report = score_spans([gold], [predicted])
    assert report.micro.correct == 1  # only the ORG
    assert report.micro.predicted == 4
    assert report.micro.support == 3
    assert "micro" in report.table()


def test_sentence_counts_must_match() -> None:
    with pytest.raises(ValueError, match="sentences"):
        score_spans([[]], [])


@pytest.mark.training
def test_evaluate_command(
    tiny_model: TinyModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "gold.txt"
    data.write_text(
        "张 B-PER\n三 E-PER\n在 O\n北 B-LOC\n京 E-LOC\n\n新 B-ORG\n华 M-ORG\n社 E-ORG\n"
    )
    out = tmp_path / "scores.json"
    listed = tmp_path / "errors.jsonl"
    argv = ["evaluate", "--model", str(tiny_model.model_dir), "--data", str(data), "--json"]
    assert main([*argv, str(out), "--types", "PER,LOC,ORG", "--errors", str(listed)]) == EXIT_OK
    scores = json.loads(out.read_text())
    records = [json.loads(line) for line in listed.read_text(encoding="utf-8").splitlines()]
    assert len(records) == sum(scores["errors"].values())
    for record in records:
        assert record["kind"] in scores["errors"]
        assert record["text"] in ("张三在北京", "新华社")
    assert set(scores["micro"]) >= {"precision", "recall", "f1"}
    assert set(scores["per_type"]) == {"PER", "LOC", "ORG"}
    assert scores["per_type"]["LOC"]["support"] == 1
    errors = scores["errors"]
    found = scores["micro"]["support"] - errors["missed"] - errors["boundary"] - errors["type"]
    assert found == round(scores["micro"]["recall"] * scores["micro"]["support"] / 100)
    printed = capsys.readouterr().out
    assert "micro" in printed
    assert "gold entities not found:" in printed
    # Without --types: the model's types that the data annotates (no NUM here), fp32 model.
    assert main([*argv, str(out), "--precision", "fp32"]) == EXIT_OK
    assert set(json.loads(out.read_text())["per_type"]) == {"PER", "LOC", "ORG"}


@pytest.mark.training
def test_evaluate_command_errors(tiny_model: TinyModel, tmp_path: Path) -> None:
    model = ["--model", str(tiny_model.model_dir)]
    assert main(["evaluate", *model, "--data", str(tmp_path / "absent.txt")]) == EXIT_FAILED
    bad = tmp_path / "bad.txt"
    bad.write_text("张 B-PER\n三\n")
    assert main(["evaluate", *model, "--data", str(bad)]) == EXIT_FAILED
    with pytest.raises(SystemExit) as raised:
        main(["evaluate", *model, "--data", str(bad), "--format", "xml"])
    assert raised.value.code == EXIT_USAGE
    errors = ["--errors", str(tmp_path / "errors.jsonl")]
    assert main(["evaluate", *model, "--report", *errors]) == EXIT_USAGE
    compare = ["--compare", str(tiny_model.model_dir), str(tiny_model.model_dir)]
    assert main(["evaluate", "--data", str(bad), *compare, *errors]) == EXIT_USAGE
