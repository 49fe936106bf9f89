"""Registry mode against a real schema registry (Apicurio, started by the session fixture) and
the real broker: the client, start-up registration and refusal, framed inputs of every kind,
the worker's framed outputs read by Confluent's own ``AvroDeserializer``, schema evolution under
BACKWARD, and a registry outage (the JVM frozen with SIGSTOP) that dead-letters nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from errors import EXIT_USAGE
from schemas.codecs import (
    DEAD_LETTER,
    ENTITY_EVENT,
    RECORD,
    EntityEvent,
    InputRecord,
    load_schema,
    parse_schema,
    to_millis,
    write_datum,
)
from schemas.framing import frame, parse_writer_schema
from streams.kafka.consume import consume_outputs
from streams.kafka.produce import produce_records
from streams.registry.client import (
    IncompatibleSchemaError,
    RegistryClient,
    RegistryUnavailableError,
)
from streams.registry.wire import SchemaRegistrationError, register_schema
from streams.settings import SchemaRegistrySettings, Settings
from tests.conftest import KafkaScope, Registry, free_port
from tests.integration.worker_process import (
    WorkerProcess,
    committed_offsets,
    end_offsets,
    wait_committed_to_end,
)
from tests.records import CREATED_AT, mixed_records

pytestmark = pytest.mark.integration

V0_RECORD = Path(__file__).parents[1] / "data" / "avro" / "record_v0.avsc"
PROCESS_TIMEOUT_S = 300.0


def _with_field(codec_text: str, new_field: dict[str, Any]) -> str:
    schema = json.loads(codec_text)
    schema["fields"].append(new_field)
    return json.dumps(schema)


#: The next version of EntityEvent: a new field with a default (BACKWARD-compatible).
NEXT_ENTITY_EVENT = _with_field(
    ENTITY_EVENT.schema_text,
    {"name": "language", "type": "string", "default": "zh", "doc": "Language of the text."},
)
#: An incompatible change: record_id becomes an int.
INCOMPATIBLE_ENTITY_EVENT = json.dumps(
    {
        "type": "record",
        "name": "EntityEvent",
        "namespace": "nerstream.v1",
        "fields": [{"name": "record_id", "type": "int"}],
    }
)
#: A Record that no reader of the current Record can read (id is an int).
INT_ID_RECORD = json.dumps(
    {
        "type": "record",
        "name": "Record",
        "namespace": "nerstream.v1",
        "fields": [{"name": "id", "type": "int"}],
    }
)


def registry_mode(settings: Settings, url: str, **fields: Any) -> Settings:
    return dataclasses.replace(
        settings,
        schema_registry=dataclasses.replace(settings.schema_registry, url=url, **fields),
    )


@contextmanager
def confluent_client(url: str) -> Iterator[SchemaRegistryClient]:
    """Confluent's own registry client, for its AvroDeserializer: no nerstream code."""
    client = SchemaRegistryClient({"url": url, "timeout": 10})
    try:
        yield client
    finally:
        client.close()


