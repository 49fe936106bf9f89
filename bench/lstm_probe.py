"""Ceiling probe: single-thread ONNX Runtime speed of a PLAIN BiLSTM tagger network, no features.

    python -m bench.lstm_probe [--hidden 96,128] [--batch-sizes 64,256,512] [--seconds 3]

Exports ``Embedding(5000, 128) -> nn.LSTM(bidirectional) -> Linear(17)`` with torch, quantizes it
with ``quantize_dynamic`` (int8 ``DynamicQuantizeLSTM``) and times ``session.run`` on 100-character
random sentences with one intra-op thread. It answers "how fast can an ORT BiLSTM of this size be
on this CPU at all", independent of the project's model, and writes
bench/results/lstm_probe.json. Rates are per CPU-second of this single-threaded process, which is
robust to other load on the machine.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic

SENTENCE_LENGTH = 100
VOCABULARY = 5000
EMBEDDING = 128
LABELS = 17


class PlainBiLstmTagger(torch.nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(VOCABULARY, EMBEDDING)
        self.lstm = torch.nn.LSTM(EMBEDDING, hidden, batch_first=True, bidirectional=True)
        self.output = torch.nn.Linear(2 * hidden, LABELS)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        encoded, _ = self.lstm(self.embedding(chars))
        return torch.as_tensor(self.output(encoded))


def export(hidden: int, folder: Path) -> dict[str, Path]:
    torch.manual_seed(0)
    model = PlainBiLstmTagger(hidden).eval()
    fp32 = folder / f"bilstm{hidden}.onnx"
    int8 = folder / f"bilstm{hidden}.int8.onnx"
    torch.onnx.export(
        model,
        (torch.randint(0, VOCABULARY, (2, 10)),),
        str(fp32),
        input_names=["chars"],
        output_names=["emissions"],
        dynamic_axes={"chars": {0: "batch", 1: "time"}},
        opset_version=17,
        dynamo=False,
    )
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    return {"fp32": fp32, "int8": int8}


def sentences_per_cpu_second(path: Path, batch: int, seconds: float) -> float:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    chars = np.random.default_rng(0).integers(0, VOCABULARY, (batch, SENTENCE_LENGTH))
    session.run(None, {"chars": chars})
    cpu_start, wall_start, done = time.process_time(), time.perf_counter(), 0
    while time.perf_counter() - wall_start < seconds:
        session.run(None, {"chars": chars})
        done += batch
    return done / (time.process_time() - cpu_start)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lstm_probe", description=__doc__)
    parser.add_argument("--hidden", default="96,128", help="units per direction, comma-separated")
    parser.add_argument("--batch-sizes", default="64,256,512")
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per measurement")
    parser.add_argument("--out", type=Path, default=Path("bench/results/lstm_probe.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for hidden in (int(h) for h in args.hidden.split(",")):
            for precision, path in export(hidden, Path(folder)).items():
                for batch in (int(b) for b in args.batch_sizes.split(",")):
                    rate = sentences_per_cpu_second(path, batch, args.seconds)
                    rows.append(
                        {"hidden": hidden, "precision": precision, "batch": batch, "rate": rate}
                    )
                    print(
                        f"BiLSTM {hidden}/direction {precision} batch {batch}: "
                        f"{rate:,.0f} sentences per CPU-second",
                        flush=True,
                    )
    result = {
        "benchmark": "lstm_probe",
        "sentence_chars": SENTENCE_LENGTH,
        "onnxruntime": ort.__version__,
        "torch": torch.__version__,
        "threads": 1,
        "sentences_per_cpu_second": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
