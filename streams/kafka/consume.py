"""``nerstream consume``: read entity events, dead letters and review tasks back, decoded by their
schema.

Uses confluent-kafka with the configured security settings, so it works against a real cluster as
well as the local broker.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message

from schemas.codecs import (
    DEAD_LETTER,
    DEAD_LETTER_SCHEMA,
    ENTITY_EVENT,
    ENTITY_EVENT_SCHEMA,
    REVIEW_TASK,
    REVIEW_TASK_SCHEMA,
    SCHEMA_HEADER,
    AvroCodec,
    DeadLetter,
    EntityEvent,
    ReviewTask,
    to_json,
)
from schemas.errors import DecodeError
from schemas.framing import WriterSchemaLookup
from streams.kafka.admin import KafkaToolError, refuse_on_authentication_error
from streams.registry.client import RegistryClient
from streams.registry.wire import WriterSchemas
from streams.settings import Settings

#: Entities shown per line of ``consume``'s table (JSON output has them all).
TABLE_ENTITIES = 12
OutputValue = EntityEvent | DeadLetter | ReviewTask
_CODECS: dict[bytes, AvroCodec[Any]] = {
    DEAD_LETTER_SCHEMA: DEAD_LETTER,
    REVIEW_TASK_SCHEMA: REVIEW_TASK,
}
_KIND = {EntityEvent: "entity_event", DeadLetter: "dead_letter", ReviewTask: "review_task"}


@dataclass(frozen=True)
class ConsumedOutput:
    """One message of the entities or dead-letter topic, decoded."""

    partition: int
    offset: int
    value: OutputValue | None
    #: Why ``value`` is None.
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        where = {"partition": self.partition, "offset": self.offset}
        if self.value is None:
            return {"kind": "undecodable", **where, "error": self.error}
        return {"kind": _KIND[type(self.value)], **where, **to_json(self.value)}


def decode_output(
    message: Message, dead_letter_topic: str, writer_schema: WriterSchemaLookup | None = None
) -> ConsumedOutput:
    """Decode by the ``nerstream-schema`` header, else by topic: dead-letter topic or not.

    With ``writer_schema`` (registry mode) values are in the Confluent wire format, read with
    the writer schema of their id resolved to the current schema.
    """
    schema = dict(message.headers() or ()).get(SCHEMA_HEADER)
    if schema is None:
        schema = DEAD_LETTER_SCHEMA if message.topic() == dead_letter_topic else ENTITY_EVENT_SCHEMA
    codec = _CODECS.get(schema.encode() if isinstance(schema, str) else schema, ENTITY_EVENT)
    partition, offset = message.partition() or 0, message.offset() or 0
    value = message.value() or b""
    try:
        if writer_schema is None:
            return ConsumedOutput(partition, offset, codec.decode(value))
        return ConsumedOutput(partition, offset, codec.decode_framed(value, writer_schema))
    except DecodeError as exc:
        return ConsumedOutput(partition, offset, None, f"{exc.error_code}: {exc.message}")


#: Errors no retry can cure: the principal may not read the topic or use the group (ACLs).
_NOT_ALLOWED = (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED)


def consume_outputs(
    settings: Settings,
    topic: str,
    *,
    from_beginning: bool = False,
    max_messages: int | None = None,
    group: str | None = None,
    idle_timeout_s: float | None = None,
) -> Iterator[ConsumedOutput]:
    """Yield decoded outputs until ``max_messages`` or ``idle_timeout_s`` without a message.

    Without ``group`` a throw-away group is used and nothing is committed; with one, offsets
    are committed as usual, so a second run continues where the first stopped.
    """
    consumer = Consumer(
        {
            **settings.kafka.confluent_config(),
            "group.id": group or f"nerstream-consume-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": group is not None,
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "enable.partition.eof": False,
            "error_cb": refuse_on_authentication_error,
        }
    )
    registry = settings.schema_registry
    writer_schema = (
        WriterSchemas(RegistryClient(registry), registry.outage_timeout_s)
        if registry.enabled
        else None
    )
    try:
        consumer.subscribe([topic])
        count = 0
        last_message_at = time.monotonic()
        while max_messages is None or count < max_messages:
            message = consumer.poll(0.5)
            if message is None:
                if (
                    idle_timeout_s is not None
                    and time.monotonic() - last_message_at > idle_timeout_s
                ):
                    return
                continue
            error = message.error()
            if error is not None:
                if error.fatal() or error.code() in _NOT_ALLOWED:
                    raise KafkaToolError(f"consuming {topic}: {error.str()}")
                continue
            last_message_at = time.monotonic()
            count += 1
            yield decode_output(message, settings.topics.dead_letter, writer_schema)
    finally:
        consumer.close()


def format_output(output: ConsumedOutput) -> str:
    """One human-readable line (for a terminal): position, record, entities or error."""
    where = f"{output.partition}:{output.offset}"
    value = output.value
    if value is None:
        return f"{where:>10}  UNDECODABLE  {output.error}"
    if isinstance(value, DeadLetter):
        return (
            f"{where:>10}  DEAD LETTER  {value.error_code}  "
            f"from {value.input.topic}[{value.input.partition}]@{value.input.offset}  "
            f"{value.error_message}"
        )
    shown = [f"{span.text}/{span.type}" for span in value.entities[:TABLE_ENTITIES]]
    if len(value.entities) > TABLE_ENTITIES:
        shown.append(f"... (+{len(value.entities) - TABLE_ENTITIES} more)")
    review = f"REVIEW {value.reason}  " if isinstance(value, ReviewTask) else ""
    return (
        f"{where:>10}  {review}{value.record_id}  {value.source:<7}  {'  '.join(shown) or '(none)'}"
    )
