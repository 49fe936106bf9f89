"""Synthetic training sentences for patterns MSRA's training set lacks.

Mention swaps: copies of training sentences with each PER/LOC/ORG entity replaced by another of
the same type from the training set, so that the tagger learns entities from their context and
their shape rather than by heart, which matters most to a tagger that sees a few characters
around each position (the cnn encoder).

Name lists: person names with no or little punctuation between them.

News text lists people back to back ("出席会议的有张三李四王五……", rosters of committees); MSRA's
test set is full of such lists, its training set nearly has none (about 1 in 80 names touches
another name there, 1 in 4 in test), so a tagger trained on MSRA alone merges neighbouring names.
These sentences, built from the training set's own PER entities, teach it where one name ends.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

from models.tags import Span
from training.corpora import Example

#: Between two names: nothing mostly, sometimes an enumeration comma or a space.
_SEPARATORS = ("", "", "", "", "、", " ")


def name_lists(
    examples: Sequence[Example], count: int, rng: random.Random, max_names: int = 10
) -> list[Example]:
    """``count`` sentences of 2..max_names PER names drawn from ``examples``."""
    names = person_names(examples)
    if not names:
        return []
    sentences = []
    for _ in range(count):
        text = ""
        spans = []
        separator = rng.choice(_SEPARATORS)
        for index in range(rng.randint(2, max_names)):
            if index:
                text += separator
            name = rng.choice(names)
            spans.append(Span(len(text), len(text) + len(name), "PER"))
            text += name
        sentences.append(Example(text, tuple(spans)))
    return sentences


#: What replaces one entity: (text, entity type) pieces, written one after the other.
Pieces = Sequence[tuple[str, str]]


def rewritten(example: Example, rewrite: Callable[[Span, str], Pieces | None]) -> Example | None:
    """A copy of the example with each entity replaced by ``rewrite(span, text)`` (None keeps
    it), spans moved accordingly; None when nothing was rewritten."""
    text, spans, cursor, changed = "", [], 0, False
    for span in example.spans:
        entity = example.text[span.start : span.end]
        pieces = rewrite(span, entity)
        changed |= pieces is not None
        text += example.text[cursor : span.start]
        for piece, entity_type in pieces or [(entity, span.type)]:
            spans.append(Span(len(text), len(text) + len(piece), entity_type))
            text += piece
        cursor = span.end
    return Example(text + example.text[cursor:], tuple(spans)) if changed else None


def _copies(
    examples: Sequence[Example], rewrite: Callable[[Span, str], Pieces | None]
) -> list[Example]:
    return [copy for example in examples if (copy := rewritten(example, rewrite)) is not None]


_LONG_INTEGER = re.compile(r"\d{4,7}(?!\d)")


def grouped_numbers(examples: Sequence[Example]) -> list[Example]:
    """Copies of the sentences whose NUM entities start with a 4-7 digit integer, written with
    thousands separators ("21350元" -> "21,350元"), spans moved accordingly.

    After normalization MSRA's "，" is the same "," that separates thousands, and MSRA itself
    writes numbers without separators, so a tagger trained on it alone cuts "21,350" in two.
    """

    def group(span: Span, entity: str) -> Pieces | None:
        match = _LONG_INTEGER.match(entity) if span.type == "NUM" else None
        return [(f"{int(match.group()):,}" + entity[match.end() :], "NUM")] if match else None

    return _copies(examples, group)


SWAPPED_TYPES = ("PER", "LOC", "ORG")


def mention_swaps(examples: Sequence[Example], rng: random.Random) -> list[Example]:
    """One copy of every sentence that has a PER, LOC or ORG entity, each of those entities
    replaced by a random training entity of its type (other entities and text kept)."""
    mentions: dict[str, list[str]] = {}
    for example in examples:
        for span in example.spans:
            if span.type in SWAPPED_TYPES:
                mentions.setdefault(span.type, []).append(example.text[span.start : span.end])

    def swap(span: Span, entity: str) -> Pieces | None:
        return (
            [(rng.choice(mentions[span.type]), span.type)] if span.type in SWAPPED_TYPES else None
        )

    return _copies(examples, swap)


def hospital_departments(
    examples: Sequence[Example],
    departments: Sequence[str],
    copies: int,
    rng: random.Random,
    doctors: Sequence[str] = (),
) -> list[Example]:
    """``copies`` copies of every sentence that names a hospital (an ORG ending in 医院), each
    hospital followed by a random department inside its ORG span ("协和医院" -> "协和医院心内科"),
    and, when ``doctors`` are given, every other copy (the second, the fourth, ...) also names a
    doctor right after the department, as a PER of its own ("协和医院心内科王建国").

    A department named with its hospital is part of the organization (MSRA writes
    "解放军总医院心外科" as one ORG), but the training corpora hardly ever show one, so a tagger
    ends the organization at 医院 in clinical notes, where departments are everywhere; and
    clinical notes name the doctor right after the department, where the corpora never show
    where the one ends and the other begins.
    """
    if not departments:
        return []

    def is_hospital(span: Span, entity: str) -> bool:
        return span.type == "ORG" and entity.endswith("医院")

    def extend(doctor: str | None) -> Callable[[Span, str], Pieces | None]:
        def rewrite(span: Span, entity: str) -> Pieces | None:
            if not is_hospital(span, entity):
                return None
            hospital = (entity + rng.choice(departments), "ORG")
            return [hospital, (doctor, "PER")] if doctor else [hospital]

        return rewrite

    copied = []
    for number in range(copies):
        for example in examples:
            if not any(is_hospital(s, example.text[s.start : s.end]) for s in example.spans):
                continue
            doctor = rng.choice(doctors) if doctors and number % 2 else None
            if (copy := rewritten(example, extend(doctor))) is not None:
                copied.append(copy)
    return copied


def person_names(examples: Sequence[Example]) -> list[str]:
    """The training set's PER names of two to four characters, sorted."""
    return sorted(
        {
            example.text[span.start : span.end]
            for example in examples
            for span in example.spans
            if span.type == "PER" and 2 <= span.end - span.start <= 4
        }
    )
