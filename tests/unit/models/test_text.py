"""Normalization offsets, windowing and merging of windowed entity predictions."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from models.tags import ENTITY_TYPES, Span, label_set, tags_to_spans
from models.text import NormalizedText, merge_window_spans, normalize, normalize_all, windows

# Characters normalization treats specially or that break naive offset handling.
TRICKY_CHARS = [
    "\u3000",  # ideographic space
    "\t",
    "\n",
    "\r",
    "\x00",
    "\x1b",
    "\x85",  # NEL: whitespace and a control char
    "\u2028",  # line separator
    "\u00a0",  # no-break space
    "\u200b",  # zero-width space (a format char, kept)
    "\u200d",  # zero-width joiner
    "\ufeff",  # byte-order mark
    "Ａ",
    "ｚ",
    "０",
    "，",
    "！",
    "～",
    "㎏",  # NFKC -> "kg"
    "…",  # NFKC -> "..."
    "ﷺ",  # NFKC -> 18 characters
    "\u00a8",  # NFKC -> " \u0308": expands into whitespace
    "①",
    "ｶ",  # half-width katakana
    "\uf900",  # CJK compatibility ideograph
    "😀",
    "👨‍👩‍👧",
    "🇨🇳",
    "e\u0301",
    "北京",
    "Мария",
    "مرحبا",
    "한국",
]
# Pieces, not single chars: some tricky entries (emoji sequences, words) are several chars long.
TEXTS = st.lists(st.one_of(st.characters(), st.sampled_from(TRICKY_CHARS)), max_size=30).map(
    "".join
)


def normalized_start(normalized: NormalizedText, original_offset: int) -> int:
    """First normalized offset produced by the original char at `original_offset`."""
    return normalized.normalized_span(original_offset, original_offset)[0]


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("", ""),
        ("ＡＢＣ１２３", "ABC123"),
        ("张三，你好！", "张三,你好!"),
        ("北京\u3000上海", "北京 上海"),
        ("a\tb\nc\r\x00d\x7fe", "a b c  d e"),
        ("MixedCase Ünïcode", "MixedCase Ünïcode"),
        ("😀北京", "😀北京"),
        ("5㎏", "5kg"),
    ],
)
def test_normalize_examples(original: str, expected: str) -> None:
    assert normalize(original).text == expected


def test_expansion_maps_back_to_the_whole_char() -> None:
    normalized = normalize("重5㎏的")
    assert normalized.text == "重5kg的"
    assert normalized.to_original == (0, 1, 2, 2, 3, 4)
    assert normalized.original_span(1, 4) == (1, 3)  # "5kg" -> "5㎏"
    assert normalized.original_span(2, 3) == (2, 3)  # "k" alone still covers "㎏"
    assert normalized.original_span(4, 4) == (3, 3)
    assert normalized.normalized_span(1, 3) == (1, 4)
    assert normalized.normalized_span(2, 3) == (2, 4)
    assert normalized.normalized_span(4, 4) == (5, 5)
    with pytest.raises(ValueError, match="outside"):
        normalized.original_span(3, 7)
    with pytest.raises(ValueError, match="outside"):
        normalized.normalized_span(0, 5)


@given(original=TEXTS)
def test_offset_map_is_exact(original: str) -> None:
    normalized = normalize(original)
    to_original = normalized.to_original
    assert len(to_original) == len(normalized.text) + 1
    assert to_original[-1] == len(original)
    assert list(to_original) == sorted(to_original)
    # Every original char yields at least one normalized char, which is its own normalization.
    assert set(to_original[:-1]) == set(range(len(original)))
    for offset, char in enumerate(original):
        first, end = normalized.normalized_span(offset, offset + 1)
        assert first == to_original.index(offset)
        assert normalized.text[first:end] == normalize(char).text
        assert normalized.original_span(first, end) == (offset, offset + 1)


@given(texts=st.lists(TEXTS, max_size=6))
def test_normalize_all_equals_normalize_of_each(texts: list[str]) -> None:
    assert normalize_all(texts) == [normalize(text) for text in texts]


@given(original=TEXTS, data=st.data())
def test_extracted_spans_index_the_original_exactly(original: str, data: st.DataObject) -> None:
    """Entities found in normalized text map to the original substring that produced them."""
    normalized = normalize(original)
    labels = label_set(ENTITY_TYPES, "BMES")
    tags = data.draw(st.lists(st.sampled_from(labels), min_size=len(normalized.text)))
    for span in tags_to_spans(tags[: len(normalized.text)], "BMES"):
        start, end = normalized.original_span(span.start, span.end)
        assert 0 <= start < end <= len(original)
        # The original span is the smallest run of whole original chars covering the entity ...
        assert normalized.to_original[span.start] == start
        assert normalized.to_original[span.end - 1] == end - 1
        # ... and normalizing exactly that original substring reproduces what the model saw.
        covered = normalized.text[
            normalized_start(normalized, start) : normalized_start(normalized, end)
        ]
        assert normalize(original[start:end]).text == covered
        assert normalized.text[span.start : span.end] in covered


# --- windows ----------------------------------------------------------------------------------

WINDOW_PARAMS = st.integers(1, 40).flatmap(
    lambda max_len: st.tuples(
        st.integers(0, 200), st.just(max_len), st.integers(0, (max_len - 1) // 2)
    )
)


@given(params=WINDOW_PARAMS)
def test_windows_cover_with_exact_overlap(params: tuple[int, int, int]) -> None:
    length, max_len, overlap = params
    result = windows(length, max_len, overlap)
    if length == 0:
        assert result == []
        return
    assert result[0][0] == 0
    assert result[-1][1] == length
    assert all(0 < end - start <= max_len for start, end in result)
    assert all(end - start == max_len for start, end in result[:-1])  # only the last is shorter
    for (_, end), (next_start, _) in itertools.pairwise(result):
        assert end - next_start == overlap
    if length <= max_len:
        assert result == [(0, length)]


@pytest.mark.parametrize(
    ("length", "max_len", "overlap"),
    [(10, 0, 0), (10, 4, 2), (10, 5, 3), (10, 5, -1), (-1, 5, 1)],
)
def test_windows_reject_bad_parameters(length: int, max_len: int, overlap: int) -> None:
    with pytest.raises(ValueError, match=r"must be|need"):
        windows(length, max_len, overlap)


# --- merging windowed predictions -------------------------------------------------------------


@st.composite
def windowed_gold(draw: st.DrawFn) -> tuple[list[tuple[int, int]], int, list[Span]]:
    """Windows of a text and non-overlapping gold spans in it (often across window edges)."""
    max_len = draw(st.integers(1, 16))
    overlap = draw(st.integers(0, (max_len - 1) // 2))
    spans: list[Span] = []
    position = 0
    for gap, length, entity_type in draw(
        st.lists(st.tuples(st.integers(0, 4), st.integers(1, 8), st.sampled_from(ENTITY_TYPES)))
    ):
        spans.append(Span(position + gap, position + gap + length, entity_type))
        position += gap + length
    length = position + draw(st.integers(0, 4))
    return windows(length, max_len, overlap), overlap, spans


def perfect_predictions(
    window_list: list[tuple[int, int]], gold: list[Span]
) -> list[tuple[int, list[Span]]]:
    """Per window: the gold spans lying inside it, relative to it (cut spans are not seen)."""
    return [
        (
            start,
            [
                Span(span.start - start, span.end - start, span.type)
                for span in gold
                if start <= span.start and span.end <= end
            ],
        )
        for start, end in window_list
    ]


def owned_regions(window_list: list[tuple[int, int]], overlap: int) -> list[tuple[int, int]]:
    """Each window owns from the middle of its left overlap to the middle of its right one."""
    middles = [start + overlap // 2 for start, _ in window_list[1:]]
    lefts = [0, *middles]
    rights = [*middles, window_list[-1][1] if window_list else 0]
    return list(zip(lefts, rights, strict=True))


@given(case=windowed_gold())
def test_merge_reproduces_gold_spans_inside_owned_regions(
    case: tuple[list[tuple[int, int]], int, list[Span]],
) -> None:
    window_list, overlap, gold = case
    regions = owned_regions(window_list, overlap)
    assume(all(any(a <= s.start and s.end <= b for a, b in regions) for s in gold))
    merged = merge_window_spans(perfect_predictions(window_list, gold), overlap)
    assert merged == gold


@given(case=windowed_gold())
def test_merge_recovers_every_gold_span_some_window_saw(
    case: tuple[list[tuple[int, int]], int, list[Span]],
) -> None:
    """Stronger: no broken or duplicated entities, whatever the boundaries; only spans no window
    could see entirely are lost."""
    window_list, overlap, gold = case
    merged = merge_window_spans(perfect_predictions(window_list, gold), overlap)
    seen = [s for s in gold if any(a <= s.start and s.end <= b for a, b in window_list)]
    assert merged == seen


@given(data=st.data(), case=windowed_gold())
def test_merge_of_arbitrary_predictions_is_consistent(
    data: st.DataObject, case: tuple[list[tuple[int, int]], int, list[Span]]
) -> None:
    """Whatever the windows predict: sorted, non-overlapping spans, each one some window's."""
    window_list, overlap, _ = case
    windowed = []
    predicted: set[Span] = set()
    for start, end in window_list:
        tags = data.draw(
            st.lists(
                st.sampled_from(label_set(ENTITY_TYPES, "BIO")),
                min_size=end - start,
                max_size=end - start,
            )
        )
        spans = tags_to_spans(tags, "BIO")
        windowed.append((start, spans))
        predicted.update(Span(start + s.start, start + s.end, s.type) for s in spans)
    merged = merge_window_spans(windowed, overlap)
    assert set(merged) <= predicted
    assert all(a.end <= b.start for a, b in itertools.pairwise(merged))


