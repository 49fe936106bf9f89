"""Batches are released for acking strictly in dispatch order, whatever order they deliver in."""

from __future__ import annotations

import pytest

from streams.worker.inflight import InFlight


def test_in_order_deliveries_release_at_once() -> None:
    flight: InFlight[str] = InFlight()
    first, second = flight.open("a"), flight.open("b")
    assert len(flight) == 2
    assert flight.delivered(first) == ["a"]
    assert flight.delivered(second) == ["b"]
    assert len(flight) == 0


def test_a_later_batch_waits_for_every_earlier_one() -> None:
    flight: InFlight[str] = InFlight()
    sequences = [flight.open(name) for name in "abcd"]
    assert flight.delivered(sequences[2]) == []
    assert flight.delivered(sequences[1]) == []
    assert len(flight) == 4, "nothing released while the oldest is undelivered"
    assert flight.delivered(sequences[0]) == ["a", "b", "c"]
    assert flight.delivered(sequences[3]) == ["d"]


def test_batches_opened_after_a_release_keep_counting() -> None:
    flight: InFlight[int] = InFlight()
    assert flight.delivered(flight.open(1)) == [1]
    later = flight.open(2)
    assert later == 1
    assert flight.delivered(later) == [2]


def test_unknown_or_repeated_deliveries_are_bugs() -> None:
    flight: InFlight[str] = InFlight()
    sequence = flight.open("a")
    with pytest.raises(KeyError):
        flight.delivered(sequence + 1)
    flight.delivered(sequence)
    with pytest.raises(KeyError):
        flight.delivered(sequence)
