"""Batching policy for inference: group texts of similar length so little compute goes to padding.

Pure: it only decides which indices go together; the runtime does the work and puts results
back in input order.
"""

from __future__ import annotations

from collections.abc import Sequence


def length_buckets(lengths: Sequence[int], bucket_chars: int, bucket_texts: int) -> list[list[int]]:
    """Indices sorted by length (longest first), cut into buckets whose padded size
    (rows x longest row) stays within ``bucket_chars`` and whose rows stay within ``bucket_texts``.

    A text longer than ``bucket_chars`` still gets a bucket of its own. Empty texts are grouped
    like any other (they cost nothing).
    """
    if bucket_chars < 1 or bucket_texts < 1:
        raise ValueError("bucket_chars and bucket_texts must be >= 1")
    order = sorted(range(len(lengths)), key=lambda index: (-lengths[index], index))
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        # Longest first, so the batch's first row sets its padded width.
        width = lengths[current[0]] if current else lengths[index]
        if current and (len(current) == bucket_texts or (len(current) + 1) * width > bucket_chars):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches
