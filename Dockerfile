# syntax=docker/dockerfile:1
# nerstream's images, one multi-stage file (README, "Deploy"):
#   docker build --target cpu -t nerstream:0.1.0-cpu .    # ONNX Runtime on CPU
#   docker build --target gpu -t nerstream:0.1.0-gpu .    # CUDA 12 runtime + onnxruntime-gpu
# Both: non-root (uid 10001), nothing written outside /var/lib/nerstream and /tmp (so a
# read-only root filesystem works), the shipped model baked in at /opt/nerstream/model (mount
# another model directory there, or point NERSTREAM_MODEL_MODEL_DIR elsewhere), `nerstream worker`
# by default (`nerstream serve` and `nerstream autoscale` with the same image: `docker run IMAGE
# serve`), and a HEALTHCHECK on /healthz.
# Bases are pinned to exact versions; CI lints this file with hadolint and tests its invariants.

# --- build: the nerstream wheel and the requirement lists -------------------------------------
FROM python:3.12.8-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY errors/ errors/
COPY schemas/ schemas/
COPY models/ models/
COPY streams/ streams/
COPY deploy/docker/requirements.py deploy/docker/requirements.py
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && python deploy/docker/requirements.py cpu /wheels/requirements-cpu.txt \
    && python deploy/docker/requirements.py gpu /wheels/requirements-gpu.txt

# --- cpu: a virtual environment on the same Python, then a clean runtime ------------------------
FROM python:3.12.8-slim-bookworm AS cpu-venv
COPY --from=build /wheels /wheels
RUN python -m venv /opt/nerstream/venv \
    && /opt/nerstream/venv/bin/pip install --no-cache-dir -r /wheels/requirements-cpu.txt \
    && /opt/nerstream/venv/bin/pip install --no-cache-dir --no-deps /wheels/nerstream-*.whl

FROM python:3.12.8-slim-bookworm AS cpu
RUN groupadd --system --gid 10001 nerstream \
    && useradd --system --uid 10001 --gid nerstream --no-create-home --home-dir /tmp nerstream \
    && mkdir -p /var/lib/nerstream \
    && chown 10001:10001 /var/lib/nerstream
COPY --from=cpu-venv /opt/nerstream/venv /opt/nerstream/venv
COPY models/zh-cnn-crf/ /opt/nerstream/model/
ENV PATH=/opt/nerstream/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    XDG_DATA_HOME=/var/lib/nerstream \
    NERSTREAM_MODEL_MODEL_DIR=/opt/nerstream/model \
    NERSTREAM_WORKER_DATA_DIR=/var/lib/nerstream/worker \
    NERSTREAM_WORKER_WEB_HOST=0.0.0.0 \
    NERSTREAM_SERVE_HOST=0.0.0.0
USER 10001:10001
WORKDIR /var/lib/nerstream
EXPOSE 6066 8080
# Healthy when /healthz answers on the worker's port or on serve's (whichever command runs).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request\nfor port in (os.environ.get('NERSTREAM_WORKER_WEB_PORT', '6066'), os.environ.get('NERSTREAM_SERVE_PORT', '8080')):\n    try:\n        urllib.request.urlopen('http://127.0.0.1:%s/healthz' % port, timeout=2)\n        sys.exit(0)\n    except OSError:\n        pass\nsys.exit(1)"]
ENTRYPOINT ["nerstream"]
CMD ["worker"]

# --- gpu: the CUDA runtime base (cuDNN 9, as onnxruntime-gpu for CUDA 12 needs) ------------------
FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 AS gpu-venv
# The CUDA base pins the OS release; its Python 3.12 comes with that release's updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.12 python3.12-venv \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN python3.12 -m venv /opt/nerstream/venv \
    && /opt/nerstream/venv/bin/pip install --no-cache-dir -r /wheels/requirements-gpu.txt \
    && /opt/nerstream/venv/bin/pip install --no-cache-dir --no-deps /wheels/nerstream-*.whl

FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 AS gpu
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.12 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 nerstream \
    && useradd --system --uid 10001 --gid nerstream --no-create-home --home-dir /tmp nerstream \
    && mkdir -p /var/lib/nerstream \
    && chown 10001:10001 /var/lib/nerstream
COPY --from=gpu-venv /opt/nerstream/venv /opt/nerstream/venv
COPY models/zh-cnn-crf/ /opt/nerstream/model/
ENV PATH=/opt/nerstream/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    XDG_DATA_HOME=/var/lib/nerstream \
    NERSTREAM_MODEL_MODEL_DIR=/opt/nerstream/model \
    NERSTREAM_MODEL_PROVIDER=cuda \
    NERSTREAM_WORKER_DATA_DIR=/var/lib/nerstream/worker \
    NERSTREAM_WORKER_WEB_HOST=0.0.0.0 \
    NERSTREAM_SERVE_HOST=0.0.0.0
USER 10001:10001
WORKDIR /var/lib/nerstream
EXPOSE 6066 8080
# Healthy when /healthz answers on the worker's port or on serve's (whichever command runs).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request\nfor port in (os.environ.get('NERSTREAM_WORKER_WEB_PORT', '6066'), os.environ.get('NERSTREAM_SERVE_PORT', '8080')):\n    try:\n        urllib.request.urlopen('http://127.0.0.1:%s/healthz' % port, timeout=2)\n        sys.exit(0)\n    except OSError:\n        pass\nsys.exit(1)"]
ENTRYPOINT ["nerstream"]
CMD ["worker"]
