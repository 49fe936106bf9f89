"""The evaluation report shipped beside a model: MSRA test scores (int8 and fp32, PER/LOC/ORG),
NUM scores on the hand-labelled fixture, and single-thread speed, as evaluation.json and
EVALUATION.md in the model directory.

    python -m training.report [--model DIR] [--num-data tests/data/num_test.jsonl]
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # one BLAS thread, set before numpy loads; never as a side effect
    for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_variable] = "1"

import argparse
import datetime
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from models.manifest import FP16_MODEL
from models.runtime import NerModel, default_model_dir
from training import speed
from training.corpora import read_corpus
from training.evaluate import evaluate_model
from training.metrics import Report

REPORT_JSON = "evaluation.json"
REPORT_MARKDOWN = "EVALUATION.md"
MSRA_TYPES = ("PER", "LOC", "ORG")


def _markdown(name: str, results: dict[str, Any], reports: dict[str, Report]) -> str:
    lines = [
        f"# {name}: evaluation",
        "",
        f"Measured {results['created_at']} with `python -m training.report` (load average "
        f"{results['load_average']:.1f} on a {os.cpu_count()}-core machine).",
        "",
    ]
    for title, report in reports.items():
        lines += [f"## {title}", "", "```", report.table(), "```", ""]
    speed_results = results["speed_int8"]
    lines += [
        "## Speed (one thread, int8, ~100-character sentences, everything in predict included)",
        "",
        "| texts per predict call | sentences/s (wall clock) | sentences per CPU-second |",
        "| ---: | ---: | ---: |",
        *(
            f"| {size} | {wall:,} | {speed_results['sentences_per_cpu_second'][size]:,} |"
            for size, wall in speed_results["sentences_per_second"].items()
        ),
        "",
        "Per CPU-second is what one idle core does; the wall clock also counts time the process "
        "waited for a core while other work ran.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.report", description=__doc__)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--num-data", default="tests/data/num_test.jsonl")
    args = parser.parse_args(argv)
    directory = args.model or default_model_dir()
    msra = read_corpus("msra-test")
    reports: dict[str, Report] = {}
    # fp16 is the GPU's model; ONNX Runtime runs it on CPU too, which checks its numbers.
    for precision in ("int8", "fp32", "fp16"):
        if precision == "fp16" and not (directory / FP16_MODEL).is_file():
            continue
        model = NerModel.load(directory, provider="cpu", threads=1, precision=precision)
        reports[f"MSRA test, {precision}"] = evaluate_model(model, msra, MSRA_TYPES)
        if precision == "int8" and Path(args.num_data).is_file():
            num = read_corpus(args.num_data)
            reports[f"NUM ({args.num_data}), int8"] = evaluate_model(model, num, ["NUM"])
    model = NerModel.load(directory, provider="cpu", threads=1)
    texts = speed.sentences(4096)
    rates = {size: speed.throughput(model, texts, size, speed.REPEATS) for size in (64, 256, 1024)}
    results: dict[str, Any] = {
        "model": model.manifest.name,
        "version": model.manifest.version,
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_average": os.getloadavg()[0],
        "scores": {title: report.as_dict() for title, report in reports.items()},
        "speed_int8": {
            "threads": 1,
            "sentence_length": speed.SENTENCE_LENGTH,
            "sentences_per_second": {str(size): round(rate.wall) for size, rate in rates.items()},
            "sentences_per_cpu_second": {
                str(size): round(rate.cpu) for size, rate in rates.items()
            },
        },
    }
    (directory / REPORT_JSON).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    markdown = _markdown(model.manifest.name, results, reports)
    (directory / REPORT_MARKDOWN).write_text(markdown, encoding="utf-8")
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
