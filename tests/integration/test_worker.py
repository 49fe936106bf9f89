"""The NER worker end to end: ``nerstream worker`` processes on the session's real Kafka broker.

Invariants checked after every run: each valid record has exactly one entity event, whose
entity offsets index the record's original text; each poison message has one dead letter with
the right code; the workers stay healthy and ready; the group's committed offsets reach the end
of the input; the worker log never contains record text.

The record count defaults to the full 5,000; set ``NERSTREAM_IT_RECORDS`` lower for quick runs.
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import Producer

from schemas.codecs import RECORD, DeadLetter, EntityEvent, InputRecord
from streams.kafka.consume import ConsumedOutput, consume_outputs
from streams.settings import Settings
from streams.worker.agents import EXIT_CRASH_STOP
from tests.conftest import KafkaScope
from tests.integration.worker_process import (
    WorkerProcess,
    committed_offsets,
    end_offsets,
    wait_committed_to_end,
)
from tests.poison import Poison, poison_kinds
from tests.records import CREATED_AT, mixed_records

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RECORDS = int(os.environ.get("NERSTREAM_IT_RECORDS", "5000"))
POISON = 100
MAX_TEXT_CHARS = 2_000
#: Seconds over which records trickle in while a worker stops or joins mid-stream.
PRODUCE_SECONDS = 20.0
PRODUCE_RATE = (RECORDS + POISON) / PRODUCE_SECONDS
#: Generous: the CPU is shared, and the first batches pay ONNX Runtime's warm-up.
PROCESS_TIMEOUT_S = 600.0


@dataclasses.dataclass
class Pipeline:
    """Topics, group and settings of one test's worker pipeline."""

    scope: KafkaScope
    settings: Settings
    input_topic: str
    partitions: int
    tmp_path: Path
    model_dir: Path
    workers: list[WorkerProcess] = dataclasses.field(default_factory=list)

    @property
    def group(self) -> str:
        return self.settings.worker.group_id

    def worker(self, name: str, overrides: dict[str, str] | None = None) -> WorkerProcess:
        """Start a worker process named ``name`` (its settings changed by ``overrides``)."""
        worker = WorkerProcess(
            self.settings,
            self.tmp_path / f"{name}.log",
            overrides={
                "worker.worker_id": name,
                "model.model_dir": str(self.model_dir),
                # CPU at once: where onnxruntime-gpu is installed without a GPU, "auto" first
                # tries TensorRT, which costs seconds of every start (a worker joining
                # mid-stream must be up while records still flow).
                "model.provider": "cpu",
                "worker.lag_interval_s": "5",
                **(overrides or {}),
            },
        )
        self.workers.append(worker)
        return worker.start()


@pytest.fixture
def pipeline(
    kafka: KafkaScope, tmp_path: Path, serving_model_dir: Path, request: pytest.FixtureRequest
) -> Iterator[Pipeline]:
    partitions = getattr(request, "param", 2)
    input_topic = kafka.topic("records", partitions=partitions)
    entities = kafka.topic("entities", partitions=2)
    dead_letter = kafka.topic("dead-letter", partitions=1)
    settings = dataclasses.replace(
        kafka.settings,
        topics=dataclasses.replace(
            kafka.settings.topics,
            inputs=(input_topic,),
            entities=entities,
            dead_letter=dead_letter,
        ),
        worker=dataclasses.replace(
            kafka.settings.worker,
            group_id=kafka.group("ner"),
            max_text_chars=MAX_TEXT_CHARS,
        ),
    )
    state = Pipeline(kafka, settings, input_topic, partitions, tmp_path, serving_model_dir)
    try:
        yield state
    finally:
        for worker in state.workers:
            worker.kill()


def produce_mix(
    settings: Settings,
    topic: str,
    records: list[InputRecord],
    poisons: list[Poison],
    rate: float | None = None,
) -> dict[bytes, Poison]:
    """Send the records (Avro, keyed by id) with the poison interleaved; return poison by key.

    ``rate`` (messages per second) spreads the sending out in time.
    """
    rng = random.Random(11)
    items: list[InputRecord | tuple[bytes, Poison]] = [*records]
    for index, poison in enumerate(poisons):
        items.insert(rng.randrange(len(items) + 1), (f"poison-{index}".encode(), poison))
    producer = Producer({**settings.kafka.confluent_config(), "linger.ms": 5})
    started = time.monotonic()
    for index, item in enumerate(items):
        if rate is not None:
            time.sleep(max(started + index / rate - time.monotonic(), 0.0))
        if isinstance(item, InputRecord):
            producer.produce(topic, RECORD.encode(item), key=item.id.encode())
        else:
            key, poison = item
            producer.produce(topic, poison.value, key=key, headers=list(poison.headers))
        producer.poll(0)
    assert producer.flush(60) == 0
    return dict(item for item in items if isinstance(item, tuple))


