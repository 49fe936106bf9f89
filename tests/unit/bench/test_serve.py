"""bench.serve's pure parts: the wrk script it writes and the summary it renders."""

from __future__ import annotations

import json
import re
from typing import Any

from bench.serve import markdown, wrk_script


def test_the_wrk_script_carries_every_body_as_ascii_json() -> None:
    texts = ["王小明在北京", 'quote " and ]] bracket', "emoji 🙂"]
    script = wrk_script(texts)
    assert script.isascii()
    bodies = re.findall(r"\[==\[(.*?)\]==\]", script)
    assert [json.loads(body) for body in bodies] == [{"texts": [text]} for text in texts]
    assert 'wrk.method = "POST"' in script
    assert "WRK_JSON" in script


def test_the_summary_shows_each_run_and_each_target() -> None:
    run = {
        "clients": 64,
        "texts_per_s": 700.0,
        "ratio_to_model_only": 0.7,
        "p50_ms": 20.0,
        "p90_ms": 30.0,
        "p99_ms": 45.0,
        "mean_texts_per_model_call": 40.0,
        "model_only_in_calls_of_that_size_texts_per_s": 800.0,
        "ratio_to_model_only_in_calls_of_that_size": 0.875,
        "errors": 0,
    }
    result: dict[str, Any] = {
        "measured_at": "2026-01-01T00:00:00+00:00",
        "command": "python -m bench.serve",
        "load_generator": "wrk 4.1.0",
        "texts": 10,
        "mean_text_chars": 50.0,
        "seconds_per_run": 10.0,
        "model": {"name": "m", "version": "1", "provider": "CPU", "threads": 1},
        "serve": {"batch_window_ms": 2.0, "max_batch": 256, "latency_target_ms": 50.0},
        "model_only_texts_per_s": 1000.0,
        "model_only_measurements_texts_per_s": [1000.0, 1000.0],
        "model_only_one_text_per_call_texts_per_s": 100.0,
        "http": [run],
        "targets": {"ratio_at_64_clients": {"target": ">= 0.6", "measured": 0.7, "met": True}},
        "machine": {
            "cpus": 2,
            "load_average_1_5_15_before": [1, 1, 1],
            "load_average_1_5_15_after": [1, 1, 1],
        },
    }
    text = markdown(result)
    assert "| 64 | 700.0 | 0.7 | 20.0 | 30.0 | 45.0 | 40.0 | 800.0 | 0.875 | 0 |" in text
    assert "| ratio_at_64_clients: >= 0.6 | 0.7 | yes |" in text
    assert "shared" in text
