"""Delivering the worker's outputs with confluent-kafka, and the retry policy around it.

Faust's own per-message send is about three times slower than librdkafka's producer, so the
worker lets Faust consume and commit, and produces entity events and dead letters here:
idempotent, ``acks=all``, with a delivery callback per message. :func:`deliver_all` returns only
when the broker has acknowledged every output of a batch; the caller acks the batch's input
offsets after that, so no offset is ever committed ahead of its output.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Sequence
from functools import partial
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Producer

from errors import EXIT_CRASH_STOP, TemporaryError
from streams.settings import Settings
from streams.worker.pipeline import MAX_OUTPUT_BYTES, Output

logger = logging.getLogger(__name__)

#: Attempts per output before the worker gives up and stops without committing. Each attempt
#: lasts up to ``worker.delivery_timeout_s`` (librdkafka retries inside it).
DELIVERY_ATTEMPTS = 3
#: Pause before the second attempt; doubled before each further one.
RETRY_BACKOFF_S = 1.0
#: Errors that no retry can fix: the output, the topic or the credentials must change first.
_PERMANENT_CODES = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.TOPIC_EXCEPTION,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        KafkaError._INVALID_ARG,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_MSG,
    }
)


class DeliveryError(TemporaryError):
    """Outputs could not be delivered: the worker must stop without acking their inputs.

    Temporary for the work: the inputs are fine and are processed again after the restart,
    even when the delivery error itself was permanent (the output topic must be fixed first).
    """

    exit_code = EXIT_CRASH_STOP


def is_permanent(error: KafkaError) -> bool:
    """Whether a delivery error cannot go away by itself (timeouts and outages can)."""
    return bool(error.fatal()) or error.code() in _PERMANENT_CODES


def producer_config(settings: Settings, client_id: str) -> dict[str, Any]:
    """librdkafka properties of the output producer (security settings shared with Faust's)."""
    return {
        **settings.kafka.confluent_config(),
        "client.id": client_id,
        "acks": "all",
        # Idempotence keeps per-partition order and drops duplicates from internal retries; a
        # transactional.id on top would make exactly-once possible later.
        "enable.idempotence": True,
        "message.timeout.ms": int(settings.worker.delivery_timeout_s * 1000),
        "message.max.bytes": MAX_OUTPUT_BYTES,
        # The Java client's partitioner, so an output lands where a Java producer would put it.
        "partitioner": "murmur2_random",
        # A batch's outputs are produced together and then awaited: waiting longer for more
        # messages to join a request would only delay the ack.
        "linger.ms": 1,
        # librdkafka's own log lines go through Python logging (and so JSON logs) too.
        "logger": logging.getLogger("librdkafka"),
    }


class Sender(Protocol):
    """Sends messages and reports each one's delivery error (None when acknowledged)."""

    async def send(self, outputs: Sequence[Output]) -> list[KafkaError | None]: ...


class OutputTransport(Sender, Protocol):
    """A :class:`Sender` that can also hand messages over now and report on them later, so the
    worker produces batch N+1 while batch N still waits for its acknowledgements."""

    async def produce(self, outputs: Sequence[Output]) -> Awaitable[list[KafkaError | None]]:
        """Queue every output, in order; return what resolves to their delivery errors."""
        ...


class BatchDeliveries:
    """Delivery reports of one batch, collected off the event loop.

    Reports arrive on the poll thread; the event loop is woken once, when the last one is in,
    rather than once per message.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, count: int) -> None:
        self.errors: list[KafkaError | None] = [None] * count
        self.done: asyncio.Future[list[KafkaError | None]] = loop.create_future()
        self._loop = loop
        self._pending = count
        self._lock = threading.Lock()
        if count == 0:
            self.done.set_result(self.errors)

    def report(self, index: int, error: KafkaError | None, _message: object = None) -> None:
        """Record one message's outcome (from any thread; also librdkafka's ``on_delivery``)."""
        self.errors[index] = error
        with self._lock:
            self._pending -= 1
            last = self._pending == 0
        if last:
            self._loop.call_soon_threadsafe(self.done.set_result, self.errors)


class KafkaOutputProducer:
    """A confluent-kafka Producer whose delivery reports resolve one asyncio future per batch.

    A daemon thread polls the producer, so reports arrive even while the event loop waits.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self._producer = Producer(config)
        #: The few distinct header tuples (one per output kind) as the lists librdkafka takes.
        self._headers: dict[
            tuple[tuple[str, bytes], ...], list[tuple[str, str | bytes | None]]
        ] = {}
        self._closing = threading.Event()
        self._poller = threading.Thread(
            target=self._poll_until_closed, name="nerstream-delivery", daemon=True
        )
        self._poller.start()

    def _poll_until_closed(self) -> None:
        while not self._closing.is_set():
            self._producer.poll(0.1)

    async def send(self, outputs: Sequence[Output]) -> list[KafkaError | None]:
        return await (await self.produce(outputs))

    async def produce(self, outputs: Sequence[Output]) -> Awaitable[list[KafkaError | None]]:
        """Hand every output to librdkafka, in order, without an ``await`` per message; return
        the future of the batch's delivery errors."""
        deliveries = BatchDeliveries(asyncio.get_running_loop(), len(outputs))
        produced = self._produce_from(outputs, 0, deliveries)
        while produced < len(outputs):
            # The local queue is full; the poll thread is draining it.
            await asyncio.sleep(0.01)
            produced = self._produce_from(outputs, produced, deliveries)
        return deliveries.done

    def _produce_from(
        self, outputs: Sequence[Output], start: int, deliveries: BatchDeliveries
    ) -> int:
        """Produce ``outputs[start:]`` until librdkafka's queue is full; return how far it got."""
        produce = self._producer.produce
        headers_of = self._headers
        report = deliveries.report
        for index in range(start, len(outputs)):
            output = outputs[index]
            headers = headers_of.get(output.headers)
            if headers is None:
                headers = headers_of[output.headers] = list(output.headers)
            try:
                produce(
                    output.topic,
                    value=output.value,
                    key=output.key,
                    headers=headers,
                    on_delivery=partial(report, index),
                )
            except BufferError:
                return index
            except KafkaException as exc:
                report(index, exc.args[0])
        return len(outputs)

    def close(self, timeout_s: float = 30.0) -> int:
        """Deliver what is queued (up to ``timeout_s``), stop polling; return what was left."""
        left = self._producer.flush(timeout_s)
        self._closing.set()
        self._poller.join()
        return int(left)


