"""Model-only throughput on the GPU providers against the CPU, on the same texts, in one run.

    .venv/bin/python -m bench.gpu_model [--records 20000] [--output bench/results/gpu.json]

Configurations, each skipped (with the reason) where it cannot run:

- ``cpu``: the shipped int8 model on ONNX Runtime's CPU provider (``model.threads``);
- ``cuda``: the fp16 model on the CUDA provider through ``NerModel.predict`` (the worker's path);
- ``cuda-iobinding``: the network alone on CUDA with IO binding — inputs copied once per length
  bucket into pre-allocated device buffers, outputs left on the device until read — over the
  same length buckets (``models.bucketing``), so the number of distinct shapes stays bounded;
- ``tensorrt``: the TensorRT provider, if it loads (it falls back to CUDA/CPU otherwise, and
  the result says so).

``bench/gpu.sh`` runs this on an NVIDIA machine after an offline install from carried wheels.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import onnxruntime as ort

from models.bucketing import length_buckets
from models.runtime import NerModel
from streams.model_loader import load_model
from streams.settings import load_settings
from tests.records import mixed_records

RESULTS = Path(__file__).parent / "results" / "gpu.json"


def predict_rate(model: NerModel, texts: list[str], batch: int) -> float:
    model.predict(texts[:batch])  # warm-up: the first run builds kernels / engines
    started = time.perf_counter()
    for index in range(0, len(texts), batch):
        model.predict(texts[index : index + batch])
    return len(texts) / (time.perf_counter() - started)


def iobinding_rate(model: NerModel, texts: list[str], batch: int) -> float:
    """Texts per second of the network alone on CUDA with IO binding, per length bucket."""
    session = model.session
    output = session.get_outputs()[0].name
    buckets = []
    for index in range(0, len(texts), batch):
        chunk = texts[index : index + batch]
        for bucket in length_buckets([len(t) for t in chunk], model.bucket_chars, batch):
            buckets.append(model.featurizer.encode([chunk[i] for i in bucket]).as_inputs())
    binding = session.io_binding()
    device: dict[tuple[str, tuple[int, ...]], Any] = {}

    def run(inputs: dict[str, Any]) -> None:
        for name, values in inputs.items():
            key = (name, values.shape)
            if key not in device:  # one device buffer per (input, shape), reused
                device[key] = ort.OrtValue.ortvalue_from_numpy(values, "cuda", 0)
            else:
                device[key].update_inplace(values)
            binding.bind_ortvalue_input(name, device[key])
        binding.bind_output(output, "cuda")
        session.run_with_iobinding(binding)
        binding.copy_outputs_to_cpu()

    run(buckets[0])
    started = time.perf_counter()
    for inputs in buckets:
        run(inputs)
    return len(texts) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="CPU provider threads")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    texts = [record.text for record in mixed_records(args.records)]
    available = ort.get_available_providers()
    base = load_settings({}, env={})
    results: dict[str, Any] = {}
    plans = [
        ("cpu", "cpu", "int8"),
        ("cuda", "cuda", "fp16"),
        ("cuda-iobinding", "cuda", "fp16"),
        ("tensorrt", "tensorrt", "fp16"),
    ]
    for name, provider, precision in plans:
        wanted = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
        if provider in wanted and wanted[provider] not in available:
            results[name] = {"skipped": f"{wanted[provider]} is not available here ({available})"}
            print(f"{name}: SKIPPED — {wanted[provider]} not available", file=sys.stderr)
            continue
        settings = dataclasses.replace(
            base.model, provider=provider, precision=precision, threads=args.threads
        )
        try:
            model = load_model(settings)
        except Exception as exc:  # a provider that does not start is a result, not a crash
            results[name] = {"skipped": f"{type(exc).__name__}: {exc}"}
            continue
        entry: dict[str, Any] = {"provider": model.provider, "precision": model.precision}
        if provider != "cpu" and model.provider == "CPUExecutionProvider":
            entry["skipped"] = f"{provider} did not start; the runtime fell back to CPU"
        elif name == "cuda-iobinding":
            entry["network_texts_per_s"] = round(iobinding_rate(model, texts, args.batch), 1)
        else:
            entry["predict_records_per_s"] = round(predict_rate(model, texts, args.batch), 1)
        results[name] = entry
        print(f"{name}: {entry}", file=sys.stderr)
    cpu_rate = results.get("cpu", {}).get("predict_records_per_s")
    for entry in results.values():
        rate = entry.get("predict_records_per_s")
        if rate and cpu_rate:
            entry["speedup_over_cpu"] = round(rate / cpu_rate, 2)
    report = {
        "benchmark": "gpu_model",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "records": len(texts),
        "batch": args.batch,
        "onnxruntime": ort.__version__,
        "available_providers": available,
        "cuda_ran": "predict_records_per_s" in results.get("cuda", {}),
        "results": results,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    if not report["cuda_ran"]:
        print(f"gpu.sh: CUDA was SKIPPED: {results['cuda'].get('skipped', '?')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
