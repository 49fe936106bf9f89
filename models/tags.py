"""Tag schemes (BIO/IOB2 and BMES), spans <-> tags, CRF transition constraints and decoding.

Shared by training and serving: training encodes gold spans with `spans_to_tags` and masks its CRF
with `transition_constraints`; serving decodes emissions with `viterbi_decode`, scores entities
with `path_marginals` and reads entities back with `paths_to_spans`.

Decoding works on the whole batch at once and loops over time only. Internally the arrays are laid
out time-major with the batch as the innermost axis, (T, K, B), so every per-step numpy operation
runs over long contiguous rows instead of many short ones.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

ENTITY_TYPES: tuple[str, ...] = ("PER", "LOC", "ORG", "NUM")

Scheme = Literal["BIO", "BMES"]

OUTSIDE = "O"

# Tag prefixes in label-set order. BIO here is IOB2: every entity starts with B-.
_PREFIXES: dict[str, tuple[str, ...]] = {"BIO": ("B", "I"), "BMES": ("B", "M", "E", "S")}

FloatArray = NDArray[np.floating[Any]]
IntArray = NDArray[np.integer[Any]]


@dataclass(frozen=True, order=True)
class Span:
    """An entity: character offsets [start, end) and its type."""

    start: int
    end: int
    type: str


def _prefixes(scheme: Scheme) -> tuple[str, ...]:
    try:
        return _PREFIXES[scheme]
    except KeyError:
        raise ValueError(
            f"unknown tag scheme {scheme!r}; expected one of {sorted(_PREFIXES)}"
        ) from None


def parse_tag(tag: str, scheme: Scheme) -> tuple[str, str]:
    """Split a tag into (prefix, type); "O" gives ("O", ""). ValueError if not valid in `scheme`."""
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, sep, entity_type = tag.partition("-")
    if not sep or not entity_type or prefix not in _prefixes(scheme):
        raise ValueError(f"invalid {scheme} tag {tag!r}")
    return prefix, entity_type


def label_set(entity_types: Sequence[str], scheme: Scheme) -> tuple[str, ...]:
    """All labels of the scheme: "O" first, then each type's tags in scheme order (index = id)."""
    prefixes = _prefixes(scheme)
    return (OUTSIDE, *(f"{prefix}-{t}" for t in entity_types for prefix in prefixes))


def _entity_tags(length: int, entity_type: str, scheme: Scheme) -> list[str]:
    if scheme == "BIO":
        return [f"B-{entity_type}"] + [f"I-{entity_type}"] * (length - 1)
    if length == 1:
        return [f"S-{entity_type}"]
    return [f"B-{entity_type}"] + [f"M-{entity_type}"] * (length - 2) + [f"E-{entity_type}"]


def spans_to_tags(length: int, spans: Iterable[Span], scheme: Scheme) -> list[str]:
    """Tag a text of `length` chars. ValueError on empty, out-of-range or overlapping spans."""
    _prefixes(scheme)
    tags = [OUTSIDE] * length
    previous_end = 0
    for span in sorted(spans):
        if not span.type:
            raise ValueError(f"span {span} has an empty type")
        if span.start >= span.end:
            raise ValueError(f"span {span} is empty")
        if span.start < 0 or span.end > length:
            raise ValueError(f"span {span} is outside a text of length {length}")
        if span.start < previous_end:
            raise ValueError(f"span {span} overlaps a previous span")
        tags[span.start : span.end] = _entity_tags(span.end - span.start, span.type, scheme)
        previous_end = span.end
    return tags


def tags_to_spans(tags: Sequence[str], scheme: Scheme) -> list[Span]:
    """Read entities from tags, leniently, with conlleval semantics.

    Models emit malformed sequences, and evaluation must count them the way conlleval does: an
    I-/M-/E- tag continues the open entity only if that entity has the same type and its last tag
    was B-/I-/M- (so it is still open); otherwise it starts a new entity. E-/S- close their entity.
    """
    spans: list[Span] = []
    open_start = -1  # -1: no entity open
    open_type = ""
    previous_prefix = OUTSIDE
    for position, tag in enumerate(tags):
        prefix, entity_type = parse_tag(tag, scheme)
        continues = (
            open_start >= 0
            and prefix in ("I", "M", "E")
            and entity_type == open_type
            and previous_prefix in ("B", "I", "M")
        )
        if not continues:
            if open_start >= 0:
                spans.append(Span(open_start, position, open_type))
            open_start, open_type = (-1, "") if prefix == OUTSIDE else (position, entity_type)
        previous_prefix = prefix
    if open_start >= 0:
        spans.append(Span(open_start, len(tags), open_type))
    return spans


