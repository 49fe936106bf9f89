"""What a trained teacher model gives a student (training.train); the teacher is any exported
model directory, run in float32 through models.runtime.

- Marginals (``distill_from``): the student learns the gold tags through its CRF and, besides,
  the teachers' soft label distribution (averaged over them) at each character through its
  emissions: where the teachers hesitate between labels, the student is told by how much.
- Labelled texts (``self_training_texts``): unlabelled texts with the teacher's entities become
  extra training examples, so the student learns the teacher's behaviour on more text than the
  annotated corpus has.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from models.runtime import NerModel
from models.tags import Span, marginals
from training.corpora import Example

log = logging.getLogger(__name__)

BATCH = 256


def load_teacher(model_dir: Path, threads: int) -> NerModel:
    """The teacher as every student sees it: float32 on CPU."""
    return NerModel.load(model_dir, provider="cpu", threads=threads, precision="fp32")


def teacher_marginals(
    model_dirs: Sequence[Path],
    texts: Sequence[str],
    labels: Sequence[str],
    threads: int,
    progress: bool = True,
) -> list[NDArray[np.float16]]:
    """For each normalized text, the (len, K) marginals averaged over the teachers, K in
    ``labels`` order, from one pass over the whole text (no windows: training sentences are about
    the window's length). An average of several teachers is an ensemble's distribution, which
    is steadier than any one member's. ValueError if a teacher has other labels."""
    if not model_dirs:
        raise ValueError("teacher_marginals needs at least one teacher")
    sums: list[NDArray[np.float32]] = [
        np.zeros((len(text), len(labels)), np.float32) for text in texts
    ]
    for model_dir in model_dirs:
        teacher = load_teacher(model_dir, threads)
        if tuple(teacher.manifest.labels) != tuple(labels):
            raise ValueError(
                f"teacher {model_dir} has labels {teacher.manifest.labels}, the student {labels}"
            )
        for first in tqdm(
            range(0, len(texts), BATCH), desc=f"teacher {model_dir}", disable=not progress
        ):
            encoded = teacher.featurizer.encode(texts[first : first + BATCH])
            posterior = marginals(teacher.emissions(encoded), encoded.lengths, *teacher.crf)
            for offset, (row, length) in enumerate(
                zip(posterior, encoded.lengths.tolist(), strict=True)
            ):
                sums[first + offset] += row[:length]
        log.info("teacher %s labelled %d sentences", teacher.manifest.name, len(texts))
    return [(total / len(model_dirs)).astype(np.float16) for total in sums]


def teacher_examples(
    model_dir: Path, texts: Sequence[str], threads: int, progress: bool = True
) -> list[Example]:
    """Each text with the teacher's entities (long texts are predicted in the runtime's windows)."""
    teacher = load_teacher(model_dir, threads)
    examples: list[Example] = []
    for first in tqdm(range(0, len(texts), BATCH), desc="teacher labels", disable=not progress):
        batch = texts[first : first + BATCH]
        for text, entities in zip(batch, teacher.predict(batch), strict=True):
            spans = tuple(Span(entity.start, entity.end, entity.type) for entity in entities)
            examples.append(Example(text, spans))
    log.info("teacher %s labelled %d texts", teacher.manifest.name, len(examples))
    return examples
