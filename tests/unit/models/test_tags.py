"""Tag schemes, spans <-> tags, transition constraints, Viterbi and forward-backward marginals."""

from __future__ import annotations

import itertools
from typing import Any, get_args

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from models.tags import (
    ENTITY_TYPES,
    Scheme,
    Span,
    convert_tags,
    label_set,
    marginals,
    parse_tag,
    path_marginals,
    paths_to_spans,
    spans_to_tags,
    tags_to_spans,
    transition_constraints,
    viterbi_decode,
)

SCHEMES: tuple[Scheme, ...] = get_args(Scheme)
FORBIDDEN = -1e4


@st.composite
def spans_in_text(draw: st.DrawFn, types: tuple[str, ...] = ENTITY_TYPES) -> tuple[int, list[Span]]:
    """A text length and non-overlapping spans in it, built from (gap, length, type) runs."""
    runs = draw(
        st.lists(
            st.tuples(st.integers(0, 3), st.integers(1, 5), st.sampled_from(types)), max_size=8
        )
    )
    spans, position = [], 0
    for gap, length, entity_type in runs:
        spans.append(Span(position + gap, position + gap + length, entity_type))
        position += gap + length
    return position + draw(st.integers(0, 3)), spans


def tag_sequences(scheme: Scheme, max_size: int = 12) -> st.SearchStrategy[list[str]]:
    """Arbitrary, often malformed, tag sequences of a scheme."""
    return st.lists(st.sampled_from(label_set(("PER", "LOC"), scheme)), max_size=max_size)


# --- label sets and tag parsing ---------------------------------------------------------------


def test_label_set_order() -> None:
    assert label_set(("PER", "LOC"), "BIO") == ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
    assert label_set(("NUM",), "BMES") == ("O", "B-NUM", "M-NUM", "E-NUM", "S-NUM")
    assert len(label_set(ENTITY_TYPES, "BMES")) == 17
    assert label_set((), "BIO") == ("O",)


@pytest.mark.parametrize(
    ("tag", "scheme"),
    [
        ("", "BIO"),
        ("o", "BIO"),
        ("B", "BIO"),
        ("B-", "BIO"),
        ("-PER", "BIO"),
        ("X-PER", "BIO"),
        ("E-PER", "BIO"),
        ("S-PER", "BIO"),
        ("I-PER", "BMES"),
        ("b-PER", "BMES"),
    ],
)
def test_invalid_tag_raises(tag: str, scheme: Scheme) -> None:
    with pytest.raises(ValueError, match="invalid"):
        parse_tag(tag, scheme)
    with pytest.raises(ValueError, match="invalid"):
        tags_to_spans(["O", tag], scheme)


def test_unknown_scheme_raises() -> None:
    with pytest.raises(ValueError, match="unknown tag scheme"):
        label_set(("PER",), "IOBES")  # type: ignore[arg-type]


def test_type_may_contain_a_dash() -> None:
    assert parse_tag("B-GPE-X", "BIO") == ("B", "GPE-X")
    assert tags_to_spans(["S-GPE-X"], "BMES") == [Span(0, 1, "GPE-X")]


# --- spans <-> tags ---------------------------------------------------------------------------


def test_spans_to_tags_examples() -> None:
    spans = [Span(0, 1, "PER"), Span(2, 5, "LOC")]
    assert spans_to_tags(6, spans, "BIO") == ["B-PER", "O", "B-LOC", "I-LOC", "I-LOC", "O"]
    assert spans_to_tags(6, spans, "BMES") == ["S-PER", "O", "B-LOC", "M-LOC", "E-LOC", "O"]
    assert spans_to_tags(0, [], "BMES") == []


