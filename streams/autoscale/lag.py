"""Reads a consumer group's committed offsets, the partitions' end offsets and the group's
members (the Kafka admin client, through :func:`streams.kafka.admin.admin_client`, plus a
consumer for the commits), as a policy ``Observation``.

Belongs here: the Kafka I/O of the autoscaler and nothing else; the rules about what the numbers
mean live in :mod:`streams.autoscale.policy`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import _listoffsets

from streams.autoscale.errors import AutoscaleTemporaryError
from streams.autoscale.policy import Observation, PartitionOffsets
from streams.kafka.admin import admin_client
from streams.settings import KafkaSettings

_NO_OFFSET = -1001  # librdkafka's OFFSET_INVALID: nothing committed
_COORDINATOR_NOT_READY = {
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
}
# OffsetSpec is public API (confluent_kafka.admin.OffsetSpec) but not re-exported for mypy.
_LATEST: Any = _listoffsets.OffsetSpec.latest()  # type: ignore[no-untyped-call]
_EARLIEST: Any = _listoffsets.OffsetSpec.earliest()  # type: ignore[no-untyped-call]


class LagReader:
    """One admin client (topics, end offsets, members) and one consumer that never subscribes
    (committed offsets), reused for every read of ``group`` on ``topics``."""

    def __init__(
        self, kafka: KafkaSettings, group: str, topics: Sequence[str], timeout_s: float = 10.0
    ) -> None:
        self.group = group
        self.topics = tuple(topics)
        self.timeout_s = timeout_s
        self._admin = admin_client(kafka, quiet=True)
        self._consumer = Consumer(
            {
                **kafka.confluent_config(),
                "group.id": group,
                "enable.auto.commit": False,
                "log_level": 0,
                "error_cb": lambda _: None,
            }
        )

    def close(self) -> None:
        self._consumer.close()

    def read(self, at: float, replicas: int | None = None) -> Observation:
        """Offsets of every partition of the topics; ``replicas`` None: the group's members."""
        partitions = self._partitions()
        committed = self._committed(partitions)
        latest = self._offsets(partitions, _LATEST)
        earliest = self._offsets(partitions, _EARLIEST)
        members = self._members()
        return Observation(
            at=at,
            partitions=tuple(
                PartitionOffsets(
                    topic,
                    partition,
                    committed=committed.get((topic, partition)),
                    highwater=latest.get((topic, partition)),
                    earliest=earliest.get((topic, partition)),
                )
                for topic, partition in partitions
            ),
            replicas=(members or 0) if replicas is None else replicas,
            members=members,
        )

    def _partitions(self) -> list[tuple[str, int]]:
        try:
            metadata = self._admin.list_topics(timeout=self.timeout_s)
        except KafkaException as exc:
            raise AutoscaleTemporaryError(f"cannot read topic metadata: {exc}") from exc
        found: list[tuple[str, int]] = []
        for topic in self.topics:
            meta = metadata.topics.get(topic)
            if meta is None or meta.error is not None:
                continue  # a topic that does not exist (yet) has no lag
            found.extend((topic, partition) for partition in sorted(meta.partitions))
        return found

    def _committed(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The group's committed offsets, through a consumer that never joins the group.

        Not ``AdminClient.list_consumer_group_offsets``: on this machine its error path crashed
        the process (a segfault) while a fresh broker's group coordinator was still loading
        (confluent-kafka-python#1982); a consumer's ``committed()`` raises instead.
        """
        if not partitions:
            return {}
        request = [TopicPartition(topic, partition) for topic, partition in partitions]
        deadline = time.monotonic() + 3 * self.timeout_s
        while True:
            try:
                result = self._consumer.committed(request, timeout=self.timeout_s)
                break
            except KafkaException as exc:
                # A coordinator that is still loading (a broker just started) answers soon.
                error = exc.args[0]
                loading = error.retriable() or error.code() in _COORDINATOR_NOT_READY
                if loading and time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                raise AutoscaleTemporaryError(f"cannot read {self.group}'s offsets: {exc}") from exc
        return {
            (tp.topic, tp.partition): tp.offset
            for tp in result
            if tp.error is None and tp.offset != _NO_OFFSET and tp.offset >= 0
        }

    def _offsets(self, partitions: list[tuple[str, int]], spec: Any) -> dict[tuple[str, int], int]:
        """Offsets per partition; a partition whose offset cannot be read is left out."""
        if not partitions:
            return {}
        request = {TopicPartition(topic, partition): spec for topic, partition in partitions}
        try:
            futures = self._admin.list_offsets(request, request_timeout=self.timeout_s)
        except KafkaException as exc:
            raise AutoscaleTemporaryError(f"cannot list offsets: {exc}") from exc
        offsets: dict[tuple[str, int], int] = {}
        for tp, future in futures.items():
            try:
                offsets[(tp.topic, tp.partition)] = future.result(timeout=self.timeout_s).offset
            except KafkaException:
                continue  # missing partition: the policy leaves it out and reports it
        return offsets

    def _members(self) -> int | None:
        try:
            futures = self._admin.describe_consumer_groups([self.group])
            description: Any = futures[self.group].result(timeout=self.timeout_s)
        except KafkaException:
            return None
        return len(description.members)
