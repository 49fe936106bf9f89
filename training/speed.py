"""Single-thread serving throughput of a loaded model, through models.runtime (featurization,
ONNX Runtime, Viterbi and marginals included), on ~100-character sentences cut from MSRA test.
The evaluation report (``nerstream evaluate --report``) and ``bench.int8_variants`` use it.

Wall-clock rates only mean something on an otherwise idle machine; the rate per CPU-second of a
single-threaded process is what one idle core would do, and is robust to other load.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from models.runtime import NerModel
from training.corpora import read_corpus

SENTENCE_LENGTH = 100
#: Passes per measurement; the best counts, because other load on a shared machine only ever
#: slows a pass down.
REPEATS = 5


def sentences(count: int) -> list[str]:
    """``count`` texts of SENTENCE_LENGTH chars, consecutive MSRA test text (wrapping around)."""
    joined = "".join(example.text for example in read_corpus("msra-test"))
    return [
        joined[(i * SENTENCE_LENGTH) % (len(joined) - SENTENCE_LENGTH) :][:SENTENCE_LENGTH]
        for i in range(count)
    ]


@dataclass(frozen=True)
class Rate:
    wall: float  # sentences per second of elapsed time
    cpu: float  # sentences per CPU-second of this (single-threaded) process


def throughput(model: NerModel, texts: Sequence[str], batch_size: int, repeats: int) -> Rate:
    """Best of ``repeats`` passes over ``texts`` in predict calls of ``batch_size``."""
    model.predict(list(texts[:batch_size]))  # warm-up
    wall = cpu = 0.0
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        for first in range(0, len(texts), batch_size):
            model.predict(list(texts[first : first + batch_size]))
        wall = max(wall, len(texts) / (time.perf_counter() - started))
        cpu = max(cpu, len(texts) / (time.process_time() - started_cpu))
    return Rate(wall, cpu)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.speed [MODEL_DIR ...]``: each model's rate, measured in turns (one
    pass of each per round, best of REPEATS rounds), and its ratio to the first model's."""
    import argparse
    import os

    parser = argparse.ArgumentParser(prog="python -m training.speed", description=__doc__)
    parser.add_argument(
        "models", nargs="*", type=Path, help="model directories (default: the shipped one)"
    )
    parser.add_argument("--sentences", type=int, default=4096)
    args = parser.parse_args(argv)
    directories: list[Path | None] = args.models or [None]
    models = [NerModel.load(path, provider="cpu", threads=1) for path in directories]
    texts = sentences(args.sentences)
    best = [Rate(0.0, 0.0)] * len(models)
    for round_number in range(1, REPEATS + 1):
        for index, model in enumerate(models):
            rate = throughput(model, texts, 1024, 1)
            best[index] = Rate(max(best[index].wall, rate.wall), max(best[index].cpu, rate.cpu))
        print(f"round {round_number}/{REPEATS}", flush=True)
    for model, rate in zip(models, best, strict=True):
        print(
            f"{model.manifest.name} {model.manifest.version} ({model.directory}): "
            f"{rate.wall:,.0f} sentences/s, {rate.cpu:,.0f} per CPU-second "
            f"({rate.cpu / best[0].cpu:.2f}x the first)"
        )
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
