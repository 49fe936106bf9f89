"""The review state on disk: the tasks, every decision as it is made, and the corrections file.

A state directory holds ``tasks.jsonl`` (every task taken in, in order) and ``decisions.jsonl``
(an append-only log: one line per edit, ``draft``, or per finished task, ``done``, flushed and
fsynced before the request is answered). Replaying the log rebuilds the state, so a browser
reload or a server restart loses nothing. The corrections, one corpus line per finished task
(its last ``done`` decision), are rewritten atomically after every ``done``.

Does not belong here: the HTTP layer (:mod:`.web`) and where tasks come from (:mod:`.sources`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from errors import PermanentError
from streams.review.leases import Leases
from streams.review.tasks import ReviewItem, ReviewSpan, corpus_line, item_from_json, parse_spans

TASKS_FILE = "tasks.jsonl"
DECISIONS_FILE = "decisions.jsonl"
CORRECTIONS_FILE = "corrections.jsonl"


class LeaseConflictError(PermanentError):
    """Another reviewer holds the task (HTTP 409)."""


class UnknownTaskError(PermanentError):
    """No task has this id (HTTP 404)."""


@dataclass(frozen=True)
class Decision:
    task_id: str
    kind: str  # "draft" or "done"
    spans: tuple[ReviewSpan, ...]
    reviewer: str
    at: float


@dataclass(frozen=True)
class Assignment:
    """What a reviewer works on: the task and its current spans (draft, done, or predicted)."""

    item: ReviewItem
    spans: tuple[ReviewSpan, ...]
    done: bool

    def as_json(self) -> dict[str, Any]:
        return {
            **self.item.as_json(),
            "entities": [span.as_json() for span in self.spans],
            "predicted": [span.as_json() for span in self.item.predicted],
            "done": self.done,
        }


def _append_line(path: Path, obj: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write(json.dumps(obj, ensure_ascii=False) + "\n")
        file.flush()
        os.fsync(file.fileno())


def _read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            found.append(json.loads(line))
        except json.JSONDecodeError:
            # Only the last line can be torn (a crash mid-append): that decision was never
            # acknowledged, so dropping it loses nothing a reviewer was told was saved.
            if number != len(lines):
                raise PermanentError(f"{path}:{number}: not JSON") from None
    return found


class ReviewStore:
    """Tasks, decisions and leases of one state directory."""

    def __init__(
        self,
        directory: Path,
        lease_s: float,
        corrections_path: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.corrections_path = corrections_path or directory / CORRECTIONS_FILE
        self.leases = Leases(lease_s)
        self._clock = clock
        self._items: dict[str, ReviewItem] = {}
        #: The latest decision per task.
        self._latest: dict[str, Decision] = {}
        self._skipped: dict[str, set[str]] = {}
        for number, obj in enumerate(_read_lines(directory / TASKS_FILE), 1):
            item = item_from_json(obj, f"{directory / TASKS_FILE}:{number}")
            self._items.setdefault(item.id, item)
        for obj in _read_lines(directory / DECISIONS_FILE):
            item = self._items[obj["task"]]
            self._latest[item.id] = Decision(
                item.id,
                obj["kind"],
                parse_spans(item.text, obj["entities"], DECISIONS_FILE),
                obj["reviewer"],
                obj["at"],
            )

    # --- tasks ----------------------------------------------------------------------------------

    def add(self, items: Iterable[ReviewItem]) -> int:
        """Take in new tasks (an id seen before is ignored: at-least-once delivery repeats some);
        return how many were new."""
        added = 0
        for item in items:
            if item.id in self._items:
                continue
            _append_line(self.directory / TASKS_FILE, item.as_json())
            self._items[item.id] = item
            added += 1
        return added

    def item(self, task_id: str) -> ReviewItem:
        try:
            return self._items[task_id]
        except KeyError:
            raise UnknownTaskError(f"no task {task_id!r}") from None

    def items(self) -> list[ReviewItem]:
        return list(self._items.values())

    def decision(self, task_id: str) -> Decision | None:
        return self._latest.get(task_id)

    def progress(self) -> dict[str, int]:
        done = sum(1 for decision in self._latest.values() if decision.kind == "done")
        return {"done": done, "total": len(self._items)}

    # --- assignments ----------------------------------------------------------------------------

    def _assignment(self, item: ReviewItem) -> Assignment:
        decision = self._latest.get(item.id)
        if decision is None:
            return Assignment(item, item.predicted, False)
        return Assignment(item, decision.spans, decision.kind == "done")

    def next_task(self, reviewer: str) -> Assignment | None:
        """The task ``reviewer`` holds, else the first open task nobody holds (now leased to
        them); None when every open task is held by others or done."""
        now = self._clock()
        for task_id in self.leases.held_by(reviewer, now):
            if not self._is_done(task_id):
                self.leases.acquire(task_id, reviewer, now)
                return self._assignment(self._items[task_id])
        skipped = self._skipped.get(reviewer, set())
        for fresh_only in (True, False):
            for item in self._items.values():
                if self._is_done(item.id) or (fresh_only and item.id in skipped):
                    continue
                if self.leases.acquire(item.id, reviewer, now):
                    return self._assignment(item)
        return None

    def open_task(self, task_id: str, reviewer: str) -> Assignment:
        """Lease a given task (e.g. to change a finished one); raise LeaseConflictError when
        someone else holds it."""
        item = self.item(task_id)
        if not self.leases.acquire(task_id, reviewer, self._clock()):
            raise LeaseConflictError(f"task {task_id!r} is being reviewed by someone else")
        return self._assignment(item)

    def skip(self, task_id: str, reviewer: str) -> None:
        self.item(task_id)
        self.leases.release(task_id, reviewer)
        self._skipped.setdefault(reviewer, set()).add(task_id)

    def _is_done(self, task_id: str) -> bool:
        decision = self._latest.get(task_id)
        return decision is not None and decision.kind == "done"

    # --- decisions ------------------------------------------------------------------------------

    def record(self, task_id: str, reviewer: str, entities: object, kind: str) -> Decision:
        """Persist a draft (an edit) or the finished correction of a task the reviewer holds."""
        item = self.item(task_id)
        spans = parse_spans(item.text, entities, f"task {task_id}")
        now = self._clock()
        if not self.leases.acquire(task_id, reviewer, now):
            raise LeaseConflictError(f"task {task_id!r} is being reviewed by someone else")
        decision = Decision(task_id, kind, spans, reviewer, time.time())
        _append_line(
            self.directory / DECISIONS_FILE,
            {
                "task": task_id,
                "kind": kind,
                "entities": [span.as_json() for span in spans],
                "reviewer": reviewer,
                "at": decision.at,
            },
        )
        self._latest[task_id] = decision
        if kind == "done":
            self.leases.release(task_id, reviewer)
            self.write_corrections()
        return decision

    def write_corrections(self) -> Path:
        """Rewrite the corrections file (atomically): one corpus line per finished task."""
        lines = [
            json.dumps(
                corpus_line(self._items[task_id], decision.spans, decision.reviewer),
                ensure_ascii=False,
            )
            for task_id, decision in self._latest.items()
            if decision.kind == "done"
        ]
        path = self.corrections_path
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        partial.replace(path)
        return path