def read_all(settings: Settings, topic: str, partitions: int) -> list[ConsumedOutput]:
    """Every message now in ``topic``, decoded."""
    total = sum(end_offsets(settings, topic, partitions).values())
    outputs = list(
        consume_outputs(settings, topic, from_beginning=True, max_messages=total, idle_timeout_s=30)
    )
    assert len(outputs) == total, f"read {len(outputs)} of {total} messages of {topic}"
    return outputs


def collect(pipeline: Pipeline, ordered: bool = True) -> tuple[list[EntityEvent], list[DeadLetter]]:
    """Wait until the input is committed to its end, then read every output.

    ``ordered``: also check that, within each entities partition, the events of each input
    partition follow input order (true unless a restart re-processed records).
    """
    committed = wait_committed_to_end(
        pipeline.settings,
        pipeline.group,
        pipeline.input_topic,
        pipeline.partitions,
        timeout_s=PROCESS_TIMEOUT_S,
    )
    ends = end_offsets(pipeline.settings, pipeline.input_topic, pipeline.partitions)
    logs = "\n".join(worker.log_tail(30) for worker in pipeline.workers)
    assert committed == ends, f"committed {committed}, end {ends}\n{logs}"
    topics = pipeline.settings.topics
    event_outputs = read_all(pipeline.settings, topics.entities, 2)
    if ordered:
        check_order(event_outputs)
    events = [out.value for out in event_outputs]
    letters = [out.value for out in read_all(pipeline.settings, topics.dead_letter, 1)]
    assert all(isinstance(event, EntityEvent) for event in events)
    assert all(isinstance(letter, DeadLetter) for letter in letters)
    return events, letters  # type: ignore[return-value]


def check_order(outputs: list[ConsumedOutput]) -> None:
    last_offset: dict[tuple[int, int], int] = {}
    for output in sorted(outputs, key=lambda out: (out.partition, out.offset)):
        assert isinstance(output.value, EntityEvent)
        where = (output.partition, output.value.input.partition)
        offset = output.value.input.offset
        assert offset > last_offset.get(where, -1), f"out of input order at {output}"
        last_offset[where] = offset


def check_events(
    records: list[InputRecord], events: list[EntityEvent], exactly_once: bool = True
) -> None:
    by_id = {record.id: record for record in records}
    counts = Counter(event.record_id for event in events)
    assert set(counts) == set(by_id), "every valid record has an event, and nothing else does"
    if exactly_once:
        duplicated = {rid: n for rid, n in counts.items() if n != 1}
        assert not duplicated, f"records with more than one event: {list(duplicated)[:10]}"
    for event in events:
        record = by_id[event.record_id]
        assert event.source == record.source
        assert event.created_at == record.created_at
        for entity in event.entities:
            assert 0 <= entity.start < entity.end <= len(record.text)
            assert record.text[entity.start : entity.end] == entity.text


def check_dead_letters(letters: list[DeadLetter], poison_by_key: dict[bytes, Poison]) -> None:
    codes = {letter.key: letter.error_code for letter in letters}
    assert len(letters) == len(poison_by_key), "one dead letter per poison message"
    for key, poison in poison_by_key.items():
        assert codes.get(key) == poison.error_code, f"{poison.name}: {codes.get(key)}"
    for letter in letters:
        assert letter.value == poison_by_key[letter.key or b""].value, "original bytes kept"


def check_healthy(pipeline: Pipeline) -> None:
    for worker in pipeline.workers:
        worker.assert_running()
        assert worker.get("/healthz")[0] == 200
        status, body = worker.get("/readyz")
        assert status == 200, body


def check_logs_keep_texts_out(pipeline: Pipeline, records: list[InputRecord]) -> None:
    logs = "".join(
        worker.log_path.read_text(encoding="utf-8", errors="replace") for worker in pipeline.workers
    )
    leaked = [record.id for record in records if len(record.text) >= 8 and record.text in logs]
    assert not leaked, f"record texts found in the worker log: {leaked[:5]}"


def poison_mix(count: int) -> list[Poison]:
    kinds = poison_kinds(MAX_TEXT_CHARS)
    return [kinds[index % len(kinds)] for index in range(count)]


