"""Training checkpoints: the weights plus everything needed to rebuild model and features.

A checkpoint holds the config, the model shape, the labels, the state dict, the feature
vocabularies (as lines), the step/epoch and dev scores, and a description of the data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import torch

from models.features import Featurizer, Lexicon, Vocabulary
from models.tags import Scheme
from training.model import Tagger, TaggerShape, build_tagger


def save_checkpoint(payload: dict[str, Any], path: Path) -> None:
    """Write atomically, so that the file is always a whole checkpoint (it is read while
    training runs)."""
    partial = path.with_suffix(".partial")
    torch.save(payload, partial)
    partial.replace(path)


def read_checkpoint(path: Path) -> dict[str, Any]:
    payload: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return payload


def load_checkpoint(path: Path) -> tuple[Tagger, dict[str, Any]]:
    payload = read_checkpoint(path)
    scheme = cast(Scheme, payload["config"]["scheme"])
    shape = dict(payload["shape"], dilations=tuple(payload["shape"].get("dilations", ())))
    model = build_tagger(TaggerShape(**shape), payload["labels"], scheme)
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model, payload


def checkpoint_featurizer(payload: dict[str, Any]) -> Featurizer:
    return Featurizer(
        Vocabulary(payload["chars"], "chars"),
        Vocabulary(payload["bigrams"], "bigrams"),
        Lexicon.from_lines(payload["lexicon"], payload["config"]["max_word_length"]),
    )
