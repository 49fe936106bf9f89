"""Train the tagger: features and encoding, the training loop with early stopping, checkpoints.
The configuration lives in ``training.config``, data preparation in ``training.data``.

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
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch
from tqdm import tqdm

from models.features import Featurizer, Vocabulary, bigrams_of
from models.tags import Scheme, Span, label_set, paths_to_spans, viterbi_decode
from training.checkpoint import checkpoint_featurizer, read_checkpoint, save_checkpoint
from training.config import TrainConfig
from training.corpora import Example
from training.data import prepare_data
from training.lexicon import jieba_lexicon
from training.metrics import Report, score_spans
from training.model import Tagger, TaggerShape, build_tagger
from training.partial import allowed_tags

log = logging.getLogger(__name__)

CHECKPOINT = "best.pt"


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
    #: (length, K) booleans: the tags each character may have (training.partial).
    allowed: np.ndarray
    #: (length, K) teacher marginals when distilling.
    teacher: np.ndarray | None = None


def encode_examples(
    featurizer: Featurizer, examples: Sequence[Example], labels: Sequence[str], scheme: Scheme
) -> list[EncodedExample]:
    encoded = []
    chunk = 1024
    for first in range(0, len(examples), chunk):
        group = examples[first : first + chunk]
        batch = featurizer.encode([example.text for example in group])
        for row, example in enumerate(group):
            length = len(example.text)
            encoded.append(
                EncodedExample(
                    batch.chars[row, :length].copy(),
                    batch.bigrams[row, :length].copy(),
                    batch.lexicon[row, :length].copy(),
                    allowed_tags(example, labels, scheme),
                )
            )
    return encoded


def collate(examples: Sequence[EncodedExample]) -> dict[str, torch.Tensor]:
    lengths = np.array([len(example.chars) for example in examples], dtype=np.int64)
    width = int(lengths.max())
    chars = np.zeros((len(examples), width), dtype=np.int64)
    bigrams = np.zeros_like(chars)
    lexicon = np.zeros_like(chars)
    # Padding allows every tag: the CRF never reads past a row's length anyway.
    allowed = np.ones((len(examples), width, examples[0].allowed.shape[1]), dtype=bool)
    for row, example in enumerate(examples):
        length = len(example.chars)
        chars[row, :length] = example.chars
        bigrams[row, :length] = example.bigrams
        allowed[row, :length] = example.allowed
        lexicon[row, :length] = example.lexicon
    batch = {
        "chars": torch.from_numpy(chars),
        "bigrams": torch.from_numpy(bigrams),
        "lexicon": torch.from_numpy(lexicon),
        "lengths": torch.from_numpy(lengths),
        "allowed": torch.from_numpy(allowed),
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
        sum(len(examples) for examples in data.dev.values()),
        len(featurizer.chars),
        len(featurizer.bigrams),
        len(featurizer.lexicon),
    )
    train_set = encode_examples(featurizer, data.train, labels, scheme)
    if config.distill_from:
        from training.distill import teacher_marginals

        targets = teacher_marginals(
            [Path(model_dir) for model_dir in config.distill_from],
            [example.text for example in data.train],
            labels,
            config.threads,
            progress,
        )
        train_set = [
            dataclasses.replace(example, teacher=target)
            for example, target in zip(train_set, targets, strict=True)
        ]
    dev_sets = {
        name: (
            encode_examples(featurizer, examples, labels, scheme),
            [list(e.spans) for e in examples],
        )
        for name, examples in data.dev.items()
    }
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
        all_gold: list[list[Span]] = []
        all_predicted: list[list[Span]] = []
        by_set = {}
        for name, (encoded, gold) in dev_sets.items():
            predicted = predict_spans(model, encoded, labels, scheme)
            by_set[name] = score_spans(gold, predicted, selection_types).micro.f1
            all_gold += gold
            all_predicted += predicted
        report = score_spans(all_gold, all_predicted, config.entity_types)
        # Each dev set counts once, whatever its size, so the small domains weigh as much as MSRA.
        selected = sum(by_set.values()) / len(by_set)
        model.train()
        elapsed = time.monotonic() - started
        entry = {
            "epoch": epoch,
            "step": step,
            "loss": loss,
            "dev_f1": selected,
            "dev_f1_by_set": by_set,
            "dev_f1_all_types": report.micro.f1,
            "dev_per_type": {name: score.f1 for name, score in report.per_type.items()},
            "lr": scheduler.get_last_lr()[0],
            "minutes": elapsed / 60,
        }
        with log_file.open("a", encoding="utf-8") as file:
            file.write(json.dumps(entry) + "\n")
        log.info(
            "epoch %d step %d loss %.3f dev F1 %.2f (%s)",
            epoch,
            step,
            loss,
            selected,
            ", ".join(f"{name} {f1:.2f}" for name, f1 in by_set.items()),
        )
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
                    "dev_f1_by_set": by_set,
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
            loss = model.crf.negative_log_likelihood(emissions, batch["allowed"], batch["lengths"])
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
        if stop or epoch == config.stop_after_epoch:
            break
    if step % eval_every:
        evaluate_and_checkpoint(epoch, running / max(1, len(batches)))
    assert best is not None, "training ran no evaluation"
    return TrainResult(checkpoint, best[2], best[1])
