"""Batching policy for inference: group texts of similar length so little compute goes to padding.

Pure: it only decides which indices go together; the runtime does the work and puts results
back in input order.
"""

from __future__ import annotations

from collections.abc import Sequence


def length_buckets(lengths: Sequence[int], max_tokens: int, max_batch: int) -> list[list[int]]:
    """Indices sorted by length (longest first), cut into batches whose padded size
    (rows x longest row) stays within ``max_tokens`` and whose rows stay within ``max_batch``.

    A text longer than ``max_tokens`` still gets a batch of its own. Empty texts are grouped
    like any other (they cost nothing).
    """
    if max_tokens < 1 or max_batch < 1:
        raise ValueError("max_tokens and max_batch must be >= 1")
    order = sorted(range(len(lengths)), key=lambda index: (-lengths[index], index))
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        # Longest first, so the batch's first row sets its padded width.
        width = lengths[current[0]] if current else lengths[index]
        if current and (len(current) == max_batch or (len(current) + 1) * width > max_tokens):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches
