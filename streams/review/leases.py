"""Who works on which task now. Pure (the clock is passed in).

A reviewer who asks for work gets a lease on one task; nobody else gets that task while the
lease lives. Every edit renews it; it runs out ``lease_s`` after the last one, so a task left
open in a closed tab goes back to the pool. Leases live in memory: after a server restart every
task is free again, and the next reviewer to ask gets it with its persisted draft.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lease:
    reviewer: str
    expires_at: float


class Leases:
    def __init__(self, lease_s: float) -> None:
        self.lease_s = lease_s
        self._by_task: dict[str, Lease] = {}

    def holder(self, task_id: str, now: float) -> str | None:
        """Who holds the task now (None when nobody, or the lease ran out)."""
        lease = self._by_task.get(task_id)
        return lease.reviewer if lease is not None and lease.expires_at > now else None

    def held_by(self, reviewer: str, now: float) -> list[str]:
        """The tasks ``reviewer`` holds now."""
        return [
            task_id
            for task_id, lease in self._by_task.items()
            if lease.reviewer == reviewer and lease.expires_at > now
        ]

    def acquire(self, task_id: str, reviewer: str, now: float) -> bool:
        """Take or renew the lease; False when another reviewer holds it."""
        holder = self.holder(task_id, now)
        if holder is not None and holder != reviewer:
            return False
        self._by_task[task_id] = Lease(reviewer, now + self.lease_s)
        return True

    def release(self, task_id: str, reviewer: str) -> None:
        lease = self._by_task.get(task_id)
        if lease is not None and lease.reviewer == reviewer:
            del self._by_task[task_id]
