"""Write the image's requirements from pyproject.toml's dependencies (one list, no copy):
``python requirements.py cpu|gpu OUT``. The CPU image gets ``onnxruntime``, the GPU image
``onnxruntime-gpu``; environment markers are dropped (the images are Linux x86_64)."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path


def requirements(pyproject: Path, flavour: str) -> list[str]:
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    wanted = "onnxruntime-gpu" if flavour == "gpu" else "onnxruntime"
    chosen = []
    for dependency in dependencies:
        spec = dependency.split(";")[0].strip()
        name = re.split(r"[<>=!~\[ ]", spec, maxsplit=1)[0]
        if name.startswith("onnxruntime") and name != wanted:
            continue
        chosen.append(spec)
    return chosen


if __name__ == "__main__":
    flavour, out = sys.argv[1], Path(sys.argv[2])
    if flavour not in ("cpu", "gpu"):
        sys.exit("usage: requirements.py cpu|gpu OUT")
    root = Path(__file__).resolve().parents[2]
    out.write_text("\n".join(requirements(root / "pyproject.toml", flavour)) + "\n")
