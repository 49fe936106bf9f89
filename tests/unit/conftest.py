"""A tiny NER model, trained once per session (seconds) and exported, for the model tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class TinyModel:
    run_dir: Path
    checkpoint: Path
    model_dir: Path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    pytest.importorskip("torch")
    from training.export import export_model
    from training.train import TrainConfig, train

    run_dir = tmp_path_factory.mktemp("tiny-run")
    config = TrainConfig(
        name="tiny",
        version="0.0.1",
        max_sentences=800,
        entity_types=("PER", "LOC", "ORG", "NUM"),
        weak_num=True,
        char_dim=16,
        bigram_dim=8,
        hidden=16,
        epochs=3,
        batch_size=16,
        learning_rate=0.02,
        warmup_steps=5,
        threads=1,
        max_length=40,
    )
    result = train(config, run_dir, progress=False)
    model_dir = export_model(result.checkpoint, run_dir / "model")
    return TinyModel(run_dir, result.checkpoint, model_dir)
