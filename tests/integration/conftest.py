"""Fixtures for the worker's integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.runtime import default_model_dir


@pytest.fixture(scope="session")
def serving_model_dir() -> Path:
    """The model workers serve: the default model shipped in the package."""
    shipped = default_model_dir()
    assert (shipped / "manifest.json").is_file(), f"the shipped model is missing from {shipped}"
    return shipped
