"""The worker's pure core: one batch of raw Kafka messages in, one output per message out.

Each input message becomes exactly one output, in input order: an entity event (keyed like the
input) for a usable record, or a dead letter (with the original bytes and a stable error code)
for anything that can never be processed. An entity event whose record the review rules select
(:mod:`.review`) also gets a review task, delivered with the batch's outputs. Nothing here touches
Kafka, threads or clocks that tests cannot control; :mod:`streams.worker.agents` feeds it and
delivers what it returns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal, Protocol

from errors import PermanentError
from schemas.codecs import (
    DEAD_LETTER,
    DEAD_LETTER_SCHEMA,
    ENTITY_EVENT,
    ENTITY_EVENT_SCHEMA,
    REVIEW_TASK,
    REVIEW_TASK_SCHEMA,
    SCHEMA_HEADER,
    DeadLetter,
    EntityEvent,
    EntitySpan,
    Header,
    InputPosition,
    InputRecord,
    ModelInfo,
    ReviewTask,
    content_type_from_headers,
    decode_record,
    event_id,
)
from schemas.errors import DecodeError, ErrorCode
from schemas.framing import WriterSchemaLookup, frame
from streams.worker.review import ReviewRules, review_reason, sequence_confidence

logger = logging.getLogger(__name__)

#: librdkafka's default ``message.max.bytes``; the producer is configured with the same value so
#: that an output too large for it is handled here (as a dead letter), not as a delivery failure.
MAX_OUTPUT_BYTES = 1_000_000


class Entity(Protocol):
    """What the model returns per mention (``models.runtime.Entity`` satisfies it)."""

    @property
    def type(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def score(self) -> float: ...


#: The model: texts in, entities per text out (same length, same order).
Predict = Callable[[list[str]], Sequence[Sequence[Entity]]]


@dataclass(frozen=True)
class RawMessage:
    """One Kafka message as consumed: position, key, value and headers, nothing decoded."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()

    @property
    def position(self) -> InputPosition:
        return InputPosition(self.topic, self.partition, self.offset)


@dataclass(frozen=True)
class PipelineConfig:
    """What the pipeline needs from the settings and the loaded model."""

    entities_topic: str
    dead_letter_topic: str
    #: The configured format of each input topic (a content-type header overrides it).
    format_by_topic: Mapping[str, str]
    max_text_chars: int
    worker_id: str
    model: ModelInfo
    max_output_bytes: int = MAX_OUTPUT_BYTES
    #: Registry mode: the ids outputs are framed with (Confluent wire format), and the lookup
    #: of framed inputs' writer schemas. None: plain Avro.
    entity_event_schema_id: int | None = None
    dead_letter_schema_id: int | None = None
    review_task_schema_id: int | None = None
    writer_schema: WriterSchemaLookup | None = None
    #: Where review tasks go, and which records get one (off by default).
    review_topic: str = ""
    review: ReviewRules = field(default_factory=ReviewRules)


@dataclass(frozen=True)
class Output:
    """One message to produce, and what it says about the input message it stands for."""

    kind: Literal["entities", "dead_letter", "review"]
    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    source: RawMessage
    #: Dead letters only.
    error_code: str = ""
    #: Entity events only: processed_at - created_at (seconds), and the entity types found.
    latency_s: float | None = None
    entity_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchResult:
    """The outputs of one batch, one per input message and in input order."""

    outputs: list[Output]
    #: Seconds spent in the model, one-by-one retries included (0 when nothing was inferred).
    inference_seconds: float = 0.0
    #: Whether the batch call failed and its records were retried one by one.
    retried_one_by_one: bool = False
    #: Records that reached the model.
    inferred: int = 0
    #: Review tasks of records the review rules selected (besides their entity events).
    reviews: list[Output] = field(default_factory=list)

    @property
    def deliveries(self) -> list[Output]:
        """Everything to produce: the outputs, then the review tasks."""
        return [*self.outputs, *self.reviews] if self.reviews else self.outputs

    @property
    def dead_letters(self) -> list[Output]:
        return [out for out in self.outputs if out.kind == "dead_letter"]


class InferenceError(PermanentError):
    """The model could not produce usable entities for one text (even alone): dead-letter it."""


