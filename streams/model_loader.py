"""The one model loader: the ``model.*`` settings -> a loaded :class:`models.runtime.NerModel`.

The worker, ``nerstream evaluate`` and ``nerstream annotate`` all load their model here, so the
same settings and flags (``--model-dir``, ``--provider``, ``--precision``, ``--threads``, and the
runtime's bucket sizes) mean the same thing everywhere.
"""

from __future__ import annotations

from models.runtime import NerModel
from streams.settings import ModelSettings


def load_model(model: ModelSettings) -> NerModel:
    """Load the configured model directory (default: the shipped model).

    Raises ``models.manifest.ModelError`` (a permanent error with a stable code) when the
    directory is unusable.
    """
    return NerModel.load(
        model.model_dir or None,
        provider=model.provider,
        threads=model.threads,
        precision=model.precision,
        bucket_texts=model.bucket_texts,
        bucket_chars=model.bucket_chars,
        onnx_batch=model.onnx_batch,
    )
