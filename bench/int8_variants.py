"""The shipped model's network alone, one thread: float32, the quantizer's own int8 graph (scales
computed per batch, so a text's numbers depend on its batch), and the static-scale int8 graph
that training.quantize.quantize_int8 exports, interleaved in one run with the directory's own
int8 file (which an older export may have built otherwise: ``git archive`` an older model
directory and pass it as ``--model`` to compare).

    python -m bench.int8_variants [--model DIR] [--batch 16] [--rounds 9] [--json OUT]

Each round times every variant for ~0.4 CPU-seconds on the same 100-character MSRA test
sentences (featurized once, ``--batch`` rows per run, as models.runtime feeds the network);
the best round of each is reported, with its ratio to the quantizer's graph measured in the
same run. Both int8 graphs are rebuilt from the directory's model.onnx (the exported one
calibrated on the model's training sources, as ``nerstream export`` does). Rates are per CPU-second
of this single-threaded process.
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # one BLAS thread, set before numpy loads; never as a side effect
    for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_variable] = "1"

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import onnxruntime as ort

from models.features import Featurizer
from models.manifest import FLOAT_MODEL, INT8_MODEL, read_manifest
from models.runtime import default_model_dir
from training.quantize import calibration_batches, quantize_int8, quantize_per_batch
from training.speed import sentences

ROUND_SECONDS = 0.4
BASELINE = "int8, quantizer's graph"


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.int8_variants", description=__doc__)
    parser.add_argument("--model", type=Path, default=None, help="default: the shipped model")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json", type=Path, default=Path("bench/results/int8_variants.json"))
    args = parser.parse_args(argv)
    directory = args.model or default_model_dir()
    manifest = read_manifest(directory)
    featurizer = Featurizer.load(directory, manifest.max_word_length)
    inputs = featurizer.encode(sentences(args.batch)).as_inputs()
    with tempfile.TemporaryDirectory() as folder:
        plain = Path(folder) / "quantizer.int8.onnx"
        quantize_per_batch(directory / FLOAT_MODEL, plain)
        static = Path(folder) / "static.int8.onnx"
        calibration = calibration_batches(
            featurizer, manifest.training["train_data"], manifest.max_length
        )
        quantize_int8(directory / FLOAT_MODEL, static, calibration)
        sessions = {
            "fp32": _session(directory / FLOAT_MODEL),
            BASELINE: _session(plain),
            "int8, static scales (exported)": _session(static),
            "int8, the directory's own file": _session(directory / INT8_MODEL),
        }
    best = dict.fromkeys(sessions, 0.0)
    for round_number in range(1, args.rounds + 1):
        for name, session in sessions.items():
            session.run(None, inputs)
            started, done = time.process_time(), 0
            while time.process_time() - started < ROUND_SECONDS:
                session.run(None, inputs)
                done += args.batch
            best[name] = max(best[name], done / (time.process_time() - started))
        print(f"round {round_number}/{args.rounds}", flush=True)
    baseline = best[BASELINE]
    for name, rate in best.items():
        print(f"{name:>32}: {rate:8,.0f} sentences per CPU-second ({rate / baseline:.2f}x)")
    report = {
        "benchmark": "int8_variants",
        "model": f"{manifest.name} {manifest.version}",
        "onnxruntime": ort.__version__,
        "threads": 1,
        "sentence_length": len(sentences(1)[0]),
        "batch": args.batch,
        "rounds": args.rounds,
        "sentences_per_cpu_second": {name: round(rate) for name, rate in best.items()},
        "ratio_to": BASELINE,
        "ratios": {name: round(rate / baseline, 3) for name, rate in best.items()},
        "load_average": os.getloadavg()[0],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
