"""NerWorker without a broker: batches through its own transport seam, metrics per worker,
and the crash-stop when outputs cannot be delivered."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError
from faust.types import TP

from schemas.codecs import RECORD, InputRecord
from schemas.framing import Schema, frame
from streams.registry.wire import RegistryOutageError
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

    async def produce(self, outputs: Sequence[Output]) -> Awaitable[list[KafkaError | None]]:
        future: asyncio.Future[list[KafkaError | None]] = asyncio.get_running_loop().create_future()
        future.set_result(await self.send(outputs))
        return future


def settings(tmp_path: Path, name: str) -> Settings:
    base = load_settings({"topics.inputs": "news", "worker.worker_id": name}, env={})
    return dataclasses.replace(
        base, worker=dataclasses.replace(base.worker, data_dir=tmp_path / name)
    )


class FakeMessage(SimpleNamespace):
    refcount = 1

    def incref(self) -> None:
        self.refcount += 1


class FakeEvent:
    """What the worker uses of a Faust event: its message, and ``ack`` (which drops one
    reference; the last one marks the offset committable)."""

    def __init__(self, message: FakeMessage, acked: list[int]) -> None:
        self.message = message
        self._acked = acked

    def ack(self) -> bool:
        self.message.refcount -= 1
        if self.message.refcount == 0:
            self._acked.append(self.message.offset)
            return True
        return False


def event(offset: int, value: bytes | None, acked: list[int] | None = None) -> Any:
    message = FakeMessage(
        topic="news",
        partition=0,
        offset=offset,
        key=b"k",
        value=value,
        headers=[],
        timestamp=time.time(),  # Kafka's record timestamp, just produced
    )
    return FakeEvent(message, acked if acked is not None else [])


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


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Exit codes of crash-stops, which raise SystemExit here instead of ending the process."""
    codes: list[int] = []

    def exit_now(code: int) -> None:
        codes.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(os, "_exit", exit_now)
    return codes


def test_undeliverable_outputs_stop_the_process_before_the_batch_is_acked(
    tmp_path: Path, exits: list[int]
) -> None:
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


class HeldTransport:
    """Takes outputs at once and acknowledges each batch only when the test says so."""

    def __init__(self) -> None:
        self.batches: list[list[Output]] = []
        self.acks: list[asyncio.Future[list[KafkaError | None]]] = []

    async def send(self, outputs: Sequence[Output]) -> list[KafkaError | None]:
        return await (await self.produce(outputs))

    async def produce(self, outputs: Sequence[Output]) -> Awaitable[list[KafkaError | None]]:
        future: asyncio.Future[list[KafkaError | None]] = asyncio.get_running_loop().create_future()
        self.batches.append(list(outputs))
        self.acks.append(future)
        return future

    def acknowledge(self, index: int, error: KafkaError | None = None) -> None:
        self.acks[index].set_result([error] * len(self.batches[index]))


async def until(condition: Any, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.005)


async def take(worker: NerWorker, events: list[Any]) -> None:
    """What a Faust agent does: submit a batch; then ``take`` acks it (not finally: the worker
    holds one more reference until delivery)."""
    await worker.submit(events)
    for item in events:
        item.ack()


def pipelined_settings(tmp_path: Path, **worker: Any) -> Settings:
    base = settings(tmp_path, "w1")
    return dataclasses.replace(base, worker=dataclasses.replace(base.worker, **worker))


def test_later_batches_are_inferred_and_produced_while_earlier_ones_wait_for_acks(
    tmp_path: Path,
) -> None:
    transport = HeldTransport()
    worker = NerWorker(
        pipelined_settings(tmp_path, max_batch=2, max_in_flight_batches=3),
        FakeModel(),
        transport=transport,
    )
    acked: list[int] = []

    async def scenario() -> None:
        await take(
            worker, [event(offset, record_value(f"{offset}个"), acked) for offset in range(6)]
        )
        # Three batches of two are produced although none is acknowledged yet.
        await until(lambda: len(transport.batches) == 3)
        assert [len(batch) for batch in transport.batches] == [2, 2, 2]
        assert metric(worker, "nerstream_batches_in_flight", {}) == 3
        # Acks of later batches wait for the first: nothing is committable yet.
        transport.acknowledge(2)
        transport.acknowledge(1)
        await asyncio.sleep(0.05)
        assert acked == [], "no offset acked while an earlier batch is unacknowledged"
        transport.acknowledge(0)
        await until(lambda: len(acked) == 6)
        assert acked == list(range(6)), "acked in offset order"
        assert (worker.state.batches, worker.state.records) == (3, 6)

    try:
        asyncio.run(scenario())
    finally:
        worker.close()


