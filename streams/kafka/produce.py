"""``nerstream produce``: send records to Kafka, idempotent and ``acks=all``.

Uses confluent-kafka with the configured security settings, so it works against a real cluster as
well as the local broker.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from confluent_kafka import KafkaError, Message, Producer

from schemas.codecs import CONTENT_TYPE_HEADER, RECORD, InputRecord, to_json
from schemas.framing import frame
from streams.kafka.admin import refuse_on_authentication_error
from streams.kafka.files import RowError
from streams.registry.client import RegistryClient
from streams.registry.wire import register_schema
from streams.settings import Settings

ValueFormat = Literal["avro", "json"]


@dataclass
class ProduceReport:
    """What ``nerstream produce`` did."""

    sent: int = 0
    delivered: int = 0
    #: Rows refused before sending, and outputs the broker did not acknowledge.
    invalid: list[RowError] = field(default_factory=list)
    delivery_errors: Counter[str] = field(default_factory=Counter)

    @property
    def failed(self) -> int:
        return len(self.invalid) + sum(self.delivery_errors.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "delivered": self.delivered,
            "invalid_rows": len(self.invalid),
            "delivery_errors": dict(self.delivery_errors),
        }


def encode_record(
    record: InputRecord, value_format: ValueFormat, schema_id: int | None = None
) -> tuple[bytes, list[Any]]:
    """The Kafka value and headers of a record: Avro (plain, or in the Confluent wire format
    under ``schema_id``), or JSON with a content-type."""
    if value_format == "avro":
        body = RECORD.encode(record)
        return (body if schema_id is None else frame(schema_id, body)), []
    value = json.dumps(to_json(record), ensure_ascii=False).encode("utf-8")
    return value, [(CONTENT_TYPE_HEADER, b"application/json")]


def produce_records(
    settings: Settings,
    topic: str,
    records: Iterable[InputRecord | RowError],
    *,
    value_format: ValueFormat = "avro",
    rate: float | None = None,
    on_progress: Callable[[int], None] = lambda _: None,
) -> ProduceReport:
    """Send records keyed by id (idempotent, acks=all); wait for every delivery report.

    ``topic`` may contain ``{source}``, replaced by each record's source (news, medical, other).
    In registry mode Avro records are framed with the Record schema's id under each topic's
    subject (registered on first use, or looked up when auto_register is off).
    """
    report = ProduceReport()
    registry = settings.schema_registry
    client = RegistryClient(registry) if registry.enabled and value_format == "avro" else None
    schema_ids: dict[str, int] = {}
    producer = Producer(
        {
            **settings.kafka.confluent_config(),
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": "murmur2_random",
            "error_cb": refuse_on_authentication_error,
        }
    )

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        if error is None:
            report.delivered += 1
        else:
            report.delivery_errors[error.str()] += 1
        on_progress(1)

    started = time.monotonic()
    for item in records:
        if isinstance(item, RowError):
            report.invalid.append(item)
            on_progress(1)
            continue
        if rate:
            # Pace by schedule, not by sleeping a fixed gap: the average rate stays exact.
            delay = started + report.sent / rate - time.monotonic()
            if delay > 0:
                producer.poll(delay)
        item_topic = topic.replace("{source}", item.source)
        schema_id = None
        if client is not None:
            if item_topic not in schema_ids:
                schema_ids[item_topic] = register_schema(client, registry, item_topic, RECORD)
            schema_id = schema_ids[item_topic]
        value, headers = encode_record(item, value_format, schema_id)
        while True:
            try:
                producer.produce(
                    item_topic,
                    value=value,
                    key=item.id.encode("utf-8"),
                    headers=headers,
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                producer.poll(0.1)
        report.sent += 1
        producer.poll(0)
    # poll, not flush(60): an exception raised by error_cb (wrong credentials) ends poll at
    # once, while flush would go on to its timeout first.
    deadline = time.monotonic() + 60
    while len(producer) and time.monotonic() < deadline:
        producer.poll(0.2)
    left = len(producer)
    if left:
        report.delivery_errors["not delivered within 60 s"] += left
    return report