async def deliver_all(
    outputs: Sequence[Output],
    transport: Sender,
    attempts: int = DELIVERY_ATTEMPTS,
    backoff_s: float = RETRY_BACKOFF_S,
    first_attempt: Awaitable[list[KafkaError | None]] | None = None,
) -> int:
    """Deliver every output or raise :class:`DeliveryError`; return how many were re-sent.

    ``first_attempt``: the delivery errors of outputs already produced (by
    :meth:`OutputTransport.produce`); without it the first attempt sends them here.
    Temporary failures are re-sent (in their original order) after a growing pause; a
    permanent failure, or a temporary one that outlasts ``attempts``, raises.
    """
    pending = list(outputs)
    resent = 0
    attempt = 1
    while True:
        if first_attempt is not None:
            errors, first_attempt = await first_attempt, None
        else:
            errors = await transport.send(pending)
        failed = [(out, err) for out, err in zip(pending, errors, strict=True) if err is not None]
        if not failed:
            return resent
        permanent = [(out, err) for out, err in failed if is_permanent(err)]
        if permanent or attempt >= attempts:
            out, err = (permanent or failed)[0]
            raise DeliveryError(
                f"{len(failed)} output(s) undeliverable after {attempt} attempt(s); first: "
                f"{out.kind} for {_where(out)} to {out.topic}: {err.str()} "
                f"({'permanent' if permanent else 'temporary'} error)"
            )
        pause = backoff_s * 2 ** (attempt - 1)
        logger.warning(
            "%d output(s) not delivered (first: %s for %s: %s); retrying in %.1f s",
            len(failed),
            failed[0][0].kind,
            _where(failed[0][0]),
            failed[0][1].str(),
            pause,
        )
        await asyncio.sleep(pause)
        pending = [out for out, _ in failed]
        resent += len(pending)
        attempt += 1


def _where(output: Output) -> str:
    source = output.source
    return f"{source.topic}[{source.partition}]@{source.offset}"
