"""The lexicon for lexicon features, from jieba's dictionary (word, frequency, part of speech).

jieba's POS tags name the groups: nr/nrt/nrfg person, ns place, nt organization. Other words go
to the WORD group (segmentation hints) when frequent enough, which also keeps the lexicon (shipped
inside the model directory) small.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from models.features import Lexicon

_GROUP_OF_POS = {"nr": "PER", "nrt": "PER", "nrfg": "PER", "ns": "LOC", "nt": "ORG"}


class LexiconError(RuntimeError):
    pass


def jieba_dictionary() -> Path:
    try:
        path = Path(str(importlib.resources.files("jieba") / "dict.txt"))
    except ModuleNotFoundError:
        raise LexiconError("lexicon features need jieba: pip install -e '.[train]'") from None
    if not path.is_file():
        raise LexiconError(f"{path}: jieba's dictionary is missing")
    return path


def jieba_lexicon(word_min_freq: int, max_word_length: int) -> Lexicon:
    entries: dict[str, set[str]] = {}
    with jieba_dictionary().open(encoding="utf-8") as file:
        for line in file:
            parts = line.split()
            if len(parts) != 3 or not 2 <= len(parts[0]) <= max_word_length:
                continue
            word, freq, pos = parts
            group = _GROUP_OF_POS.get(pos)
            if group is None and int(freq) >= word_min_freq:
                group = "WORD"
            if group is not None:
                entries.setdefault(word, set()).add(group)
    return Lexicon(entries, max_word_length)
