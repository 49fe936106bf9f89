"""The review store: decisions persisted as made, replayed after a restart, leases honoured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.review.store import (
    DECISIONS_FILE,
    LeaseConflictError,
    ReviewStore,
    UnknownTaskError,
)
from streams.review.tasks import ReviewItem, ReviewSpan


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


ITEMS = [
    ReviewItem("a", "张三在北京", (ReviewSpan(0, 2, "PER", 0.9), ReviewSpan(3, 5, "LOC", 0.3))),
    ReviewItem("b", "李四", (ReviewSpan(0, 2, "PER", 0.5),)),
]


def store(path: Path, clock: Clock | None = None) -> ReviewStore:
    return ReviewStore(path, lease_s=60, clock=clock or Clock())


def test_two_reviewers_never_get_the_same_task(tmp_path: Path) -> None:
    clock = Clock()
    reviews = store(tmp_path, clock)
    assert reviews.add(ITEMS) == 2
    assert reviews.add(ITEMS[:1]) == 0  # a repeated task is ignored
    alice = reviews.next_task("alice")
    bob = reviews.next_task("bob")
    assert alice is not None and bob is not None
    assert (alice.item.id, bob.item.id) == ("a", "b")
    assert reviews.next_task("carol") is None
    assert reviews.next_task("alice") == alice  # a reload: the same task
    with pytest.raises(LeaseConflictError):
        reviews.record("a", "bob", [], "draft")
    clock.now = 61  # alice went away
    carol = reviews.next_task("carol")
    assert carol is not None and carol.item.id == "a"


def test_decisions_survive_a_restart_and_make_the_corrections(tmp_path: Path) -> None:
    reviews = store(tmp_path)
    reviews.add(ITEMS)
    assert reviews.next_task("alice") is not None
    reviews.record("a", "alice", [{"type": "PER", "start": 0, "end": 2}], "draft")
    restarted = store(tmp_path)
    draft = restarted.next_task("bob")
    assert draft is not None and draft.item.id == "a"
    assert draft.spans == (ReviewSpan(0, 2, "PER"),)
    assert not draft.done
    restarted.record(
        "a",
        "bob",
        [{"type": "PER", "start": 0, "end": 2}, {"type": "ORG", "start": 3, "end": 5}],
        "done",
    )
    assert restarted.progress() == {"done": 1, "total": 2}
    lines = (tmp_path / "corrections.jsonl").read_text("utf-8").splitlines()
    assert [json.loads(line)["entities"] for line in lines] == [
        [{"type": "PER", "start": 0, "end": 2}, {"type": "ORG", "start": 3, "end": 5}]
    ]
    again = store(tmp_path)
    assert again.progress() == {"done": 1, "total": 2}
    following = again.next_task("carol")
    assert following is not None and following.item.id == "b"


def test_a_torn_last_line_is_dropped_but_a_torn_middle_is_an_error(tmp_path: Path) -> None:
    reviews = store(tmp_path)
    reviews.add(ITEMS)
    reviews.next_task("alice")
    reviews.record("a", "alice", [], "done")
    log = tmp_path / DECISIONS_FILE
    with log.open("a", encoding="utf-8") as file:
        file.write('{"task": "b", "ki')
    assert store(tmp_path).progress() == {"done": 1, "total": 2}
    with log.open("a", encoding="utf-8") as file:
        file.write("\n" + log.read_text("utf-8").splitlines()[0] + "\n")
    with pytest.raises(Exception, match="not JSON"):
        store(tmp_path)


def test_skip_and_unknown_tasks(tmp_path: Path) -> None:
    reviews = store(tmp_path)
    reviews.add(ITEMS)
    first = reviews.next_task("alice")
    assert first is not None
    reviews.skip(first.item.id, "alice")
    following = reviews.next_task("alice")
    assert following is not None and following.item.id == "b"
    with pytest.raises(UnknownTaskError):
        reviews.open_task("zzz", "alice")