@functools.lru_cache(maxsize=8)
def _label_table(
    labels: tuple[str, ...], scheme: Scheme
) -> tuple[int, NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_], tuple[str, ...]]:
    """For label ids: the id of "O", whether each label starts / ends an entity, the allowed
    transitions with an "O" added before and after each sequence, and each label's type."""
    parsed = [parse_tag(label, scheme) for label in labels]
    prefixes = [prefix for prefix, _ in parsed]
    starts = np.array([prefix in ("B", "S") for prefix in prefixes], dtype=np.bool_)
    ends = np.array([prefix in ("E", "S") for prefix in prefixes], dtype=np.bool_)
    allowed, _, _ = transition_constraints(labels, scheme)
    return labels.index(OUTSIDE), starts, ends, allowed, tuple(t for _, t in parsed)


def paths_to_spans(
    paths: IntArray, lengths: IntArray, labels: Sequence[str], scheme: Scheme
) -> list[list[Span]]:
    """Spans of each row of label ids (B, T), read from its first lengths[b] ids: the same as
    ``tags_to_spans`` on each row.

    Rows that are well-formed in the scheme (all a constrained CRF decodes) are read for the
    whole batch at once: their entities start at each B-/S- and end after each E-/S- (BMES) or
    before the next non-I- (BIO). Other rows are read tag by tag.
    """
    outside, starts, ends, allowed, types = _label_table(tuple(labels), scheme)
    batch, steps = paths.shape
    lengths = np.asarray(lengths)
    ids = np.full((batch, steps + 2), outside, dtype=np.int64)
    ids[:, 1:-1] = np.where(np.arange(steps)[None, :] < lengths[:, None], paths, outside)
    well_formed = np.asarray(allowed[ids[:, :-1], ids[:, 1:]].all(axis=1), dtype=np.bool_)
    body = ids[:, 1:-1]
    begins = starts[body]
    if scheme == "BMES":
        finishes = ends[body]
    else:  # BIO: an entity label not followed by an I- label (of its type: rows are well-formed)
        entity: NDArray[np.bool_] = body != outside
        continued = entity[:, 1:] & ~starts[body[:, 1:]]
        finishes = entity & ~np.concatenate([continued, np.zeros((batch, 1), np.bool_)], axis=1)
    begins &= well_formed[:, None]
    finishes &= well_formed[:, None]
    rows, first = np.nonzero(begins)
    _, last = np.nonzero(finishes)
    spans: list[list[Span]] = [[] for _ in range(batch)]
    for row, start, end, label in zip(
        rows.tolist(), first.tolist(), (last + 1).tolist(), body[rows, first].tolist(), strict=True
    ):
        spans[row].append(Span(start, end, types[label]))
    for row in np.flatnonzero(~well_formed).tolist():
        spans[row] = tags_to_spans([labels[i] for i in body[row, : lengths[row]].tolist()], scheme)
    return spans


def convert_tags(tags: Sequence[str], source: Scheme, target: Scheme) -> list[str]:
    """Re-tag a sequence in another scheme (via spans, so malformed input comes out well-formed)."""
    return spans_to_tags(len(tags), tags_to_spans(tags, source), target)


def _transition_allowed(
    previous: tuple[str, str], current: tuple[str, str], scheme: Scheme
) -> bool:
    previous_prefix, previous_type = previous
    current_prefix, current_type = current
    if scheme == "BIO":
        return current_prefix != "I" or (
            previous_prefix in ("B", "I") and previous_type == current_type
        )
    if previous_prefix in ("B", "M"):  # BMES: an open entity must continue with M- or E-
        return current_prefix in ("M", "E") and previous_type == current_type
    return current_prefix in (OUTSIDE, "B", "S")


