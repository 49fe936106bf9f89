"""Partial labels: which tags each character of a training example may have.

A fully labelled example allows exactly its gold tag at every position, and the CRF loss is the
usual -log P(gold path). A partially labelled one (``Example.unknown``: entity types its corpus
does not annotate) also allows, outside its gold spans and outside its ``blocked`` regions, every
tag of the unknown types; the loss is then -log of the total probability of all allowed paths
(the "fuzzy CRF" of Shang et al., 2018), so the corpus teaches what it knows and nothing about
what it does not. A CMeEE sentence thus says "no person, place or organization inside this drug
name" without claiming that the rest of the sentence holds none.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from models.tags import OUTSIDE, Scheme, parse_tag, spans_to_tags
from training.corpora import Example


def allowed_tags(example: Example, labels: Sequence[str], scheme: Scheme) -> NDArray[np.bool_]:
    """(len(text), len(labels)) mask of the tags each character may have."""
    length = len(example.text)
    index = {label: position for position, label in enumerate(labels)}
    gold = [index[tag] for tag in spans_to_tags(length, example.spans, scheme)]
    allowed = np.zeros((length, len(labels)), dtype=bool)
    allowed[np.arange(length), gold] = True
    if example.unknown:
        unknown = set(example.unknown)
        columns = np.array(
            [
                position
                for position, label in enumerate(labels)
                if label != OUTSIDE and parse_tag(label, scheme)[1] in unknown
            ],
            dtype=np.intp,
        )
        free = np.ones(length, dtype=bool)
        for span in (*example.spans, *example.blocked):
            free[span.start : span.end] = False
        allowed[np.ix_(free, columns)] = True
    return allowed
