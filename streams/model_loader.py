"""The one model loader: the ``model.*`` settings -> a loaded :class:`models.runtime.NerModel`.

The worker, ``nerstream evaluate`` and ``nerstream annotate`` all load their model here, so the
same settings and flags (``--model-dir``, ``--provider``, ``--precision``, ``--threads``, and the
runtime's bucket sizes) mean the same thing everywhere.
"""

from __future__ import annotations

from pathlib import Path

from models.runtime import NerModel
from streams.model_store import current_version
from streams.settings import ModelSettings


def model_directory(model: ModelSettings) -> str:
    """The directory to serve: ``model_dir``, else the store's current version, else "" (the
    shipped model)."""
    if model.store_dir:
        return str(Path(model.store_dir) / current_version(Path(model.store_dir)))
    return model.model_dir


def load_model(model: ModelSettings, directory: Path | None = None) -> NerModel:
    """Load ``directory``, else the configured model directory (default: the shipped model).

    Raises ``models.manifest.ModelError`` (a permanent error with a stable code) when the
    directory is unusable, ``streams.model_store.ModelStoreError`` when the store is.
    """
    return NerModel.load(
        directory or model_directory(model) or None,
        provider=model.provider,
        threads=model.threads,
        precision=model.precision,
        bucket_texts=model.bucket_texts,
        bucket_chars=model.bucket_chars,
        onnx_batch=model.onnx_batch,
    )
