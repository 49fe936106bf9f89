"""WriterSchemas: cached lookups, unknown and unusable ids, and patience with an outage (a fake
source stands in for the registry client; the real one is tested against a real registry)."""

from __future__ import annotations

import pytest

from schemas.codecs import RECORD
from schemas.errors import DecodeError, ErrorCode
from streams.registry.client import RegisteredSchema, RegistryUnavailableError
from streams.registry.wire import MAX_BACKOFF_S, RegistryOutageError, WriterSchemas


class FakeRegistry:
    """Schemas by id; ``down_for`` calls fail as an unreachable registry does."""

    def __init__(self, schemas: dict[int, RegisteredSchema], down_for: int = 0) -> None:
        self.schemas = schemas
        self.down_for = down_for
        self.calls: list[int] = []

    def schema_by_id(self, schema_id: int) -> RegisteredSchema | None:
        self.calls.append(schema_id)
        if self.down_for:
            self.down_for -= 1
            raise RegistryUnavailableError("connection refused")
        return self.schemas.get(schema_id)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def lookup(
    registry: FakeRegistry, clock: FakeClock, outage_timeout_s: float = 60.0
) -> WriterSchemas:
    return WriterSchemas(registry, outage_timeout_s, sleep=clock.sleep, clock=lambda: clock.now)


def test_a_schema_is_fetched_once_and_cached() -> None:
    registry = FakeRegistry({5: RegisteredSchema(5, RECORD.schema_text)})
    schemas = lookup(registry, FakeClock())
    assert schemas(5)["name"] == "nerstream.v1.Record"
    assert schemas(5) is schemas(5)
    assert registry.calls == [5]


def test_an_unknown_id_is_a_dead_letter_and_asked_again_later() -> None:
    registry = FakeRegistry({})
    schemas = lookup(registry, FakeClock())
    for _ in range(2):
        with pytest.raises(DecodeError) as refused:
            schemas(7)
        assert refused.value.error_code == ErrorCode.UNKNOWN_SCHEMA_ID
    registry.schemas[7] = RegisteredSchema(7, RECORD.schema_text)
    assert schemas(7)["name"] == "nerstream.v1.Record"
    assert registry.calls == [7, 7, 7]


def test_an_unusable_schema_is_remembered_as_incompatible() -> None:
    registry = FakeRegistry({8: RegisteredSchema(8, '{"type": "object"}', "JSON")})
    schemas = lookup(registry, FakeClock())
    for _ in range(2):
        with pytest.raises(DecodeError) as refused:
            schemas(8)
        assert refused.value.error_code == ErrorCode.INCOMPATIBLE_SCHEMA
    assert registry.calls == [8]


def test_an_outage_is_waited_out_with_growing_back_off() -> None:
    registry = FakeRegistry({5: RegisteredSchema(5, RECORD.schema_text)}, down_for=8)
    clock = FakeClock()
    assert lookup(registry, clock, outage_timeout_s=600)(5)["name"] == "nerstream.v1.Record"
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, MAX_BACKOFF_S, MAX_BACKOFF_S, MAX_BACKOFF_S]


def test_an_outage_longer_than_the_timeout_is_a_temporary_error_not_a_dead_letter() -> None:
    registry = FakeRegistry({5: RegisteredSchema(5, RECORD.schema_text)}, down_for=1000)
    clock = FakeClock()
    with pytest.raises(RegistryOutageError, match="could not be fetched for 20 s"):
        lookup(registry, clock, outage_timeout_s=20)(5)
    assert sum(clock.sleeps) == pytest.approx(20)
