"""bench.predict_cost: the digest that must agree between checkouts, and the results table."""

from __future__ import annotations

import math
from collections.abc import Callable

from bench.predict_cost import digest, markdown
from models.runtime import Entity


def _tagger(score: float) -> Callable[[list[str]], list[list[Entity]]]:
    def predict(texts: list[str]) -> list[list[Entity]]:
        return [[Entity("LOC", 0, 2, text[:2], score)] if text else [] for text in texts]

    return predict


def test_the_digest_sees_the_last_bit_of_a_score_and_not_the_call_size() -> None:
    texts = ["北京欢迎你", "", "上海"]
    same = digest(_tagger(0.75), texts, 1)
    assert digest(_tagger(0.75), texts, 2) == same
    assert digest(_tagger(math.nextafter(0.75, 1.0)), texts, 1) != same


def test_markdown_shows_each_call_size_and_the_ratio() -> None:
    result = {
        "date": "2026-12-01",
        "arguments": "--baseline /tmp/old",
        "rounds": 3,
        "sizes": [1, 1024],
        "load_before": 1.0,
        "load_after": 2.0,
        "ms_per_text": {
            "baseline": {"1": 4.0, "1024": 0.4},
            "this checkout": {"1": 2.0, "1024": 0.4},
        },
    }
    table = markdown(result)
    assert "| 1 | 4.000 | 2.000 | 2.00 |" in table
    assert "| 1024 | 0.400 | 0.400 | 1.00 |" in table
