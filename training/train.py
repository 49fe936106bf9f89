"""Train the tagger: data preparation, the training loop with early stopping, checkpoints.

A run directory holds ``config.json``, ``log.jsonl`` (one line per evaluation), ``best.pt`` (the
best dev-F1 checkpoint so far, rewritten atomically, so it can be exported at any time) and, once
training ends, the exported model directory ``model/``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import time
import typing
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from tqdm import tqdm

from models.features import Featurizer, Vocabulary, bigrams_of
from models.tags import (
    Scheme,
    Span,
    label_set,
    paths_to_spans,
    spans_to_tags,
    viterbi_decode,
)
from models.text import normalize, normalize_all
from training.augment import grouped_numbers, mention_swaps, name_lists
from training.checkpoint import checkpoint_featurizer, read_checkpoint, save_checkpoint
from training.corpora import (
    Example,
    add_spans,
    keep_types,
    read_corpus,
    read_texts,
    split_dev,
    without_overlap,
)
from training.lexicon import jieba_lexicon
from training.metrics import Report, score_spans
from training.model import ENCODERS, Tagger, TaggerShape, build_tagger

log = logging.getLogger(__name__)

CHECKPOINT = "best.pt"


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on; saved beside the model and into its manifest."""

    name: str = "msra-bilstm-crf"
    version: str = "1.0.0"
    #: A corpus file or an MSRA split name (msra-train); the dev set is carved out of it.
    train_data: str = "msra-train"
    #: bmes, bio or jsonl; empty infers it from the file.
    train_format: str = ""
    dev_fraction: float = 0.05
    #: Use only the first N sentences (0: all); tests train tiny models.
    max_sentences: int = 0
    entity_types: tuple[str, ...] = ("PER", "LOC", "ORG", "NUM")
    #: Add NUM spans found by training.num_labels where they overlap no gold entity.
    weak_num: bool = True
    scheme: str = "BMES"
    #: Longest sentence trained on (longer ones are split between entities) and the window
    #: length the runtime cuts long texts into.
    max_length: int = 100
    char_min_count: int = 1
    bigram_min_count: int = 5
    #: jieba words outside the PER/LOC/ORG groups enter the lexicon from this frequency on.
    lexicon_word_min_freq: int = 100
    max_word_length: int = 8
    #: bilstm or cnn (dilated convolutions, twice as fast on one CPU core; training.model).
    encoder: str = "bilstm"
    #: cnn: one convolution layer per dilation.
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    #: bilstm only: the cnn embeds characters into its `hidden` channels.
    char_dim: int = 100
    bigram_dim: int = 40
    #: bilstm: units per direction; cnn: channels.
    hidden: int = 96
    dropout: float = 0.3
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 1e-5
    warmup_steps: int = 300
    #: The learning rate decays linearly to this fraction of its peak by the last epoch.
    final_lr_fraction: float = 0.05
    grad_clip: float = 5.0
    #: Synthetic sentences that list training-set person names back to back (training.augment).
    augment_name_lists: int = 0
    #: Add copies of sentences with their long NUM integers written "21,350" (training.augment).
    augment_grouped_numbers: bool = False
    #: Add a copy of each sentence with its PER/LOC/ORG entities swapped for others of their type
    #: (training.augment).
    augment_mention_swaps: bool = False
    #: Start from this checkpoint's weights and feature vocabularies (same shape settings).
    init_checkpoint: str = ""
    #: A trained model directory (same labels) whose per-character marginals the student's
    #: emissions also learn (training.distill); empty: gold tags only.
    distill_from: str = ""
    #: Weight of the distillation loss (cross-entropy per character, summed per sentence like
    #: the CRF loss) beside the CRF loss.
    distill_weight: float = 1.0
    #: Unlabelled texts (``pd-1998`` or a file, one text per line: training.corpora.read_texts)
    #: that ``self_training_teacher`` labels into extra training sentences (training.distill).
    #: Texts sharing 20 characters with the dev split or the MSRA test file are left out.
    self_training_texts: str = ""
    #: A trained model directory with the run's entity types.
    self_training_teacher: str = ""
    #: Dev micro-F1 over these types picks the best checkpoint (weak NUM labels are left out).
    selection_types: tuple[str, ...] = ("PER", "LOC", "ORG")
    #: Stop after this many evaluations without a better dev F1.
    patience: int = 4
    #: Evaluate on dev every N steps (0: once per epoch).
    eval_every: int = 0
    #: Stop (keeping the best checkpoint) once training has run this long (0: no limit); the
    #: learning rate then decays by elapsed time when that is ahead of the step count.
    time_limit_minutes: float = 0.0
    seed: int = 13
    threads: int = 2

    def validate(self) -> TrainConfig:
        if self.scheme not in ("BIO", "BMES"):
            raise ValueError(f"scheme must be BIO or BMES, got {self.scheme!r}")
        if not 0 < self.dev_fraction < 1:
            raise ValueError("dev_fraction must lie in (0, 1)")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.encoder == "cnn" and not self.dilations:
            raise ValueError("the cnn encoder needs at least one dilation")
        if bool(self.self_training_texts) != bool(self.self_training_teacher):
            raise ValueError("self_training_texts and self_training_teacher go together")
        if self.max_length < 2 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError("need max_length >= 2, epochs >= 1 and batch_size >= 1")
        return self

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TrainConfig:
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(unknown)}")
        converted = {
            key: tuple(value) if isinstance(value, list) else value for key, value in values.items()
        }
        config: TrainConfig = cls(**cast(Any, converted))
        return config.validate()

    def with_overrides(self, overrides: Sequence[str]) -> TrainConfig:
        """Apply ``key=value`` strings, each parsed as its field's type."""
        hints = typing.get_type_hints(TrainConfig)
        values = dataclasses.asdict(self)
        for item in overrides:
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or key not in hints:
                raise ValueError(f"--set expects KEY=VALUE with a config key, got {item!r}")
            values[key] = _parse_value(raw, hints[key], key)
        return TrainConfig.from_mapping(values)

    def as_dict(self) -> dict[str, Any]:
        return {key: list(v) if isinstance(v, tuple) else v for key, v in vars(self).items()}


