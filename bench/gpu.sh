#!/usr/bin/env bash
# The GPU path of the model-only benchmark: CUDA (fp16, IO binding, length buckets) and TensorRT
# if it loads, against the CPU provider, in one run -> bench/results/gpu.json.
#
#   bash bench/gpu.sh [--records N]
#
# On an NVIDIA machine with no network: installs onnxruntime-gpu (and whatever else is there)
# from wheels carried with the checkout (bench/wheels/, or $NERSTREAM_WHEELS) without touching an
# index, into .venv (created from the same wheels if missing). Without a GPU it still runs the
# CPU configuration and says clearly that CUDA was skipped, so the script keeps working.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS="${NERSTREAM_WHEELS:-bench/wheels}"
PYTHON="${PYTHON:-.venv/bin/python}"

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu.sh: NVIDIA GPU found: $(nvidia-smi -L | head -1)"
    if [ -d "$WHEELS" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
        if [ ! -x "$PYTHON" ]; then
            python3 -m venv .venv
        fi
        echo "gpu.sh: offline install from $WHEELS"
        "$PYTHON" -m pip install --no-index --find-links "$WHEELS" --quiet "$WHEELS"/*.whl
        "$PYTHON" -m pip install --no-index --find-links "$WHEELS" --no-deps --quiet -e .
    else
        echo "gpu.sh: no wheels in $WHEELS; using the installed environment as it is"
    fi
else
    echo "gpu.sh: CUDA SKIPPED: no NVIDIA GPU on this machine (nvidia-smi missing or found no"
    echo "        device); running the CPU configuration only"
fi

"$PYTHON" - <<'PY'
import onnxruntime as ort
providers = ort.get_available_providers()
print("gpu.sh: ONNX Runtime", ort.__version__, "providers:", ", ".join(providers))
if "CUDAExecutionProvider" not in providers:
    print("gpu.sh: CUDA SKIPPED: this onnxruntime build has no CUDA provider")
PY

"$PYTHON" -m bench.gpu_model "$@"
