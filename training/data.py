"""Training data preparation: read the configured sets, add rule-found NUM spans, normalize,
carve out dev parts, cut documents into sentences, augment. Pure data in, data out: no torch.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from models.tags import Span
from models.text import normalize, normalize_all
from training.augment import (
    grouped_numbers,
    hospital_departments,
    mention_swaps,
    name_lists,
    person_names,
)
from training.config import TrainConfig
from training.corpora import (
    MSRA_SPLITS,
    CorpusError,
    CorpusFormat,
    Example,
    add_spans,
    keep_types,
    read_corpus,
    read_texts,
    split_dev,
    without_overlap,
)
from training.datasets import SHARED_SETS, department_names, is_named_set, read_shared

log = logging.getLogger(__name__)

#: A text from outside the corpus that shares this many characters with an evaluation text is
#: not trained on.
OVERLAP_WINDOW = 20


def read_data(source: str | Path, corpus_format: CorpusFormat | None = None) -> list[Example]:
    """A named data set (training.datasets), an MSRA split, or a corpus file."""
    if is_named_set(str(source)):
        return read_shared(str(source))
    if str(source) not in MSRA_SPLITS and not Path(source).exists():
        names = ", ".join([*MSRA_SPLITS, *SHARED_SETS])
        raise CorpusError(f"{source}: no such file, nor a data set name ({names})")
    return read_corpus(source, corpus_format)


def _moved(spans: Sequence[Span], move: Callable[[int, int], tuple[int, int]]) -> tuple[Span, ...]:
    return tuple(Span(*move(span.start, span.end), span.type) for span in spans)


def normalized_example(example: Example) -> Example:
    """The example in normalized text, its spans and regions moved to normalized offsets."""
    normalized = normalize(example.text)
    if normalized.text == example.text:
        return example
    return dataclasses.replace(
        example,
        text=normalized.text,
        spans=_moved(example.spans, normalized.normalized_span),
        blocked=_moved(example.blocked, normalized.normalized_span),
    )


def piece(example: Example, start: int, end: int) -> Example:
    """Characters [start, end) of the example, with the spans and regions inside (clipped)."""

    def clip(spans: Sequence[Span]) -> tuple[Span, ...]:
        return tuple(
            Span(max(span.start, start) - start, min(span.end, end) - start, span.type)
            for span in spans
            if span.start < end and span.end > start
        )

    return dataclasses.replace(
        example,
        text=example.text[start:end],
        spans=clip(example.spans),
        blocked=clip(example.blocked),
    )


def split_long(example: Example, max_length: int) -> list[Example]:
    """Cut an example into pieces of at most ``max_length`` chars, never inside an entity
    (an entity longer than that is cut at the limit)."""
    pieces = []
    start = 0
    text = example.text
    while len(text) - start > max_length:
        cut = start + max_length
        for span in example.spans:
            if span.start < cut < span.end and span.start > start:
                cut = span.start
                break
        pieces.append(piece(example, start, cut))
        start = cut
    pieces.append(piece(example, start, len(text)))
    return pieces


#: A sentence ends after one of these (and its closing quotes), or at a line break; the two
#: characters backslash + n are the paragraph marks of the Boson release.
_SENTENCE_END = re.compile(r"[。！？!?；;]+[”’」』）)]*|\n+|\\n")


def sentences(example: Example) -> list[Example]:
    """Cut a document into sentences, never inside an entity; whitespace-only pieces and the
    line-break marks themselves are dropped."""
    starts_inside = {
        position for span in example.spans for position in range(span.start + 1, span.end)
    }
    pieces = []
    start = 0
    for match in _SENTENCE_END.finditer(example.text):
        mark = match.group()
        cut = match.start() if mark.startswith(("\n", "\\")) else match.end()
        if cut in starts_inside or match.end() in starts_inside:
            continue
        pieces.append(piece(example, start, cut))
        start = match.end()
    pieces.append(piece(example, start, len(example.text)))
    return [p for p in pieces if p.text.strip()]


def weak_num_spans() -> Callable[[str], list[Span]]:
    from training.num_labels import find_numbers

    return find_numbers


@dataclass(frozen=True)
class PreparedData:
    train: list[Example]
    #: Dev sets by name: "dev" (carved from the files and MSRA splits), then ``dev_data``.
    dev: dict[str, list[Example]]
    description: dict[str, Any]


def teacher_labelled(config: TrainConfig, dev: Sequence[Example], progress: bool) -> list[Example]:
    """``self_training_texts`` labelled by ``self_training_teacher``, minus any text that
    overlaps the dev sets or the MSRA test file."""
    from training.distill import teacher_examples

    # Normalized like every training text (the dev texts already are).
    texts = [
        normalized.text for normalized in normalize_all(read_texts(config.self_training_texts))
    ]
    evaluation = [example.text for example in dev]
    evaluation += [
        normalized.text
        for normalized in normalize_all([example.text for example in read_corpus("msra-test")])
    ]
    kept = without_overlap(texts, evaluation, OVERLAP_WINDOW)
    log.info(
        "self-training: %d of %d texts share no %d characters with dev or MSRA test",
        len(kept),
        len(texts),
        OVERLAP_WINDOW,
    )
    return teacher_examples(Path(config.self_training_teacher), kept, config.threads, progress)


def parse_weighted(entry: str) -> tuple[str, int]:
    """``NAME*N`` -> (NAME, N); a plain name repeats once."""
    name, star, repeat = entry.rpartition("*")
    if not star:
        return entry, 1
    if not repeat.isdigit() or int(repeat) < 1:
        raise ValueError(f"train_data entry {entry!r}: expected NAME or NAME*N with N >= 1")
    return name, int(repeat)


def _prepared(config: TrainConfig, examples: list[Example]) -> list[Example]:
    """Sentences with rule NUM spans added, normalized, restricted to the run's types."""
    examples = [part for example in examples for part in sentences(example)]
    if config.max_sentences:
        examples = examples[: config.max_sentences]
    if config.weak_num and "NUM" in config.entity_types:
        find_numbers = weak_num_spans()
        examples = [add_spans(example, find_numbers(example.text)) for example in examples]
    return [keep_types(normalized_example(example), config.entity_types) for example in examples]