def process_batch(
    messages: Sequence[RawMessage],
    predict: Predict,
    config: PipelineConfig,
    now: Callable[[], datetime],
    timer: Callable[[], float] = time.perf_counter,
) -> BatchResult:
    """Decode, validate and infer ``messages``; return exactly one output per message."""
    outputs: list[Output | None] = [None] * len(messages)
    records: list[tuple[int, InputRecord]] = []
    for index, message in enumerate(messages):
        try:
            record = decode_record(
                message.value,
                content_type_from_headers(message.headers),
                config.format_by_topic[message.topic],
                config.max_text_chars,
                config.writer_schema,
            )
        except DecodeError as exc:
            outputs[index] = dead_letter(message, exc.error_code, exc.message, config, now())
        else:
            records.append((index, record))

    inference_seconds = 0.0
    retried = False
    reviews: list[Output] = []
    if records:
        started = timer()
        results, retried = infer([record.text for _, record in records], predict)
        inference_seconds = timer() - started
        processed_at = now()
        for (index, record), result in zip(records, results, strict=True):
            message = messages[index]
            if isinstance(result, InferenceError):
                logger.warning(
                    "inference failed topic=%s partition=%d offset=%d: %s",
                    message.topic,
                    message.partition,
                    message.offset,
                    result,
                    extra={
                        "topic": message.topic,
                        "partition": message.partition,
                        "offset": message.offset,
                        "error_code": ErrorCode.INFERENCE_FAILED.value,
                    },
                )
                outputs[index] = dead_letter(
                    message, ErrorCode.INFERENCE_FAILED, str(result), config, processed_at
                )
            else:
                output = outputs[index] = entity_output(
                    message, record, result, config, processed_at
                )
                if output.kind == "entities" and config.review.enabled:
                    task = review_output(message, record, result, config, processed_at)
                    if task is not None:
                        reviews.append(task)
    done = [out for out in outputs if out is not None]
    assert len(done) == len(messages), "every message gets exactly one output"
    return BatchResult(done, inference_seconds, retried, len(records), reviews)


def infer(
    texts: list[str], predict: Predict
) -> tuple[list[list[EntitySpan] | InferenceError], bool]:
    """Entities per text; a failed batch is retried text by text so only culprits fail.

    Returns the per-text results and whether the one-by-one retry happened.
    """
    results: list[list[EntitySpan] | InferenceError] = []
    try:
        results.extend(_checked(texts, predict(texts)))
        return results, False
    except Exception as exc:
        if len(texts) == 1:
            return [_failure(exc)], False
        logger.warning(
            "inference failed for a batch of %d records (%s); retrying them one by one",
            len(texts),
            type(exc).__name__,
        )
    for text in texts:
        try:
            results.extend(_checked([text], predict([text])))
        except Exception as exc:
            results.append(_failure(exc))
    return results, True


def _failure(exc: Exception) -> InferenceError:
    if isinstance(exc, InferenceError):
        return exc
    # Only the exception's type: a library's message could quote the text it choked on.
    return InferenceError(f"the model raised {type(exc).__module__}.{type(exc).__qualname__}")


def _checked(texts: list[str], predicted: Sequence[Sequence[Entity]]) -> list[list[EntitySpan]]:
    """Turn model entities into spans of the original text, refusing impossible ones."""
    if len(predicted) != len(texts):
        raise InferenceError(f"the model returned {len(predicted)} results for {len(texts)} texts")
    spans_per_text = []
    for text, entities in zip(texts, predicted, strict=True):
        spans: list[EntitySpan] = []
        for entity in sorted(entities, key=lambda e: (e.start, e.end)):
            if not 0 <= entity.start < entity.end <= len(text):
                raise InferenceError(
                    f"entity offsets [{entity.start}, {entity.end}) outside a text of "
                    f"{len(text)} characters"
                )
            # The runtime never returns overlapping (or repeated) entities: where normalization
            # maps two spans onto one original character (NFKC turns "…" into "..."),
            # models.runtime.drop_overlaps keeps the better one.
            if spans and entity.start < spans[-1].end:
                raise InferenceError("the model returned overlapping entities")
            # The mention is cut from the original text here, so text == record.text[start:end]
            # holds by construction.
            spans.append(
                EntitySpan(
                    entity.type,
                    text[entity.start : entity.end],
                    entity.start,
                    entity.end,
                    entity.score,
                )
            )
        spans_per_text.append(spans)
    return spans_per_text


