"""Text normalization with exact offsets back to the original, and chunking of long texts.

The model sees normalized text; entities must be reported in the original's character offsets.
`normalize` records, for every normalized character, the original character it came from, so a
span found in normalized text maps back to the smallest run of whole original characters that
produced it.

Long texts are cut into overlapping windows (`windows`), each window is tagged on its own, and
`merge_window_spans` puts the per-window entities back together without cutting or duplicating
entities at window boundaries.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.tags import Span


@dataclass(frozen=True)
class NormalizedText:
    """Normalized text plus the map from its offsets to the original's."""

    original: str
    text: str
    # len(text) + 1 entries: the original offset of normalized char i; the last is len(original).
    to_original: tuple[int, ...]

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Normalized [start, end) -> original [start', end') covering whole original characters.

        The end maps through the last character inside the span, so a span ending inside the
        expansion of one original character (say "k" of "㎏" -> "kg") still covers that character.
        """
        if not 0 <= start <= end <= len(self.text):
            raise ValueError(f"span [{start}, {end}) is outside a text of length {len(self.text)}")
        if start == end:
            return self.to_original[start], self.to_original[start]
        return self.to_original[start], self.to_original[end - 1] + 1

    def normalized_span(self, start: int, end: int) -> tuple[int, int]:
        """Original [start, end) -> normalized [start', end'): all chars those originals became.

        For moving gold spans of a corpus onto the normalized text; the inverse of
        `original_span` on spans of whole original characters.
        """
        if not 0 <= start <= end <= len(self.original):
            raise ValueError(
                f"span [{start}, {end}) is outside a text of length {len(self.original)}"
            )
        # to_original is sorted and every original char yields at least one normalized char.
        offsets = self.to_original
        return bisect.bisect_left(offsets, start), bisect.bisect_left(offsets, end)


def _normalize_char(char: str) -> str:
    """NFKC of one character (full-width ASCII -> ASCII, "㎏" -> "kg", U+3000 -> " "), with every
    whitespace and control character as one space. Case is kept."""
    if char.isspace() or unicodedata.category(char) == "Cc":
        return " "
    normalized = unicodedata.normalize("NFKC", char)
    # NFKC may expand into whitespace (e.g. "\u00a8" -> " \u0308"); keep that as plain spaces.
    return "".join(" " if c.isspace() else c for c in normalized) or char


class _CharTable(dict[int, str]):
    """Code point -> normalized string, for str.translate; filled on first use of each char.

    Normalizing is per character (NFKC of the whole string could merge neighbours and break the
    offset map), so the result for a code point never changes and caching it is exact.
    """

    def __missing__(self, code_point: int) -> str:
        normalized = _normalize_char(chr(code_point))
        self[code_point] = normalized
        return normalized


_CHAR_TABLE = _CharTable()


def normalize(text: str) -> NormalizedText:
    """Normalize character by character and keep the offset map (see `_normalize_char`).

    Every original character becomes one or more normalized characters, never zero, so equal
    lengths mean a one-to-one map; that common case skips the per-character loop.
    """
    normalized = text.translate(_CHAR_TABLE)
    if len(normalized) == len(text):
        return NormalizedText(text, normalized, tuple(range(len(text) + 1)))
    to_original: list[int] = []
    for offset, char in enumerate(text):
        to_original.extend([offset] * len(_CHAR_TABLE[ord(char)]))
    to_original.append(len(text))
    return NormalizedText(text, normalized, tuple(to_original))


_BMP = 0x10000
#: In the table of `_bmp_table`: the character does not normalize to exactly one character.
_EXPANDS = 0xFFFFFFFF


@functools.cache
def _bmp_table() -> NDArray[np.uint32]:
    """Normalized code point of every Basic Multilingual Plane character, or _EXPANDS. Built on
    first use (~0.2 s)."""
    table = np.full(_BMP, _EXPANDS, dtype=np.uint32)
    for code_point in range(_BMP):
        if 0xD800 <= code_point < 0xE000:  # surrogates are not characters
            continue
        normalized = _normalize_char(chr(code_point))
        if len(normalized) == 1:
            table[code_point] = ord(normalized)
    return table


@functools.lru_cache(maxsize=1024)
def _identity_offsets(length: int) -> tuple[int, ...]:
    return tuple(range(length + 1))


def normalize_all(texts: Sequence[str]) -> list[NormalizedText]:
    """`normalize` of each text. Texts whose every character normalizes to exactly one character
    (nearly all text) are translated together, by one table lookup over all their code points;
    the others (and any text with characters beyond the BMP) go through `normalize`."""
    try:
        code_points = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
    except UnicodeEncodeError:  # lone surrogates
        return [normalize(text) for text in texts]
    mapped = _bmp_table()[np.minimum(code_points, _BMP - 1)]
    mapped[code_points >= _BMP] = _EXPANDS
    special = mapped == _EXPANDS
    joined = np.where(special, code_points, mapped).tobytes().decode("utf-32-le")
    ends = np.cumsum([len(text) for text in texts]).tolist()
    special_before = np.concatenate([[0], np.cumsum(special)])[[0, *ends]].tolist()
    results = []
    start = 0
    for index, (text, end) in enumerate(zip(texts, ends, strict=True)):
        if special_before[index + 1] > special_before[index]:
            results.append(normalize(text))
        else:
            results.append(NormalizedText(text, joined[start:end], _identity_offsets(len(text))))
        start = end
    return results


def windows(length: int, max_len: int, overlap: int) -> list[tuple[int, int]]:
    """Cover [0, length) with [start, end) windows of at most max_len chars.

    Consecutive windows share exactly `overlap` chars; only the last window may be shorter.
    2 * overlap < max_len keeps every window's owned region (see `merge_window_spans`) non-empty
    and lets a window overlap only its two neighbours.
    """
    if max_len < 1 or overlap < 0 or 2 * overlap >= max_len:
        raise ValueError(
            f"need max_len >= 1 and 0 <= 2 * overlap < max_len, got {max_len}, {overlap}"
        )
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    result: list[tuple[int, int]] = []
    start = 0
    while start < length:
        end = min(start + max_len, length)
        result.append((start, end))
        if end == length:
            break
        start = end - overlap
    return result


def merge_window_spans(windowed: Sequence[tuple[int, Sequence[Span]]], overlap: int) -> list[Span]:
    """Merge per-window entities into sorted, non-overlapping, duplicate-free whole-text spans.

    `windowed` holds (window_start, spans relative to that window) for the windows of `windows()`
    in order. Window i owns the text from the middle of its overlap with window i-1 to the middle
    of its overlap with window i+1: there it has the most context on both sides.

    A span that touches a window edge shared with a neighbour may be a truncated entity. Spans
    are taken in this order of trust, each only if it overlaps nothing taken before:
      1. spans the owner of their start saw whole;
      2. spans a neighbour saw whole that the owner could not see whole (they run past the
         owner's edge; this replaces a truncated fragment the owner produced);
      3. spans the owner saw touching its edge;
      4. spans a neighbour saw touching its edge that the owner could not see whole.
    A neighbour's spans that the owner could see whole are dropped: the owner saw that text, with
    more context, and decided. So a perfect tagger's spans come back exactly whenever each lies
    inside some window.
    """
    starts = [start for start, _ in windowed]
    if any(b <= a for a, b in itertools.pairwise(starts)):
        raise ValueError("windows must be in increasing order of start")
    last = len(starts) - 1
    # Window i's end is known from its right neighbour's start; the last window has no right edge.
    ends = [start + overlap for start in starts[1:]]
    boundaries = [start + overlap // 2 for start in starts[1:]]

    def owner(position: int) -> int:
        return bisect.bisect_right(boundaries, position)

    def seen_whole(span: Span, window: int) -> bool:
        return (window == 0 or span.start > starts[window]) and (
            window == last or span.end < ends[window]
        )

    tiers: list[list[Span]] = [[], [], [], []]
    for window, (window_start, spans) in enumerate(windowed):
        for relative in spans:
            span = Span(window_start + relative.start, window_start + relative.end, relative.type)
            owning = owner(span.start)
            whole = seen_whole(span, window)
            if window == owning:
                tiers[0 if whole else 2].append(span)
            elif not seen_whole(span, owning):
                tiers[1 if whole else 3].append(span)

    taken: list[Span] = []  # sorted and non-overlapping, so ends are sorted too
    for tier in tiers:
        for span in sorted(tier):
            index = bisect.bisect_left(taken, span.end, key=lambda taken_span: taken_span.start)
            overlaps_before = index > 0 and taken[index - 1].end > span.start
            if not overlaps_before:
                taken.insert(index, span)
    return taken
