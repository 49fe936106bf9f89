"""Fixtures for the worker's integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.runtime import default_model_dir
from tests.unit.conftest import tiny_model  # noqa: F401  (the ML tests' session fixture, reused)


@pytest.fixture(scope="session")
def serving_model_dir(request: pytest.FixtureRequest) -> Path:
    """The model workers serve: the shipped default model, else the tests' tiny model."""
    shipped = default_model_dir()
    if (shipped / "manifest.json").is_file():
        return shipped
    model_dir: Path = request.getfixturevalue("tiny_model").model_dir
    return model_dir


def serves_shipped_model(model_dir: Path) -> bool:
    return model_dir == default_model_dir()
