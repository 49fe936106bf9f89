"""``nerstream autoscale``'s command line (the loop itself: tests/integration)."""

from __future__ import annotations

import json

import pytest

from errors import EXIT_OK, EXIT_USAGE
from streams.cli import main


def test_simulate_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["autoscale", "simulate"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "| trace | policy | max lag (s) |" in out
    assert "lagThreshold 30000" in out


def test_simulate_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["autoscale", "simulate", "--output", "json"]) == EXIT_OK
    rows = json.loads(capsys.readouterr().out)
    assert {row["policy"] for row in rows} == {"nerstream (drain target)", "KEDA Kafka scaler"}


def test_invalid_settings_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["autoscale", "--dry-run", "--drain-target", "0"]) == EXIT_USAGE
    assert "drain_target_s" in capsys.readouterr().err
