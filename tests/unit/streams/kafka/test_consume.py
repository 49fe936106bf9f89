"""Formatting entity events and dead letters for ``nerstream consume``."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from schemas.codecs import DeadLetter, EntityEvent, EntitySpan, InputPosition, ModelInfo
from streams.kafka.consume import ConsumedOutput, format_output

WHEN = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)


def test_table_lines_show_entities_and_dead_letters() -> None:
    event = EntityEvent(
        record_id="r1",
        source="news",
        entities=(EntitySpan("LOC", "北京", 0, 2, 0.9),),
        model=ModelInfo("m"),
        input=InputPosition("in", 0, 3),
        created_at=WHEN,
        processed_at=WHEN,
    )
    letter = DeadLetter(
        input=InputPosition("in", 1, 9),
        error_code="DECODE_AVRO",
        error_message="bad",
        failed_at=WHEN,
    )
    assert "北京/LOC" in format_output(ConsumedOutput(0, 5, event))
    crowded = dataclasses.replace(event, entities=event.entities * 15)
    assert format_output(ConsumedOutput(0, 5, crowded)).endswith("... (+3 more)")
    line = format_output(ConsumedOutput(0, 6, letter))
    assert "DEAD LETTER" in line and "DECODE_AVRO" in line and "in[1]@9" in line
    as_json = ConsumedOutput(0, 6, letter).as_json()
    assert as_json["kind"] == "dead_letter" and as_json["error_code"] == "DECODE_AVRO"
