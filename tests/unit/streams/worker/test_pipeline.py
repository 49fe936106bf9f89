"""The worker's pure core: decoding, dead letters, inference retries, entity events."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from models.runtime import Entity, drop_overlaps
from schemas.codecs import (
    DEAD_LETTER,
    DEAD_LETTER_SCHEMA,
    ENTITY_EVENT,
    ENTITY_EVENT_SCHEMA,
    RECORD,
    SCHEMA_HEADER,
    Header,
    InputRecord,
    ModelInfo,
    event_id,
)
from schemas.errors import DecodeError, ErrorCode
from schemas.framing import Schema, frame, unframe
from streams.worker.pipeline import (
    BatchResult,
    PipelineConfig,
    Predict,
    RawMessage,
    infer,
    process_batch,
)
from tests.poison import CREATED_AT, JSON_HEADERS, poison_kinds

NOW = datetime(2024, 5, 1, 8, 30, 5, tzinfo=UTC)
MAX_TEXT_CHARS = 50


@dataclass(frozen=True)
class FakeEntity:
    type: str
    start: int
    end: int
    score: float
    text: str = ""


def digits_model(texts: list[str]) -> list[list[FakeEntity]]:
    """A stand-in model: every run of ASCII digits is a NUM, every 北京 a LOC."""
    results = []
    for text in texts:
        spans = [FakeEntity("NUM", m.start(), m.end(), 0.9) for m in re.finditer(r"\d+", text)]
        spans += [FakeEntity("LOC", m.start(), m.end(), 0.8) for m in re.finditer("北京", text)]
        results.append(spans)
    return results


def config(**changes: object) -> PipelineConfig:
    base = PipelineConfig(
        entities_topic="entities",
        dead_letter_topic="dead",
        format_by_topic={"news": "avro", "feed": "json"},
        max_text_chars=MAX_TEXT_CHARS,
        worker_id="worker-1",
        model=ModelInfo("tiny", "1.0"),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def avro_message(
    offset: int, text: str, key: bytes | None = b"k", record_id: str = ""
) -> RawMessage:
    record = InputRecord(
        id=record_id or f"r{offset}", source="news", text=text, created_at=CREATED_AT
    )
    return RawMessage("news", 0, offset, key, RECORD.encode(record))


def run(
    messages: Sequence[RawMessage], predict: Predict = digits_model, **changes: object
) -> BatchResult:
    return process_batch(messages, predict, config(**changes), now=lambda: NOW)


def test_valid_records_become_entity_events_keyed_like_the_input() -> None:
    messages = [avro_message(0, "北京有3个人", key=b"key-0"), avro_message(1, "没有实体", key=None)]
    result = run(messages)
    assert [out.kind for out in result.outputs] == ["entities", "entities"]
    first, second = (ENTITY_EVENT.decode(out.value) for out in result.outputs)
    assert result.outputs[0].key == b"key-0"
    assert result.outputs[1].key == b"r1", "an unkeyed input is keyed by its record id"
    assert result.outputs[0].topic == "entities"
    assert result.outputs[0].headers == ((SCHEMA_HEADER, ENTITY_EVENT_SCHEMA),)
    assert first.record_id == "r0" and first.source == "news"
    assert [(e.type, e.text, e.start, e.end) for e in first.entities] == [
        ("LOC", "北京", 0, 2),
        ("NUM", "3", 3, 4),
    ]
    assert first.model == ModelInfo("tiny", "1.0")
    assert (first.input.topic, first.input.partition, first.input.offset) == ("news", 0, 0)
    assert first.created_at == CREATED_AT and first.processed_at == NOW
    # The same input and model give the same id, whenever and however often it is processed.
    assert first.event_id == event_id(first.input, first.model) != second.event_id
    assert run(messages).outputs[0].value == result.outputs[0].value
    assert result.outputs[0].latency_s == (NOW - CREATED_AT).total_seconds() == 5.0
    assert second.entities == ()
    assert result.inferred == 2 and not result.dead_letters


def test_json_records_by_topic_format_or_content_type_header() -> None:
    document = json.dumps({"id": "j1", "text": "42", "created_at": "2024-05-01T08:30:00Z"})
    by_topic = RawMessage("feed", 0, 0, None, document.encode())
    by_header = RawMessage("news", 0, 1, None, document.encode(), JSON_HEADERS)
    result = run([by_topic, by_header])
    assert [out.kind for out in result.outputs] == ["entities", "entities"]
    assert ENTITY_EVENT.decode(result.outputs[1].value).entities[0].text == "42"


def test_every_poison_kind_is_dead_lettered_with_its_code_and_original_bytes() -> None:
    poisons = poison_kinds(MAX_TEXT_CHARS)
    headers = (("trace", b"t-1"), ("empty", None))
    messages = [
        RawMessage("news", 2, offset, b"key", poison.value, poison.headers + headers)
        for offset, poison in enumerate(poisons)
    ]
    result = run(messages)
    assert len(result.outputs) == len(poisons)
    for poison, message, output in zip(poisons, messages, result.outputs, strict=True):
        assert output.kind == "dead_letter", poison.name
        assert output.topic == "dead" and output.key == b"key"
        assert output.headers == ((SCHEMA_HEADER, DEAD_LETTER_SCHEMA),)
        letter = DEAD_LETTER.decode(output.value)
        assert letter.error_code == poison.error_code == output.error_code, poison.name
        assert letter.value == message.value, "the original bytes are kept"
        assert letter.headers == tuple(Header(k, v) for k, v in message.headers)
        assert (letter.input.partition, letter.input.offset) == (2, message.offset)
        assert letter.worker_id == "worker-1" and letter.failed_at == NOW
    assert result.inferred == 0, "no poison reaches the model"


def test_dead_letters_never_quote_the_record_text() -> None:
    secret = "患者张三诊断为肺癌"
    too_long = avro_message(0, secret * 10)
    result = run([too_long])
    letter = DEAD_LETTER.decode(result.outputs[0].value)
    assert letter.error_code == ErrorCode.TEXT_TOO_LONG
    assert secret not in letter.error_message


def test_outputs_follow_input_order_with_poison_interleaved() -> None:
    messages = [
        avro_message(0, "1"),
        RawMessage("news", 0, 1, b"k", b"\xff"),
        avro_message(2, "北京"),
        RawMessage("news", 0, 3, b"k", None),
        avro_message(4, "22"),
    ]
    result = run(messages)
    assert [out.source.offset for out in result.outputs] == [0, 1, 2, 3, 4]
    assert [out.kind for out in result.outputs] == [
        "entities",
        "dead_letter",
        "entities",
        "dead_letter",
        "entities",
    ]


def test_a_failing_batch_is_retried_one_by_one_and_only_the_culprit_dead_lettered() -> None:
    calls: list[int] = []

    def fragile_model(texts: list[str]) -> list[list[FakeEntity]]:
        calls.append(len(texts))
        if any("炸" in text for text in texts):
            raise RuntimeError("model crashed")
        return digits_model(texts)

    messages = [avro_message(0, "1"), avro_message(1, "炸弹2"), avro_message(2, "3")]
    result = run(messages, predict=fragile_model)
    assert calls == [3, 1, 1, 1]
    assert result.retried_one_by_one
    assert [out.kind for out in result.outputs] == ["entities", "dead_letter", "entities"]
    letter = DEAD_LETTER.decode(result.outputs[1].value)
    assert letter.error_code == ErrorCode.INFERENCE_FAILED
    assert "RuntimeError" in letter.error_message
    assert "炸" not in letter.error_message


def test_impossible_model_output_counts_as_an_inference_failure() -> None:
    def out_of_range(texts: list[str]) -> list[list[FakeEntity]]:
        return [[FakeEntity("PER", 0, len(text) + 1, 0.5)] for text in texts]

    def overlapping(texts: list[str]) -> list[list[FakeEntity]]:
        return [[FakeEntity("PER", 0, 2, 0.5), FakeEntity("LOC", 1, 2, 0.5)] for _ in texts]

    def too_few(texts: list[str]) -> list[list[FakeEntity]]:
        return []

    for model in (out_of_range, overlapping, too_few):
        result = run([avro_message(0, "北京人")], predict=model)
        assert result.outputs[0].error_code == ErrorCode.INFERENCE_FAILED, model.__name__


def test_the_same_mention_reported_twice_is_kept_once_by_the_runtime() -> None:
    # NFKC turns "…" into "...", so two model spans can map onto one original character; the
    # runtime resolves that (models.runtime.drop_overlaps) before the pipeline sees entities.
    def twice(texts: list[str]) -> list[list[Entity]]:
        same = Entity("LOC", 3, 4, "…", 0.5)
        return [drop_overlaps([same, same]) for _ in texts]

    output = run([avro_message(0, "…………")], predict=twice).outputs[0]
    assert output.kind == "entities"
    assert [(e.start, e.end) for e in ENTITY_EVENT.decode(output.value).entities] == [(3, 4)]

    # The pipeline itself refuses a model that repeats a mention, like any other overlap.
    def unfiltered(texts: list[str]) -> list[list[FakeEntity]]:
        return [[FakeEntity("LOC", 3, 4, 0.5), FakeEntity("LOC", 3, 4, 0.5)] for _ in texts]

    refused = run([avro_message(0, "…………")], predict=unfiltered).outputs[0]
    assert refused.error_code == ErrorCode.INFERENCE_FAILED


def test_batched_equals_one_by_one() -> None:
    texts = ["北京3", "", "12 and 34", "没有"]
    batched, retried = infer(texts, digits_model)
    assert not retried
    assert batched == [infer([text], digits_model)[0][0] for text in texts]


def test_an_entity_event_too_large_for_kafka_becomes_a_dead_letter() -> None:
    message = avro_message(0, "1 " * 20)
    result = run([message], max_output_bytes=150)
    output = result.outputs[0]
    assert output.kind == "dead_letter"
    assert output.error_code == ErrorCode.OUTPUT_TOO_LARGE
    assert DEAD_LETTER.decode(output.value).value == message.value


def test_a_dead_letter_too_large_for_kafka_keeps_its_position_but_drops_the_bytes() -> None:
    message = RawMessage("news", 1, 7, b"k", b"\xff" * 1000, (("h", b"v"),))
    output = run([message], max_output_bytes=400).outputs[0]
    letter = DEAD_LETTER.decode(output.value)
    assert len(output.value) <= 400
    assert letter.error_code == ErrorCode.DECODE_AVRO
    assert letter.value is None and letter.headers == ()
    assert (letter.input.partition, letter.input.offset) == (1, 7)
    assert "left out" in letter.error_message


def registry_mode(schemas: dict[int, Schema]) -> dict[str, object]:
    """PipelineConfig changes of registry mode: output ids 11 and 12, writer schemas by id."""

    def writer_schema(schema_id: int) -> Schema:
        if schema_id not in schemas:
            raise DecodeError(ErrorCode.UNKNOWN_SCHEMA_ID, f"no schema id {schema_id}")
        return schemas[schema_id]

    return {
        "entity_event_schema_id": 11,
        "dead_letter_schema_id": 12,
        "writer_schema": writer_schema,
    }


def test_registry_mode_frames_outputs_and_reads_framed_inputs() -> None:
    plain = avro_message(0, "北京3")
    framed = dataclasses.replace(avro_message(1, "北京4"), value=frame(5, plain.value or b""))
    unknown = dataclasses.replace(plain, offset=2, value=frame(6, plain.value or b""))
    result = run([plain, framed, unknown], digits_model, **registry_mode({5: RECORD.schema}))
    assert [out.kind for out in result.outputs] == ["entities", "entities", "dead_letter"]
    for output in result.outputs[:2]:
        schema_id, body = unframe(output.value)
        assert schema_id == 11 and ENTITY_EVENT.decode(body).record_id == "r0"
    schema_id, body = unframe(result.outputs[2].value)
    letter = DEAD_LETTER.decode(body)
    assert schema_id == 12 and letter.error_code == ErrorCode.UNKNOWN_SCHEMA_ID
    assert letter.value == unknown.value, "the dead letter keeps the framed original bytes"


def test_registry_mode_counts_the_frame_in_the_output_size_limit() -> None:
    event = run([avro_message(0, "1")]).outputs[0]
    limit = len(event.value) + 4  # room for the plain event, not for the framed one
    framed = run([avro_message(0, "1")], digits_model, max_output_bytes=limit, **registry_mode({}))
    assert framed.outputs[0].error_code == ErrorCode.OUTPUT_TOO_LARGE


def test_an_empty_batch_gives_no_outputs() -> None:
    result = run([])
    assert result.outputs == [] and result.inferred == 0


@pytest.mark.parametrize("text", ["🙂北京🙂", "Ａ北京１２", "北京" * 20])
def test_entity_text_is_cut_from_the_original_text(text: str) -> None:
    output = run([avro_message(0, text)]).outputs[0]
    for entity in ENTITY_EVENT.decode(output.value).entities:
        assert text[entity.start : entity.end] == entity.text


def test_selected_records_also_get_a_review_task_and_keep_their_entity_event() -> None:
    from schemas.codecs import REVIEW_TASK, REVIEW_TASK_SCHEMA
    from streams.worker.review import ReviewRules

    messages = [avro_message(0, "北京有3个人", key=b"k0"), avro_message(1, "有3个人", key=None)]
    # 北京 scores 0.8 (LOC), digits 0.9: only the first record has an entity below 0.85.
    result = run(messages, review_topic="review", review=ReviewRules(entity_score_below=0.85))
    assert [out.kind for out in result.outputs] == ["entities", "entities"]
    assert [out.kind for out in result.reviews] == ["review"]
    assert result.deliveries == [*result.outputs, *result.reviews]
    review = result.reviews[0]
    assert (review.topic, review.key, review.source) == ("review", b"k0", messages[0])
    assert review.headers == ((SCHEMA_HEADER, REVIEW_TASK_SCHEMA),)
    task = REVIEW_TASK.decode(review.value)
    assert (task.record_id, task.text, task.reason) == ("r0", "北京有3个人", "LOW_ENTITY_SCORE")
    assert [(span.type, span.text) for span in task.entities] == [("LOC", "北京"), ("NUM", "3")]
    assert task.confidence == pytest.approx(0.8 * 0.9)
    assert (task.input.topic, task.input.offset, task.model) == (
        "news",
        0,
        ModelInfo("tiny", "1.0"),
    )


def test_without_review_rules_nothing_is_routed() -> None:
    result = run([avro_message(0, "北京")])
    assert result.reviews == []
    assert result.deliveries is result.outputs


def test_dead_letters_are_never_routed_to_review() -> None:
    from streams.worker.review import ReviewRules

    bad = RawMessage("news", 0, 5, b"k", b"\x00garbage")
    result = run([bad], review_topic="review", review=ReviewRules(sample_rate=1.0))
    assert [out.kind for out in result.outputs] == ["dead_letter"]
    assert result.reviews == []
