"""Label Studio's task and annotation JSON, in and out. Pure.

Export: one Label Studio task per review item, ``data.text`` (and ``data.record_id``), the
model's spans as a prediction and a finished correction as an annotation, for a labeling config
with ``<Labels name="label" toName="text">`` over ``<Text name="text" value="$text"/>``.
Import: a Label Studio export (a JSON list of tasks); each task's latest annotation becomes the
correction (tasks nobody annotated are left out). Offsets are code points in both tools.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from streams.review.tasks import ReviewInputError, ReviewItem, ReviewSpan, parse_spans

FROM_NAME = "label"
TO_NAME = "text"
#: The labeling config the exported tasks fit (paste it into the Label Studio project).
LABEL_CONFIG = (
    '<View><Labels name="label" toName="text">'
    '<Label value="PER"/><Label value="LOC"/><Label value="ORG"/><Label value="NUM"/>'
    '</Labels><Text name="text" value="$text"/></View>'
)


def _results(item: ReviewItem, spans: Sequence[ReviewSpan]) -> list[dict[str, Any]]:
    results = []
    for index, span in enumerate(spans):
        result: dict[str, Any] = {
            "id": f"{item.id}-{index}",
            "from_name": FROM_NAME,
            "to_name": TO_NAME,
            "type": "labels",
            "value": {
                "start": span.start,
                "end": span.end,
                "text": item.text[span.start : span.end],
                "labels": [span.type],
            },
        }
        if span.score is not None:
            result["score"] = round(span.score, 4)
        results.append(result)
    return results


def export_tasks(
    entries: Sequence[tuple[ReviewItem, Sequence[ReviewSpan] | None, str]],
) -> list[dict[str, Any]]:
    """Label Studio tasks of (item, finished correction or None, reviewer) entries."""
    tasks = []
    for item, corrected, reviewer in entries:
        task: dict[str, Any] = {
            "data": {"text": item.text, "record_id": item.id, "source": item.source},
            "predictions": [
                {"model_version": item.model, "result": _results(item, item.predicted)}
            ],
        }
        if corrected is not None:
            task["annotations"] = [
                {"result": _results(item, corrected), "completed_by": {"email": reviewer}}
            ]
        tasks.append(task)
    return tasks


def _spans_of(text: str, results: object, where: str) -> tuple[ReviewSpan, ...]:
    if not isinstance(results, list):
        raise ReviewInputError(f"{where}: result must be a list")
    entities = []
    for result in results:
        value = result.get("value") if isinstance(result, Mapping) else None
        if not isinstance(value, Mapping) or result.get("type") != "labels":
            continue  # other control tags (choices, ratings) say nothing about spans
        labels = value.get("labels")
        if not (isinstance(labels, list) and len(labels) == 1):
            raise ReviewInputError(f"{where}: a span needs exactly one label")
        entities.append({"type": labels[0], "start": value.get("start"), "end": value.get("end")})
    return parse_spans(text, entities, where)


def import_tasks(document: object) -> list[tuple[ReviewItem, tuple[ReviewSpan, ...], str]]:
    """(item, correction, reviewer) of every annotated task of a Label Studio export."""
    if not isinstance(document, list):
        raise ReviewInputError("a Label Studio export is a JSON list of tasks")
    imported = []
    for number, task in enumerate(document, 1):
        where = f"task {number}"
        data = task.get("data") if isinstance(task, Mapping) else None
        if not isinstance(data, Mapping) or not isinstance(data.get("text"), str):
            raise ReviewInputError(f'{where}: expected "data" with a string "text"')
        text = data["text"]
        record_id = str(data.get("record_id") or task.get("id") or number)
        annotations = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        if not annotations:
            continue
        latest = annotations[-1]
        by = latest.get("completed_by")
        reviewer = by.get("email", "") if isinstance(by, Mapping) else str(by or "")
        predictions = task.get("predictions") or []
        predicted = _spans_of(text, predictions[-1].get("result", []), where) if predictions else ()
        item = ReviewItem(record_id, text, predicted, str(data.get("source") or "other"))
        spans = _spans_of(text, latest.get("result", []), where)
        imported.append((item, spans, f"label-studio:{reviewer}" if reviewer else "label-studio"))
    return imported
