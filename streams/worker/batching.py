"""Adaptive micro-batching: how many of the waiting records go into the next inference batch.

Pure: sizes and seconds in, a count out. No clocks, no Kafka, no asyncio; the worker
(:mod:`streams.worker.agents`) measures each batch and asks before dispatching the next one.

The policy, given ``worker.latency_target_ms`` and ``worker.max_batch``:

- the worker dispatches whenever the inference thread can take a batch, so at low load a batch
  is whatever has arrived (often one record) and goes at once — there is no fill wait;
- under backlog the batch grows up to ``max_batch`` records, but only while its predicted time
  stays within a share of the latency target (a record may wait for the batch running before
  it, then its own, then its delivery: :data:`BATCH_SHARE_OF_TARGET`);
- but when the whole backlog would take longer than the target to infer anyway (overload, or a
  burst), the target is lost for its tail whatever the batch size, and throughput is what
  brings latency back. The worker holds at most about ``max_batch`` records waiting (its
  back-pressure leaves the rest in Faust's buffer and in Kafka), so ``max_batch`` or more
  waiting counts as such a backlog too, whatever their predicted time, and so does an oldest
  waiting record that has already waited longer than the target since it was produced (a
  backlog in Kafka, which the worker cannot see otherwise). Then the batch doubles from the
  previous one (at least what fits the budget) up to ``max_batch``, so a short stall grows
  batches for a few rounds instead of putting one ``max_batch`` batch in front of the records
  arriving behind it;
- batch cost is predicted from measurements: seconds per *padded* unit of input (UTF-8 bytes of
  the raw value, padded the way the model pads them: the length buckets of
  :func:`models.bucketing.length_buckets`), smoothed over recent batches;
- batches are prefixes of the waiting records (arrival order is kept, so outputs of a partition
  stay in input order), cut where the padded size would exceed the budget; one record always
  goes, however long.

A latency target of 0 turns the policy off: every batch is ``max_batch`` records (or what is
waiting), which is the fixed behaviour the benchmark compares against.

Does not belong here: Kafka offsets and acks (:mod:`streams.worker.inflight`), the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.bucketing import length_buckets

#: Share of the latency target one batch may take: a record can wait behind the running batch
#: before its own runs, and then for its delivery; a third leaves room for both.
BATCH_SHARE_OF_TARGET = 1 / 3
#: Weight of the newest measurement in the smoothed seconds-per-unit.
SMOOTHING = 0.25
#: Fixed seconds per batch assumed on top of the per-unit cost (calls, encoding, hand-offs);
#: only used to keep the budget of a near-zero target from going negative.
FIXED_BATCH_S = 0.001


def padded_size(lengths: Sequence[int], bucket_chars: int, bucket_texts: int) -> int:
    """Units the model computes for texts of ``lengths``: each length bucket's rows times its
    longest row (the padding the runtime adds)."""
    return sum(
        len(bucket) * lengths[bucket[0]]
        for bucket in length_buckets(lengths, bucket_chars, bucket_texts)
    )


@dataclass(frozen=True)
class BatchLimits:
    """What bounds a batch: the settings, and the runtime's bucket shape."""

    max_batch: int
    #: Seconds; 0 means "no target": every batch is ``max_batch``.
    latency_target_s: float
    bucket_chars: int = 102_400
    bucket_texts: int = 1024


class AdaptiveBatcher:
    """Sizes batches from measured per-batch times (see the module docstring)."""

    def __init__(self, limits: BatchLimits) -> None:
        if limits.max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        if limits.latency_target_s < 0:
            raise ValueError("latency_target_s must be >= 0")
        self.limits = limits
        #: Smoothed seconds per padded unit; None until the first batch is measured.
        self.seconds_per_unit: float | None = None
        #: Records in the batch cut last (the base the overload rule doubles).
        self.last_count = 0

    def observe(self, units: int, seconds: float) -> None:
        """Learn from one finished batch of ``units`` padded units that took ``seconds``."""
        if units <= 0 or seconds <= 0:
            return
        measured = seconds / units
        previous = self.seconds_per_unit
        self.seconds_per_unit = (
            measured if previous is None else previous + SMOOTHING * (measured - previous)
        )

    def budget_units(self) -> float:
        """Most padded units one batch may hold now (infinite while nothing is known)."""
        target = self.limits.latency_target_s
        if target == 0 or self.seconds_per_unit is None:
            return float("inf")
        seconds = max(target * BATCH_SHARE_OF_TARGET - FIXED_BATCH_S, 0.0)
        return seconds / self.seconds_per_unit

    def next_batch(self, lengths: Sequence[int], waited_s: float = 0.0) -> int:
        """How many of the waiting records (``lengths``: all of them, in arrival order) the next
        batch takes: the longest prefix, at most ``max_batch``, whose padded size fits the
        budget; twice the previous batch (up to ``max_batch``) under a backlog (see the module
        docstring; ``waited_s``: how long the oldest of them has waited since it was produced,
        0 when unknown); at least one while any wait."""
        self.last_count = self._cut(lengths, waited_s)
        return self.last_count

    def _cut(self, lengths: Sequence[int], waited_s: float) -> int:
        count = min(len(lengths), self.limits.max_batch)
        if count <= 1:
            return count
        budget = self.budget_units()
        if budget == float("inf") or self.units(lengths[:count]) <= budget:
            return count
        assert self.seconds_per_unit is not None
        fits = self._longest_fitting(lengths[:count], budget)
        target = self.limits.latency_target_s
        backlog = (
            len(lengths) >= self.limits.max_batch  # back-pressure holds more behind them
            or waited_s > target
            or sum(lengths) * self.seconds_per_unit > target
        )
        if backlog:
            return min(count, max(fits, 2 * self.last_count))
        return fits

    def _longest_fitting(self, lengths: Sequence[int], budget: float) -> int:
        """The longest prefix of ``lengths`` within ``budget`` padded units; at least one."""
        count = len(lengths)
        # The padded size grows with the prefix: binary search the longest one that fits.
        low, high = 1, count - 1
        while low < high:
            middle = (low + high + 1) // 2
            if self.units(lengths[:middle]) <= budget:
                low = middle
            else:
                high = middle - 1
        return low

    def units(self, lengths: Sequence[int]) -> int:
        """The padded size of a batch of texts of ``lengths``."""
        return padded_size(lengths, self.limits.bucket_chars, self.limits.bucket_texts)