@pytest.mark.parametrize(
    ("spans", "message"),
    [
        ([Span(1, 1, "PER")], "empty"),
        ([Span(3, 2, "PER")], "empty"),
        ([Span(-1, 2, "PER")], "outside"),
        ([Span(3, 5, "PER")], "outside"),
        ([Span(0, 2, "PER"), Span(1, 3, "LOC")], "overlaps"),
        ([Span(0, 2, "")], "empty type"),
    ],
)
def test_spans_to_tags_rejects(spans: list[Span], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spans_to_tags(4, spans, "BIO")


@pytest.mark.parametrize("scheme", SCHEMES)
@given(case=spans_in_text())
def test_spans_tags_round_trip(scheme: Scheme, case: tuple[int, list[Span]]) -> None:
    length, spans = case
    tags = spans_to_tags(length, spans, scheme)
    assert len(tags) == length
    assert tags_to_spans(tags, scheme) == spans


@given(case=spans_in_text())
def test_convert_round_trips_well_formed(case: tuple[int, list[Span]]) -> None:
    length, spans = case
    bio = spans_to_tags(length, spans, "BIO")
    bmes = spans_to_tags(length, spans, "BMES")
    assert convert_tags(bio, "BIO", "BMES") == bmes
    assert convert_tags(bmes, "BMES", "BIO") == bio
    assert convert_tags(bio, "BIO", "BIO") == bio


@pytest.mark.parametrize("scheme", SCHEMES)
@given(data=st.data())
def test_convert_keeps_entities_of_malformed(scheme: Scheme, data: st.DataObject) -> None:
    tags = data.draw(tag_sequences(scheme))
    other: Scheme = "BMES" if scheme == "BIO" else "BIO"
    converted = convert_tags(tags, scheme, other)
    assert tags_to_spans(converted, other) == tags_to_spans(tags, scheme)
    assert convert_tags(converted, other, scheme) == spans_to_tags(
        len(tags), tags_to_spans(tags, scheme), scheme
    )


# conlleval semantics: (name, scheme, tags, expected spans as (start, end, type)).
CONLLEVAL_CASES: list[tuple[str, Scheme, str, list[tuple[int, int, str]]]] = [
    ("empty", "BIO", "", []),
    ("all outside", "BIO", "O O", []),
    ("I at start opens", "BIO", "I-PER I-PER O", [(0, 2, "PER")]),
    ("I after O opens", "BIO", "O I-PER", [(1, 2, "PER")]),
    ("B B are two", "BIO", "B-PER B-PER", [(0, 1, "PER"), (1, 2, "PER")]),
    ("type change closes", "BIO", "B-PER I-LOC", [(0, 1, "PER"), (1, 2, "LOC")]),
    ("I of other type", "BIO", "B-PER I-PER I-LOC I-LOC", [(0, 2, "PER"), (2, 4, "LOC")]),
    ("entity at end", "BIO", "O B-LOC I-LOC", [(1, 3, "LOC")]),
    ("single S", "BMES", "S-PER", [(0, 1, "PER")]),
    ("well formed", "BMES", "B-LOC M-LOC E-LOC", [(0, 3, "LOC")]),
    ("B without E", "BMES", "B-LOC O", [(0, 1, "LOC")]),
    ("B M at end", "BMES", "B-LOC M-LOC", [(0, 2, "LOC")]),
    ("E alone opens", "BMES", "O E-LOC", [(1, 2, "LOC")]),
    ("M at start opens", "BMES", "M-ORG E-ORG", [(0, 2, "ORG")]),
    ("E E are two", "BMES", "B-PER E-PER E-PER", [(0, 2, "PER"), (2, 3, "PER")]),
    ("M after E opens", "BMES", "S-PER M-PER E-PER", [(0, 1, "PER"), (1, 3, "PER")]),
    ("S inside closes", "BMES", "B-PER S-PER E-PER", [(0, 1, "PER"), (1, 2, "PER"), (2, 3, "PER")]),
    ("type change", "BMES", "B-PER E-LOC", [(0, 1, "PER"), (1, 2, "LOC")]),
    ("B after B", "BMES", "B-NUM B-NUM E-NUM", [(0, 1, "NUM"), (1, 3, "NUM")]),
]


@pytest.mark.parametrize(
    ("scheme", "tags", "expected"),
    [case[1:] for case in CONLLEVAL_CASES],
    ids=[case[0] for case in CONLLEVAL_CASES],
)
def test_tags_to_spans_conlleval(
    scheme: Scheme, tags: str, expected: list[tuple[int, int, str]]
) -> None:
    assert tags_to_spans(tags.split(), scheme) == [Span(*span) for span in expected]


@pytest.mark.parametrize("scheme", SCHEMES)
@given(data=st.data())
def test_paths_to_spans_reads_each_row_like_tags_to_spans(
    scheme: Scheme, data: st.DataObject
) -> None:
    """Rows of a batch, well-formed (read all at once) or not (read tag by tag), and padding."""
    labels = label_set(("PER", "LOC"), scheme)
    rows = data.draw(st.lists(tag_sequences(scheme), min_size=1, max_size=6))
    well_formed = [spans_to_tags(len(row), tags_to_spans(row, scheme), scheme) for row in rows]
    rows += well_formed
    steps = max(len(row) for row in rows) + data.draw(st.integers(0, 2))
    any_label = st.integers(0, len(labels) - 1)
    padded = [
        [labels.index(tag) for tag in row]
        + data.draw(st.lists(any_label, min_size=steps - len(row), max_size=steps - len(row)))
        for row in rows
    ]
    paths = np.array(padded, dtype=np.int64).reshape(len(rows), steps)
    lengths = np.array([len(row) for row in rows])
    assert paths_to_spans(paths, lengths, labels, scheme) == [
        tags_to_spans(row, scheme) for row in rows
    ]


# --- transition constraints -------------------------------------------------------------------


def _allowed_by_constraints(ids: tuple[int, ...], labels: tuple[str, ...], scheme: Scheme) -> bool:
    allowed, allowed_start, allowed_end = transition_constraints(labels, scheme)
    if not ids:
        return True
    return bool(
        allowed_start[ids[0]]
        and allowed_end[ids[-1]]
        and all(allowed[a, b] for a, b in itertools.pairwise(ids))
    )


@pytest.mark.parametrize("scheme", SCHEMES)
def test_constraints_allow_exactly_well_formed_sequences(scheme: Scheme) -> None:
    """Exhaustively: a sequence passes the constraints iff re-tagging its spans gives it back."""
    labels = label_set(("PER", "LOC"), scheme)
    for length in range(5):
        for ids in itertools.product(range(len(labels)), repeat=length):
            tags = [labels[i] for i in ids]
            well_formed = spans_to_tags(length, tags_to_spans(tags, scheme), scheme) == tags
            assert _allowed_by_constraints(ids, labels, scheme) == well_formed, tags


def test_constraints_shapes_and_examples() -> None:
    labels = label_set(ENTITY_TYPES, "BIO")
    allowed, allowed_start, allowed_end = transition_constraints(labels, "BIO")
    assert allowed.shape == (9, 9) and allowed.dtype == np.bool_
    index = {label: i for i, label in enumerate(labels)}
    assert allowed[index["B-PER"], index["I-PER"]]
    assert not allowed[index["B-PER"], index["I-LOC"]]
    assert not allowed_start[index["I-ORG"]]
    assert allowed_end.all()


# --- Viterbi and marginals --------------------------------------------------------------------

Crf = tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]


