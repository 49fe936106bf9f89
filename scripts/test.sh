#!/usr/bin/env bash
# Lint, type-check and run the whole test suite (unit + integration; the integration tests start
# their own Kafka broker). Extra arguments go to pytest, e.g. `scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
echo "== ruff check"
.venv/bin/ruff check .
echo "== ruff format --check"
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== lint-imports"
.venv/bin/lint-imports
echo "== deployment files (Dockerfile, docker-compose.yml, k8s/)"
bash scripts/validate_deploy.sh
echo "== kube-apiserver + etcd for the autoscaler's Kubernetes tests (cached after the first build)"
bash scripts/kube.sh
export NERSTREAM_REQUIRE_KUBE=1  # the Kubernetes tests fail instead of skipping without them
echo "== pytest"
exec .venv/bin/pytest "$@"
