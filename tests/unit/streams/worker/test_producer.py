"""Output delivery: the retry policy, error classification and the producer's configuration."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest
from confluent_kafka import KafkaError

from streams.settings import load_settings
from streams.worker.pipeline import Output, RawMessage
from streams.worker.producer import (
    BatchDeliveries,
    DeliveryError,
    deliver_all,
    is_permanent,
    producer_config,
)

TIMED_OUT = KafkaError(KafkaError._MSG_TIMED_OUT)
TOO_LARGE = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)


def outputs(count: int) -> list[Output]:
    return [
        Output(
            kind="entities",
            topic="entities",
            key=b"k",
            value=f"v{i}".encode(),
            headers=(),
            source=RawMessage("news", 0, i, b"k", b"x"),
        )
        for i in range(count)
    ]


class ScriptedTransport:
    """Answers each send with the next scripted list of errors (None = delivered)."""

    def __init__(self, *answers: Sequence[KafkaError | None]) -> None:
        self.answers = list(answers)
        self.sent: list[list[bytes]] = []

    async def send(self, batch: Sequence[Output]) -> list[KafkaError | None]:
        self.sent.append([out.value for out in batch])
        answer = list(self.answers.pop(0))
        assert len(answer) == len(batch)
        return answer


def deliver(transport: ScriptedTransport, batch: list[Output]) -> int:
    return asyncio.run(deliver_all(batch, transport, attempts=3, backoff_s=0.001))


def test_everything_delivered_first_time() -> None:
    transport = ScriptedTransport([None, None, None])
    assert deliver(transport, outputs(3)) == 0
    assert transport.sent == [[b"v0", b"v1", b"v2"]]


def test_temporary_failures_are_resent_in_order() -> None:
    transport = ScriptedTransport([None, TIMED_OUT, TIMED_OUT], [None, None])
    assert deliver(transport, outputs(3)) == 2
    assert transport.sent == [[b"v0", b"v1", b"v2"], [b"v1", b"v2"]]


def test_a_temporary_failure_that_outlasts_the_attempts_raises() -> None:
    transport = ScriptedTransport([TIMED_OUT], [TIMED_OUT], [TIMED_OUT])
    with pytest.raises(DeliveryError, match="after 3 attempt"):
        deliver(transport, outputs(1))
    assert len(transport.sent) == 3


def test_a_permanent_failure_raises_at_once() -> None:
    transport = ScriptedTransport([None, TOO_LARGE])
    with pytest.raises(DeliveryError, match="permanent"):
        deliver(transport, outputs(2))
    assert len(transport.sent) == 1


@pytest.mark.parametrize(
    ("code", "permanent"),
    [
        (KafkaError._MSG_TIMED_OUT, False),
        (KafkaError._TRANSPORT, False),
        (KafkaError.NOT_ENOUGH_REPLICAS, False),
        (KafkaError.LEADER_NOT_AVAILABLE, False),
        (KafkaError.MSG_SIZE_TOO_LARGE, True),
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, True),
        (KafkaError.TOPIC_EXCEPTION, True),
    ],
)
def test_error_classification(code: int, permanent: bool) -> None:
    assert is_permanent(KafkaError(code)) is permanent


def test_fatal_errors_are_permanent() -> None:
    assert is_permanent(KafkaError(KafkaError._MSG_TIMED_OUT, fatal=True))


def test_producer_config_is_idempotent_acks_all_and_carries_security() -> None:
    settings = load_settings(
        {
            "kafka.bootstrap_servers": "b1:9093,b2:9093",
            "kafka.security_protocol": "SASL_SSL",
            "kafka.sasl_mechanism": "SCRAM-SHA-512",
            "kafka.sasl_username": "ner",
            "kafka.sasl_password": "s3cret",
            "worker.delivery_timeout_s": "30",
        },
        env={},
    )
    config = producer_config(settings, client_id="nerstream-w1")
    assert config["acks"] == "all" and config["enable.idempotence"] is True
    assert config["message.timeout.ms"] == 30_000
    assert config["bootstrap.servers"] == "b1:9093,b2:9093"
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert config["sasl.password"] == "s3cret"


def test_batch_deliveries_resolve_once_when_the_last_report_arrives() -> None:
    async def scenario() -> list[KafkaError | None]:
        deliveries = BatchDeliveries(asyncio.get_running_loop(), 3)
        # Reports come from librdkafka's poll thread, in any order.
        reporters = [
            threading.Thread(target=deliveries.report, args=(index, error))
            for index, error in [(2, None), (0, TIMED_OUT), (1, None)]
        ]
        for reporter in reporters:
            reporter.start()
        for reporter in reporters:
            reporter.join()
        return await asyncio.wait_for(deliveries.done, timeout=5)

    assert asyncio.run(scenario()) == [TIMED_OUT, None, None]


def test_an_empty_batch_is_delivered_at_once() -> None:
    async def scenario() -> list[KafkaError | None]:
        return await BatchDeliveries(asyncio.get_running_loop(), 0).done

    assert asyncio.run(scenario()) == []
