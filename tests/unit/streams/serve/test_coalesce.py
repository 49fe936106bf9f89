"""streams.serve.coalesce: when a model call starts, which requests it takes, splitting back."""

from __future__ import annotations

import pytest

from streams.serve.coalesce import dispatch_delay, requests_for_call, split
from streams.worker.batching import AdaptiveBatcher, BatchLimits


def test_the_oldest_request_waits_out_its_window_unless_the_batch_is_full() -> None:
    assert dispatch_delay(10.0, 10.0, 0.002, 1, 256) == pytest.approx(0.002)
    assert dispatch_delay(10.0015, 10.0, 0.002, 3, 256) == pytest.approx(0.0005)
    # It waited behind a running call longer than the window: no more waiting.
    assert dispatch_delay(10.5, 10.0, 0.002, 3, 256) == 0.0
    assert dispatch_delay(10.0, 10.0, 0.002, 256, 256) == 0.0
    assert dispatch_delay(10.0, 10.0, 0.0, 1, 256) == 0.0


def test_a_call_takes_whole_requests_in_order_within_the_batcher_size() -> None:
    batcher = AdaptiveBatcher(BatchLimits(max_batch=4, latency_target_s=0))
    assert requests_for_call([["a"], ["b", "c"], ["d"], ["e"]], batcher) == 3
    # Whole requests only: the second would make 5 texts.
    assert requests_for_call([["a", "b", "c"], ["d", "e"]], batcher) == 1
    # One request always goes, however many texts it has.
    assert requests_for_call([["a"] * 9, ["b"]], batcher) == 1
    assert requests_for_call([], batcher) == 0


def test_the_adaptive_latency_target_bounds_a_call() -> None:
    batcher = AdaptiveBatcher(BatchLimits(max_batch=256, latency_target_s=0.03))
    # Measured: 1 ms per character. The budget, a third of 30 ms less 1 ms, is 9 characters.
    batcher.observe(1000, 1.0)
    assert requests_for_call([["x" * 4], ["y" * 4], ["z" * 4]], batcher) == 2


def test_split_cuts_results_back_per_request() -> None:
    assert split([1, 2, 3, 4], [1, 0, 3]) == [[1], [], [2, 3, 4]]
    with pytest.raises(ValueError, match="4 results for 3 texts"):
        split([1, 2, 3, 4], [1, 2])