def test_in_flight_batches_are_bounded(tmp_path: Path) -> None:
    transport = HeldTransport()
    worker = NerWorker(
        pipelined_settings(tmp_path, max_batch=1, max_in_flight_batches=2),
        FakeModel(),
        transport=transport,
    )

    async def scenario() -> None:
        # Back-pressure: with more than two batches' worth waiting, submit itself waits.
        submitting = asyncio.create_task(
            worker.submit([event(offset, record_value("1")) for offset in range(5)])
        )
        await until(lambda: len(transport.batches) == 2)
        await asyncio.sleep(0.05)
        assert len(transport.batches) == 2, "a third batch waits until one is acked"
        assert not submitting.done()
        transport.acknowledge(0)
        await until(lambda: len(transport.batches) == 3)
        transport.acknowledge(1)
        await until(submitting.done)

    try:
        asyncio.run(scenario())
    finally:
        worker.close()


def test_a_failed_later_batch_stops_the_process_before_anything_is_acked(
    tmp_path: Path, exits: list[int]
) -> None:
    transport = HeldTransport()
    worker = NerWorker(
        pipelined_settings(tmp_path, max_batch=1, max_in_flight_batches=4),
        FakeModel(),
        transport=transport,
    )
    acked: list[int] = []

    async def scenario() -> None:
        await take(worker, [event(offset, record_value("1"), acked) for offset in range(2)])
        await until(lambda: len(transport.batches) == 2)
        transport.acknowledge(1, KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
        await until(lambda: bool(exits))

    try:
        with pytest.raises(SystemExit):
            asyncio.run(scenario())
        assert exits == [EXIT_CRASH_STOP]
        assert acked == [], "the first batch was never acknowledged, the second failed"
    finally:
        worker.close()


def test_a_registry_outage_longer_than_its_timeout_stops_the_process_unacked(
    tmp_path: Path, exits: list[int]
) -> None:
    def registry_away(schema_id: int) -> Schema:
        raise RegistryOutageError(f"schema id {schema_id} could not be fetched for 300 s")

    transport = RecordingTransport()
    worker = NerWorker(settings(tmp_path, "w1"), FakeModel(), transport=transport)
    worker.config = dataclasses.replace(worker.config, writer_schema=registry_away)
    acked: list[int] = []
    try:
        with pytest.raises(SystemExit):
            asyncio.run(worker.handle_batch([event(0, frame(7, record_value("1")), acked)]))
        assert exits == [EXIT_CRASH_STOP]
        assert acked == [] and transport.sent == [], "nothing dead-lettered, nothing acked"
    finally:
        worker.close()


def test_a_promoted_version_serves_from_the_next_batch_and_a_failed_one_is_skipped(
    tmp_path: Path,
) -> None:
    from schemas.codecs import ENTITY_EVENT
    from streams.model_store import POINTER

    store = tmp_path / "store"
    for version in ("1", "2", "bad"):
        (store / version).mkdir(parents=True)
        (store / version / "manifest.json").write_text("{}")
    (store / POINTER).write_text("1\n")

    def load(directory: Path) -> FakeModel:
        if directory.name == "bad":
            raise RuntimeError("MODEL_BAD_ARTIFACT: cannot load")
        model = FakeModel()
        model.manifest = SimpleNamespace(name="digits", version=directory.name)
        return model

    base = settings(tmp_path, "w")
    with_store = dataclasses.replace(
        base, model=dataclasses.replace(base.model, store_dir=str(store))
    )
    transport = RecordingTransport()
    worker = NerWorker(with_store, load(store / "1"), transport=transport, load_model=load)

    async def reload_to(version: str) -> None:
        (store / POINTER).write_text(version + "\n")
        await worker._check_model()
        while worker._loading:  # the load runs in the background
            await asyncio.sleep(0.01)

    async def scenario() -> None:
        await worker.handle_batch([event(0, record_value("1个"))])
        await reload_to("bad")  # refused: version 1 keeps serving
        await worker.handle_batch([event(1, record_value("2个"))])
        await reload_to("2")  # idle worker: switches at once
        await worker.handle_batch([event(2, record_value("3个"))])

    try:
        asyncio.run(scenario())
        versions = [ENTITY_EVENT.decode(out.value).model.version for out in transport.sent]
        assert versions == ["1", "1", "2"]
        model_info = {"name": "digits", "version": "2", "provider": "CPUExecutionProvider"}
        assert metric(worker, "nerstream_model_info", model_info) == 1.0
    finally:
        worker.close()


def test_the_lag_gauge_is_measured_at_assignment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An hour between timer ticks: only the assignment can have measured it.
    worker = NerWorker(
        pipelined_settings(tmp_path, lag_interval_s=3600.0),
        FakeModel(),
        transport=RecordingTransport(),
    )

    async def measured() -> dict[tuple[str, int], int | None]:
        return {("news", 0): 7}

    monkeypatch.setattr(worker, "measure_lag", measured)
    labels = {"topic": "news", "partition": "0"}

    async def assign() -> None:
        await worker._on_assigned(worker.app, {TP("news", 0)})
        await until(lambda: metric(worker, "nerstream_consumer_lag", labels) is not None)

    try:
        asyncio.run(assign())
        assert metric(worker, "nerstream_consumer_lag", labels) == 7
    finally:
        worker.close()
