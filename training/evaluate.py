"""Evaluate a model directory on an annotated corpus through models.runtime, i.e. the ONNX model
actually shipped (int8 on CPU by default), with strict entity-level scores (training.metrics).
"""

from __future__ import annotations

from collections.abc import Sequence

from tqdm import tqdm

from models.runtime import NerModel
from models.tags import Span
from training.corpora import Example
from training.metrics import Report, score_spans

#: Texts handed to the model per predict call (the model buckets them by length inside).
CHUNK = 512


def default_types(model: NerModel, examples: Sequence[Example]) -> list[str]:
    """The model's entity types that the gold data annotates at all (MSRA has no NUM)."""
    annotated = {span.type for example in examples for span in example.spans}
    return [name for name in model.manifest.entity_types if name in annotated]


def evaluate_model(
    model: NerModel,
    examples: Sequence[Example],
    entity_types: Sequence[str] | None = None,
    progress: bool = True,
) -> Report:
    predicted: list[list[Span]] = []
    with tqdm(total=len(examples), desc="evaluate", unit="sent", disable=not progress) as bar:
        for first in range(0, len(examples), CHUNK):
            texts = [example.text for example in examples[first : first + CHUNK]]
            for entities in model.predict(texts):
                predicted.append([Span(e.start, e.end, e.type) for e in entities])
            bar.update(len(texts))
    types = list(entity_types) if entity_types else default_types(model, examples)
    return score_spans([list(example.spans) for example in examples], predicted, types)