def test_one_worker_turns_every_record_into_one_event_or_one_dead_letter(
    pipeline: Pipeline,
) -> None:
    worker = pipeline.worker("w1")
    worker.wait_ready()
    records = list(mixed_records(RECORDS))
    poison_by_key = produce_mix(
        pipeline.settings, pipeline.input_topic, records, poison_mix(POISON)
    )

    events, letters = collect(pipeline)

    check_events(records, events)
    check_dead_letters(letters, poison_by_key)
    check_healthy(pipeline)
    check_logs_keep_texts_out(pipeline, records)
    # The lag timer sees the committed end too: every input partition's lag drops to 0.
    deadline = time.monotonic() + 60
    while True:
        status, metrics = worker.get("/metrics")
        assert status == 200 and isinstance(metrics, str)
        lags = [line for line in metrics.splitlines() if line.startswith("nerstream_consumer_lag{")]
        if len(lags) == pipeline.partitions and all(line.endswith(" 0.0") for line in lags):
            break
        assert time.monotonic() < deadline, f"lag never reached 0: {lags}"
        time.sleep(1)
    assert (
        f'nerstream_entity_events_produced_total{{topic="{pipeline.input_topic}"}} {len(records)}.0'
        in metrics
    )
    assert "nerstream_model_info{" in metrics
    assert worker.stop() == 0


@pytest.mark.parametrize("pipeline", [4], indirect=True)
def test_two_workers_in_one_group_share_a_four_partition_topic(pipeline: Pipeline) -> None:
    first, second = pipeline.worker("w1"), pipeline.worker("w2")
    # Both ready means both hold partitions: no rebalance happens while records flow.
    first.wait_ready()
    second.wait_ready()
    records = list(mixed_records(RECORDS, seed=8))
    poison_by_key = produce_mix(
        pipeline.settings, pipeline.input_topic, records, poison_mix(POISON)
    )

    events, letters = collect(pipeline)

    check_events(records, events)
    check_dead_letters(letters, poison_by_key)
    check_healthy(pipeline)
    for worker in (first, second):
        body = worker.get("/readyz")[1]
        assert isinstance(body, dict) and body["partitions"] == 2, "the partitions are shared"
    assert first.stop() == 0 and second.stop() == 0


@contextmanager
def producing_in_background(
    pipeline: Pipeline, records: list[InputRecord], worker: WorkerProcess
) -> Iterator[Future[dict[bytes, Poison]]]:
    """Produce records and poison at a steady rate in the background; enter once a quarter of
    the records have their events, so what the body does happens mid-stream."""
    with ThreadPoolExecutor(max_workers=1) as background:
        produced = background.submit(
            produce_mix,
            pipeline.settings,
            pipeline.input_topic,
            records,
            poison_mix(POISON),
            rate=PRODUCE_RATE,
        )
        entities_topic = pipeline.settings.topics.entities
        deadline = time.monotonic() + PROCESS_TIMEOUT_S
        while sum(end_offsets(pipeline.settings, entities_topic, 2).values()) < len(records) // 4:
            assert time.monotonic() < deadline, worker.log_tail()
            time.sleep(0.1)
        yield produced


def test_a_worker_stopped_mid_stream_and_restarted_loses_nothing(pipeline: Pipeline) -> None:
    records = list(mixed_records(RECORDS, seed=9))
    first = pipeline.worker("before")
    first.wait_ready()
    # Records keep arriving while the worker stops, so the stop is mid-stream whatever the
    # model's speed.
    with producing_in_background(pipeline, records, first) as produced:
        stop_requested = datetime.now(UTC)
        assert first.stop() == 0, "SIGTERM ends the worker cleanly"
        stopped = datetime.now(UTC)
        assert not produced.done(), "records were still arriving when the worker stopped"
        poison_by_key = produced.result()

    pipeline.worker("after").wait_ready()
    events, letters = collect(pipeline, ordered=False)

    check_events(records, events, exactly_once=False)
    check_dead_letters_at_least_once(letters, poison_by_key)
    # At-least-once allows duplicates only across the restart: one event from before the stop
    # and one from after it, never two from the same run.
    processed: defaultdict[str, list[datetime]] = defaultdict(list)
    for event in events:
        processed[event.record_id].append(event.processed_at)
    duplicated = {record_id: times for record_id, times in processed.items() if len(times) > 1}
    for record_id, times in duplicated.items():
        assert len(times) == 2, record_id
        early, late = sorted(times)
        assert early <= stopped and late >= stop_requested, record_id
    # And a graceful stop commits everything it delivered, so here there are none at all.
    assert not duplicated, f"{len(duplicated)} records processed twice after a graceful stop"


