"""The shipped model's network alone, one thread: float32, the quantizer's int8 graph, the
per-tensor int8 rewrite shipped up to model 1.1.0, and the batch-invariant int8 graph that
training.quantize.quantize_int8 exports now, interleaved in one run.

    python -m bench.int8_variants [--model DIR] [--batch 16] [--rounds 9] [--json OUT]

Each round times every variant for ~0.4 CPU-seconds on the same 100-character MSRA test
sentences (featurized once, ``--batch`` rows per run, as models.runtime feeds the network);
the best round of each is reported, with its ratio to the per-tensor rewrite measured in the
same run. Every int8 graph is rebuilt from the directory's model.onnx. Rates are per CPU-second
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

import onnx
import onnxruntime as ort
from onnx import helper
from onnxruntime.quantization import QuantType, quantize_dynamic

from models.features import Featurizer
from models.manifest import FLOAT_MODEL, read_manifest
from models.runtime import default_model_dir
from training.quantize import QUANTIZED_OPS, quantize_int8
from training.speed import sentences

ROUND_SECONDS = 0.4
BASELINE = "int8, per-tensor rewrite"


def quantize_before_gather(model: onnx.ModelProto) -> int:
    """The int8 rewrite shipped up to model 1.1.0, kept here for comparison: quantize a
    convolution's input before gathering its taps, with the quantizer's one scale per tensor
    (so a text's numbers depend on its batch); returns how many convolutions changed.

    The quantizer turns ``Gather(h, rows) -> Reshape -> MatMul`` into ``... ->
    DynamicQuantizeLinear -> MatMulInteger``, quantizing three copies of every row of ``h``;
    quantizing ``h`` once and gathering uint8 rows gives the same numbers and moves a quarter
    of the bytes.
    """
    graph = model.graph
    producer = {output: node for node in graph.node for output in node.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    replaced: dict[int, list[onnx.NodeProto]] = {}  # id of the node they stand in for
    removed: set[int] = set()
    for quantize in graph.node:
        if quantize.op_type != "DynamicQuantizeLinear":
            continue
        reshape = producer.get(quantize.input[0])
        if reshape is None or reshape.op_type != "Reshape":
            continue
        gather = producer.get(reshape.input[0])
        if gather is None or gather.op_type != "Gather" or gather.input[0] not in producer:
            continue
        if readers[reshape.output[0]] != 1 or readers[gather.output[0]] != 1:
            continue
        rows_uint8, taps = f"{quantize.name}/rows", f"{quantize.name}/taps"
        replaced[id(quantize)] = [
            helper.make_node(
                "DynamicQuantizeLinear", [gather.input[0]], [rows_uint8, *quantize.output[1:]]
            ),
            helper.make_node("Gather", [rows_uint8, gather.input[1]], [taps], axis=0),
            helper.make_node("Reshape", [taps, reshape.input[1]], [quantize.output[0]]),
        ]
        removed |= {id(gather), id(reshape)}
    nodes = []
    for node in graph.node:
        if id(node) in replaced:
            nodes += replaced[id(node)]
        elif id(node) not in removed:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return len(replaced)


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
    inputs = (
        Featurizer.load(directory, manifest.max_word_length)
        .encode(sentences(args.batch))
        .as_inputs()
    )
    with tempfile.TemporaryDirectory() as folder:
        plain = Path(folder) / "quantizer.int8.onnx"
        quantize_dynamic(
            directory / FLOAT_MODEL,
            plain,
            op_types_to_quantize=QUANTIZED_OPS,
            weight_type=QuantType.QInt8,
            per_channel=False,
        )
        per_tensor = Path(folder) / "per_tensor.int8.onnx"
        model = onnx.load(str(plain))
        quantize_before_gather(model)
        onnx.save(model, str(per_tensor))
        per_row = Path(folder) / "per_row.int8.onnx"
        quantize_int8(directory / FLOAT_MODEL, per_row)
        sessions = {
            "fp32": _session(directory / FLOAT_MODEL),
            "int8, quantizer's graph": _session(plain),
            BASELINE: _session(per_tensor),
            "int8, batch-invariant (exported)": _session(per_row),
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
