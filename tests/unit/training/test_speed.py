"""``python -m training.speed``: model directories timed in turns, each against the first."""

from __future__ import annotations

import pytest

from tests.conftest import TinyModel
from training.speed import main


@pytest.mark.training
def test_models_side_by_side(tiny_model: TinyModel, capsys: pytest.CaptureFixture[str]) -> None:
    directory = str(tiny_model.model_dir)
    assert main([directory, directory, "--sentences", "64"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if directory in line]
    assert len(lines) == 2
    assert lines[0].endswith("(1.00x the first)")
    assert all("sentences/s" in line and "per CPU-second" in line for line in lines)
