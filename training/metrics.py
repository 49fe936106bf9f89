"""Strict entity-level precision, recall and F1 (conlleval semantics), per type and micro.

An entity counts as correct only if its type, start and end all match a gold entity. Scores are
percentages; a score with nothing to divide by is 0 (as conlleval prints it).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from models.tags import Span


@dataclass(frozen=True)
class Score:
    correct: int
    predicted: int
    support: int  # gold entities

    @property
    def precision(self) -> float:
        return 100.0 * self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return 100.0 * self.correct / self.support if self.support else 0.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "support": self.support,
            "predicted": self.predicted,
        }


@dataclass(frozen=True)
class Errors:
    """What went wrong, entity by entity. A gold entity not predicted exactly is *missed* (no
    prediction overlaps it), a *boundary* error (predictions overlap it, none with its start and
    end) or a *type* error (one has its start and end, with another type); a prediction that
    overlaps no gold entity is *spurious*."""

    missed: int = 0
    boundary: int = 0
    type: int = 0
    spurious: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Report:
    micro: Score
    per_type: dict[str, Score]
    errors: Errors = Errors()

    def as_dict(self) -> dict[str, object]:
        return {
            "micro": self.micro.as_dict(),
            "per_type": {name: score.as_dict() for name, score in self.per_type.items()},
            "errors": self.errors.as_dict(),
        }

    def table(self) -> str:
        rows = [f"{'type':<8}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
        for name, score in [*self.per_type.items(), ("micro", self.micro)]:
            rows.append(
                f"{name:<8}{score.precision:>10.2f}{score.recall:>10.2f}"
                f"{score.f1:>10.2f}{score.support:>10}"
            )
        errors = self.errors
        rows.append(
            f"gold entities not found: {errors.missed} missed, {errors.boundary} boundary, "
            f"{errors.type} type; spurious predictions: {errors.spurious}"
        )
        return "\n".join(rows)


def _overlap(span: Span, others: Iterable[Span]) -> list[Span]:
    return [other for other in others if other.start < span.end and span.start < other.end]


@dataclass(frozen=True)
class EntityError:
    """One error of :class:`Errors`: its kind, the gold entity (None when spurious) and the
    predictions overlapping it (when spurious: the prediction itself)."""

    kind: str  # missed, boundary, type or spurious
    gold: Span | None
    predicted: tuple[Span, ...]


def sentence_errors(gold: set[Span], predicted: set[Span]) -> list[EntityError]:
    """The errors of one sentence: gold entities in text order, then spurious predictions."""
    errors = []
    for span in sorted(gold - predicted):
        overlapping = tuple(sorted(_overlap(span, predicted)))
        if not overlapping:
            kind = "missed"
        elif any((other.start, other.end) == (span.start, span.end) for other in overlapping):
            kind = "type"
        else:
            kind = "boundary"
        errors.append(EntityError(kind, span, overlapping))
    errors += (
        EntityError("spurious", None, (span,))
        for span in sorted(predicted - gold)
        if not _overlap(span, gold)
    )
    return errors


def score_spans(
    gold: Sequence[Iterable[Span]],
    predicted: Sequence[Iterable[Span]],
    entity_types: Sequence[str] | None = None,
) -> Report:
    """Compare gold and predicted entities sentence by sentence.

    Only ``entity_types`` are scored when given (others are ignored on both sides); otherwise
    every type seen in either, sorted.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    correct: Counter[str] = Counter()
    predicted_count: Counter[str] = Counter()
    gold_count: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    scored = set(entity_types) if entity_types is not None else None
    for gold_spans, predicted_spans in zip(gold, predicted, strict=True):
        gold_set = {span for span in gold_spans if scored is None or span.type in scored}
        predicted_set = {span for span in predicted_spans if scored is None or span.type in scored}
        gold_count.update(span.type for span in gold_set)
        predicted_count.update(span.type for span in predicted_set)
        correct.update(span.type for span in gold_set & predicted_set)
        errors.update(error.kind for error in sentence_errors(gold_set, predicted_set))
    names = list(entity_types) if entity_types is not None else sorted(gold_count | predicted_count)
    per_type = {
        name: Score(correct[name], predicted_count[name], gold_count[name]) for name in names
    }
    micro = Score(
        sum(score.correct for score in per_type.values()),
        sum(score.predicted for score in per_type.values()),
        sum(score.support for score in per_type.values()),
    )
    return Report(micro, per_type, Errors(**errors))
