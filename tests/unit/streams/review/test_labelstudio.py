"""Label Studio JSON: what we export imports back, and a real export's shape imports."""

from __future__ import annotations

import pytest

from streams.review.labelstudio import export_tasks, import_tasks
from streams.review.tasks import ReviewInputError, ReviewItem, ReviewSpan

ITEM = ReviewItem("r1", "张三在北京大学", (ReviewSpan(3, 5, "LOC", 0.4),), "news", "", "m 1")
CORRECTED = (ReviewSpan(0, 2, "PER"), ReviewSpan(3, 7, "ORG"))


def test_export_then_import_round_trips_the_correction() -> None:
    exported = export_tasks([(ITEM, CORRECTED, "alice"), (ITEM, None, "")])
    assert exported[0]["data"] == {"text": ITEM.text, "record_id": "r1", "source": "news"}
    result = exported[0]["annotations"][0]["result"][1]
    assert result["value"] == {"start": 3, "end": 7, "text": "北京大学", "labels": ["ORG"]}
    assert exported[0]["predictions"][0]["result"][0]["score"] == 0.4
    assert "annotations" not in exported[1]
    imported = import_tasks(exported)
    assert len(imported) == 1  # the unannotated task is left out
    item, spans, reviewer = imported[0]
    assert (item.id, item.text, item.predicted) == ("r1", ITEM.text, ITEM.predicted)
    assert (spans, reviewer) == (CORRECTED, "label-studio:alice")


def test_a_label_studio_export_with_its_own_fields_imports() -> None:
    document = [
        {
            "id": 17,
            "data": {"text": "李四"},
            "annotations": [
                {"was_cancelled": True, "result": []},
                {
                    "completed_by": 3,
                    "result": [
                        {"type": "choices", "value": {"choices": ["ok"]}},
                        {
                            "type": "labels",
                            "from_name": "label",
                            "to_name": "text",
                            "value": {"start": 0, "end": 2, "text": "李四", "labels": ["PER"]},
                        },
                    ],
                },
            ],
        }
    ]
    [(item, spans, reviewer)] = import_tasks(document)
    assert (item.id, spans, reviewer) == ("17", (ReviewSpan(0, 2, "PER"),), "label-studio:3")


@pytest.mark.parametrize(
    "document",
    [{"not": "a list"}, [{"data": {}}], [{"data": {"text": "x"}, "annotations": [{"result": 1}]}]],
)
def test_malformed_exports_are_refused(document: object) -> None:
    with pytest.raises(ReviewInputError):
        import_tasks(document)
