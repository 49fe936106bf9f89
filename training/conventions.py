"""Names that one corpus always labels and others often leave unlabelled.

Of the bare 中国 (outside any longer entity) in each corpus, MSRA labels nearly all, Boson 86 %
and Weibo 13 of 15, but CLUENER 11 of 294 and Resume 1 of 295 (its 中国国籍 is a nationality).
Read as full labels, their unlabelled ones teach a model that the same name in the same kind of
sentence is no entity, and the corpora contradict each other. Here such an unlabelled occurrence
becomes *uncertain* (``Example.uncertain``): the CRF loss allows both readings, the name as its
usual type or no entity, so the corpus that leaves it unlabelled teaches nothing about it and the
consistent corpora decide.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from models.tags import Span
from training.corpora import Example

#: Types whose names are marked; NUM comes from rules, the same in every corpus.
NAME_TYPES = ("PER", "LOC", "ORG")


@dataclass(frozen=True)
class Names:
    """Names and their types, with a pattern finding them (the longest at each position)."""

    types: Mapping[str, str]
    pattern: re.Pattern[str]

    @classmethod
    def of(cls, types: Mapping[str, str]) -> Names:
        alternatives = sorted(types, key=len, reverse=True)
        # An empty table matches nothing (an empty alternation would match everywhere).
        return cls(dict(types), re.compile("|".join(map(re.escape, alternatives)) or "(?!)"))

    def unclaimed(self, example: Example) -> list[Span]:
        """Occurrences overlapping none of the example's spans, as spans of their type."""
        found = []
        for match in self.pattern.finditer(example.text):
            start, end = match.span()
            if all(span.end <= start or end <= span.start for span in example.spans):
                found.append(Span(start, end, self.types[match.group()]))
        return found


def consistent_names(
    examples: Sequence[Example], min_count: int = 20, min_share: float = 0.9
) -> Names:
    """Every name (two characters or more) that ``examples`` label at least ``min_count`` times,
    as one type in at least ``min_share`` of those labels, and in at least ``min_share`` of its
    occurrences that overlap no other entity."""
    labelled: Counter[tuple[str, str]] = Counter(
        (example.text[span.start : span.end], span.type)
        for example in examples
        for span in example.spans
        if span.type in NAME_TYPES and span.end - span.start >= 2
    )
    labels: Counter[str] = Counter()
    usual: dict[str, tuple[int, str]] = {}
    for (name, kind), count in labelled.items():
        labels[name] += count
        usual[name] = max(usual.get(name, (0, kind)), (count, kind))
    candidates = Names.of(
        {
            name: kind
            for name, (count, kind) in usual.items()
            if count >= min_count and count >= min_share * labels[name]
        }
    )
    unlabelled = Counter(
        example.text[span.start : span.end]
        for example in examples
        for span in candidates.unclaimed(example)
    )
    return Names.of(
        {
            name: kind
            for name, kind in candidates.types.items()
            if labels[name] >= min_share * (labels[name] + unlabelled[name])
        }
    )


def mark_uncertain(example: Example, names: Names) -> Example:
    """The example with its unlabelled occurrences of ``names`` (outside every span and blocked
    region) marked as uncertain spans of the name's type."""
    regions = tuple(
        span
        for span in names.unclaimed(example)
        if all(region.end <= span.start or span.end <= region.start for region in example.blocked)
    )
    return dataclasses.replace(example, uncertain=regions) if regions else example