def _random_crf(rng: np.random.Generator, labels: tuple[str, ...] | None, num_labels: int) -> Crf:
    """Random transitions/start/end; with labels, forbidden moves get a large negative score."""
    transitions = rng.normal(size=(num_labels, num_labels)).astype(np.float32)
    start = rng.normal(size=num_labels).astype(np.float32)
    end = rng.normal(size=num_labels).astype(np.float32)
    if labels is not None:
        allowed, allowed_start, allowed_end = transition_constraints(labels, "BMES")
        transitions[~allowed] = FORBIDDEN
        start[~allowed_start] = FORBIDDEN
        end[~allowed_end] = FORBIDDEN
    return transitions, start, end


def _path_score(emissions: NDArray[Any], path: tuple[int, ...], crf: Crf) -> float:
    transitions, start, end = crf
    score = float(start[path[0]] + end[path[-1]])
    score += sum(float(emissions[t, label]) for t, label in enumerate(path))
    score += sum(float(transitions[a, b]) for a, b in itertools.pairwise(path))
    return score


def _brute_force(emissions: NDArray[Any], length: int, crf: Crf) -> dict[tuple[int, ...], float]:
    num_labels = emissions.shape[1]
    return {
        path: _path_score(emissions, path, crf)
        for path in itertools.product(range(num_labels), repeat=length)
    }


CRF_CASES = st.tuples(
    st.integers(0, 2**32 - 1),  # rng seed
    st.integers(1, 3),  # batch
    st.integers(0, 5),  # time steps
    st.one_of(st.integers(1, 4), st.just(0)),  # labels; 0: BMES with one type (5 labels, masked)
)


def _crf_case(
    seed: int, batch: int, steps: int, num_labels: int
) -> tuple[NDArray[np.float32], NDArray[np.int64], Crf]:
    rng = np.random.default_rng(seed)
    labels = label_set(("X",), "BMES") if num_labels == 0 else None
    num_labels = len(labels) if labels else num_labels
    emissions = rng.normal(scale=2.0, size=(batch, steps, num_labels)).astype(np.float32)
    lengths = rng.integers(0, steps + 1, size=batch).astype(np.int64)
    return emissions, lengths, _random_crf(rng, labels, num_labels)