def test_truncated_fragment_is_replaced_by_the_neighbours_whole_entity() -> None:
    # Windows (0, 10) and (6, 16); the owner boundary is at 8; "entity" is [7, 12).
    assert windows(16, 10, 4) == [(0, 10), (6, 16)]
    windowed = [
        (0, [Span(7, 10, "ORG")]),  # cut by the first window's right edge
        (6, [Span(1, 6, "ORG")]),  # seen whole by the second window
    ]
    assert merge_window_spans(windowed, 4) == [Span(7, 12, "ORG")]


def test_owner_wins_conflicts_and_duplicates_collapse() -> None:
    windowed = [
        (0, [Span(2, 4, "PER"), Span(7, 9, "LOC")]),
        (6, [Span(1, 2, "ORG"), Span(1, 3, "LOC"), Span(5, 7, "NUM")]),
    ]
    # [7, 9) LOC: both saw it whole, owner (first window) keeps one copy; the second window's
    # ORG at [7, 8) lies in text the first window saw and judged differently, so it is dropped.
    assert merge_window_spans(windowed, 4) == [
        Span(2, 4, "PER"),
        Span(7, 9, "LOC"),
        Span(11, 13, "NUM"),
    ]


def test_merge_edge_cases() -> None:
    assert merge_window_spans([], 3) == []
    assert merge_window_spans([(0, [Span(0, 5, "PER")])], 0) == [Span(0, 5, "PER")]
    with pytest.raises(ValueError, match="increasing"):
        merge_window_spans([(5, []), (0, [])], 1)
