"""Review items, corrections as corpus lines, and leases."""

from __future__ import annotations

import pytest

from streams.review.leases import Leases
from streams.review.tasks import (
    ReviewInputError,
    ReviewItem,
    ReviewSpan,
    corpus_line,
    item_from_json,
    parse_spans,
)

TEXT = "张三在北京"


def test_items_come_from_review_tasks_and_annotate_lines() -> None:
    task = item_from_json(
        {
            "record_id": "r1",
            "text": TEXT,
            "entities": [{"type": "LOC", "start": 3, "end": 5, "score": 0.4, "text": "北京"}],
            "model": {"name": "m", "version": "2"},
            "reason": "LOW_ENTITY_SCORE",
            "source": "news",
        },
        "x",
    )
    assert task == ReviewItem(
        "r1", TEXT, (ReviewSpan(3, 5, "LOC", 0.4),), "news", "LOW_ENTITY_SCORE", "m 2"
    )
    annotated = item_from_json({"id": "a", "text": TEXT, "entities": []}, "x")
    assert (annotated.id, annotated.predicted, annotated.source) == ("a", (), "other")


@pytest.mark.parametrize(
    "entities",
    [
        "nope",
        [{"type": "PER", "start": 0}],
        [{"type": "PER", "start": 0, "end": 9}],
        [{"type": "PER", "start": 2, "end": 2}],
        [{"type": "DRUG", "start": 0, "end": 2}],
        [{"type": "PER", "start": 0, "end": 3}, {"type": "LOC", "start": 2, "end": 5}],
    ],
    ids=["not a list", "no end", "outside", "empty", "unknown type", "overlap"],
)
def test_bad_spans_are_refused(entities: object) -> None:
    with pytest.raises(ReviewInputError):
        parse_spans(TEXT, entities, "x")


def test_spans_are_sorted_and_code_point_offsets() -> None:
    spans = parse_spans(
        "😀张三", [{"type": "PER", "start": 1, "end": 3}, {"type": "NUM", "start": 0, "end": 1}], ""
    )
    assert [span.start for span in spans] == [0, 1]


def test_corpus_line_is_the_training_jsonl_format() -> None:
    item = ReviewItem("r1", TEXT, (ReviewSpan(3, 5, "LOC", 0.4),), "news", "", "m 2")
    line = corpus_line(item, [ReviewSpan(3, 5, "ORG"), ReviewSpan(0, 2, "PER")], "alice")
    assert line == {
        "id": "r1",
        "text": TEXT,
        "entities": [
            {"type": "PER", "start": 0, "end": 2},
            {"type": "ORG", "start": 3, "end": 5},
        ],
        "source": "news",
        "model": "m 2",
        "reviewer": "alice",
    }


def test_a_lease_keeps_others_out_until_it_runs_out_or_is_released() -> None:
    leases = Leases(lease_s=10)
    assert leases.acquire("t1", "alice", now=0)
    assert not leases.acquire("t1", "bob", now=5)
    assert leases.acquire("t1", "alice", now=8)  # renewed: runs to 18
    assert not leases.acquire("t1", "bob", now=15)
    assert leases.held_by("alice", now=15) == ["t1"]
    assert leases.acquire("t1", "bob", now=18)  # ran out
    leases.release("t1", "alice")  # not alice's any more: no effect
    assert leases.holder("t1", now=19) == "bob"
    leases.release("t1", "bob")
    assert leases.holder("t1", now=19) is None
