"""label_coverage: occurrences of a word inside and outside a corpus's spans."""

from __future__ import annotations

from models.tags import Span
from training.corpora import Example
from training.coverage import Coverage, label_coverage


def test_counts_labelled_and_unlabelled_bare_occurrences() -> None:
    examples = [
        Example("中国队在北京", (Span(4, 6, "LOC"),)),  # 中国 unlabelled, 北京 labelled
        Example("中国人民银行", (Span(0, 6, "ORG"),)),  # part of a longer entity: not bare
        Example("他说中国", (Span(2, 4, "LOC"),)),
    ]
    assert label_coverage(examples, ["中国", "北京", "上海"]) == {
        "中国": Coverage(1, 2),
        "北京": Coverage(1, 1),
        "上海": Coverage(0, 0),
    }


def test_a_span_that_covers_part_of_the_word_makes_it_neither() -> None:
    examples = [Example("中国", (Span(0, 1, "LOC"),)), Example("哈哈哈", ())]
    assert label_coverage(examples, ["中国", "哈哈"]) == {
        "中国": Coverage(0, 0),
        "哈哈": Coverage(0, 2),  # overlapping occurrences count
    }