def _parse_value(raw: str, annotation: Any, key: str) -> Any:
    if annotation is bool:
        if raw.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{key}: expected true or false, got {raw!r}")
        return raw.lower() in ("true", "1")
    if typing.get_origin(annotation) is tuple:
        parts = [part.strip() for part in raw.split(",") if part.strip()]
        return tuple(_parse_value(part, typing.get_args(annotation)[0], key) for part in parts)
    try:
        return annotation(raw)
    except ValueError as exc:
        raise ValueError(f"{key}: cannot read {raw!r} as {annotation.__name__}") from exc


def load_config(path: Path, overrides: Sequence[str] = ()) -> TrainConfig:
    return TrainConfig.from_mapping(json.loads(path.read_text("utf-8"))).with_overrides(overrides)


# --- data ----------------------------------------------------------------------------------------


def normalized_example(example: Example) -> Example:
    """The example in normalized text, its spans moved to normalized offsets."""
    normalized = normalize(example.text)
    if normalized.text == example.text:
        return example
    spans = tuple(
        Span(*normalized.normalized_span(span.start, span.end), span.type) for span in example.spans
    )
    return Example(normalized.text, spans)


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
        pieces.append(_piece(example, start, cut))
        start = cut
    pieces.append(_piece(example, start, len(text)))
    return pieces


def _piece(example: Example, start: int, end: int) -> Example:
    spans = tuple(
        Span(max(span.start, start) - start, min(span.end, end) - start, span.type)
        for span in example.spans
        if span.start < end and span.end > start
    )
    return Example(example.text[start:end], spans)


def weak_num_spans() -> Callable[[str], list[Span]]:
    from training.num_labels import find_numbers

    return find_numbers


@dataclass(frozen=True)
class PreparedData:
    train: list[Example]
    dev: list[Example]
    description: dict[str, Any]


#: A text from outside the corpus that shares this many characters with an evaluation text is
#: not trained on.
OVERLAP_WINDOW = 20


def teacher_labelled(config: TrainConfig, dev: Sequence[Example], progress: bool) -> list[Example]:
    """``self_training_texts`` labelled by ``self_training_teacher``, minus any text that
    overlaps the dev split or the MSRA test file."""
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


