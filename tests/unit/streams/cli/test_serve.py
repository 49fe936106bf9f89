"""``nerstream serve`` refuses a bad start with exit 2 and a clear message, before serving."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.cli import EXIT_USAGE, main


def test_a_missing_token_file_is_refused_before_the_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "token"
    code = main(["serve", "--auth-token-file", str(missing)])
    assert code == EXIT_USAGE
    assert f"cannot read {missing}" in capsys.readouterr().err


def test_an_unusable_model_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["serve", "--model-dir", str(tmp_path)])
    assert code == EXIT_USAGE
    assert "cannot load the model" in capsys.readouterr().err