@pytest.mark.parametrize("pipeline", [4], indirect=True)
def test_a_worker_joining_mid_stream_takes_over_partitions_and_loses_nothing(
    pipeline: Pipeline,
) -> None:
    records = list(mixed_records(RECORDS, seed=12))
    first = pipeline.worker("first")
    first.wait_ready()
    with producing_in_background(pipeline, records, first) as produced:
        # The group rebalances while records flow: what the first worker had in flight for
        # the partitions it hands over may be processed twice, but nothing may be lost.
        second = pipeline.worker("second")
        second.wait_ready()
        assert not produced.done(), "records were still arriving during the rebalance"
        poison_by_key = produced.result()

    events, letters = collect(pipeline, ordered=False)

    check_events(records, events, exactly_once=False)
    check_dead_letters_at_least_once(letters, poison_by_key)
    check_healthy(pipeline)
    for worker in (first, second):
        body = worker.get("/readyz")[1]
        assert isinstance(body, dict) and body["partitions"] == 2, "the partitions are shared"


def check_dead_letters_at_least_once(
    letters: list[DeadLetter], poison_by_key: dict[bytes, Poison]
) -> None:
    codes: defaultdict[bytes | None, set[str]] = defaultdict(set)
    for letter in letters:
        codes[letter.key].add(letter.error_code)
    assert set(codes) == set(poison_by_key)
    for key, poison in poison_by_key.items():
        assert codes[key] == {poison.error_code}


#: Hand-checked records and entities the shipped model must find in them (a subset of all it
#: finds). The long one repeats two others around filler, so its entities span windows.
_FILLER = "这是一段用于测试长文本切分的普通叙述，没有任何人名地名或机构名称。" * 12
HAND_CHECKED = {
    "国务院总理李鹏今天在北京会见了日本客人。": {
        ("ORG", "国务院"),
        ("PER", "李鹏"),
        ("LOC", "北京"),
        ("LOC", "日本"),
    },
    "联合国秘书长古特雷斯昨天抵达纽约。": {
        ("ORG", "联合国"),
        ("PER", "古特雷斯"),
        ("LOC", "纽约"),
    },
    "患者张伟，男，45岁，因反复咳嗽3天于北京协和医院就诊。": {
        ("PER", "张伟"),
        ("NUM", "45"),
        ("ORG", "北京协和医院"),
    },
    "新华社上海３月２０日电（记者王建华）浦东新区将投资３．５亿元改造机场。": {
        ("ORG", "新华社"),
        ("PER", "王建华"),
        ("NUM", "３．５亿"),
    },
    ("国务院总理李鹏今天在北京会见了日本客人。" + _FILLER + "联合国秘书长古特雷斯昨天抵达纽约。"): {
        ("PER", "李鹏"),
        ("LOC", "日本"),
        ("PER", "古特雷斯"),
    },
}


def test_hand_checked_records_get_their_entities(pipeline: Pipeline) -> None:
    records = [
        InputRecord(id=f"hand-{index}", text=text, created_at=CREATED_AT)
        for index, text in enumerate(HAND_CHECKED)
    ]
    pipeline.worker("w1").wait_ready()
    produce_mix(pipeline.settings, pipeline.input_topic, records, [])

    events, _ = collect(pipeline)

    check_events(records, events)
    by_id = {event.record_id: event for event in events}
    for record, expected in zip(records, HAND_CHECKED.values(), strict=True):
        found = {(entity.type, entity.text) for entity in by_id[record.id].entities}
        assert expected <= found, f"{record.id}: missing {expected - found}, found {found}"


def test_a_worker_that_cannot_deliver_stops_without_committing(pipeline: Pipeline) -> None:
    records = list(mixed_records(20, seed=10))
    produce_mix(pipeline.settings, pipeline.input_topic, records, [])
    # An output topic the broker refuses (an invalid name): a permanent delivery error. A short
    # session timeout lets the broker hand the dead worker's partitions on in seconds, not 60.
    broken = pipeline.worker(
        "broken", {"topics.entities": "no such topic!", "worker.session_timeout_s": "6"}
    )
    assert broken.process is not None
    assert broken.process.wait(PROCESS_TIMEOUT_S) == EXIT_CRASH_STOP, broken.log_tail()
    assert "crash-stop" in broken.log_tail()
    committed = committed_offsets(
        pipeline.settings,
        pipeline.group,
        end_offsets(pipeline.settings, pipeline.input_topic, pipeline.partitions),
    )
    assert all(offset < 0 for offset in committed.values()), f"committed: {committed}"

    # The next worker, able to deliver, processes every record: nothing was lost.
    pipeline.worker("fixed").wait_ready()
    events, _ = collect(pipeline)
    check_events(records, events)
