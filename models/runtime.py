"""Serving the NER model with ONNX Runtime: load a validated model directory, tag batches of texts.

``NerModel.predict`` takes a list of texts and returns, for each, its entities with offsets into
the original text. Inside: normalize (models.text), cut long texts into overlapping windows, batch
windows of similar length (models.bucketing), featurize (models.features), run the ONNX model,
decode with the CRF (models.tags) and score each entity by its mean CRF marginal.

The execution provider is chosen from those ONNX Runtime offers: TensorRT, then CUDA, then CPU
(``provider="auto"``), or as requested. A GPU provider that is offered but cannot start (a GPU
build on a machine without a GPU) falls back to CPU with one warning. Which of the directory's
models runs is the ``precision``: ``auto`` takes the fp16 model on GPU when the directory has one
(else the float model) and the int8 model on CPU; ``int8``, ``fp32`` and ``fp16`` ask for one.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from models.boundaries import name_spans
from models.bucketing import length_buckets
from models.features import EncodedBatch, Featurizer
from models.manifest import (
    CRF_FILE,
    FLOAT_MODEL,
    FP16_MODEL,
    INT8_MODEL,
    Manifest,
    ModelError,
    read_manifest,
)
from models.tags import Scheme, Span, path_marginals, paths_to_spans, viterbi_decode
from models.text import merge_window_spans, normalize_all, windows

log = logging.getLogger(__name__)

#: The model shipped inside the package, used when no model directory is given.
DEFAULT_MODEL = "zh-cnn-crf"

CPU_PROVIDER = "CPUExecutionProvider"
GPU_PROVIDERS = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider"}
PROVIDER_CHOICES = ("auto", "tensorrt", "cuda", "cpu")
PRECISION_FILES = {"int8": INT8_MODEL, "fp32": FLOAT_MODEL, "fp16": FP16_MODEL}
PRECISION_CHOICES = ("auto", *PRECISION_FILES)
_ORT_DEFAULT_SEVERITY = 2  # warning


@dataclass(frozen=True)
class Entity:
    """An entity in the original text: ``text == original[start:end]``."""

    type: str
    start: int
    end: int
    text: str
    #: Mean CRF marginal probability of the entity's labels, in (0, 1].
    score: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "score": round(self.score, 4),
        }


def default_model_dir() -> Path:
    return Path(str(importlib.resources.files("models") / DEFAULT_MODEL))


def provider_chain(requested: str, available: Sequence[str]) -> list[str]:
    """Providers to ask ONNX Runtime for, most preferred first; CPU always closes the list."""
    if requested not in PROVIDER_CHOICES:
        raise ValueError(f"provider must be one of {PROVIDER_CHOICES}, got {requested!r}")
    if requested == "auto":
        wanted = list(GPU_PROVIDERS.values())
    elif requested == "cpu":
        wanted = []
    else:
        wanted = [GPU_PROVIDERS[requested]]
        if wanted[0] not in available:
            log.warning("%s is not available in this ONNX Runtime; using CPU", wanted[0])
    return [provider for provider in wanted if provider in available] + [CPU_PROVIDER]


def _session(path: Path, providers: list[str], threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # ONNX Runtime raises its own pybind exception types
        if providers != [CPU_PROVIDER]:
            raise
        raise ModelError(
            ModelError.BAD_ARTIFACT, f"{path}: ONNX Runtime cannot load it: {exc}"
        ) from exc


def _quiet_gpu_session(path: Path, chain: list[str], threads: int) -> ort.InferenceSession:
    """A session on the first GPU provider of ``chain`` that starts; CPU if none does.

    ONNX Runtime reports each provider that fails to start with an error dump on stderr and a
    banner on stdout (which would corrupt JSON written there); both are silenced here and the
    caller logs one warning instead.
    """
    ort.set_default_logger_severity(4)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return _session(path, chain, threads)
    finally:
        ort.set_default_logger_severity(_ORT_DEFAULT_SEVERITY)


def _model_file(directory: Path, precision: str, on_gpu: bool) -> str:
    """The directory's ONNX file for ``precision`` (``auto`` resolved for the device)."""
    if precision not in PRECISION_CHOICES:
        raise ValueError(f"precision must be one of {PRECISION_CHOICES}, got {precision!r}")
    if precision != "auto":
        if not (directory / PRECISION_FILES[precision]).is_file():
            raise ModelError(
                ModelError.MISSING_FILE,
                f"{directory} has no {precision} model ({PRECISION_FILES[precision]})",
            )
        return PRECISION_FILES[precision]
    if not on_gpu:
        return INT8_MODEL
    return FP16_MODEL if (directory / FP16_MODEL).is_file() else FLOAT_MODEL


