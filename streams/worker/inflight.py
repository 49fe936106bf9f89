"""Bookkeeping of batches between dispatch and ack: which ones may be acked now, in order.

Pure. The worker dispatches batches in arrival order and several are in flight at once (one
inferring, others waiting for their delivery reports), so deliveries may finish out of order.
An input offset may become committable only after its own output *and every earlier one of its
partition* have been acknowledged; since a partition's records enter batches in offset order,
acking whole batches strictly in dispatch order is enough. :class:`InFlight` releases them so:
a delivered batch waits until every batch dispatched before it is delivered too.

Faust then commits, per partition, the contiguous prefix of acked offsets (its ``_new_offset``
never passes a gap), so the committed offset is always a watermark below every record still in
flight. Does not belong here: Faust events, asyncio, the producer.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class InFlight(Generic[T]):
    """Batches dispatched and not yet released for acking, in dispatch order."""

    def __init__(self) -> None:
        self._items: dict[int, T] = {}
        self._delivered: set[int] = set()
        self._next = 0
        #: The oldest sequence number not yet released.
        self._head = 0

    def __len__(self) -> int:
        """Batches dispatched and not yet released."""
        return len(self._items)

    def open(self, item: T) -> int:
        """Register a dispatched batch; return its sequence number."""
        sequence = self._next
        self._next += 1
        self._items[sequence] = item
        return sequence

    def delivered(self, sequence: int) -> list[T]:
        """Mark a batch delivered; return the batches that may be acked now, oldest first."""
        if sequence not in self._items or sequence in self._delivered:
            raise KeyError(f"batch {sequence} is not in flight")
        self._delivered.add(sequence)
        released = []
        while self._head in self._delivered:
            self._delivered.discard(self._head)
            released.append(self._items.pop(self._head))
            self._head += 1
        return released
