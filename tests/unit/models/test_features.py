"""Featurization shared by training and serving: vocabularies, bigrams, lexicon bits, batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.features import (
    LEXICON_GROUPS,
    LEXICON_POSITIONS,
    PAD_ID,
    UNK_ID,
    Featurizer,
    KeyTable,
    Lexicon,
    Vocabulary,
    bigrams_of,
)


def lexicon_tags(bits: int) -> set[str]:
    """Lexicon id -> {"B-LOC", ...} (bit position*4 + group)."""
    return {
        f"{position}-{group}"
        for p, position in enumerate(LEXICON_POSITIONS)
        for g, group in enumerate(LEXICON_GROUPS)
        if bits >> (p * len(LEXICON_GROUPS) + g) & 1
    }


@pytest.fixture
def featurizer() -> Featurizer:
    lexicon = Lexicon({"北京": ["LOC"], "北京大学": ["ORG"], "大学": ["WORD"], "张三": ["PER"]}, 8)
    return Featurizer(
        Vocabulary(list("北京大学张三 "), "chars"),
        Vocabulary(["北京", "京大", "学", "张三"], "bigrams"),
        lexicon,
    )


def test_key_table_finds_every_key_and_nothing_else() -> None:
    rng = np.random.default_rng(0)
    keys = rng.choice(2**40, size=5000, replace=False).astype(np.uint64)
    table = KeyTable(keys, np.arange(5000, dtype=np.int64))
    assert (table.lookup(keys, -1) == np.arange(5000)).all()
    others = keys + np.uint64(2**41)
    assert (table.lookup(others, -1) == -1).all()
    with pytest.raises(ValueError, match="duplicate"):
        KeyTable(np.array([1, 1], dtype=np.uint64), np.array([0, 1]))


def test_characters_beyond_the_basic_plane() -> None:
    vocabulary = Vocabulary(["a", "😀", "中"], "chars")
    keys = np.array([ord(c) for c in "a😀中x🙂"], dtype=np.uint64)
    assert vocabulary.lookup(keys).tolist() == [2, 3, 4, UNK_ID, UNK_ID]


def test_vocabulary_ids_and_counts() -> None:
    vocabulary = Vocabulary.from_counts({"a": 3, "b": 1, "c": 3}, "chars", min_count=2)
    assert vocabulary.tokens == ("<pad>", "<unk>", "a", "c")
    assert bigrams_of("abc") == ["ab", "bc", "c"]
    with pytest.raises(ValueError, match="bad chars token"):
        Vocabulary(["ab"], "chars")


def test_encode(featurizer: Featurizer) -> None:
    batch = featurizer.encode(["北京大学", "", "张三x"])
    assert batch.lengths.tolist() == [4, 0, 3]
    chars = featurizer.chars.tokens
    assert [chars[i] for i in batch.chars[0]] == list("北京大学")
    assert batch.chars[2].tolist()[2] == UNK_ID
    assert batch.chars[1].tolist() == [PAD_ID] * 4
    bigrams = featurizer.bigrams.tokens
    # "大学" is unknown; "学" alone is the bigram at the end of the text.
    assert [bigrams[i] for i in batch.bigrams[0]] == ["北京", "京大", "<unk>", "学"]
    assert [lexicon_tags(int(b)) for b in batch.lexicon[0]] == [
        {"B-LOC", "B-ORG"},
        {"E-LOC", "M-ORG"},
        {"M-ORG", "B-WORD"},
        {"E-ORG", "E-WORD"},
    ]
    assert [lexicon_tags(int(b)) for b in batch.lexicon[2][:3]] == [{"B-PER"}, {"E-PER"}, set()]
    assert batch.lexicon[1].tolist() == [0] * 4


def test_words_never_match_across_texts(featurizer: Featurizer) -> None:
    batch = featurizer.encode(["北", "京"])
    assert batch.lexicon.max() == 0
    assert featurizer.encode(["北", "京"], pad_to=5).chars.shape == (2, 5)


def test_batched_equals_unbatched(featurizer: Featurizer) -> None:
    texts = ["北京大学张三", "张", "", "大学北京"]
    batch = featurizer.encode(texts)
    for row, text in enumerate(texts):
        single = featurizer.encode([text], pad_to=batch.chars.shape[1])
        for name in ("chars", "bigrams", "lexicon"):
            assert (getattr(single, name)[0] == getattr(batch, name)[row]).all()


def test_save_and_load_round_trip(featurizer: Featurizer, tmp_path: Path) -> None:
    featurizer.save(tmp_path)
    loaded = Featurizer.load(tmp_path, 8)
    assert loaded.chars.tokens == featurizer.chars.tokens  # the space token survives
    assert loaded.bigrams.tokens == featurizer.bigrams.tokens
    assert loaded.lexicon.entries == featurizer.lexicon.entries
    texts = ["北京大学 张三"]
    assert (loaded.encode(texts).lexicon == featurizer.encode(texts).lexicon).all()


def test_bad_lexicon_lines() -> None:
    with pytest.raises(ValueError, match="lexicon line 2"):
        Lexicon.from_lines(["北京\tLOC", "上海\tCITY"], 8)
