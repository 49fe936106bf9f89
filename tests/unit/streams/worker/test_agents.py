"""NerWorker without a broker: batches through its own transport seam, metrics per worker,
and the crash-stop when outputs cannot be delivered."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError
from faust.types import TP

from schemas.codecs import RECORD, InputRecord
from streams.settings import Settings, load_settings
from streams.worker.agents import EXIT_CRASH_STOP, NerWorker
from streams.worker.pipeline import Output
from tests.poison import CREATED_AT
from tests.unit.streams.worker.test_pipeline import FakeEntity, digits_model


class FakeModel:
    manifest = SimpleNamespace(name="digits", version="1")
    provider = "CPUExecutionProvider"

    def predict(self, texts: list[str]) -> list[list[FakeEntity]]:
        return digits_model(texts)


class RecordingTransport:
    """Acknowledges everything (or fails everything) and remembers what it was given."""

    def __init__(self, error: KafkaError | None = None) -> None:
        self.error = error
        self.sent: list[Output] = []

    async def send(self, outputs: Sequence[Output]) -> list[KafkaError | None]:
        self.sent.extend(outputs)
        return [self.error] * len(outputs)


def settings(tmp_path: Path, name: str) -> Settings:
    base = load_settings({"topics.inputs": "news", "worker.worker_id": name}, env={})
    return dataclasses.replace(
        base, worker=dataclasses.replace(base.worker, data_dir=tmp_path / name)
    )


def event(offset: int, value: bytes | None) -> Any:
    """What handle_batch reads of a Faust event: its message."""
    message = SimpleNamespace(
        topic="news", partition=0, offset=offset, key=b"k", value=value, headers=[]
    )
    return SimpleNamespace(message=message)


def record_value(text: str) -> bytes:
    return RECORD.encode(InputRecord(id="r", text=text, created_at=CREATED_AT))


def metric(worker: NerWorker, name: str, labels: dict[str, str]) -> float | None:
    return worker.metrics.registry.get_sample_value(name, labels)


def test_two_workers_in_one_process_count_their_own_batches(tmp_path: Path) -> None:
    first_transport, second_transport = RecordingTransport(), RecordingTransport()
    first = NerWorker(settings(tmp_path, "w1"), FakeModel(), transport=first_transport)
    second = NerWorker(settings(tmp_path, "w2"), FakeModel(), transport=second_transport)
    try:
        asyncio.run(first.handle_batch([event(0, record_value("3个")), event(1, b"\xff")]))
        assert [out.kind for out in first_transport.sent] == ["entities", "dead_letter"]
        assert not second_transport.sent
        consumed = {"topic": "news"}
        assert metric(first, "nerstream_records_consumed_total", consumed) == 2
        assert metric(first, "nerstream_entity_events_produced_total", consumed) == 1
        dead = {"topic": "news", "error_code": "DECODE_AVRO"}
        assert metric(first, "nerstream_records_dead_lettered_total", dead) == 1
        assert metric(first, "nerstream_entities_found_total", {"type": "NUM"}) == 1
        assert metric(second, "nerstream_records_consumed_total", consumed) is None
        assert (first.state.batches, first.state.records) == (1, 2)
        assert second.state.batches == 0
    finally:
        first.close()
        second.close()


def test_undeliverable_outputs_stop_the_process_before_the_batch_is_acked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exits: list[int] = []

    def exit_now(code: int) -> None:
        exits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(os, "_exit", exit_now)
    transport = RecordingTransport(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
    worker = NerWorker(settings(tmp_path, "w1"), FakeModel(), transport=transport)
    try:
        with pytest.raises(SystemExit):
            asyncio.run(worker.handle_batch([event(0, record_value("1"))]))
        assert exits == [EXIT_CRASH_STOP]
        assert worker.state.batches == 0
    finally:
        worker.close()


def test_readiness_needs_partitions(tmp_path: Path) -> None:
    worker = NerWorker(settings(tmp_path, "w1"), FakeModel(), transport=RecordingTransport())
    try:
        assert worker.state.readiness() == (False, ["no input partitions assigned"])
        worker.state.assigned = frozenset({TP("news", 0)})
        assert worker.state.readiness() == (True, [])
    finally:
        worker.close()