def _open_session(
    directory: Path, provider: str, threads: int, precision: str
) -> tuple[ort.InferenceSession, str]:
    """A session and the file it runs."""
    chain = provider_chain(provider, ort.get_available_providers())
    if chain[0] != CPU_PROVIDER:
        gpu_file = _model_file(directory, precision, on_gpu=True)
        try:
            session = _quiet_gpu_session(directory / gpu_file, chain, threads)
            if session.get_providers()[0] != CPU_PROVIDER:
                return session, gpu_file
            reason = "it did not start"
        except Exception as exc:  # ONNX Runtime raises its own pybind exception types
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.warning("%s could not be used (%s); falling back to CPU", chain[0], reason)
    cpu_file = _model_file(directory, precision, on_gpu=False)
    return _session(directory / cpu_file, [CPU_PROVIDER], threads), cpu_file


def drop_overlaps(entities: Sequence[Entity]) -> list[Entity]:
    """Entities sorted by start, without overlaps: of two that overlap the better scored stays.

    Spans of the normalized text never overlap, but two of them can map onto the same original
    character when normalization expanded it (NFKC of "…" is "...").
    """
    kept: list[Entity] = []
    for entity in entities:
        if kept and entity.start < kept[-1].end:
            if entity.score > kept[-1].score:
                kept[-1] = entity
            continue
        kept.append(entity)
    return kept


@dataclass(frozen=True)
class _Tagged:
    """Spans of one window, relative to it, with their scores."""

    spans: list[Span]
    scores: list[float]