def prepare_data(config: TrainConfig, progress: bool = False) -> PreparedData:
    corpus_format = cast(Any, config.train_format or None)
    train: list[Example] = []
    carved: list[Example] = []
    sources: dict[str, int] = {}
    for entry in config.train_data:
        name, repeat = parse_weighted(entry)
        examples = _prepared(config, read_data(name, corpus_format))
        if not is_named_set(name):
            examples, dev_part = split_dev(examples, config.dev_fraction)
            carved += dev_part
        sources[name] = len(examples)
        train += examples * repeat
    for entry in config.corrections:
        name, repeat = parse_weighted(entry)
        examples = _prepared(config, read_data(name, "jsonl"))
        sources[name] = len(examples)
        train += examples * repeat
    dev = {"dev": carved} if carved else {}
    for name in config.dev_data:
        dev[name] = _prepared(config, read_data(name))
    all_dev = [example for examples in dev.values() for example in examples]
    labelled = teacher_labelled(config, all_dev, progress) if config.self_training_texts else []
    train += [keep_types(example, config.entity_types) for example in labelled]
    train = [part for example in train for part in split_long(example, config.max_length)]
    complete = [example for example in train if not example.unknown]
    if config.augment_grouped_numbers:
        train += grouped_numbers(complete)
    if config.augment_mention_swaps:
        train += mention_swaps(complete, random.Random(config.seed + 1))
    if config.augment_name_lists:
        train += name_lists(complete, config.augment_name_lists, random.Random(config.seed))
    if config.augment_departments:
        rng = random.Random(config.seed + 2)
        doctors = person_names(complete) if config.augment_doctors else []
        train += hospital_departments(
            complete, department_names(), config.augment_departments, rng, doctors
        )
    counts = Counter(span.type for example in train for span in example.spans)
    description = {
        "train_data": list(config.train_data),
        "corrections": list(config.corrections),
        "train_sentences_by_source": sources,
        "dev": {name: len(examples) for name, examples in dev.items()},
        "dev_carved": f"{config.dev_fraction:.0%} of the files and MSRA splits by text hash",
        "train_sentences": len(train),
        "partially_labelled_sentences": sum(1 for example in train if example.unknown),
        "train_entities": dict(sorted(counts.items())),
        "weak_num": config.weak_num and "NUM" in config.entity_types,
        "augment_name_lists": config.augment_name_lists,
        "augment_grouped_numbers": config.augment_grouped_numbers,
        "augment_mention_swaps": config.augment_mention_swaps,
        "augment_departments": config.augment_departments,
        "augment_doctors": config.augment_doctors,
        "self_training_texts": config.self_training_texts,
        "self_training_teacher": config.self_training_teacher,
        "self_training_sentences": len(labelled),
    }
    return PreparedData(train, dev, description)
