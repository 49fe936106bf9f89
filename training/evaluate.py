"""Evaluate a model directory on an annotated corpus through models.runtime, i.e. the ONNX model
actually shipped (int8 on CPU by default), with strict entity-level scores (training.metrics).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from models.runtime import NerModel
from models.tags import Span
from training.corpora import Example
from training.metrics import Report, score_spans, sentence_errors

#: Texts handed to the model per predict call (the model buckets them by length inside).
CHUNK = 512


def default_types(model: NerModel, examples: Sequence[Example]) -> list[str]:
    """The model's entity types that the gold data annotates at all (MSRA has no NUM)."""
    annotated = {span.type for example in examples for span in example.spans}
    return [name for name in model.manifest.entity_types if name in annotated]


def tag_texts(model: NerModel, texts: Sequence[str], progress: bool = True) -> list[list[Span]]:
    """The model's entities of each text, as spans, CHUNK texts per predict call."""
    predicted: list[list[Span]] = []
    with tqdm(total=len(texts), desc="evaluate", unit="sent", disable=not progress) as bar:
        for first in range(0, len(texts), CHUNK):
            chunk = list(texts[first : first + CHUNK])
            for entities in model.predict(chunk):
                predicted.append([Span(e.start, e.end, e.type) for e in entities])
            bar.update(len(chunk))
    return predicted


@dataclass(frozen=True)
class Evaluation:
    report: Report
    predicted: list[list[Span]]
    entity_types: list[str]  # the types scored


def evaluate_model(
    model: NerModel,
    examples: Sequence[Example],
    entity_types: Sequence[str] | None = None,
    progress: bool = True,
) -> Evaluation:
    """Scores over ``entity_types`` (default: ``default_types``), with the predictions."""
    predicted = tag_texts(model, [example.text for example in examples], progress)
    types = list(entity_types) if entity_types else default_types(model, examples)
    report = score_spans([list(example.spans) for example in examples], predicted, types)
    return Evaluation(report, predicted, types)


def error_records(
    examples: Sequence[Example], predicted: Sequence[Sequence[Span]], entity_types: Sequence[str]
) -> Iterator[dict[str, Any]]:
    """Every error that ``score_spans`` counts, one JSON-ready record each: the sentence's index
    and text, the kind, the gold entity (null when spurious) and the predictions over it."""

    def entity(text: str, span: Span) -> dict[str, Any]:
        return {
            "type": span.type,
            "start": span.start,
            "end": span.end,
            "text": text[span.start : span.end],
        }

    scored = set(entity_types)
    for index, (example, spans) in enumerate(zip(examples, predicted, strict=True)):
        gold = {span for span in example.spans if span.type in scored}
        for error in sentence_errors(gold, {span for span in spans if span.type in scored}):
            yield {
                "sentence": index,
                "kind": error.kind,
                "gold": entity(example.text, error.gold) if error.gold else None,
                "predicted": [entity(example.text, span) for span in error.predicted],
                "text": example.text,
            }
