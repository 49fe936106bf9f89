#!/usr/bin/env bash
# Print the path of a kustomize binary, installing it first if it is missing: the Go module
# sigs.k8s.io/kustomize/kustomize/v5 through the Go module proxy (`go install`), cached under
# ~/.cache/nerstream/tools/kustomize-<version>/ (~1 min cold on 2 cores).
set -euo pipefail
version=${NERSTREAM_KUSTOMIZE_VERSION:-v5.8.2}  # v5.8.3 needs Go 1.27
dir=${NERSTREAM_TOOLS_CACHE:-$HOME/.cache/nerstream/tools}/kustomize-$version
if [ ! -x "$dir/kustomize" ]; then
    command -v go >/dev/null 2>&1 || {
        echo "kustomize.sh: Go is needed on PATH to install kustomize $version" >&2
        exit 1
    }
    echo "kustomize.sh: installing kustomize $version into $dir" >&2
    (cd / && GOFLAGS= GOTOOLCHAIN=local GOBIN="$dir.partial" go install \
        "sigs.k8s.io/kustomize/kustomize/v5@$version" >&2)
    rm -rf "$dir"
    mv "$dir.partial" "$dir"
fi
echo "$dir/kustomize"
