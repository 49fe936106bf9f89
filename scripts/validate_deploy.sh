#!/usr/bin/env bash
# Validate the deployment files offline (no Docker engine, no cluster): hadolint on the
# Dockerfile, `docker-compose config` on docker-compose.yml, and `kustomize build` of every
# k8s/overlays/* checked against the Kubernetes schemas (scripts/validate_k8s.py). Called by
# scripts/test.sh; the rendered manifests are left in .build/k8s/<overlay>.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== hadolint Dockerfile"
.venv/bin/hadolint Dockerfile

echo "== docker-compose config"
docker-compose -f docker-compose.yml config -q

kustomize=$(bash scripts/kustomize.sh)
mkdir -p .build/k8s
for overlay in k8s/overlays/*/; do
    name=$(basename "$overlay")
    echo "== kustomize build $overlay"
    "$kustomize" build "$overlay" >".build/k8s/$name.yaml"
    .venv/bin/python scripts/validate_k8s.py ".build/k8s/$name.yaml"
done