def prepare_data(config: TrainConfig, progress: bool = False) -> PreparedData:
    corpus_format = cast(Any, config.train_format or None)
    examples = read_corpus(config.train_data, corpus_format)
    if config.max_sentences:
        examples = examples[: config.max_sentences]
    if config.weak_num and "NUM" in config.entity_types:
        find_numbers = weak_num_spans()
        examples = [add_spans(example, find_numbers(example.text)) for example in examples]
    examples = [
        keep_types(normalized_example(example), config.entity_types) for example in examples
    ]
    train, dev = split_dev(examples, config.dev_fraction)
    labelled = teacher_labelled(config, dev, progress) if config.self_training_texts else []
    train += [keep_types(example, config.entity_types) for example in labelled]
    train = [piece for example in train for piece in split_long(example, config.max_length)]
    originals = train
    if config.augment_grouped_numbers:
        train = train + grouped_numbers(originals)
    if config.augment_mention_swaps:
        train = train + mention_swaps(originals, random.Random(config.seed + 1))
    if config.augment_name_lists:
        rng = random.Random(config.seed)
        train += name_lists(train, config.augment_name_lists, rng)
    counts = Counter(span.type for example in train for span in example.spans)
    description = {
        "train_data": config.train_data,
        "dev": f"{config.dev_fraction:.0%} of it by text hash",
        "train_sentences": len(train),
        "dev_sentences": len(dev),
        "train_entities": dict(sorted(counts.items())),
        "weak_num": config.weak_num and "NUM" in config.entity_types,
        "augment_name_lists": config.augment_name_lists,
        "augment_grouped_numbers": config.augment_grouped_numbers,
        "augment_mention_swaps": config.augment_mention_swaps,
        "self_training_texts": config.self_training_texts,
        "self_training_teacher": config.self_training_teacher,
        "self_training_sentences": len(labelled),
    }
    return PreparedData(train, dev, description)


def build_featurizer(config: TrainConfig, train: Sequence[Example]) -> Featurizer:
    char_counts: Counter[str] = Counter()
    bigram_counts: Counter[str] = Counter()
    for example in train:
        char_counts.update(example.text)
        bigram_counts.update(bigrams_of(example.text))
    lexicon = jieba_lexicon(config.lexicon_word_min_freq, config.max_word_length)
    return Featurizer(
        Vocabulary.from_counts(char_counts, "chars", config.char_min_count),
        Vocabulary.from_counts(bigram_counts, "bigrams", config.bigram_min_count),
        lexicon,
    )


@dataclass(frozen=True)
class EncodedExample:
    chars: np.ndarray
    bigrams: np.ndarray
    lexicon: np.ndarray
    tags: np.ndarray
    #: (length, K) teacher marginals when distilling.
    teacher: np.ndarray | None = None


def encode_examples(
    featurizer: Featurizer, examples: Sequence[Example], labels: Sequence[str], scheme: Scheme
) -> list[EncodedExample]:
    label_id = {label: index for index, label in enumerate(labels)}
    encoded = []
    chunk = 1024
    for first in range(0, len(examples), chunk):
        group = examples[first : first + chunk]
        batch = featurizer.encode([example.text for example in group])
        for row, example in enumerate(group):
            length = len(example.text)
            tags = spans_to_tags(length, example.spans, scheme)
            encoded.append(
                EncodedExample(
                    batch.chars[row, :length].copy(),
                    batch.bigrams[row, :length].copy(),
                    batch.lexicon[row, :length].copy(),
                    np.array([label_id[tag] for tag in tags], dtype=np.int64),
                )
            )
    return encoded


