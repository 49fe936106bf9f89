"""Review routing: which records a person should check, and why. Pure.

A record is routed to review (as a ``ReviewTask``, besides its entity event) by the first rule
that selects it, in this order:

1. ``LOW_ENTITY_SCORE``: an entity's score is below ``entity_score_below``;
2. ``LOW_SEQUENCE_CONFIDENCE``: the sequence confidence (the product of the entity scores: the
   chance that every mention is right if each were independent) is below
   ``sequence_confidence_below``; many middling entities select a record that no single one does;
3. ``RANDOM_SAMPLE``: a seeded hash of the record id falls below ``sample_rate``, so the sample
   is unbiased by the model's own confidence, and a record delivered twice is picked both times
   or neither.

A threshold or rate of 0 turns its rule off; all three are off by default. Does not belong here:
encoding, topics, Kafka (``streams.worker.pipeline`` builds the task from the decision).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ReviewRules:
    #: Route a record when one of its entities scores below this (0: off).
    entity_score_below: float = 0.0
    #: Route a record whose sequence confidence is below this (0: off).
    sequence_confidence_below: float = 0.0
    #: Fraction of records routed at random (0: off).
    sample_rate: float = 0.0
    #: Seed of the random sample: another seed picks another sample.
    sample_seed: int = 0

    @property
    def enabled(self) -> bool:
        return bool(self.entity_score_below or self.sequence_confidence_below or self.sample_rate)


def sequence_confidence(scores: Iterable[float]) -> float:
    """Product of the entity scores; 1.0 for a record without entities."""
    return math.prod(scores)


def sampled(record_id: str, rate: float, seed: int) -> bool:
    """Whether the seeded sample of ``rate`` holds ``record_id`` (stable across processes)."""
    if rate <= 0:
        return False
    digest = hashlib.blake2b(f"{seed}:{record_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate


def review_reason(record_id: str, scores: Iterable[float], rules: ReviewRules) -> str | None:
    """The first rule that routes the record to review, or None when none does."""
    scores = list(scores)
    if rules.entity_score_below and any(score < rules.entity_score_below for score in scores):
        return "LOW_ENTITY_SCORE"
    if (
        rules.sequence_confidence_below
        and sequence_confidence(scores) < rules.sequence_confidence_below
    ):
        return "LOW_SEQUENCE_CONFIDENCE"
    if sampled(record_id, rules.sample_rate, rules.sample_seed):
        return "RANDOM_SAMPLE"
    return None
