"""Distillation targets: a trained teacher model's per-character label marginals.

A student trained with ``distill_from`` (training.train) learns the gold tags through its CRF and,
besides, the teacher's soft label distribution at each character through its emissions: where the
teacher hesitates between labels, the student is told by how much. The teacher is any exported
model directory with the student's labels; it runs in float32 through models.runtime.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from models.runtime import NerModel
from models.tags import marginals

log = logging.getLogger(__name__)

BATCH = 256


def teacher_marginals(
    model_dir: Path,
    texts: Sequence[str],
    labels: Sequence[str],
    threads: int,
    progress: bool = True,
) -> list[NDArray[np.float16]]:
    """For each normalized text, the teacher's (len, K) marginals, K in ``labels`` order, from
    one pass over the whole text (no windows: training sentences are about the window's length).
    ValueError if the teacher has other labels."""
    teacher = NerModel.load(model_dir, provider="cpu", threads=threads, precision="fp32")
    if tuple(teacher.manifest.labels) != tuple(labels):
        raise ValueError(
            f"teacher {model_dir} has labels {teacher.manifest.labels}, the student {labels}"
        )
    targets: list[NDArray[np.float16]] = []
    for first in tqdm(range(0, len(texts), BATCH), desc="teacher", disable=not progress):
        encoded = teacher.featurizer.encode(texts[first : first + BATCH])
        posterior = marginals(teacher.emissions(encoded), encoded.lengths, *teacher.crf)
        targets.extend(
            row[:length].astype(np.float16)
            for row, length in zip(posterior, encoded.lengths.tolist(), strict=True)
        )
    log.info("teacher %s labelled %d sentences", teacher.manifest.name, len(targets))
    return targets
