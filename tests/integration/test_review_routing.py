"""Review routing end to end: a ``nerstream worker`` on the real broker writes review tasks for
the records its rules select, besides (never instead of) their entity events, and commits its
input only after both are delivered."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from schemas.codecs import RECORD, EntityEvent, ReviewTask
from streams.kafka.consume import consume_outputs
from streams.review.sources import pull_topic
from streams.review.store import ReviewStore
from streams.settings import Settings
from streams.worker.review import sampled
from tests.conftest import KafkaScope
from tests.integration.worker_process import WorkerProcess, end_offsets, wait_committed_to_end
from tests.records import mixed_records

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RECORDS = 80
SCORE_BELOW = 0.6
SAMPLE_RATE = 0.25
SEED = 3


def test_worker_routes_uncertain_and_sampled_records_to_review(
    kafka: KafkaScope, tmp_path: Path, serving_model_dir: Path
) -> None:
    check_review_routing(routing_settings(kafka), tmp_path, serving_model_dir)


def routing_settings(kafka: KafkaScope) -> Settings:
    return dataclasses.replace(
        kafka.settings,
        topics=dataclasses.replace(
            kafka.settings.topics,
            inputs=(kafka.topic("records", partitions=2),),
            entities=kafka.topic("entities"),
            dead_letter=kafka.topic("dead-letter"),
            review=kafka.topic("review"),
        ),
        worker=dataclasses.replace(kafka.settings.worker, group_id=kafka.group("ner")),
    )


def check_review_routing(settings: Settings, tmp_path: Path, serving_model_dir: Path) -> None:
    topics = settings.topics
    records = list(mixed_records(RECORDS, long_every=1000))
    producer = Producer(settings.kafka.confluent_config())
    for record in records:
        producer.produce(topics.inputs[0], RECORD.encode(record), key=record.id.encode())
    assert producer.flush(30) == 0

    worker = WorkerProcess(
        settings,
        tmp_path / "worker.log",
        overrides={
            "model.model_dir": str(serving_model_dir),
            "review.entity_score_below": str(SCORE_BELOW),
            "review.sample_rate": str(SAMPLE_RATE),
            "review.sample_seed": str(SEED),
        },
    ).start()
    try:
        committed = wait_committed_to_end(
            settings, settings.worker.group_id, topics.inputs[0], 2, timeout_s=300
        )
        assert committed == end_offsets(settings, topics.inputs[0], 2), worker.log_tail()
        assert worker.stop() == 0
    finally:
        worker.kill()

    def read(topic: str) -> list[Any]:
        total = end_offsets(settings, topic, 1)[(topic, 0)]
        outputs = consume_outputs(
            settings, topic, from_beginning=True, max_messages=total, idle_timeout_s=30
        )
        decoded = list(outputs)
        assert [output.error for output in decoded if output.value is None] == []
        return [output.value for output in decoded]

    events = read(topics.entities)
    tasks = read(topics.review)
    assert all(isinstance(event, EntityEvent) for event in events)
    assert all(isinstance(task, ReviewTask) for task in tasks)
    # Every record keeps its one entity event, reviewed or not.
    assert sorted(event.record_id for event in events) == sorted(r.id for r in records)

    by_id = {event.record_id: event for event in events}
    expected = {
        record_id
        for record_id, event in by_id.items()
        if any(span.score < SCORE_BELOW for span in event.entities)
        or sampled(record_id, SAMPLE_RATE, SEED)
    }
    reviewed = {task.record_id: task for task in tasks}
    assert len(reviewed) == len(tasks), "one review task per selected record"
    assert set(reviewed) == expected
    assert 0 < len(expected) < RECORDS
    texts = {record.id: record.text for record in records}
    for record_id, task in reviewed.items():
        event = by_id[record_id]
        assert task.text == texts[record_id]
        assert task.entities == event.entities
        assert (task.model, task.input) == (event.model, event.input)
        low = any(span.score < SCORE_BELOW for span in task.entities)
        assert task.reason == ("LOW_ENTITY_SCORE" if low else "RANDOM_SAMPLE")

    # nerstream review --from-topic takes the same tasks into its store, once each, and commits.
    store = ReviewStore(tmp_path / "review-state", lease_s=60)
    assert pull_topic(settings, store.add, idle_s=2) == len(tasks)
    assert {item.id for item in store.items()} == expected
    assert pull_topic(settings, store.add, idle_s=2) == 0