@settings(max_examples=60)
@given(case=CRF_CASES)
def test_viterbi_matches_brute_force(case: tuple[int, int, int, int]) -> None:
    emissions, lengths, crf = _crf_case(*case)
    path, score = viterbi_decode(emissions, lengths, *crf)
    assert path.shape == emissions.shape[:2] and path.dtype == np.int64
    assert score.shape == lengths.shape and score.dtype == np.float32
    for row, length in enumerate(lengths):
        assert (path[row, length:] == 0).all()
        if length == 0:
            assert score[row] == 0.0
            continue
        scores = _brute_force(emissions[row], int(length), crf)
        best = max(scores.values())
        decoded = tuple(int(label) for label in path[row, :length])
        assert scores[decoded] == pytest.approx(best, rel=1e-5, abs=1e-3)
        assert float(score[row]) == pytest.approx(best, rel=1e-5, abs=1e-3)


def _dense_viterbi_score(emissions: NDArray[Any], crf: Crf) -> float:
    """Best path score of one row by the textbook recursion over every label pair."""
    transitions, start, end = (np.asarray(part, dtype=np.float64) for part in crf)
    best = start + emissions[0]
    for t in range(1, len(emissions)):
        best = (best[:, None] + transitions).max(axis=0) + emissions[t]
    return float((best + end).max())


@pytest.mark.parametrize("scheme", SCHEMES)
@settings(max_examples=20)
@given(seed=st.integers(0, 2**32 - 1))
def test_viterbi_over_allowed_blocks_equals_dense(scheme: Scheme, seed: int) -> None:
    """Four entity types: the forward pass runs over stacked blocks of allowed transitions."""
    rng = np.random.default_rng(seed)
    labels = label_set(ENTITY_TYPES, scheme)
    allowed, allowed_start, allowed_end = transition_constraints(labels, scheme)
    crf = (
        np.where(allowed, rng.normal(size=allowed.shape), FORBIDDEN).astype(np.float32),
        np.where(allowed_start, rng.normal(size=len(labels)), FORBIDDEN).astype(np.float32),
        np.where(allowed_end, rng.normal(size=len(labels)), FORBIDDEN).astype(np.float32),
    )
    # 40 rows: enough for the stacked blocks (small batches take one dense block).
    emissions = rng.normal(scale=3.0, size=(40, 30, len(labels))).astype(np.float32)
    lengths = rng.integers(0, 31, size=40)
    path, score = viterbi_decode(emissions, lengths, *crf)
    for row, length in enumerate(lengths.tolist()):
        if length == 0:
            continue
        expected = _dense_viterbi_score(emissions[row, :length], crf)
        decoded = tuple(int(label) for label in path[row, :length])
        assert _path_score(emissions[row], decoded, crf) == pytest.approx(expected, abs=1e-3)
        assert float(score[row]) == pytest.approx(expected, abs=1e-3)


@settings(max_examples=40)
@given(case=CRF_CASES)
def test_marginals_match_brute_force(case: tuple[int, int, int, int]) -> None:
    emissions, lengths, crf = _crf_case(*case)
    posterior = marginals(emissions, lengths, *crf)
    assert posterior.shape == emissions.shape and posterior.dtype == np.float32
    for row, length in enumerate(lengths):
        assert (posterior[row, length:] == 0).all()
        if length == 0:
            continue
        scores = _brute_force(emissions[row], int(length), crf)
        expected = np.zeros((int(length), emissions.shape[2]))
        peak = max(scores.values())
        for path, path_score in scores.items():
            expected[np.arange(int(length)), path] += np.exp(path_score - peak)
        expected /= expected.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(posterior[row, :length], expected, atol=1e-5)


def test_batched_equals_one_by_one_with_ragged_lengths() -> None:
    rng = np.random.default_rng(7)
    labels = label_set(ENTITY_TYPES, "BMES")
    crf = _random_crf(rng, labels, len(labels))
    lengths = np.array([0, 1, 17, 40, 3, 40, 25], dtype=np.int64)
    emissions = rng.normal(scale=3.0, size=(len(lengths), 40, len(labels))).astype(np.float32)
    for row, length in enumerate(lengths):
        emissions[row, length:] = np.nan  # padding must not leak into any row's result
    path, score = viterbi_decode(emissions, lengths, *crf)
    posterior = marginals(emissions, lengths, *crf)
    for row, length in enumerate(lengths):
        alone = emissions[row : row + 1, :length]
        one_path, one_score = viterbi_decode(alone, lengths[row : row + 1], *crf)
        np.testing.assert_array_equal(path[row, :length], one_path[0])
        assert score[row] == pytest.approx(float(one_score[0]), rel=1e-6)
        one_posterior = marginals(alone, lengths[row : row + 1], *crf)
        np.testing.assert_allclose(posterior[row, :length], one_posterior[0], atol=1e-6)
        tags = [labels[i] for i in path[row, :length]]
        assert spans_to_tags(int(length), tags_to_spans(tags, "BMES"), "BMES") == tags


