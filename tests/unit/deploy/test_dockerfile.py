"""Invariants of the Dockerfile that hadolint does not check (no Docker engine here)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO_ROOT
from tests.unit.deploy.scripts import load_script

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
# Logical lines: continuations joined, comments dropped.
LINES = [
    line.strip()
    for line in DOCKERFILE.replace("\\\n", " ").splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]


def stage(name: str) -> list[str]:
    """The instructions of one stage."""
    lines: list[str] = []
    inside = False
    for line in LINES:
        if line.startswith("FROM "):
            inside = line.endswith(f" AS {name}")
            continue
        if inside:
            lines.append(line)
    assert lines, f"no stage {name}"
    return lines


def test_every_base_image_is_pinned_to_an_exact_version() -> None:
    bases = [line.split()[1] for line in LINES if line.startswith("FROM ")]
    external = [b for b in bases if ":" in b or "/" in b or "." in b]
    assert external
    for base in external:
        tag = base.rsplit(":", 1)[1]
        assert tag != "latest"
        assert re.match(r"\d+\.\d+\.\d+", tag), f"{base} is not pinned to major.minor.patch"


@pytest.mark.parametrize("name", ["cpu", "gpu"])
def test_runtime_stage_runs_as_non_root_with_model_and_healthcheck(name: str) -> None:
    lines = stage(name)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users == ["10001:10001"]  # numeric, so runAsNonRoot can verify it
    env = " ".join(line for line in lines if line.startswith("ENV "))
    assert "NERSTREAM_MODEL_MODEL_DIR=/opt/nerstream/model" in env
    assert "COPY models/zh-cnn-crf/ /opt/nerstream/model/" in lines
    assert "NERSTREAM_WORKER_DATA_DIR=/var/lib/nerstream/worker" in env
    health = [line for line in lines if line.startswith("HEALTHCHECK")]
    assert len(health) == 1 and "/healthz" in health[0]
    assert 'ENTRYPOINT ["nerstream"]' in lines
    assert 'CMD ["worker"]' in lines
    # `docker run IMAGE serve` listens beyond the container's loopback, on an exposed port.
    assert "NERSTREAM_SERVE_HOST=0.0.0.0" in env
    assert "EXPOSE 6066 8080" in lines
    assert "NERSTREAM_SERVE_PORT" in health[0]


def test_gpu_image_uses_the_cuda_runtime_and_onnxruntime_gpu() -> None:
    assert re.search(r"FROM nvidia/cuda:\S+-cudnn-runtime-\S+ AS gpu\n", DOCKERFILE)
    assert "requirements-gpu.txt" in " ".join(stage("gpu-venv"))


def test_requirements_pick_the_right_onnxruntime() -> None:
    module = load_script("deploy/docker/requirements.py")
    cpu = module.requirements(REPO_ROOT / "pyproject.toml", "cpu")
    gpu = module.requirements(REPO_ROOT / "pyproject.toml", "gpu")
    assert any(r.startswith("onnxruntime>=") for r in cpu)
    assert not any(r.startswith("onnxruntime-gpu") for r in cpu)
    assert any(r.startswith("onnxruntime-gpu") for r in gpu)
    assert all(";" not in r for r in cpu + gpu)


def test_build_context_leaves_out_the_checkout_noise() -> None:
    ignored = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*")] == "*"  # deny by default
    assert "models/msra-bilstm-crf/" in ignored