def read_all(settings: Settings, topic: str) -> list[tuple[bytes | None, bytes]]:
    """Every (key, value) of ``topic``, read to its end."""
    consumer = Consumer(
        {
            **settings.kafka.confluent_config(),
            "group.id": f"read-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    end = sum(end_offsets(settings, topic, 1).values())
    messages: list[tuple[bytes | None, bytes]] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        while len(messages) < end:
            assert time.monotonic() < deadline, f"read {len(messages)} of {end} from {topic}"
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                messages.append((message.key(), message.value() or b""))
    finally:
        consumer.close()
    return messages


def send(settings: Settings, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = Producer(settings.kafka.confluent_config())
    for key, value in messages:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


@contextmanager
def frozen(registry: Registry) -> Iterator[None]:
    """The registry's JVM stopped (SIGSTOP): connections open, nothing answers."""
    os.kill(registry.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(registry.pid, signal.SIGCONT)


# --- the client and start-up registration ------------------------------------------------------


def test_client_registers_looks_up_evolves_and_refuses(registry: Registry) -> None:
    settings = SchemaRegistrySettings(url=registry.url)
    client = RegistryClient(settings)
    topic = f"test-{uuid.uuid4().hex[:12]}.entities"
    subject = f"{topic}-value"

    schema_id = register_schema(client, settings, topic, ENTITY_EVENT)
    assert client.compatibility(subject) == "BACKWARD"
    assert register_schema(client, settings, topic, ENTITY_EVENT) == schema_id
    assert client.lookup(subject, ENTITY_EVENT.schema_text) == schema_id
    fetched = client.schema_by_id(schema_id)
    assert fetched is not None
    assert parse_writer_schema(schema_id, fetched.schema)["name"] == "nerstream.v1.EntityEvent"
    assert client.schema_by_id(987_654) is None

    # Evolution: a new field with a default is accepted under BACKWARD ...
    assert client.check_compatibility(subject, NEXT_ENTITY_EVENT) == (True, "")
    next_id = client.register(subject, NEXT_ENTITY_EVENT)
    assert next_id != schema_id
    # ... a changed field type is refused, with the registry's reason.
    compatible, reason = client.check_compatibility(subject, INCOMPATIBLE_ENTITY_EVENT)
    assert not compatible and "INT" in reason
    with pytest.raises(IncompatibleSchemaError) as refused:
        client.register(subject, INCOMPATIBLE_ENTITY_EVENT)
    assert refused.value.status == 409

    # auto_register off: the schema must be there already, else a clear refusal.
    strict = dataclasses.replace(settings, auto_register=False)
    assert register_schema(client, strict, topic, ENTITY_EVENT) == schema_id
    with pytest.raises(SchemaRegistrationError, match="auto_register is off"):
        register_schema(client, strict, f"{topic}-other", ENTITY_EVENT)


def test_a_registry_that_does_not_answer_is_a_temporary_error() -> None:
    client = RegistryClient(SchemaRegistrySettings(url=f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(RegistryUnavailableError, match="did not answer"):
        client.schema_by_id(1)


def test_worker_refuses_to_start_when_its_schema_is_refused_or_missing(
    kafka: KafkaScope, registry: Registry, tmp_path: Path, serving_model_dir: Path
) -> None:
    entities = kafka.topic("entities")
    dead_letter = kafka.topic("dead-letter")
    client = RegistryClient(SchemaRegistrySettings(url=registry.url))
    # Someone registered an EntityEvent that the worker's is not BACKWARD-compatible with.
    client.set_compatibility(f"{entities}-value", "BACKWARD")
    client.register(f"{entities}-value", INCOMPATIBLE_ENTITY_EVENT)
    settings = dataclasses.replace(
        kafka.settings,
        topics=dataclasses.replace(
            kafka.settings.topics,
            inputs=(kafka.topic("records"),),
            entities=entities,
            dead_letter=dead_letter,
        ),
    )
    overrides = {"model.model_dir": str(serving_model_dir), "schema_registry.url": registry.url}
    refused = WorkerProcess(settings, tmp_path / "refused.log", overrides=overrides).start()
    assert refused.process is not None
    assert refused.process.wait(PROCESS_TIMEOUT_S) == EXIT_USAGE, refused.log_tail()
    assert "refused nerstream.v1.EntityEvent under subject" in refused.log_tail()
    assert "not compatible (BACKWARD)" in refused.log_tail()

    # auto_register off and nothing registered under the dead-letter subject: refused too.
    fresh = dataclasses.replace(
        settings.topics, entities=kafka.topic("entities-2"), dead_letter=kafka.topic("dlq-2")
    )
    strict = WorkerProcess(
        dataclasses.replace(settings, topics=fresh),
        tmp_path / "strict.log",
        overrides={**overrides, "schema_registry.auto_register": "false"},
    ).start()
    assert strict.process is not None
    assert strict.process.wait(PROCESS_TIMEOUT_S) == EXIT_USAGE, strict.log_tail()
    assert "is not registered under subject" in strict.log_tail()


# --- the worker in registry mode ---------------------------------------------------------------


def test_worker_in_registry_mode(
    kafka: KafkaScope, registry: Registry, tmp_path: Path, serving_model_dir: Path
) -> None:
    records_topic = kafka.topic("records")
    entities = kafka.topic("entities")
    dead_letter = kafka.topic("dead-letter")
    settings = registry_mode(
        dataclasses.replace(
            kafka.settings,
            topics=dataclasses.replace(
                kafka.settings.topics,
                inputs=(records_topic,),
                entities=entities,
                dead_letter=dead_letter,
            ),
            worker=dataclasses.replace(kafka.settings.worker, group_id=kafka.group("ner")),
        ),
        registry.url,
    )
    client = RegistryClient(settings.schema_registry)

    # Framed by `produce` in registry mode (Record registered under <topic>-value).
    records = list(mixed_records(12))
    report = produce_records(settings, records_topic, records)
    assert report.delivered == 12 and not report.failed
    record_id = client.lookup(f"{records_topic}-value", RECORD.schema_text)
    assert record_id is not None

    # Framed by other producers: an older Record version, an unknown id, an incompatible
    # writer schema, a frame cut short; and a plain Avro record, still read in registry mode.
    v0_id = client.register(f"{kafka.prefix}.older-value", V0_RECORD.read_text(encoding="utf-8"))
    int_id = client.register(f"{kafka.prefix}.int-id-value", INT_ID_RECORD)
    millis = to_millis(CREATED_AT)
    v0_body = write_datum(
        load_schema(V0_RECORD), {"id": "v0", "text": "新华社北京电", "created_at": millis}
    )
    plain = RECORD.encode(InputRecord(id="plain", text="李明在上海工作", created_at=CREATED_AT))
    send(
        settings,
        records_topic,
        [
            (b"v0", frame(v0_id, v0_body)),
            (b"plain", plain),
            (b"unknown", frame(2_000_000, plain)),
            (
                b"int-id",
                frame(int_id, write_datum(parse_schema(json.loads(INT_ID_RECORD)), {"id": 5})),
            ),
            (b"short", b"\x00\x00\x01"),
        ],
    )

    worker = WorkerProcess(
        settings,
        tmp_path / "worker.log",
        overrides={
            "model.model_dir": str(serving_model_dir),
            "worker.worker_id": "registry-worker",
            # A frozen registry shows as timeouts: keep them short so the test sees retries.
            "schema_registry.timeout_s": "2",
        },
    ).start()
    try:
        with confluent_client(registry.url) as confluent:
            check_registry_mode(
                settings,
                registry=registry,
                worker=worker,
                confluent=confluent,
                records=records,
                prefix=kafka.prefix,
            )
    finally:
        assert worker.stop() == 0, worker.log_tail()


def check_registry_mode(
    settings: Settings,
    *,
    registry: Registry,
    worker: WorkerProcess,
    confluent: SchemaRegistryClient,
    records: list[InputRecord],
    prefix: str,
) -> None:
    client = RegistryClient(settings.schema_registry)
    records_topic = settings.topics.inputs[0]
    entities, dead_letter = settings.topics.entities, settings.topics.dead_letter
    worker.wait_ready()
    committed = wait_committed_to_end(
        settings, settings.worker.group_id, records_topic, 1, PROCESS_TIMEOUT_S
    )
    assert committed == end_offsets(settings, records_topic, 1), worker.log_tail()

    # Outputs are in the Confluent wire format under the ids of their subjects.
    entity_id = client.lookup(f"{entities}-value", ENTITY_EVENT.schema_text)
    letter_id = client.lookup(f"{dead_letter}-value", DEAD_LETTER.schema_text)
    assert entity_id is not None and letter_id is not None
    events = read_all(settings, entities)
    letters = read_all(settings, dead_letter)
    assert {value[:5] for _, value in events} == {frame(entity_id, b"")}
    assert {value[:5] for _, value in letters} == {frame(letter_id, b"")}

    # Confluent's AvroDeserializer (not nerstream's decoder) reads them.
    read_event = AvroDeserializer(confluent)
    context = SerializationContext(entities, MessageField.VALUE)
    decoded = [read_event(value, context) for _, value in events]
    assert sorted(event["record_id"] for event in decoded) == sorted(
        [*(record.id for record in records), "v0", "plain"]
    )
    v0_event = next(event for event in decoded if event["record_id"] == "v0")
    assert v0_event["source"] == "other"  # the old writer had no source: the default
    letter_context = SerializationContext(dead_letter, MessageField.VALUE)
    read_letter = AvroDeserializer(confluent)
    codes = {
        letter["input"]["offset"]: letter["error_code"]
        for letter in (read_letter(value, letter_context) for _, value in letters)
    }
    assert sorted(codes.values()) == sorted(
        ["UNKNOWN_SCHEMA_ID", "INCOMPATIBLE_SCHEMA", "DECODE_AVRO"]
    )

    # Evolution: the next EntityEvent (a defaulted field) is accepted under BACKWARD; a new
    # consumer reads the worker's events with it, an old one (nerstream's consume, the
    # current schema) reads events written with it.
    next_id = client.register(f"{entities}-value", NEXT_ENTITY_EVENT)
    read_new = AvroDeserializer(confluent, NEXT_ENTITY_EVENT)
    assert {read_new(value, context)["language"] for _, value in events} == {"zh"}
    next_datum = {**ENTITY_EVENT.to_datum(decode_ours(settings, entities)[0]), "language": "ja"}
    next_body = write_datum(parse_schema(json.loads(NEXT_ENTITY_EVENT)), next_datum)
    send(settings, entities, [(b"next", frame(next_id, next_body))])
    ours = decode_ours(settings, entities)
    assert len(ours) == len(events) + 1
    assert ours[-1].record_id == ours[0].record_id

    # Outage: a writer schema the worker has not seen, while the registry is frozen. The
    # record waits (nothing dead-lettered, nothing committed past it), then goes through.
    newer_text = _with_field(RECORD.schema_text, {"name": "lang", "type": "string", "default": ""})
    newer_id = client.register(f"{prefix}.newer-value", newer_text)
    newer_body = write_datum(
        parse_schema(json.loads(newer_text)),
        {
            **RECORD.to_datum(InputRecord(id="late", text="王芳去了北京", created_at=CREATED_AT)),
            "lang": "zh",
        },
    )
    end_before = end_offsets(settings, records_topic, 1)
    with frozen(registry):
        send(settings, records_topic, [(b"late", frame(newer_id, newer_body))])
        deadline = time.monotonic() + 60
        while "schema registry unavailable, retrying" not in worker.log_tail(200):
            assert time.monotonic() < deadline, worker.log_tail()
            time.sleep(1)
        worker.assert_running()
        assert committed_offsets(settings, settings.worker.group_id, end_before) == end_before
        assert len(read_all(settings, dead_letter)) == len(letters)
    wait_committed_to_end(settings, settings.worker.group_id, records_topic, 1, 120)
    assert len(read_all(settings, dead_letter)) == len(letters)
    late = [
        read_event(value, context) for key, value in read_all(settings, entities) if key == b"late"
    ]
    assert [event["record_id"] for event in late] == ["late"]


def decode_ours(settings: Settings, topic: str) -> list[EntityEvent]:
    """The topic's entity events through ``nerstream consume``'s decoder in registry mode."""
    outputs = consume_outputs(settings, topic, from_beginning=True, idle_timeout_s=5)
    values = [output.value for output in outputs]
    assert all(isinstance(value, EntityEvent) for value in values), values
    return [value for value in values if isinstance(value, EntityEvent)]
