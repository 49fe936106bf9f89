"""Review items and their corrections. Pure: no files, no clocks, no web.

A :class:`ReviewItem` is one record to check: its text and the predicted spans. A reviewer's
decision is the corrected list of spans; :func:`corpus_line` turns it into one line of the JSONL
corpus format that ``training.corpora.read_jsonl`` reads (``{"text", "entities": [{"type",
"start", "end"}]}``, extra keys ignored there), so corrections train like any corpus file.
Offsets count Unicode code points, as everywhere in nerstream.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from errors import UsageError

#: The types a reviewer can assign, in the order of the page's number keys (1-4).
ENTITY_TYPES = ("PER", "LOC", "ORG", "NUM")


class ReviewInputError(UsageError, ValueError):
    """A task file, a Label Studio file or a submitted correction is malformed."""


@dataclass(frozen=True, order=True)
class ReviewSpan:
    start: int
    end: int
    type: str
    #: The model's score; None for a span a reviewer added or retyped.
    score: float | None = field(default=None, compare=False)

    def as_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"type": self.type, "start": self.start, "end": self.end}
        if self.score is not None:
            found["score"] = round(self.score, 4)
        return found


@dataclass(frozen=True)
class ReviewItem:
    """One record to review: what the model predicted, and where the record came from."""

    id: str
    text: str
    predicted: tuple[ReviewSpan, ...]
    source: str = "other"
    reason: str = ""
    model: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "entities": [span.as_json() for span in self.predicted],
            "source": self.source,
            "reason": self.reason,
            "model": self.model,
        }


def parse_spans(text: str, raw: object, where: str) -> tuple[ReviewSpan, ...]:
    """Spans from JSON (``[{"type", "start", "end", "score"?}]``), checked against ``text``:
    inside it, non-empty, of a known type, sorted and not overlapping."""
    if not isinstance(raw, list):
        raise ReviewInputError(f"{where}: entities must be a list")
    spans = []
    for entity in raw:
        if not isinstance(entity, Mapping):
            raise ReviewInputError(f"{where}: an entity must be an object")
        start, end, kind = entity.get("start"), entity.get("end"), entity.get("type")
        score = entity.get("score")
        if not (isinstance(start, int) and isinstance(end, int) and isinstance(kind, str)):
            raise ReviewInputError(f"{where}: an entity needs integer start, end and a type")
        if not 0 <= start < end <= len(text):
            raise ReviewInputError(f"{where}: entity [{start}, {end}) is outside the text")
        if kind not in ENTITY_TYPES:
            raise ReviewInputError(f"{where}: entity type {kind!r} is not one of {ENTITY_TYPES}")
        spans.append(ReviewSpan(start, end, kind, float(score) if score is not None else None))
    spans.sort()
    for before, after in itertools.pairwise(spans):
        if after.start < before.end:
            raise ReviewInputError(f"{where}: entities overlap")
    return tuple(spans)


def item_from_json(obj: object, where: str) -> ReviewItem:
    """A review item from a JSON object: a ``ReviewTask`` as ``nerstream consume --json``
    prints it, or a line of ``nerstream annotate``'s output (``id`` or ``record_id``, ``text``,
    ``entities``)."""
    if not isinstance(obj, Mapping) or not isinstance(obj.get("text"), str):
        raise ReviewInputError(f'{where}: expected an object with a string "text"')
    record_id = obj.get("record_id", obj.get("id"))
    if not isinstance(record_id, str) or not record_id:
        raise ReviewInputError(f"{where}: the task has no id (record_id or id)")
    model = obj.get("model")
    if isinstance(model, Mapping):
        model = f"{model.get('name', '')} {model.get('version', '')}".strip()
    return ReviewItem(
        id=record_id,
        text=obj["text"],
        predicted=parse_spans(obj["text"], obj.get("entities", []), where),
        source=str(obj.get("source") or "other"),
        reason=str(obj.get("reason") or ""),
        model=str(model or ""),
    )


def corpus_line(item: ReviewItem, spans: Iterable[ReviewSpan], reviewer: str) -> dict[str, Any]:
    """The corrected record as a line of the JSONL corpus format (plus provenance keys)."""
    return {
        "id": item.id,
        "text": item.text,
        "entities": [
            {"type": span.type, "start": span.start, "end": span.end} for span in sorted(spans)
        ],
        "source": item.source,
        "model": item.model,
        "reviewer": reviewer,
    }
