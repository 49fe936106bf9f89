"""The training configuration: one frozen object, read from a JSON file plus ``KEY=VALUE``
overrides, saved beside every run and into the model's manifest."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from training.model import ENCODERS


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on; saved beside the model and into its manifest."""

    name: str = "msra-bilstm-crf"
    version: str = "1.0.0"
    #: Training sets: corpus files or data set names (training.datasets), each optionally
    #: ``NAME*N`` to repeat it N times. From the files and MSRA splits among them a
    #: ``dev_fraction`` is carved out by text hash; the shared sets are used whole.
    train_data: tuple[str, ...] = ("msra-train",)
    #: bmes, bio or jsonl for corpus files; empty infers it from the file.
    train_format: str = ""
    #: Corrections from ``nerstream review`` (JSONL corpus files), each optionally ``FILE*N`` to
    #: repeat it N times (its weight). Used whole: never carved into dev.
    corrections: tuple[str, ...] = ()
    dev_fraction: float = 0.05
    #: Further dev sets (data set names or files), scored beside the carved-out dev part.
    dev_data: tuple[str, ...] = ()
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
    #: Add this many copies of each sentence naming a hospital, a CMeEE department appended to
    #: the hospital's ORG span (training.augment.hospital_departments).
    augment_departments: int = 0
    #: In every other of those copies, a training-set person name follows the department.
    augment_doctors: bool = False
    #: Start from this checkpoint's weights and feature vocabularies (same shape settings).
    init_checkpoint: str = ""
    #: Trained model directories (same labels) whose per-character marginals, averaged, the
    #: student's emissions also learn (training.distill); empty: gold tags only.
    distill_from: tuple[str, ...] = ()
    #: Weight of the distillation loss (cross-entropy per character, summed per sentence like
    #: the CRF loss) beside the CRF loss.
    distill_weight: float = 1.0
    #: Unlabelled texts (a file, one text per line: training.corpora.read_texts) that
    #: ``self_training_teacher`` labels into extra training sentences (training.distill).
    #: Texts sharing 20 characters with the dev sets or the MSRA test file are left out.
    self_training_texts: str = ""
    #: A trained model directory with the run's entity types.
    self_training_teacher: str = ""
    #: The mean over dev sets of the micro-F1 over these types picks the best checkpoint (weak
    #: NUM labels are left out).
    selection_types: tuple[str, ...] = ("PER", "LOC", "ORG")
    #: Stop after this many evaluations without a better dev F1.
    patience: int = 4
    #: Evaluate on dev every N steps (0: once per epoch).
    eval_every: int = 0
    #: Stop after this epoch (0: run all ``epochs``). The learning rate still follows the whole
    #: schedule, so a later run can continue from the checkpoint (``init_checkpoint``).
    stop_after_epoch: int = 0
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
        tuples = {f.name for f in dataclasses.fields(cls) if str(f.type).startswith("tuple")}
        converted = {
            key: tuple(value)
            if isinstance(value, list)
            else ((value,) if value else ())
            if key in tuples and isinstance(value, str)
            else value
            for key, value in values.items()
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


def with_corrections(config: TrainConfig, entries: Sequence[str], version: str = "") -> TrainConfig:
    """``config`` also trained on correction files (``FILE`` or ``FILE*N``), under a new version:
    ``version`` when given, else ``<version>+corrections.<hash>`` where the hash is over the
    contents of the files and their weights, so other corrections make another version."""
    if not entries:
        return dataclasses.replace(config, version=version or config.version)
    digest = hashlib.sha256()
    for entry in entries:
        name, _, weight = entry.rpartition("*") if "*" in entry else (entry, "", "1")
        digest.update(Path(name).read_bytes())
        digest.update(f"*{weight}\n".encode())
    new_version = version or f"{config.version}+corrections.{digest.hexdigest()[:8]}"
    return dataclasses.replace(
        config, corrections=(*config.corrections, *entries), version=new_version
    ).validate()


def load_config(path: Path, overrides: Sequence[str] = ()) -> TrainConfig:
    return TrainConfig.from_mapping(json.loads(path.read_text("utf-8"))).with_overrides(overrides)