@pytest.mark.parametrize("batch", [1, 5, 40])
def test_path_marginals_are_the_marginals_of_the_path(batch: int) -> None:
    rng = np.random.default_rng(batch)
    labels = label_set(ENTITY_TYPES, "BMES")
    crf = _random_crf(rng, labels, len(labels))
    emissions = rng.normal(scale=3.0, size=(batch, 30, len(labels))).astype(np.float32)
    lengths = rng.integers(0, 31, size=batch)
    path, _ = viterbi_decode(emissions, lengths, *crf)
    expected = np.take_along_axis(marginals(emissions, lengths, *crf), path[:, :, None], axis=2)
    chosen = path_marginals(emissions, lengths, *crf, paths=path)
    np.testing.assert_array_equal(chosen, expected[..., 0])


def test_small_and_large_batches_decode_alike() -> None:
    """Below _BLOCKS_FROM_BATCH rows Viterbi takes every transition in one dense product, from
    there the stacked blocks of allowed ones: the same paths and scores, to the bit."""
    rng = np.random.default_rng(11)
    labels = label_set(ENTITY_TYPES, "BMES")
    crf = _random_crf(rng, labels, len(labels))
    emissions = rng.normal(scale=3.0, size=(40, 25, len(labels))).astype(np.float32)
    lengths = rng.integers(0, 26, size=40)
    path, score = viterbi_decode(emissions, lengths, *crf)
    for first in range(0, 40, 4):
        rows = slice(first, first + 4)
        small_path, small_score = viterbi_decode(emissions[rows], lengths[rows], *crf)
        np.testing.assert_array_equal(small_path, path[rows])
        np.testing.assert_array_equal(small_score, score[rows])


def test_marginals_are_stable_on_long_confident_sequences() -> None:
    rng = np.random.default_rng(3)
    labels = label_set(ENTITY_TYPES, "BIO")
    crf = _random_crf(rng, None, len(labels))
    emissions = rng.normal(scale=300.0, size=(4, 600, len(labels))).astype(np.float32)
    lengths = np.array([600, 599, 1, 0], dtype=np.int64)
    posterior = marginals(emissions, lengths, *crf)
    assert np.isfinite(posterior).all()
    sums = posterior.sum(axis=2)
    for row, length in enumerate(lengths):
        np.testing.assert_allclose(sums[row, :length], 1.0, atol=1e-5)
        assert (sums[row, length:] == 0).all()


@pytest.mark.parametrize(("batch", "steps"), [(0, 5), (3, 0), (0, 0)])
def test_decoders_accept_empty_shapes(batch: int, steps: int) -> None:
    crf = _random_crf(np.random.default_rng(0), None, 3)
    emissions = np.zeros((batch, steps, 3), dtype=np.float32)
    lengths = np.zeros(batch, dtype=np.int64)
    path, score = viterbi_decode(emissions, lengths, *crf)
    assert path.shape == (batch, steps) and score.shape == (batch,)
    assert marginals(emissions, lengths, *crf).shape == (batch, steps, 3)


def test_decoders_leave_inputs_unchanged() -> None:
    crf = _random_crf(np.random.default_rng(0), None, 3)
    emissions = np.ones((1, 4, 3), dtype=np.float32)
    viterbi_decode(emissions, np.array([4]), *crf)
    marginals(emissions, np.array([4]), *crf)
    assert (emissions == 1).all()


@pytest.mark.parametrize(
    ("emissions_shape", "lengths", "transitions_shape", "message"),
    [
        ((2, 3), [3], (3, 3), "emissions"),
        ((2, 3, 4), [3], (4, 4), "lengths"),
        ((2, 3, 4), [3, 4], (4, 4), "lengths"),
        ((2, 3, 4), [3, -1], (4, 4), "lengths"),
        ((2, 3, 4), [3, 3], (3, 3), "transitions"),
    ],
)
def test_decoders_reject_bad_shapes(
    emissions_shape: tuple[int, ...],
    lengths: list[int],
    transitions_shape: tuple[int, int],
    message: str,
) -> None:
    emissions = np.zeros(emissions_shape, dtype=np.float32)
    transitions = np.zeros(transitions_shape, dtype=np.float32)
    bounds = np.zeros(transitions_shape[0], dtype=np.float32)
    for decode in (viterbi_decode, marginals):
        with pytest.raises(ValueError, match=message):
            decode(emissions, np.array(lengths), transitions, bounds, bounds)