def transition_constraints(
    labels: Sequence[str], scheme: Scheme
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_]]:
    """(allowed[from, to], allowed_start, allowed_end) for well-formed tag sequences.

    A sequence behaves as if an "O" stood before its start and after its end.
    """
    parsed = [parse_tag(label, scheme) for label in labels]
    outside = (OUTSIDE, "")
    size = len(parsed)
    allowed = np.array(
        [[_transition_allowed(a, b, scheme) for b in parsed] for a in parsed], dtype=np.bool_
    ).reshape(size, size)  # reshape: an empty label list must still give (0, 0)
    allowed_start = np.array([_transition_allowed(outside, b, scheme) for b in parsed], np.bool_)
    allowed_end = np.array([_transition_allowed(a, outside, scheme) for a in parsed], np.bool_)
    return allowed, allowed_start, allowed_end


def _check_crf_inputs(
    emissions: FloatArray,
    lengths: IntArray,
    transitions: FloatArray,
    start: FloatArray,
    end: FloatArray,
) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32]]:
    """Validate shapes; return emissions as (T, K, B) float32, lengths, transitions float32."""
    if emissions.ndim != 3:
        raise ValueError(f"emissions must be (batch, time, labels), got shape {emissions.shape}")
    batch, steps, num_labels = emissions.shape
    lengths64 = np.asarray(lengths, dtype=np.int64)
    if lengths64.shape != (batch,):
        raise ValueError(f"lengths must have shape ({batch},), got {lengths64.shape}")
    if batch and (lengths64.min() < 0 or lengths64.max() > steps):
        raise ValueError(f"lengths must lie in [0, {steps}]")
    if transitions.shape != (num_labels, num_labels):
        raise ValueError(
            f"transitions must be ({num_labels}, {num_labels}), got {transitions.shape}"
        )
    if start.shape != (num_labels,) or end.shape != (num_labels,):
        raise ValueError(f"start and end must have shape ({num_labels},)")
    # Always a copy: the decoders accumulate into it in place.
    time_major = np.array(emissions.transpose(1, 2, 0), dtype=np.float32, order="C", copy=True)
    return time_major, lengths64, np.asarray(transitions, dtype=np.float32)


#: Transition scores at or below this count as forbidden: Viterbi's forward pass skips them.
IMPOSSIBLE = -1.0e3


#: Below this many rows a Viterbi step is dominated by numpy's per-call cost, and one dense
#: max-plus product (fewest calls) beats the stacked blocks of allowed transitions.
_BLOCKS_FROM_BATCH = 32

_Blocks = list[tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float32]]]


@functools.lru_cache(maxsize=16)
def _cached_groups(transitions_bytes: bytes, size: int) -> _Blocks:
    transitions = np.frombuffer(transitions_bytes, dtype=np.float32).reshape(size, size)
    return _transition_groups(transitions)


def _transition_groups(transitions: NDArray[np.float32]) -> _Blocks:
    """The allowed transitions as blocks: labels with the same allowed predecessors form a group,
    and groups of the same shape are stacked, so one max-plus step over a block covers them all.

    Returns (sources (G, S), targets (G * N,), scores (G, N, S, 1)) per block: group g's N target
    labels, each reachable from the group's S source labels. In BMES, "O", B- and S- follow "O",
    E- and S- (one 9 x 9 block for four types) and each type's M- and E- follow its B- and M-
    (four stacked 2 x 2 blocks): 97 of the 289 pairs. Without forbidden scores: one dense block.
    """
    size = len(transitions)
    allowed = transitions > IMPOSSIBLE
    by_sources: dict[tuple[int, ...], list[int]] = {}
    for target in range(size):
        sources = tuple(np.flatnonzero(allowed[:, target]).tolist()) or tuple(range(size))
        by_sources.setdefault(sources, []).append(target)
    by_shape: dict[tuple[int, int], list[tuple[tuple[int, ...], list[int]]]] = {}
    for sources, targets in by_sources.items():
        by_shape.setdefault((len(targets), len(sources)), []).append((sources, targets))
    blocks = []
    for members in by_shape.values():
        source_ids = np.array([sources for sources, _ in members], dtype=np.intp)
        target_ids = np.array([targets for _, targets in members], dtype=np.intp)
        scores = transitions[source_ids[:, None, :], target_ids[:, :, None]]
        blocks.append((source_ids, target_ids.reshape(-1), scores[..., None]))
    return blocks


