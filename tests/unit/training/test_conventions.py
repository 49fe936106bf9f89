"""Consistently labelled names and the uncertain regions they mark in other corpora."""

from __future__ import annotations

import json
import random
from pathlib import Path

from models.tags import Span, label_set
from training.augment import mention_swaps
from training.config import TrainConfig
from training.conventions import consistent_names, mark_uncertain
from training.corpora import Example
from training.data import piece, prepare_data
from training.partial import allowed_tags


def _labelled(text: str, name: str, kind: str) -> Example:
    start = text.index(name)
    return Example(text, (Span(start, start + len(name), kind),))


def test_consistent_names_need_count_and_share() -> None:
    examples = (
        [_labelled(f"{i}中国和美国", "中国", "LOC") for i in range(9)]  # 美国 never labelled
        + [_labelled("访问美国", "美国", "LOC")] * 3
        + [Example("中国", ())]  # 9 of 10 labelled
        + [_labelled("新华社报道", "新华社", "ORG")] * 2  # too rare
        + [Example("中国银行", (Span(0, 4, "ORG"),))]  # inside a longer entity: not counted
    )
    names = consistent_names(examples, min_count=3, min_share=0.9)
    assert names.types == {"中国": "LOC"}  # 美国: 3 of 12


def test_a_name_labelled_as_two_types_takes_its_usual_type_if_it_has_one() -> None:
    examples = [_labelled("去北京", "北京", "LOC")] * 3 + [_labelled("北京赢", "北京", "ORG")] * 3
    assert consistent_names(examples, min_count=3).types == {}
    examples += [_labelled("在北京", "北京", "LOC")] * 27  # 30 LOC, 3 ORG
    assert consistent_names(examples, min_count=3).types == {"北京": "LOC"}


def test_unlabelled_occurrences_become_uncertain() -> None:
    names = consistent_names([_labelled("在中国", "中国", "LOC")] * 2, min_count=2)
    example = Example("中国队和中国银行在中国", (Span(4, 8, "ORG"),), blocked=(Span(9, 11, "dru"),))
    assert mark_uncertain(example, names).uncertain == (Span(0, 2, "LOC"),)
    plain = Example("没有名字", ())
    assert mark_uncertain(plain, names) is plain


def test_an_uncertain_name_allows_the_entity_or_nothing() -> None:
    labels = label_set(("LOC",), "BMES")
    example = Example("去中国", (), uncertain=(Span(1, 3, "LOC"),))
    allowed = allowed_tags(example, labels, "BMES")
    assert [sorted(labels[i] for i in row.nonzero()[0]) for row in allowed] == [
        ["O"],
        ["B-LOC", "O"],
        ["E-LOC", "O"],
    ]


def test_uncertain_names_follow_cuts_and_swaps() -> None:
    example = Example("张三去中国", (Span(0, 2, "PER"),), uncertain=(Span(3, 5, "LOC"),))
    assert piece(example, 2, 5).uncertain == (Span(1, 3, "LOC"),)
    assert piece(example, 0, 4).uncertain == ()  # the cut goes through it
    others = [Example("欧阳修", (Span(0, 3, "PER"),))]
    swapped = mention_swaps([example, *others], random.Random(1))
    moved = next(copy for copy in swapped if copy.text.endswith("去中国"))
    (region,) = moved.uncertain
    assert moved.text[region.start : region.end] == "中国"


def test_training_data_marks_names_the_source_corpus_labels(tmp_path: Path) -> None:
    def write(path: Path, rows: list[tuple[str, list[tuple[str, str]]]]) -> None:
        lines = []
        for text, entities in rows:
            spans = [
                {"type": kind, "start": text.index(name), "end": text.index(name) + len(name)}
                for name, kind in entities
            ]
            lines.append(json.dumps({"text": text, "entities": spans}, ensure_ascii=False))
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    consistent, loose = tmp_path / "consistent.jsonl", tmp_path / "loose.jsonl"
    write(consistent, [(f"第{i}次访问中国", [("中国", "LOC")]) for i in range(40)])
    write(loose, [(f"中国队第{i}次赢了北京队", [("北京队", "ORG")]) for i in range(40)])
    config = TrainConfig(
        train_data=(str(consistent), f"{loose}*2"),
        entity_types=("PER", "LOC", "ORG"),
        weak_num=False,
        uncertain_names_from=str(consistent),
        uncertain_names_in=(str(loose),),
    ).validate()
    data = prepare_data(config)
    marked = [example for example in data.train if example.uncertain]
    assert marked and all(example.text.startswith("中国队") for example in marked)
    assert all(example.uncertain == (Span(0, 2, "LOC"),) for example in marked)
    assert data.description["consistent_names"] == 1
    assert data.description["uncertain_names"] == len(marked)
    unmarked = prepare_data(TrainConfig(train_data=(str(loose),), weak_num=False).validate())
    assert not any(example.uncertain for example in unmarked.train)
