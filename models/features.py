"""Model inputs from normalized text: character and bigram ids, and lexicon features.

One implementation shared by training and serving. Every lookup is vectorized over a whole batch
(the characters of all texts are concatenated into one code-point array), because the serving
budget leaves only a few microseconds per sentence for featurization.

Lexicon features: for each character and each lexicon group (PER, LOC, ORG, WORD), three bits
saying whether some lexicon word of that group covering the character Begins, is in the Middle
of, or Ends at it, packed into one integer per character (the model expands the bits). Words
are matched by a 64-bit polynomial hash of their code points.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

PAD_ID = 0
UNK_ID = 1
#: Tokens that take ids 0 and 1 in every vocabulary; they never occur in text.
SPECIAL_TOKENS = ("<pad>", "<unk>")

#: Lexicon groups; a word of group g that Begins at, covers the Middle of or Ends at a character
#: sets bit g, 4 + g or 8 + g of that character's lexicon id (LEXICON_BITS bits in all).
LEXICON_GROUPS = ("PER", "LOC", "ORG", "WORD")
LEXICON_POSITIONS = ("B", "M", "E")
LEXICON_BITS = len(LEXICON_GROUPS) * len(LEXICON_POSITIONS)
_GROUPS = len(LEXICON_GROUPS)
_GROUP_MASK = (1 << _GROUPS) - 1
#: Lexicon table value bit: the key is a proper prefix of some lexicon word.
_PREFIX = 1 << _GROUPS

CHARS_FILE = "chars.txt"
BIGRAMS_FILE = "bigrams.txt"
LEXICON_FILE = "lexicon.txt"
FEATURE_FILES = (CHARS_FILE, BIGRAMS_FILE, LEXICON_FILE)

_CODE_POINT_BITS = np.uint64(21)
_BMP_SIZE = 0x10000
#: Stands for "end of text" as the second character of the last position's bigram.
_END = np.uint64((1 << 21) - 1)
_HASH_MULTIPLIER = np.uint64(0x100000001B3)
_MIX = np.uint64(0x9E3779B97F4A7C15)

Keys = NDArray[np.uint64]
Ids = NDArray[np.int64]


class KeyTable:
    """A read-only hash table uint64 key -> int64 value with vectorized lookup.

    Open addressing with linear probing at load <= 0.25, so most misses end at the first slot.
    """

    def __init__(self, keys: Keys, values: Ids) -> None:
        if len(np.unique(keys)) != len(keys):
            raise ValueError("duplicate keys")
        self._bits = max(4, int(4 * max(len(keys), 1) - 1).bit_length())
        size = 1 << self._bits
        self._keys = np.zeros(size, dtype=np.uint64)
        self._values = np.zeros(size, dtype=np.int64)
        self._used = np.zeros(size, dtype=np.bool_)
        self._max_probe = 0
        home = self._home(keys)
        pending = np.arange(len(keys))
        probe = 0
        while len(pending):
            slots = (home[pending] + probe) & (size - 1)
            free = ~self._used[slots]
            # Of several keys landing on one free slot, the first one takes it.
            _, first = np.unique(np.where(free, slots, -1), return_index=True)
            winners = first[free[first]]
            placed = pending[winners]
            self._keys[slots[winners]] = keys[placed]
            self._values[slots[winners]] = values[placed]
            self._used[slots[winners]] = True
            self._max_probe = probe
            pending = np.delete(pending, winners)
            probe += 1

    def _home(self, keys: Keys) -> Ids:
        return ((keys * _MIX) >> np.uint64(64 - self._bits)).astype(np.int64)

    def lookup(self, queries: Keys, default: int) -> Ids:
        result = np.full(len(queries), default, dtype=np.int64)
        home = self._home(queries)
        active = np.arange(len(queries))
        for probe in range(self._max_probe + 1):
            if not len(active):
                break
            slots = (home[active] + probe) & (len(self._keys) - 1)
            used = self._used[slots]
            hit = used & (self._keys[slots] == queries[active])
            result[active[hit]] = self._values[slots[hit]]
            active = active[used & ~hit]
        return result


def _code_points(text: str) -> Keys:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)


def _bigram_key(token: str) -> int:
    """A bigram token is two characters, or one character followed by the end of the text."""
    second = ord(token[1]) if len(token) == 2 else int(_END)
    return (ord(token[0]) << int(_CODE_POINT_BITS)) | second


def _word_hashes(code_points: Keys, length: int) -> Keys:
    """Hash of every substring of ``length`` characters, by start position."""
    hashes = code_points[: len(code_points) - length + 1].copy()
    for offset in range(1, length):
        hashes *= _HASH_MULTIPLIER
        hashes += code_points[offset : len(code_points) - length + 1 + offset]
    return hashes


class Vocabulary:
    """Tokens (characters or bigrams) to ids; ids 0 and 1 are padding and unknown."""

    def __init__(self, tokens: Sequence[str], kind: str) -> None:
        if kind not in ("chars", "bigrams"):
            raise ValueError(f"unknown vocabulary kind {kind!r}")
        lengths = {1} if kind == "chars" else {1, 2}
        for token in tokens:
            if len(token) not in lengths:
                raise ValueError(f"bad {kind} token {token!r}")
        self.kind = kind
        self.tokens: tuple[str, ...] = (*SPECIAL_TOKENS, *tokens)
        key_of = ord if kind == "chars" else _bigram_key
        keys = np.array([key_of(token) for token in tokens], dtype=np.uint64)
        ids = np.arange(len(SPECIAL_TOKENS), len(self.tokens))
        self._table = KeyTable(keys, ids)
        # Characters of the Basic Multilingual Plane (nearly all text) are looked up directly.
        self._bmp: Ids | None = None
        if kind == "chars":
            self._bmp = np.full(_BMP_SIZE, UNK_ID, dtype=np.int64)
            in_bmp = keys < _BMP_SIZE
            self._bmp[keys[in_bmp].astype(np.int64)] = ids[in_bmp]

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], kind: str, min_count: int) -> Vocabulary:
        """Tokens seen at least ``min_count`` times, most frequent first (ties by token)."""
        kept = sorted(
            (token for token, n in counts.items() if n >= min_count),
            key=lambda token: (-counts[token], token),
        )
        return cls(kept, kind)

    def __len__(self) -> int:
        return len(self.tokens)

    def lookup(self, keys: Keys) -> Ids:
        if self._bmp is None:
            return self._table.lookup(keys, UNK_ID)
        beyond = keys >= _BMP_SIZE
        ids = self._bmp[np.where(beyond, 0, keys).astype(np.int64)]
        if beyond.any():
            ids[beyond] = self._table.lookup(keys[beyond], UNK_ID)
        return ids

    def to_lines(self) -> list[str]:
        return list(self.tokens[len(SPECIAL_TOKENS) :])


def bigrams_of(text: str) -> list[str]:
    """The bigram token at each position: the character and the next one (or none at the end)."""
    return [text[i : i + 2] for i in range(len(text))]


class Lexicon:
    """Words with the lexicon groups they belong to, matched as substrings of the text."""

    def __init__(self, entries: Mapping[str, Iterable[str]], max_word_length: int) -> None:
        self.max_word_length = max_word_length
        self.entries: dict[str, tuple[str, ...]] = {}
        by_length: dict[int, list[tuple[str, int]]] = {}
        for word, groups in entries.items():
            group_tuple = tuple(sorted(set(groups), key=LEXICON_GROUPS.index))
            if not 2 <= len(word) <= max_word_length or not group_tuple:
                raise ValueError(f"bad lexicon entry {word!r}: {groups!r}")
            self.entries[word] = group_tuple
            mask = sum(1 << LEXICON_GROUPS.index(group) for group in group_tuple)
            by_length.setdefault(len(word), []).append((word, mask))
            # Its prefixes are marked too, so that matching only extends promising substrings.
            for prefix_length in range(2, len(word)):
                by_length.setdefault(prefix_length, []).append((word[:prefix_length], _PREFIX))
        values: dict[int, int] = {}
        for length, words in by_length.items():
            code_points = _code_points("".join(word for word, _ in words))
            hashes = _word_hashes(code_points, length)[::length]
            for word_hash, (_, value) in zip(hashes.tolist(), words, strict=True):
                values[word_hash] = values.get(word_hash, 0) | value
        self._table = KeyTable(
            np.array(list(values), dtype=np.uint64), np.array(list(values.values()), dtype=np.int64)
        )

    def __len__(self) -> int:
        return len(self.entries)

    def features(self, code_points: Keys, remaining: Ids) -> Ids:
        """Lexicon bits (see LEXICON_BITS) of each position of concatenated texts.

        ``remaining[i]`` is how many characters of its own text start at position i, so that a
        match never crosses from one text into the next. Substrings grow one character at a time
        and only while they are a prefix of some longer word, so few positions get past length 2.
        """
        bits = np.zeros(len(code_points), dtype=np.int64)
        starts = np.flatnonzero(remaining >= 2)
        hashes = code_points[starts] * _HASH_MULTIPLIER + code_points[starts + 1]
        for length in range(2, self.max_word_length + 1):
            values = self._table.lookup(hashes, 0)
            found = (values & _GROUP_MASK) != 0
            matched, masks = starts[found], values[found] & _GROUP_MASK
            bits[matched] |= masks
            for inside in range(1, length - 1):
                bits[matched + inside] |= masks << _GROUPS
            bits[matched + length - 1] |= masks << (2 * _GROUPS)
            extend = ((values & _PREFIX) != 0) & (remaining[starts] > length)
            starts = starts[extend]
            if not len(starts):
                break
            hashes = hashes[extend] * _HASH_MULTIPLIER + code_points[starts + length]
        return bits

    def to_lines(self) -> list[str]:
        return [f"{word}\t{','.join(groups)}" for word, groups in self.entries.items()]

    @classmethod
    def from_lines(cls, lines: Iterable[str], max_word_length: int) -> Lexicon:
        entries: dict[str, list[str]] = {}
        for number, line in enumerate(lines, 1):
            word, sep, groups = line.partition("\t")
            if not sep or any(group not in LEXICON_GROUPS for group in groups.split(",")):
                raise ValueError(f"lexicon line {number}: expected WORD<TAB>GROUP[,GROUP]")
            entries[word] = groups.split(",")
        return cls(entries, max_word_length)


@dataclass(frozen=True)
class EncodedBatch:
    """Padded model inputs; positions at or beyond a row's length are padding (id 0, no bits)."""

    chars: Ids  # (B, T)
    bigrams: Ids  # (B, T)
    lexicon: Ids  # (B, T) lexicon bits
    lengths: Ids  # (B,)

    def as_inputs(self) -> dict[str, Ids]:
        """The ONNX model's named inputs."""
        return {
            "chars": self.chars,
            "bigrams": self.bigrams,
            "lexicon": self.lexicon,
            "lengths": self.lengths,
        }


