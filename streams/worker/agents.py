"""The NER worker: one Faust agent per input topic, pipelined micro-batches, confluent output.

Fetching, inference and delivery overlap. The agents only hand fetched events to the worker
(:meth:`NerWorker.submit`); from there:

1. a dispatcher cuts a batch off the waiting events (in arrival order, sized by the adaptive
   policy of :mod:`.batching`) whenever the inference thread is free, and at most
   ``worker.max_in_flight_batches`` batches are between dispatch and ack at once;
2. the pure pipeline (:func:`.pipeline.process_batch`) decodes, validates, infers and encodes
   each batch on one dedicated inference thread, so the event loop keeps fetching,
   heart-beating, producing and answering probes meanwhile;
3. a producer loop hands each batch's outputs (one per input: entity event or dead letter) to
   librdkafka as soon as its inference is done, in dispatch order, while earlier batches still
   wait for their delivery reports;
4. once every output of a batch is acknowledged, and every batch dispatched before it too
   (:class:`.inflight.InFlight`), its events are acked: their offsets become committable.
   Faust's ``take`` acks a batch when the agent's loop body ends, which is too early here, so
   :meth:`NerWorker.submit` holds one extra reference on each message (``incref``) and the
   worker drops it after delivery: Faust's own per-message acking, done later.

A delivery that cannot succeed stops the process at once *without* acking (crash-stop, exit
code :data:`EXIT_CRASH_STOP`): every batch in flight is processed again after the restart, and
nothing is lost. Bad input never gets that far; it is dead-lettered by the pipeline. A graceful
stop lets Faust wait until every held message is acked (``stream_wait_empty``), so what is in
flight is finished and delivered before the final commit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import faust
from confluent_kafka import KafkaError
from faust.streams import Stream
from faust.types import TP, EventT, StreamT

from errors import EXIT_CRASH_STOP, TemporaryError
from schemas.codecs import REVIEW_TASK, ModelInfo
from streams.model_store import ModelStoreError, current_version
from streams.registry.client import RegistryClient
from streams.registry.wire import WriterSchemas, register_outputs, register_schema
from streams.settings import Settings
from streams.worker.app import create_app, raw_topic, run_app
from streams.worker.batching import AdaptiveBatcher, BatchLimits
from streams.worker.inflight import InFlight
from streams.worker.pipeline import BatchResult, PipelineConfig, RawMessage, process_batch
from streams.worker.producer import (
    DeliveryError,
    KafkaOutputProducer,
    OutputTransport,
    deliver_all,
    producer_config,
)
from streams.worker.reload import ModelWatcher, ServedModel, smoke_check
from streams.worker.review import ReviewRules
from streams.worker.telemetry import PartitionOffsets, WorkerMetrics, observe_all, partition_lag

__all__ = ["EXIT_CRASH_STOP", "NerWorker", "ServedModel", "WorkerState", "run_worker"]

logger = logging.getLogger(__name__)

#: Batches handed to the inference thread at once. One: the next batch is cut only when the
#: thread is free, so under backlog it takes everything that arrived meanwhile (up to the
#: batcher's size) instead of whatever the last 10 ms of fetching brought. (Two, one queued
#: behind the running one, made batches small and throughput lower in the benchmark.)
INFERENCE_QUEUE = 1


@dataclass
class WorkerState:
    """What the health probes report.

    The model is loaded before the app (and its web server) starts, so "model loaded" holds
    whenever a probe can be answered; readiness then only waits for partitions.
    """

    assigned: frozenset[TP] = field(default_factory=frozenset)
    batches: int = 0
    records: int = 0
    #: ``records`` when progress was last logged.
    records_logged: int = 0

    def readiness(self) -> tuple[bool, list[str]]:
        """Ready when input partitions are assigned; else the reasons."""
        reasons = [] if self.assigned else ["no input partitions assigned"]
        return not reasons, reasons


@dataclass(eq=False)
class _Batch:
    """One dispatched batch on its way from the inference thread to its acks."""

    events: list[EventT[bytes]]
    #: Padded size (see :mod:`.batching`), for the batcher's cost measurement.
    units: int
    inference: asyncio.Future[tuple[list[RawMessage], BatchResult, float]]
    sequence: int = -1
    messages: list[RawMessage] = field(default_factory=list)
    result: BatchResult | None = None
    resent: int = 0


def crash_stop(reason: str) -> None:
    """Leave now, acking nothing: unacked offsets are never committed, so nothing is lost."""
    logger.critical("crash-stop: %s; exiting without committing the batch in flight", reason)
    logging.shutdown()
    os._exit(EXIT_CRASH_STOP)


class NerWorker:
    """A Faust app that turns input records into entity events and dead letters."""

    def __init__(
        self,
        settings: Settings,
        model: ServedModel,
        metrics: WorkerMetrics | None = None,
        transport: OutputTransport | None = None,
        load_model: Callable[[Path], ServedModel] | None = None,
    ) -> None:
        self.settings = settings
        self.model = model
        self.worker_id = settings.worker.identity()
        self.metrics = metrics or WorkerMetrics()
        manifest = model.manifest
        self.metrics.set_model(manifest.name, manifest.version, model.provider)
        self.state = WorkerState()
        self.config = PipelineConfig(
            entities_topic=settings.topics.entities,
            dead_letter_topic=settings.topics.dead_letter,
            format_by_topic=settings.topics.format_by_topic(),
            max_text_chars=settings.worker.max_text_chars,
            worker_id=self.worker_id,
            model=ModelInfo(manifest.name, manifest.version),
            review_topic=settings.topics.review,
            review=ReviewRules(
                settings.review.entity_score_below,
                settings.review.sequence_confidence_below,
                settings.review.sample_rate,
                settings.review.sample_seed,
            ),
        )
        if settings.schema_registry.enabled:
            self.config = _registry_mode(self.config, settings)
        self._producer: KafkaOutputProducer | None = None
        if transport is None:
            self._producer = KafkaOutputProducer(
                producer_config(settings, client_id=f"nerstream-{self.worker_id}")
            )
            transport = self._producer
        self.transport = transport
        # One thread: inference of all agents is serialized on it; the model's own
        # intra-op threads (model.threads) do the parallel work.
        self.inference = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nerstream-infer")
        self.batcher = AdaptiveBatcher(
            BatchLimits(
                max_batch=settings.worker.max_batch,
                latency_target_s=settings.worker.latency_target_ms / 1000,
                bucket_chars=settings.model.bucket_chars,
                bucket_texts=settings.model.bucket_texts,
            )
        )
        # The pipeline's state; only ever touched on the event loop.
        self._waiting: deque[EventT[bytes]] = deque()
        self._in_flight: InFlight[_Batch] = InFlight()
        self._inferring = 0
        self._to_produce: asyncio.Queue[_Batch] | None = None
        self._changed: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Set at each assignment: the first batch delivered after it is committed at once.
        self._commit_next_release = False
        self.app = create_app(settings)
        for topic in settings.topics.inputs:
            self._add_agent(topic)
        self._add_lag_timer()
        self._add_model_reload(load_model)
        self._add_views()
        # mode's Signal types receivers as (sender, *args); ours name the one argument sent.
        self.app.on_partitions_assigned.connect(cast(Any, self._on_assigned))
        self.app.on_partitions_revoked.connect(cast(Any, self._on_revoked))

    # --- agents -------------------------------------------------------------------------------

    def _add_agent(self, topic: str) -> None:
        worker = self.settings.worker

        async def ner(stream: StreamT[bytes]) -> None:
            # take_events is implemented by Stream but not declared on the StreamT interface.
            batches = cast(Stream[bytes], stream).take_events(
                worker.max_batch, within=worker.max_wait_s
            )
            async for events in batches:
                await self.submit(events)

        self.app.agent(raw_topic(self.app, topic), name=f"ner:{topic}")(ner)

    # --- the pipeline -------------------------------------------------------------------------

    async def submit(self, events: Sequence[EventT[bytes]]) -> None:
        """Take fetched events into the pipeline; wait while too many are waiting already.

        Each message gets one more reference, so the ack Faust's ``take`` gives it when this
        returns is not its final one: the final ack comes after its output is delivered.
        """
        self._start()
        for event in events:
            event.message.incref()
        self._waiting.extend(events)
        self._notify()
        # Back-pressure: at most a batch's worth waits here (Faust buffers another).
        limit = self.settings.worker.max_batch
        while len(self._waiting) > limit:
            await self._wait_for_change()

    async def handle_batch(self, events: Sequence[EventT[bytes]]) -> None:
        """Submit ``events`` and return once every batch in flight is delivered and acked."""
        await self.submit(events)
        await self.drain()

    async def drain(self) -> None:
        """Return when nothing is waiting or in flight."""
        while self._waiting or len(self._in_flight):
            await self._wait_for_change()

    def _start(self) -> None:
        if self._changed is not None:
            return
        self._changed = asyncio.Event()
        self._to_produce = asyncio.Queue()
        self._spawn(self._dispatch_forever())
        self._spawn(self._produce_forever())

    def _spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine)
        # The loop keeps only weak references to tasks.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _notify(self) -> None:
        assert self._changed is not None
        self._changed.set()

    async def _wait_for_change(self) -> None:
        assert self._changed is not None
        self._changed.clear()
        await self._changed.wait()

    async def _dispatch_forever(self) -> None:
        """Cut a batch off the waiting events whenever the inference thread is free."""
        max_in_flight = self.settings.worker.max_in_flight_batches
        try:
            while True:
                while not (
                    self._waiting
                    and self._inferring < INFERENCE_QUEUE
                    and len(self._in_flight) < max_in_flight
                ):
                    await self._wait_for_change()
                self._dispatch()
        except Exception as exc:  # a bug here must not leave held messages unacked forever
            logger.exception("the batch dispatcher failed")
            crash_stop(f"{type(exc).__name__} in the batch dispatcher")

    def _dispatch(self) -> None:
        assert self._to_produce is not None
        waiting = self._waiting
        # All of them (about a batch's worth, see submit): the batcher weighs the backlog too.
        lengths = [len(event.message.value or b"") for event in waiting]
        produced_at = waiting[0].message.timestamp  # Kafka's record timestamp, s since epoch
        waited = max(time.time() - produced_at, 0.0) if produced_at else 0.0
        count = self.batcher.next_batch(lengths, waited)
        events = [waiting.popleft() for _ in range(count)]
        units = self.batcher.units(lengths[:count])
        inference = asyncio.get_running_loop().run_in_executor(self.inference, self._infer, events)
        batch = _Batch(events, units, inference)
        batch.sequence = self._in_flight.open(batch)
        self._inferring += 1
        inference.add_done_callback(lambda done: self._inferred(batch, done))
        self.metrics.batches_in_flight.set(len(self._in_flight))
        self._to_produce.put_nowait(batch)
        self._notify()

    def _infer(self, events: list[EventT[bytes]]) -> tuple[list[RawMessage], BatchResult, float]:
        """On the inference thread: messages, their outputs, and the seconds it all took."""
        if self._next_model is not None:  # a new version is ready: switch between two batches
            self._switch_model()
        started = time.perf_counter()
        messages = [_raw_message(event) for event in events]
        result = process_batch(messages, self.model.predict, self.config, _now)
        return messages, result, time.perf_counter() - started

    async def _produce_forever(self) -> None:
        """Produce each batch's outputs as soon as it is inferred, in dispatch order."""
        assert self._to_produce is not None
        while True:
            batch = await self._to_produce.get()
            try:
                batch.messages, batch.result, _ = await batch.inference
                acks = await self.transport.produce(batch.result.deliveries)
            except TemporaryError as exc:
                # The registry stayed away: the batch is redone after a restart, not lost.
                crash_stop(str(exc))
                return
            except Exception as exc:
                self._unexpected(exc, batch)
                return
            self._spawn(self._settle(batch, acks))

    def _inferred(
        self, batch: _Batch, done: asyncio.Future[tuple[list[RawMessage], BatchResult, float]]
    ) -> None:
        """The inference thread is free again: let the dispatcher cut the next batch now."""
        self._inferring -= 1
        if not done.cancelled() and done.exception() is None:
            self.batcher.observe(batch.units, done.result()[2])
        self._notify()

    async def _settle(self, batch: _Batch, acks: Awaitable[list[KafkaError | None]]) -> None:
        """Wait for a batch's delivery (re-sending what failed), then ack what may be acked."""
        assert batch.result is not None
        try:
            batch.resent = await deliver_all(
                batch.result.deliveries, self.transport, first_attempt=acks
            )
            released = self._in_flight.delivered(batch.sequence)
        except DeliveryError as exc:
            crash_stop(str(exc))
            return
        except Exception as exc:
            self._unexpected(exc, batch)
            return
        for done in released:
            for event in done.events:
                event.ack()
            assert done.result is not None
            self.state.batches += 1
            self.state.records += len(done.messages)
            self._record(done.messages, done.result, done.resent)
        self.metrics.batches_in_flight.set(len(self._in_flight))
        if released and self._commit_next_release:
            self._commit_next_release = False
            self._spawn(self._commit_now())
        self._notify()

    async def _commit_now(self) -> None:
        """Commit the acked offsets now rather than at the next commit tick: a worker that
        crashes in its first seconds then has its first batches committed, not processed
        again."""
        try:
            await self.app.consumer.commit()
        except Exception as exc:  # the commit timer tries again
            logger.warning("early commit failed: %s: %s", type(exc).__name__, exc)

    def _unexpected(self, exc: Exception, batch: _Batch) -> None:
        where = _describe(batch.messages) or f"{len(batch.events)} message(s)"
        logger.exception("unexpected failure processing %s", where, extra={"offsets": where})
        crash_stop(f"{type(exc).__name__} while processing {where}")

    def _record(self, messages: list[RawMessage], result: BatchResult, resent: int) -> None:
        metrics = self.metrics
        metrics.batch_size.observe(len(messages))
        if result.inferred:
            metrics.inference_seconds.observe(result.inference_seconds)
        if result.retried_one_by_one:
            metrics.inference_retries.inc()
        if resent:
            metrics.delivery_retries.inc(resent)
        # Counted per batch, then added once per label set: labels() costs more than inc().
        consumed: Counter[str] = Counter()
        produced: Counter[str] = Counter()
        dead: Counter[tuple[str, str]] = Counter()
        entities: Counter[str] = Counter()
        latencies: list[float] = []
        for output in result.outputs:
            source = output.source
            consumed[source.topic] += 1
            if output.kind == "dead_letter":
                dead[(source.topic, output.error_code)] += 1
                logger.warning(
                    "dead-lettered topic=%s partition=%d offset=%d error_code=%s",
                    source.topic,
                    source.partition,
                    source.offset,
                    output.error_code,
                    extra={
                        "topic": source.topic,
                        "partition": source.partition,
                        "offset": source.offset,
                        "error_code": output.error_code,
                    },
                )
                continue
            produced[source.topic] += 1
            entities.update(output.entity_types)
            if output.latency_s is not None:
                # A producer clock ahead of ours must not make the histogram lie below zero.
                latencies.append(max(output.latency_s, 0.0))
        observe_all(metrics.end_to_end_seconds, latencies)
        for topic, count in consumed.items():
            metrics.records_consumed.labels(topic=topic).inc(count)
        for topic, count in produced.items():
            metrics.events_produced.labels(topic=topic).inc(count)
        for (topic, code), count in dead.items():
            metrics.records_dead_lettered.labels(topic=topic, error_code=code).inc(count)
        for entity_type, count in entities.items():
            metrics.entities_found.labels(type=entity_type).inc(count)
        if not logger.isEnabledFor(logging.DEBUG):
            return
        logger.debug(
            "batch done %s outputs=%d",
            _describe(messages),
            len(result.outputs),
            extra={"offsets": _describe(messages), "records": len(messages)},
        )

    # --- rebalances and lag -------------------------------------------------------------------

    async def _on_assigned(self, app: faust.App, assigned: set[TP], **_: Any) -> None:
        inputs = set(self.settings.topics.inputs)
        self.state.assigned = frozenset(tp for tp in assigned if tp.topic in inputs)
        self.metrics.assigned_partitions.set(len(self.state.assigned))
        logger.info(
            "assigned partitions=%s",
            ",".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(self.state.assigned)) or "-",
        )
        self._commit_next_release = True
        # The gauge is measured now, not a whole lag_interval_s later; in a task of its own, as
        # the rebalance must not wait for the broker's answers.
        self._spawn(self._update_lag())

    async def _on_revoked(self, app: faust.App, revoked: set[TP], **_: Any) -> None:
        self.state.assigned = self.state.assigned - revoked
        self.metrics.assigned_partitions.set(len(self.state.assigned))

    # --- model hot reload ----------------------------------------------------------------------

    def _add_model_reload(self, load_model: Callable[[Path], ServedModel] | None) -> None:
        """Follow the model store's pointer (``model.store_dir``), if the worker serves one."""
        #: A loaded, checked model waiting to serve; taken between two batches.
        self._next_model: ServedModel | None = None
        self._watcher: ModelWatcher | None = None
        self._reload_error = ""
        self._loading = False
        store = self.settings.model.store_dir
        if not store or load_model is None:
            return
        self._watcher = ModelWatcher(Path(store), current_version(Path(store)))
        self._load_model = load_model
        # Its own thread: a load must not delay the batches on the inference thread.
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nerstream-load")
        self.app.timer(self.settings.model.reload_interval_s, name="nerstream-model-reload")(
            self._check_model
        )

    async def _check_model(self) -> None:
        watcher = self._watcher
        assert watcher is not None
        try:
            version = watcher.wanted()
        except ModelStoreError as exc:
            if str(exc) != self._reload_error:  # once per distinct problem, not every interval
                self._reload_error = str(exc)
                logger.error("model store unusable, keeping %s: %s", watcher.serving, exc)
            return
        self._reload_error = ""
        if version is None or self._loading or self._next_model is not None:
            return
        # A task of its own, so the timer stays on time while the load takes seconds.
        self._loading = True
        self._spawn(self._load_version(version))

    async def _load_version(self, version: str) -> None:
        watcher = self._watcher
        assert watcher is not None
        logger.info("loading model version %s (serving %s)", version, watcher.serving)
        loop = asyncio.get_running_loop()
        try:
            model = await loop.run_in_executor(self._loader, self._load_checked, version)
        except Exception as exc:
            watcher.failed(version)
            logger.error(
                "model version %s not loaded, keeping %s: %s: %s",
                version,
                watcher.serving,
                type(exc).__name__,
                exc,
            )
            return
        finally:
            self._loading = False
        self._next_model = model
        if not self._inferring:
            # Nothing is on the inference thread and only this loop dispatches: switch now.
            self._switch_model()

    def _load_checked(self, version: str) -> ServedModel:
        """On the loader thread: load a version from the store and smoke-test it."""
        assert self._watcher is not None
        model = self._load_model(self._watcher.directory(version))
        smoke_check(model, version)
        return model

    def _switch_model(self) -> None:
        """Serve the loaded model from the next batch on (inference thread, or an idle loop)."""
        model = self._next_model
        assert model is not None and self._watcher is not None
        manifest = model.manifest
        previous = self._watcher.serving
        # Serving first, then the pending slot: the timer never sees neither and loads it again.
        self._watcher.serving = manifest.version
        self.model = model
        self.config = replace(self.config, model=ModelInfo(manifest.name, manifest.version))
        self._next_model = None
        self.metrics.set_model(manifest.name, manifest.version, model.provider)
        logger.info("switched model %s -> %s", previous, manifest.version)

    def _add_lag_timer(self) -> None:
        self.app.timer(self.settings.worker.lag_interval_s, name="nerstream-lag")(self._update_lag)

    async def _update_lag(self) -> None:
        try:
            lag = await self.measure_lag()
        except Exception as exc:  # a metric must never take the worker down
            logger.warning("consumer lag not measured: %s: %s", type(exc).__name__, exc)
            return
        self.metrics.set_lag(lag)
        total_lag = sum(value for value in lag.values() if value is not None)
        state = self.state
        if state.records != state.records_logged or total_lag:
            # A progress line per interval while there is work, silence while idle.
            logger.info(
                "progress records=%d (+%d) batches=%d lag=%d partitions=%d",
                state.records,
                state.records - state.records_logged,
                state.batches,
                total_lag,
                len(state.assigned),
                extra={"records": state.records},
            )
            state.records_logged = state.records

    async def measure_lag(self) -> dict[tuple[str, int], int | None]:
        """Lag of every assigned input partition (see :func:`.telemetry.partition_lag`)."""
        assigned = sorted(self.state.assigned)
        if not assigned:
            return {}
        consumer = self.app.consumer
        highwaters = await consumer.highwaters(*assigned)
        earliest = await consumer.earliest_offsets(*assigned)
        committed = self.app.monitor.tp_committed_offsets
        lag = {}
        for tp in assigned:
            committed_offset = committed.get(tp)
            offsets = PartitionOffsets(
                highwater=highwaters.get(tp),
                committed=committed_offset,
                # Only needed before the first commit, and it costs a call into the consumer.
                position=await consumer.position(tp) if committed_offset is None else None,
                earliest=earliest.get(tp),
            )
            lag[(tp.topic, tp.partition)] = partition_lag(offsets)
        return lag

    # --- web views ----------------------------------------------------------------------------

    def _add_views(self) -> None:
        worker = self

        @self.app.page("/healthz")
        async def healthz(view: faust.web.View, request: faust.web.Request) -> faust.web.Response:
            alive = not worker.app.crashed
            state = worker.state
            body = {
                "alive": alive,
                "worker_id": worker.worker_id,
                "batches": state.batches,
                "records": state.records,
            }
            return view.json(body, status=200 if alive else 503)

        @self.app.page("/readyz")
        async def readyz(view: faust.web.View, request: faust.web.Request) -> faust.web.Response:
            ready, reasons = worker.state.readiness()
            body = {
                "ready": ready,
                "reasons": reasons,
                "partitions": len(worker.state.assigned),
                "model": {"name": worker.config.model.name, "version": worker.config.model.version},
            }
            return view.json(body, status=200 if ready else 503)

        @self.app.page("/metrics")
        async def metrics(view: faust.web.View, request: faust.web.Request) -> faust.web.Response:
            payload, content_type = worker.metrics.render()
            return view.bytes(payload, headers={"Content-Type": content_type})

    # --- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Release the producer and the inference thread (after the app has stopped)."""
        if self._producer is not None:
            left = self._producer.close()
            if left:
                logger.error("%d output(s) still undelivered at shutdown", left)
        self.inference.shutdown(wait=True)
        if self._watcher is not None:
            self._loader.shutdown(wait=True)