def entity_output(
    message: RawMessage,
    record: InputRecord,
    spans: list[EntitySpan],
    config: PipelineConfig,
    processed_at: datetime,
) -> Output:
    """The entity event of one record, keyed like the input (or by record id if unkeyed)."""
    event = EntityEvent(
        record_id=record.id,
        source=record.source,
        entities=tuple(spans),
        model=config.model,
        input=message.position,
        created_at=record.created_at,
        processed_at=processed_at,
        event_id=event_id(message.position, config.model),
    )
    value = _framed(ENTITY_EVENT.encode(event), config.entity_event_schema_id)
    if len(value) > config.max_output_bytes:
        return dead_letter(
            message,
            ErrorCode.OUTPUT_TOO_LARGE,
            f"the entity event has {len(value)} bytes, more than {config.max_output_bytes}",
            config,
            processed_at,
        )
    return Output(
        kind="entities",
        topic=config.entities_topic,
        key=message.key if message.key is not None else record.id.encode("utf-8"),
        value=value,
        headers=((SCHEMA_HEADER, ENTITY_EVENT_SCHEMA),),
        source=message,
        latency_s=(processed_at - record.created_at).total_seconds(),
        entity_types=tuple(span.type for span in spans),
    )


def review_output(
    message: RawMessage,
    record: InputRecord,
    spans: list[EntitySpan],
    config: PipelineConfig,
    processed_at: datetime,
) -> Output | None:
    """The review task of one record if the review rules select it; None otherwise, and also
    when the task is too large to produce (the entity event is never held back for it)."""
    reason = review_reason(record.id, [span.score for span in spans], config.review)
    if reason is None:
        return None
    task = ReviewTask(
        record_id=record.id,
        source=record.source,
        text=record.text,
        entities=tuple(spans),
        model=config.model,
        reason=reason,
        confidence=sequence_confidence(span.score for span in spans),
        input=message.position,
        created_at=record.created_at,
        processed_at=processed_at,
    )
    value = _framed(REVIEW_TASK.encode(task), config.review_task_schema_id)
    if len(value) > config.max_output_bytes:
        logger.warning(
            "review task of topic=%s partition=%d offset=%d left out: %d bytes",
            message.topic,
            message.partition,
            message.offset,
            len(value),
        )
        return None
    return Output(
        kind="review",
        topic=config.review_topic,
        key=message.key if message.key is not None else record.id.encode("utf-8"),
        value=value,
        headers=((SCHEMA_HEADER, REVIEW_TASK_SCHEMA),),
        source=message,
    )


def dead_letter(
    message: RawMessage,
    error_code: str,
    error_message: str,
    config: PipelineConfig,
    failed_at: datetime,
) -> Output:
    """The dead letter of one message: its original key, value and headers, and why."""
    letter = DeadLetter(
        key=message.key,
        value=message.value,
        headers=tuple(Header(key, value) for key, value in message.headers),
        input=message.position,
        error_code=str(error_code),
        error_message=error_message,
        worker_id=config.worker_id,
        failed_at=failed_at,
    )
    value = _framed(DEAD_LETTER.encode(letter), config.dead_letter_schema_id)
    if len(value) > config.max_output_bytes:
        # Keeping the dead letter beats keeping its bytes: they can still be found at
        # input.topic/partition/offset while the input's retention lasts.
        letter = replace(
            letter,
            value=None,
            headers=(),
            error_message=(
                f"{error_message} [original value and headers ({len(value)} bytes with them) "
                "left out: too large for the dead-letter topic]"
            ),
        )
        value = _framed(DEAD_LETTER.encode(letter), config.dead_letter_schema_id)
    return Output(
        kind="dead_letter",
        topic=config.dead_letter_topic,
        key=message.key,
        value=value,
        headers=((SCHEMA_HEADER, DEAD_LETTER_SCHEMA),),
        source=message,
        error_code=str(error_code),
    )


def _framed(body: bytes, schema_id: int | None) -> bytes:
    """The Confluent wire format in registry mode, else the plain Avro body."""
    return body if schema_id is None else frame(schema_id, body)
