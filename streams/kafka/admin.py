"""The one wrapper around confluent-kafka's ``AdminClient``: create and list topics.

``nerstream topics``, ``nerstream local up``, the benchmarks and the test fixtures all create and
list topics through these two functions, with the configured security settings.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from errors import NerstreamError
from streams.settings import KafkaSettings


class KafkaToolError(NerstreamError):
    """A Kafka tooling operation (topics, produce, consume, the local broker) failed."""


def refuse_on_authentication_error(error: KafkaError) -> None:
    """``error_cb`` of the tools' clients: wrong credentials end the command at once with the
    broker's reason (librdkafka would keep retrying until its timeouts run out); any other
    error is left to librdkafka's retries. confluent-kafka raises it from ``poll``/``flush``."""
    if error.code() == KafkaError._AUTHENTICATION or error.fatal():
        raise KafkaToolError(f"the broker refused the client: {error.str()}")


def admin_client(kafka: KafkaSettings, *, quiet: bool = False) -> AdminClient:
    """An admin client for ``kafka``; ``quiet`` silences librdkafka's connection errors (while a
    broker starts, every refused connection would otherwise be logged)."""
    config: dict[str, Any] = {**kafka.confluent_config()}
    if quiet:
        config.update({"log_level": 0, "error_cb": lambda _: None})
    return AdminClient(config)


def list_topics(
    kafka: KafkaSettings, timeout_s: float = 10.0, *, quiet: bool = False
) -> dict[str, int]:
    """Topic name -> partition count, sorted by name, internal topics left out."""
    try:
        metadata = admin_client(kafka, quiet=quiet).list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise KafkaToolError(f"cannot list topics: {exc.args[0].str()}") from exc
    return {
        name: len(topic.partitions)
        for name, topic in sorted(metadata.topics.items())
        if not name.startswith("__")
    }


def create_topics(
    kafka: KafkaSettings,
    names: Iterable[str],
    partitions: int,
    replication_factor: int = 1,
    timeout_s: float = 30.0,
) -> dict[str, str]:
    """Create topics and wait until the broker's metadata has them (so clients that start right
    after this see every partition); return ``{name: "created" | "exists"}``.

    Existing topics are kept as they are.
    """
    wanted = [NewTopic(name, partitions, replication_factor) for name in names]
    outcome: dict[str, str] = {}
    if not wanted:
        return outcome
    admin = admin_client(kafka)  # must outlive its futures
    futures = admin.create_topics(wanted, operation_timeout=timeout_s, request_timeout=timeout_s)
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            outcome[name] = "created"
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise KafkaToolError(f"cannot create topic {name}: {error.str()}") from exc
            outcome[name] = "exists"
    deadline = time.monotonic() + timeout_s
    missing = set(futures)
    while missing:
        try:
            topics = admin.list_topics(timeout=timeout_s).topics
        except KafkaException as exc:
            raise KafkaToolError(f"cannot list topics: {exc.args[0].str()}") from exc
        missing = {name for name in missing if name not in topics or topics[name].error}
        if missing and time.monotonic() > deadline:
            raise KafkaToolError(f"topics not in the broker's metadata in time: {sorted(missing)}")
        if missing:
            time.sleep(0.1)
    return outcome