class Featurizer:
    """Encodes batches of normalized texts (see models.text.normalize) into model inputs."""

    def __init__(self, chars: Vocabulary, bigrams: Vocabulary, lexicon: Lexicon) -> None:
        if chars.kind != "chars" or bigrams.kind != "bigrams":
            raise ValueError("expected a chars and a bigrams vocabulary")
        self.chars = chars
        self.bigrams = bigrams
        self.lexicon = lexicon

    def encode(self, texts: Sequence[str], pad_to: int = 0) -> EncodedBatch:
        """Inputs for ``texts``, padded to the longest one (or to ``pad_to`` if longer)."""
        lengths = np.array([len(text) for text in texts], dtype=np.int64)
        width = max(int(lengths.max(initial=0)), pad_to)
        code_points = _code_points("".join(texts))
        starts = np.cumsum(lengths) - lengths
        rows = np.repeat(np.arange(len(texts)), lengths)
        columns = np.arange(len(code_points)) - starts[rows]
        remaining = lengths[rows] - columns

        following = np.empty_like(code_points)
        following[:-1] = code_points[1:]
        following[remaining == 1] = _END
        bigram_keys = (code_points << _CODE_POINT_BITS) | following

        flat = rows * width + columns
        arrays = []
        for values in (
            self.chars.lookup(code_points),
            self.bigrams.lookup(bigram_keys),
            self.lexicon.features(code_points, remaining),
        ):
            padded = np.zeros(len(texts) * width, dtype=np.int64)
            padded[flat] = values
            arrays.append(padded.reshape(len(texts), width))
        chars, bigrams, lexicon = arrays
        return EncodedBatch(chars, bigrams, lexicon, lengths)

    def save(self, directory: Path) -> None:
        for name, lines in (
            (CHARS_FILE, self.chars.to_lines()),
            (BIGRAMS_FILE, self.bigrams.to_lines()),
            (LEXICON_FILE, self.lexicon.to_lines()),
        ):
            # Tokens may be spaces, so one token per line with nothing stripped or translated.
            with (directory / name).open("w", encoding="utf-8", newline="") as file:
                file.writelines(f"{line}\n" for line in lines)

    @classmethod
    def load(cls, directory: Path, max_word_length: int) -> Featurizer:
        def lines(name: str) -> list[str]:
            with (directory / name).open(encoding="utf-8", newline="") as file:
                return file.read().split("\n")[:-1]

        return cls(
            Vocabulary(lines(CHARS_FILE), "chars"),
            Vocabulary(lines(BIGRAMS_FILE), "bigrams"),
            Lexicon.from_lines(lines(LEXICON_FILE), max_word_length),
        )