def _registry_mode(config: PipelineConfig, settings: Settings) -> PipelineConfig:
    """``config`` with the registry's ids for the outputs and its writer-schema lookup."""
    registry = settings.schema_registry
    client = RegistryClient(registry)
    ids = register_outputs(client, registry, config.entities_topic, config.dead_letter_topic)
    logger.info(
        "registry mode: %s; entity events as schema id %d, dead letters as %d",
        registry.url,
        ids.entity_event,
        ids.dead_letter,
    )
    review_id = (
        register_schema(client, registry, config.review_topic, REVIEW_TASK)
        if config.review.enabled
        else None
    )
    return replace(
        config,
        entity_event_schema_id=ids.entity_event,
        dead_letter_schema_id=ids.dead_letter,
        review_task_schema_id=review_id,
        writer_schema=WriterSchemas(client, registry.outage_timeout_s),
    )


def _raw_message(event: EventT[bytes]) -> RawMessage:
    message = event.message
    headers = message.headers or ()
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return RawMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=tuple((str(key), _header_bytes(value)) for key, value in pairs),
    )


def _header_bytes(value: bytes | str | None) -> bytes | None:
    return value.encode("utf-8") if isinstance(value, str) else value


def _describe(messages: Sequence[RawMessage]) -> str:
    """topic/partition/offset ranges of a batch, for logs (never the record text)."""
    ranges: dict[tuple[str, int], tuple[int, int]] = {}
    for message in messages:
        where = (message.topic, message.partition)
        low, high = ranges.get(where, (message.offset, message.offset))
        ranges[where] = (min(low, message.offset), max(high, message.offset))
    return " ".join(
        f"topic={topic} partition={partition} offsets={low}-{high}"
        for (topic, partition), (low, high) in sorted(ranges.items())
    )


def _now() -> datetime:
    return datetime.now(UTC)


def run_worker(
    settings: Settings,
    model: ServedModel,
    load_model: Callable[[Path], ServedModel] | None = None,
) -> None:
    """Run the worker in the foreground until SIGTERM/SIGINT, then stop cleanly.

    ``load_model`` loads a model directory; with ``model.store_dir`` set the worker uses it to
    switch to the version the store's pointer names, without a restart.
    """
    worker = NerWorker(settings, model, load_model=load_model)
    logger.info(
        "worker %s serving model %s %s on %s; inputs=%s",
        worker.worker_id,
        model.manifest.name,
        model.manifest.version,
        model.provider,
        ",".join(settings.topics.inputs),
    )
    try:
        run_app(worker.app)
    finally:
        worker.close()
