"""Single-thread serving throughput of a model directory, through models.runtime (featurization,
ONNX Runtime, Viterbi and marginals included), on ~100-character sentences cut from MSRA test.

    python -m training.speed [--model DIR] [--precision int8|fp32|fp16] [--batch-sizes 64,256,1024]
                             [--json OUT]

Run as a program it pins numpy's BLAS to one thread before numpy loads. Wall-clock
rates only mean something on an otherwise idle machine; the rate per CPU-second of this
single-threaded process is what one idle core would do, and is robust to other load.
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # one BLAS thread, set before numpy loads; never as a side effect
    for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_variable] = "1"

import argparse
import json
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
    parser = argparse.ArgumentParser(prog="python -m training.speed", description=__doc__)
    parser.add_argument("--model", help="model directory (default: the shipped model)")
    parser.add_argument("--precision", choices=["int8", "fp32", "fp16"], default="int8")
    parser.add_argument("--batch-sizes", default="64,256,1024")
    parser.add_argument("--sentences", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    model = NerModel.load(args.model, provider="cpu", threads=1, precision=args.precision)
    texts = sentences(args.sentences)
    results = {
        int(size): throughput(model, texts, int(size), args.repeats)
        for size in args.batch_sizes.split(",")
    }
    for size, rate in results.items():
        print(
            f"batch {size:>5}: {rate.wall:8.0f} sentences/s wall, "
            f"{rate.cpu:8.0f} sentences per CPU-second"
        )
    report = {
        "model": model.manifest.name,
        "version": model.manifest.version,
        "variant": args.precision,
        "threads": 1,
        "sentence_length": SENTENCE_LENGTH,
        "sentences": len(texts),
        "sentences_per_second": {str(size): round(rate.wall) for size, rate in results.items()},
        "sentences_per_cpu_second": {str(size): round(rate.cpu) for size, rate in results.items()},
        "load_average": os.getloadavg()[0],
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