def collate(examples: Sequence[EncodedExample]) -> dict[str, torch.Tensor]:
    lengths = np.array([len(example.chars) for example in examples], dtype=np.int64)
    width = int(lengths.max())
    chars = np.zeros((len(examples), width), dtype=np.int64)
    bigrams = np.zeros_like(chars)
    tags = np.zeros_like(chars)
    lexicon = np.zeros_like(chars)
    for row, example in enumerate(examples):
        length = len(example.chars)
        chars[row, :length] = example.chars
        bigrams[row, :length] = example.bigrams
        tags[row, :length] = example.tags
        lexicon[row, :length] = example.lexicon
    batch = {
        "chars": torch.from_numpy(chars),
        "bigrams": torch.from_numpy(bigrams),
        "lexicon": torch.from_numpy(lexicon),
        "lengths": torch.from_numpy(lengths),
        "tags": torch.from_numpy(tags),
    }
    if examples[0].teacher is not None:
        teacher = np.zeros((len(examples), width, examples[0].teacher.shape[1]), np.float32)
        for row, example in enumerate(examples):
            teacher[row, : len(example.chars)] = example.teacher
        batch["teacher"] = torch.from_numpy(teacher)
    return batch


def distillation_loss(emissions: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the emissions' per-character softmax against the teacher's marginals,
    summed over characters (padding rows of ``teacher`` are zeros) and averaged over sentences."""
    log_probabilities = torch.log_softmax(emissions, dim=2)
    return -(teacher * log_probabilities).sum() / emissions.shape[0]


def length_batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random
) -> Iterator[list[int]]:
    """Batches of similar length (less padding) in random order; lengths are jittered so the
    batches differ between epochs."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i] + rng.uniform(-3, 3), i))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    yield from batches


# --- training ------------------------------------------------------------------------------------


def predict_spans(
    model: Tagger, encoded: Sequence[EncodedExample], labels: Sequence[str], scheme: Scheme
) -> list[list[Span]]:
    """Decode with the serving side's Viterbi, as the exported model will be decoded."""
    model.eval()
    transitions, start, end = model.crf.numpy_scores()
    predicted: list[list[Span]] = []
    with torch.no_grad():
        for first in range(0, len(encoded), 256):
            batch = collate(encoded[first : first + 256])
            emissions = model(batch["chars"], batch["bigrams"], batch["lexicon"], batch["lengths"])
            lengths = batch["lengths"].numpy()
            paths, _ = viterbi_decode(emissions.numpy(), lengths, transitions, start, end)
            predicted.extend(paths_to_spans(paths, lengths, labels, scheme))
    return predicted


def _learning_rate_factor(
    config: TrainConfig, total_steps: int, started: float
) -> Callable[[int], float]:
    """Linear warmup, then linear decay to ``final_lr_fraction``. With a time limit the decay
    follows whichever runs out first, steps or time, so a time-boxed run still anneals."""

    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
        if config.time_limit_minutes:
            elapsed = (time.monotonic() - started) / 60
            progress = max(progress, elapsed / config.time_limit_minutes)
        return max(config.final_lr_fraction, 1.0 - (1.0 - config.final_lr_fraction) * progress)

    return factor


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    best_dev: Report
    best_step: int


def train(config: TrainConfig, run_dir: Path, progress: bool = True) -> TrainResult:
    """Train until early stopping (or the epoch/time limit); ``run_dir/best.pt`` is the result."""
    config.validate()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config.as_dict(), indent=2) + "\n", "utf-8")
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = random.Random(config.seed)
    scheme = cast(Scheme, config.scheme)
    labels = label_set(config.entity_types, scheme)

    data = prepare_data(config, progress)
    initial = read_checkpoint(Path(config.init_checkpoint)) if config.init_checkpoint else None
    # Weights index the vocabularies, so a run that starts from a checkpoint keeps its features.
    featurizer = checkpoint_featurizer(initial) if initial else build_featurizer(config, data.train)
    log.info(
        "data: %d train / %d dev sentences; %d chars, %d bigrams, %d lexicon words",
        len(data.train),
        len(data.dev),
        len(featurizer.chars),
        len(featurizer.bigrams),
        len(featurizer.lexicon),
    )
    train_set = encode_examples(featurizer, data.train, labels, scheme)
    if config.distill_from:
        from training.distill import teacher_marginals

        targets = teacher_marginals(
            Path(config.distill_from),
            [example.text for example in data.train],
            labels,
            config.threads,
            progress,
        )
        train_set = [
            dataclasses.replace(example, teacher=target)
            for example, target in zip(train_set, targets, strict=True)
        ]
    dev_set = encode_examples(featurizer, data.dev, labels, scheme)
    dev_gold = [list(example.spans) for example in data.dev]
    selection_types = [name for name in config.selection_types if name in config.entity_types]

    shape = TaggerShape(
        chars=len(featurizer.chars),
        bigrams=len(featurizer.bigrams),
        labels=len(labels),
        char_dim=config.char_dim,
        bigram_dim=config.bigram_dim,
        hidden=config.hidden,
        dropout=config.dropout,
        encoder=config.encoder,
        dilations=config.dilations if config.encoder == "cnn" else (),
    )
    model = build_tagger(shape, labels, scheme)
    if initial:
        model.load_state_dict(initial["state_dict"])
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    steps_per_epoch = math.ceil(len(train_set) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    started = time.monotonic()
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _learning_rate_factor(config, total_steps, started)
    )
    eval_every = config.eval_every or steps_per_epoch
    best: tuple[float, int, Report] | None = None
    evaluations_without_gain = 0
    step = 0
    checkpoint = run_dir / CHECKPOINT
    log_file = run_dir / "log.jsonl"
    lengths = [len(example.chars) for example in train_set]

    def evaluate_and_checkpoint(epoch: int, loss: float) -> bool:
        """Returns whether training should stop."""
        nonlocal best, evaluations_without_gain
        predicted = predict_spans(model, dev_set, labels, scheme)
        report = score_spans(dev_gold, predicted, config.entity_types)
        selected = score_spans(dev_gold, predicted, selection_types).micro.f1
        model.train()
        elapsed = time.monotonic() - started
        entry = {
            "epoch": epoch,
            "step": step,
            "loss": loss,
            "dev_f1": selected,
            "dev_f1_all_types": report.micro.f1,
            "dev_per_type": {name: score.f1 for name, score in report.per_type.items()},
            "lr": scheduler.get_last_lr()[0],
            "minutes": elapsed / 60,
        }
        with log_file.open("a", encoding="utf-8") as file:
            file.write(json.dumps(entry) + "\n")
        log.info("epoch %d step %d loss %.3f dev F1 %.2f", epoch, step, loss, selected)
        if best is None or selected > best[0]:
            best = (selected, step, report)
            evaluations_without_gain = 0
            save_checkpoint(
                {
                    "config": config.as_dict(),
                    "shape": dataclasses.asdict(shape),
                    "labels": list(labels),
                    "state_dict": model.state_dict(),
                    "chars": featurizer.chars.to_lines(),
                    "bigrams": featurizer.bigrams.to_lines(),
                    "lexicon": featurizer.lexicon.to_lines(),
                    "step": step,
                    "epoch": epoch,
                    "dev": report.as_dict(),
                    "data": data.description,
                },
                checkpoint,
            )
        else:
            evaluations_without_gain += 1
        out_of_time = bool(config.time_limit_minutes) and elapsed > 60 * config.time_limit_minutes
        return evaluations_without_gain >= config.patience or out_of_time

    model.train()
    stop = False
    for epoch in range(1, config.epochs + 1):
        running = 0.0
        batches = list(length_batches(lengths, config.batch_size, rng))
        bar = tqdm(batches, desc=f"epoch {epoch}", disable=not progress, mininterval=10)
        for seen, indices in enumerate(bar, 1):
            batch = collate([train_set[i] for i in indices])
            emissions = model(batch["chars"], batch["bigrams"], batch["lexicon"], batch["lengths"])
            loss = model.crf.negative_log_likelihood(emissions, batch["tags"], batch["lengths"])
            if "teacher" in batch:
                loss = loss + config.distill_weight * distillation_loss(emissions, batch["teacher"])
            optimizer.zero_grad()
            torch.autograd.backward(loss)
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            running += loss.item()
            bar.set_postfix(loss=f"{running / seen:.3f}", refresh=False)
            if step % eval_every == 0 and evaluate_and_checkpoint(epoch, running / seen):
                stop = True
                break
        if stop:
            break
    if step % eval_every:
        evaluate_and_checkpoint(epoch, running / max(1, len(batches)))
    assert best is not None, "training ran no evaluation"
    return TrainResult(checkpoint, best[2], best[1])