def viterbi_decode(
    emissions: FloatArray,
    lengths: IntArray,
    transitions: FloatArray,
    start: FloatArray,
    end: FloatArray,
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Best label ids per position (B, T) (0 beyond each length) and each best path's score (B,).

    transitions[i, j] scores label i followed by label j; start/end score the first/last label.
    Forbid transitions with large negative scores (e.g. -1e4), not -inf. An empty row scores 0.

    The forward pass keeps only the running maxima, over allowed transitions only (see
    `_transition_groups`); the backtrack recomputes the argmax for the chosen label alone, which is
    B*K work per step instead of B*K*K and gives the same label as a forward argmax would.
    """
    scores, lengths64, trans = _check_crf_inputs(emissions, lengths, transitions, start, end)
    steps, num_labels, batch = scores.shape
    path = np.zeros((batch, steps), dtype=np.int64)
    best_scores = np.zeros(batch, dtype=np.float32)
    max_length = int(lengths64.max()) if batch else 0
    if max_length == 0:
        return path, best_scores
    scores[0] += np.asarray(start, dtype=np.float32)[:, None]
    # scores[t] becomes the best score of any path ending in each label at t.
    if batch < _BLOCKS_FROM_BATCH:
        into = trans.T[:, :, None]  # [to, from, 1]
        best = list(scores)  # views made once
        for t in range(1, max_length):
            np.add(best[t], np.maximum.reduce(into + best[t - 1], axis=1), out=best[t])
    else:
        groups = _cached_groups(trans.tobytes(), num_labels)
        for t in range(1, max_length):
            previous = scores[t - 1]
            for sources, targets, block in groups:
                candidates = previous[sources][:, None, :, :] + block  # (G, targets, sources, B)
                scores[t, targets] += np.maximum.reduce(candidates, axis=2).reshape(-1, batch)

    rows = np.arange(batch)
    active = lengths64 > 0
    last = np.maximum(lengths64 - 1, 0)
    final = scores[last, :, rows] + np.asarray(end, dtype=np.float32)  # (B, K)
    best_last = final.argmax(axis=1)
    best_scores[active] = final[rows, best_last][active]
    # Every row is traced back from max_length - 1: a row's own best last label replaces the
    # trace when it reaches that row's last position, and positions beyond a row's length are
    # zeroed at the end (fewer numpy calls per step than masking every step).
    ending_at = {int(t): lengths64 - 1 == t for t in np.unique(last[active])}
    label = best_last
    traced = []
    for t in range(max_length - 1, -1, -1):
        if t in ending_at:
            label = np.where(ending_at[t], best_last, label)
        traced.append(label)
        if t > 0:
            # (K, B): the score of each predecessor of each row's chosen label.
            label = (scores[t - 1] + trans[:, label]).argmax(axis=0)
    path[:, :max_length] = np.stack(traced[::-1], axis=1)
    path[np.arange(steps)[None, :] >= lengths64[:, None]] = 0
    return path, best_scores


#: Emissions more than this far below the best label of their position count as this far: their
#: probability (below e**-40 relative) is negligible, and the clip keeps every scaled float32
#: step sum far above underflow.
_EMISSION_FLOOR = -40.0


def marginals(
    emissions: FloatArray,
    lengths: IntArray,
    transitions: FloatArray,
    start: FloatArray,
    end: FloatArray,
) -> NDArray[np.float32]:
    """Posterior P(label k at position t) (B, T, K) by forward-backward; 0 beyond each length.

    Scaled forward-backward in probability space: with E_t = exp(emissions_t - their max) and
    X = exp(transitions - their max), alpha_t = (X.T @ alpha_{t-1}) * E_t and
    beta_t = X @ (E_{t+1} * beta_{t+1}), each divided by its sum over labels. The scales cancel
    when alpha_t * beta_t is normalized per position, so each step is one (K, K) @ (K, B) product
    and a few cheap (K, B) operations, with no log or exp inside the loop. Forbidden (-1e4)
    transitions become exact zeros.
    """
    joint, lengths64 = _joint(emissions, lengths, transitions, start, end)
    batch, steps, num_labels = emissions.shape
    posterior = np.zeros((steps, num_labels, batch), dtype=np.float32)
    max_length = len(joint)
    joint /= joint.sum(axis=1, keepdims=True)
    inside = np.arange(max_length)[:, None, None] < lengths64[None, None, :]
    posterior[:max_length] = np.where(inside, joint, 0.0)
    return np.ascontiguousarray(posterior.transpose(2, 0, 1))


def path_marginals(
    emissions: FloatArray,
    lengths: IntArray,
    transitions: FloatArray,
    start: FloatArray,
    end: FloatArray,
    *,
    paths: IntArray,
) -> NDArray[np.float32]:
    """``marginals`` at each row's own labels (B, T): P(label paths[b, t] at t), 0 beyond each
    length. The same numbers as picking them from ``marginals``, without building the (B, T, K)
    posterior (only the chosen label of each position is normalized and transposed)."""
    joint, lengths64 = _joint(emissions, lengths, transitions, start, end)
    batch, steps = np.shape(paths)
    max_length = len(joint)
    chosen = np.zeros((batch, steps), dtype=np.float32)
    if max_length == 0:
        return chosen
    labels = np.asarray(paths).T[:max_length, None, :]
    picked = np.take_along_axis(joint, labels, axis=1)[:, 0, :] / joint.sum(axis=1)
    inside = np.arange(max_length)[:, None] < lengths64[None, :]
    chosen[:, :max_length] = np.where(inside, picked, 0.0).T
    return chosen


def _joint(
    emissions: FloatArray,
    lengths: IntArray,
    transitions: FloatArray,
    start: FloatArray,
    end: FloatArray,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """alpha * beta (max_length, K, B), not yet normalized per position (see ``marginals``),
    and the lengths."""
    scores, lengths64, trans = _check_crf_inputs(emissions, lengths, transitions, start, end)
    _, num_labels, batch = scores.shape
    max_length = int(lengths64.max()) if batch else 0
    if max_length == 0:
        return np.zeros((0, num_labels, batch), dtype=np.float32), lengths64
    emitted = scores[:max_length]
    emitted -= emitted.max(axis=1, keepdims=True)
    np.exp(np.maximum(emitted, _EMISSION_FLOOR, out=emitted), out=emitted)
    moves = np.exp(trans - trans.max())  # [from, to]
    moves_to_from = np.ascontiguousarray(moves.T)
    start32 = np.asarray(start, dtype=np.float32)
    end32 = np.asarray(end, dtype=np.float32)

    alpha = np.empty((max_length, num_labels, batch), dtype=np.float32)
    alpha[0] = np.exp(start32 - start32.max())[:, None] * emitted[0]
    alpha[0] /= alpha[0].sum(axis=0)
    # A small batch pays numpy's cost per call, not per element: the loops use views made once
    # (lists), out= buffers and np.add.reduce (the arithmetic of step.sum(), one call less).
    alphas, emits = list(alpha), list(emitted)
    for t in range(1, max_length):
        step = np.matmul(moves_to_from, alphas[t - 1], out=alphas[t])
        step *= emits[t]
        step /= np.add.reduce(step, axis=0)

    end_column = np.exp(end32 - end32.max())[:, None]
    beta = np.empty((max_length, num_labels, batch), dtype=np.float32)
    beta[max_length - 1] = end_column
    betas = list(beta)
    # Each row's backward pass starts at its own last position.
    restarts = {int(t): lengths64 - 1 == t for t in np.unique(lengths64[lengths64 > 0] - 1)}
    following = np.empty((num_labels, batch), dtype=np.float32)
    for t in range(max_length - 2, -1, -1):
        np.multiply(emits[t + 1], betas[t + 1], out=following)
        step = np.matmul(moves, following, out=betas[t])
        step /= np.add.reduce(step, axis=0)
        if t in restarts:
            step[:, restarts[t]] = end_column

    return np.multiply(alpha, beta, out=alpha), lengths64
