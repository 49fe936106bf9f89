"""Registry mode at run time: the output schemas' ids, and writer schemas looked up by id.

:func:`register_schema` runs once on start-up per (topic, schema): it registers the ``.avsc``
under its subject (auto_register) or finds it there, and refuses clearly otherwise.
:class:`WriterSchemas` is the lookup the pure decoding code calls with a framed value's schema
id: cached, and patient with an outage (it backs off and retries; it never turns an outage into
a dead letter). Both talk to the registry only through :class:`~.client.RegistryClient`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from errors import TemporaryError, UsageError
from schemas.codecs import DEAD_LETTER, ENTITY_EVENT, AvroCodec
from schemas.errors import DecodeError, ErrorCode
from schemas.framing import Schema, full_name, parse_writer_schema, subject_name
from streams.registry.client import (
    IncompatibleSchemaError,
    RegisteredSchema,
    RegistryClient,
    RegistryUnavailableError,
)
from streams.settings import SchemaRegistrySettings

logger = logging.getLogger(__name__)

#: Back-off between attempts while the registry is away: doubling from the first to the last.
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 15.0


class SchemaRegistrationError(UsageError):
    """An output schema is not (and may not be) registered under its subject: fix the registry
    or the settings before the worker can start (exit 2)."""


class RegistryOutageError(TemporaryError):
    """The registry stayed unreachable for longer than ``schema_registry.outage_timeout_s``."""


class SchemaSource(Protocol):
    """What :class:`WriterSchemas` needs of the client (a fake in unit tests)."""

    def schema_by_id(self, schema_id: int) -> RegisteredSchema | None: ...


@dataclass(frozen=True)
class OutputSchemaIds:
    """The registry ids the worker frames its outputs with."""

    entity_event: int
    dead_letter: int


def register_schema(
    client: RegistryClient, settings: SchemaRegistrySettings, topic: str, codec: AvroCodec[Any]
) -> int:
    """The id of ``codec``'s schema under its subject for ``topic``, registering it if allowed."""
    subject = subject_name(settings.subject_strategy, topic, codec.name)
    if settings.auto_register:
        if settings.compatibility:
            client.set_compatibility(subject, settings.compatibility)
        try:
            schema_id = client.register(subject, codec.schema_text)
        except IncompatibleSchemaError as exc:
            level = client.compatibility(subject) or "the registry's default"
            raise SchemaRegistrationError(
                f"the schema registry refused {codec.name} under subject {subject!r}: it is not "
                f"compatible ({level}) with the version registered there. Registry said: "
                f"{exc}"
            ) from exc
        logger.info("schema %s registered under %s: id %d", codec.name, subject, schema_id)
        return schema_id
    found = client.lookup(subject, codec.schema_text)
    if found is None:
        compatible, reason = client.check_compatibility(subject, codec.schema_text)
        verdict = (
            f"the registry would accept it ({reason or 'compatible with the latest version'})"
            if compatible
            else f"it is not compatible with the latest version there ({reason or 'no reason'})"
        )
        raise SchemaRegistrationError(
            f"{codec.name} is not registered under subject {subject!r} and "
            f"schema_registry.auto_register is off; {verdict}. Register it, or set "
            "schema_registry.auto_register=true"
        )
    logger.info("schema %s found under %s: id %d", codec.name, subject, found)
    return found


def register_outputs(
    client: RegistryClient,
    settings: SchemaRegistrySettings,
    entities_topic: str,
    dead_letter_topic: str,
) -> OutputSchemaIds:
    """Register (or find) the entity event and dead letter schemas under their subjects."""
    return OutputSchemaIds(
        entity_event=register_schema(client, settings, entities_topic, ENTITY_EVENT),
        dead_letter=register_schema(client, settings, dead_letter_topic, DEAD_LETTER),
    )


class WriterSchemas:
    """Writer schemas by id: fetched once and cached (a registry never changes an id's schema).

    Unknown ids raise DecodeError(UNKNOWN_SCHEMA_ID) and are asked again next time (the schema
    may be registered meanwhile); unusable schemas raise DecodeError(INCOMPATIBLE_SCHEMA) and
    are remembered. While the registry is unreachable a call backs off and retries, for up to
    ``outage_timeout_s``, then raises :class:`RegistryOutageError`.
    """

    def __init__(
        self,
        source: SchemaSource,
        outage_timeout_s: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.outage_timeout_s = outage_timeout_s
        self._sleep = sleep
        self._clock = clock
        self._known: dict[int, Schema | DecodeError] = {}

    def __call__(self, schema_id: int) -> Schema:
        known = self._known.get(schema_id)
        if known is None:
            known = self._fetch(schema_id)
        if isinstance(known, DecodeError):
            raise known
        return known

    def _fetch(self, schema_id: int) -> Schema | DecodeError:
        found = self._fetch_patiently(schema_id)
        if found is None:
            raise DecodeError(
                ErrorCode.UNKNOWN_SCHEMA_ID, f"the schema registry has no schema id {schema_id}"
            )
        known: Schema | DecodeError
        try:
            known = parse_writer_schema(schema_id, found.schema, found.schema_type)
        except DecodeError as exc:
            known = exc
        else:
            logger.info("writer schema %d fetched: %s", schema_id, full_name(known))
        self._known[schema_id] = known
        return known

    def _fetch_patiently(self, schema_id: int) -> RegisteredSchema | None:
        deadline: float | None = None
        backoff = FIRST_BACKOFF_S
        while True:
            try:
                return self.source.schema_by_id(schema_id)
            except RegistryUnavailableError as exc:
                now = self._clock()
                deadline = now + self.outage_timeout_s if deadline is None else deadline
                if now >= deadline:
                    raise RegistryOutageError(
                        f"schema id {schema_id} could not be fetched for "
                        f"{self.outage_timeout_s:.0f} s: {exc}"
                    ) from exc
                wait = min(backoff, deadline - now)
                logger.warning(
                    "schema registry unavailable, retrying in %.1f s (schema id %d): %s",
                    wait,
                    schema_id,
                    exc,
                )
                self._sleep(wait)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
