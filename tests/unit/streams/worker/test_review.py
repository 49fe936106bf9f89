"""Review routing rules, as a table of named scenarios, and the seeded sample."""

from __future__ import annotations

import pytest

from streams.worker.review import ReviewRules, review_reason, sampled, sequence_confidence

SCENARIOS = [
    # name, scores, rules, expected reason
    ("all rules off", [0.1], ReviewRules(), None),
    ("no entity, score rule on", [], ReviewRules(entity_score_below=0.9), None),
    ("one entity below the threshold", [0.99, 0.6], ReviewRules(0.7), "LOW_ENTITY_SCORE"),
    ("exactly at the threshold is not below", [0.7], ReviewRules(0.7), None),
    (
        "many middling entities: sequence rule only",
        [0.8, 0.8, 0.8],
        ReviewRules(entity_score_below=0.7, sequence_confidence_below=0.6),
        "LOW_SEQUENCE_CONFIDENCE",
    ),
    (
        "the entity rule wins over the sequence rule",
        [0.5],
        ReviewRules(entity_score_below=0.7, sequence_confidence_below=0.9),
        "LOW_ENTITY_SCORE",
    ),
    ("no entity is fully confident", [], ReviewRules(sequence_confidence_below=0.99), None),
    ("sample of everything", [0.99], ReviewRules(sample_rate=1.0), "RANDOM_SAMPLE"),
    (
        "confidence rules win over the sample",
        [0.2],
        ReviewRules(entity_score_below=0.5, sample_rate=1.0),
        "LOW_ENTITY_SCORE",
    ),
]


@pytest.mark.parametrize(
    ("scores", "rules", "expected"),
    [scenario[1:] for scenario in SCENARIOS],
    ids=[scenario[0] for scenario in SCENARIOS],
)
def test_review_reason(scores: list[float], rules: ReviewRules, expected: str | None) -> None:
    assert review_reason("r1", scores, rules) == expected


def test_rules_are_off_by_default() -> None:
    assert not ReviewRules().enabled
    assert ReviewRules(sample_rate=0.01).enabled


def test_sequence_confidence_is_the_product_of_the_scores() -> None:
    assert sequence_confidence([]) == 1.0
    assert sequence_confidence([0.5, 0.5]) == pytest.approx(0.25)


def test_the_sample_is_seeded_stable_and_about_its_rate() -> None:
    ids = [f"record-{number}" for number in range(4000)]
    picked = [record_id for record_id in ids if sampled(record_id, 0.1, seed=7)]
    assert 300 < len(picked) < 500
    # The same seed picks the same records (a redelivered record is picked again) ...
    assert picked == [record_id for record_id in ids if sampled(record_id, 0.1, seed=7)]
    # ... another seed another sample; rate 0 none, rate 1 all.
    assert picked != [record_id for record_id in ids if sampled(record_id, 0.1, seed=8)]
    assert not any(sampled(record_id, 0.0, 7) for record_id in ids)
    assert all(sampled(record_id, 1.0, 7) for record_id in ids)
