"""Dynamic batching across requests, pure: when the next model call starts, which of the waiting
requests it takes, and how its results go back to them. No clocks (times come in as numbers),
no asyncio; :mod:`streams.serve.dispatcher` does the waiting and the calling.

The rules, given ``serve.batch_window_ms``, ``serve.max_batch`` and ``serve.latency_target_ms``:

- one model call at a time; while it runs, arriving requests wait and join the next one (so
  under load calls grow by themselves, as in the worker);
- once the model is free, the oldest waiting request waits until it is ``batch_window`` old,
  for others to join its call, unless ``max_batch`` texts are waiting already; a request that
  waited for a running call has had its window;
- how many texts a call takes is the worker's adaptive policy
  (:class:`streams.worker.batching.AdaptiveBatcher`: measured cost per padded character kept
  within a share of the latency target, ``max_batch`` when the backlog is late anyway); a call
  takes whole requests, in arrival order, and always at least one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from streams.worker.batching import AdaptiveBatcher

T = TypeVar("T")


def dispatch_delay(
    now: float, oldest_arrival: float, window_s: float, waiting_texts: int, max_batch: int
) -> float:
    """Seconds to wait before the next call while the model is free (0: call now)."""
    if waiting_texts >= max_batch:
        return 0.0
    return max(oldest_arrival + window_s - now, 0.0)


def requests_for_call(texts_per_request: Sequence[Sequence[str]], batcher: AdaptiveBatcher) -> int:
    """How many of the waiting requests (in arrival order) the next call takes."""
    lengths = [len(text) for texts in texts_per_request for text in texts]
    budget = batcher.next_batch(lengths)
    taken = 0
    texts = 0
    for request in texts_per_request:
        if taken and texts + len(request) > budget:
            break
        taken += 1
        texts += len(request)
    return taken


def split(results: Sequence[T], counts: Sequence[int]) -> list[list[T]]:
    """``results`` of one call cut back into per-request lists of ``counts`` items each."""
    if sum(counts) != len(results):
        raise ValueError(f"{len(results)} results for {sum(counts)} texts")
    parts = []
    start = 0
    for count in counts:
        parts.append(list(results[start : start + count]))
        start += count
    return parts