class NerModel:
    """A loaded model directory; ``predict`` is safe to call from one thread at a time."""

    def __init__(
        self,
        *,
        directory: Path,
        manifest: Manifest,
        session: ort.InferenceSession,
        model_file: str,
        featurizer: Featurizer,
        crf: tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]],
        bucket_texts: int,
        bucket_chars: int,
        onnx_batch: int,
    ) -> None:
        self.directory = directory
        self.manifest = manifest
        self.session = session
        self.model_file = model_file
        self.featurizer = featurizer
        self.crf = crf
        self.bucket_texts = bucket_texts
        self.bucket_chars = bucket_chars
        self.onnx_batch = onnx_batch
        self._scheme: Scheme = manifest.scheme  # type: ignore[assignment]

    @classmethod
    def load(
        cls,
        model_dir: str | Path | None = None,
        provider: str = "auto",
        threads: int = 1,
        precision: str = "auto",
        *,
        bucket_texts: int = 1024,
        bucket_chars: int = 102_400,
        onnx_batch: int = 8,
    ) -> NerModel:
        """Validate and load a model directory (default: the model shipped in the package).

        Texts are featurized and CRF-decoded in buckets of similar length of at most
        ``bucket_texts`` texts and ``bucket_chars`` padded characters (decoding loops over time,
        so big buckets spread its per-step cost); the network runs on ``onnx_batch`` texts at a
        time (small runs keep its working set in cache). The worker, ``evaluate`` and
        ``annotate`` take all of these from the ``model.*`` settings (``streams.model_loader``).

        Raises ModelError (with a stable ``code``) when the directory is unusable.
        """
        directory = Path(model_dir) if model_dir else default_model_dir()
        manifest = read_manifest(directory)
        featurizer = Featurizer.load(directory, manifest.max_word_length)
        sizes = {
            "chars": len(featurizer.chars),
            "bigrams": len(featurizer.bigrams),
            "lexicon": len(featurizer.lexicon),
        }
        if sizes != manifest.vocab_sizes:
            raise ModelError(
                ModelError.VOCAB_MISMATCH,
                f"{directory}: feature files hold {sizes}, "
                f"the manifest says {manifest.vocab_sizes}",
            )
        with np.load(directory / CRF_FILE) as arrays:
            crf = (arrays["transitions"], arrays["start"], arrays["end"])
        labels = len(manifest.labels)
        if crf[0].shape != (labels, labels) or {crf[1].shape, crf[2].shape} != {(labels,)}:
            raise ModelError(
                ModelError.LABELS_MISMATCH,
                f"{directory / CRF_FILE}: CRF scores are not for {labels} labels",
            )
        session, model_file = _open_session(directory, provider, threads, precision)
        output_labels = session.get_outputs()[0].shape[-1]
        if output_labels != labels:
            raise ModelError(
                ModelError.LABELS_MISMATCH,
                f"{directory}: the ONNX model emits {output_labels} labels, "
                f"the manifest has {labels}",
            )
        log.info(
            "model %s %s loaded from %s: %s on %s",
            manifest.name,
            manifest.version,
            directory,
            model_file,
            session.get_providers()[0],
        )
        return cls(
            directory=directory,
            manifest=manifest,
            session=session,
            model_file=model_file,
            featurizer=featurizer,
            crf=crf,
            bucket_texts=bucket_texts,
            bucket_chars=bucket_chars,
            onnx_batch=onnx_batch,
        )

    @property
    def provider(self) -> str:
        """The execution provider actually running the model."""
        return str(self.session.get_providers()[0])

    @property
    def precision(self) -> str:
        """int8, fp32 or fp16: the model file that runs."""
        return next(name for name, file in PRECISION_FILES.items() if file == self.model_file)

    def predict(self, texts: Sequence[str]) -> list[list[Entity]]:
        """Entities of each text, in input order; offsets index the original text."""
        normalized = normalize_all(texts)
        max_length, overlap = self.manifest.max_length, self.manifest.window_overlap
        owners: list[int] = []
        window_starts: list[int] = []
        pieces: list[str] = []
        for index, item in enumerate(normalized):
            for start, end in windows(len(item.text), max_length, overlap):
                owners.append(index)
                window_starts.append(start)
                pieces.append(item.text[start:end])
        tagged = self._tag(pieces)

        per_text: list[list[int]] = [[] for _ in texts]
        for piece, owner in enumerate(owners):
            per_text[owner].append(piece)
        results: list[list[Entity]] = []
        for item, piece_indices in zip(normalized, per_text, strict=True):
            if len(piece_indices) <= 1:  # the common case: no windows to merge
                found = tagged[piece_indices[0]] if piece_indices else _Tagged([], [])
                scored = zip(found.spans, found.scores, strict=True)
            else:
                score_of = {
                    Span(
                        window_starts[p] + span.start, window_starts[p] + span.end, span.type
                    ): score
                    for p in piece_indices
                    for span, score in zip(tagged[p].spans, tagged[p].scores, strict=True)
                }
                windowed = [(window_starts[p], tagged[p].spans) for p in piece_indices]
                merged = merge_window_spans(windowed, overlap)
                scored = zip(merged, [score_of[span] for span in merged], strict=True)
            entities = []
            for span, score in name_spans(item.text, scored):
                start, end = item.original_span(span.start, span.end)
                entities.append(Entity(span.type, start, end, item.original[start:end], score))
            results.append(drop_overlaps(entities))
        return results

    def _tag(self, pieces: Sequence[str]) -> list[_Tagged]:
        tagged = [_Tagged([], [])] * len(pieces)
        lengths = [len(piece) for piece in pieces]
        for bucket in length_buckets(lengths, self.bucket_chars, self.bucket_texts):
            encoded = self.featurizer.encode([pieces[i] for i in bucket])
            emissions = self.emissions(encoded)
            paths, _ = viterbi_decode(emissions, encoded.lengths, *self.crf)
            # Scores are only needed where an entity was found.
            rows = np.flatnonzero((paths != 0).any(axis=1))
            chosen = path_marginals(
                emissions[rows], encoded.lengths[rows], *self.crf, paths=paths[rows]
            )
            # Running sums make each span's mean marginal two lookups.
            sums = np.concatenate([np.zeros((len(rows), 1)), chosen.cumsum(axis=1)], axis=1)
            labels = self.manifest.labels
            spans_of = paths_to_spans(paths[rows], encoded.lengths[rows], labels, self._scheme)
            for position, (row, spans) in enumerate(zip(rows.tolist(), spans_of, strict=True)):
                scores = [
                    float(sums[position, span.end] - sums[position, span.start])
                    / (span.end - span.start)
                    for span in spans
                ]
                tagged[bucket[row]] = _Tagged(spans, scores)
        return tagged

    def emissions(self, encoded: EncodedBatch) -> NDArray[np.float32]:
        """Emissions (B, T, K), the ONNX model run on ``onnx_batch`` rows at a time.

        Rows come longest first (models.bucketing), so each slice is cut to its first row's
        length: small slices keep the network's working set in cache, and trimming saves padding.
        """
        inputs = encoded.as_inputs()
        batch, steps = encoded.chars.shape
        emissions = np.zeros((batch, steps, len(self.manifest.labels)), dtype=np.float32)
        for first in range(0, batch, self.onnx_batch):
            rows = slice(first, first + self.onnx_batch)
            width = int(encoded.lengths[rows].max())
            if width == 0:
                continue
            feed = {
                name: values[rows] if name == "lengths" else values[rows, :width]
                for name, values in inputs.items()
            }
            (emissions[rows, :width],) = self.session.run(None, feed)
        return emissions
