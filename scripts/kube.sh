#!/usr/bin/env bash
# Build a real Kubernetes API server (kube-apiserver) and etcd from the Go module proxy, for the
# tests of the autoscaler's Kubernetes scale target (tests/integration/test_kube_target.py).
# Binaries are cached under ~/.cache/nerstream/kube/<version>/ (kube-apiserver, etcd); a second
# run with the binaries present does nothing. Cold: ~6.5 min on 2 cores, ~4 GB of Go caches.
# Usage: scripts/kube.sh [--print-dir]
# Facts behind the recipe: wrapper module + one replace per staging module, version ldflags
# (otherwise /version says v0.0.0-master), etcd built from its own module (its go.mod is separate).
set -euo pipefail

version=${NERSTREAM_KUBE_VERSION:-v1.37.2}
etcd_version=${NERSTREAM_ETCD_VERSION:-v3.7.3}
dest=${NERSTREAM_KUBE_CACHE:-$HOME/.cache/nerstream/kube}/$version

if [ "${1:-}" = "--print-dir" ]; then
    echo "$dest"
    exit 0
fi
if [ -x "$dest/kube-apiserver" ] && [ -x "$dest/etcd" ]; then
    echo "kube.sh: kube-apiserver $version and etcd $etcd_version are cached in $dest"
    exit 0
fi
command -v go >/dev/null 2>&1 || {
    echo "kube.sh: Go (1.26+) is needed on PATH to build kube-apiserver $version" >&2
    exit 1
}

export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
# Each run builds into its own directory beside the cache and renames it into place, so two runs
# at once (CI jobs sharing a home) never write to the same files.
mkdir -p "$(dirname "$dest")"
work=$(mktemp -d)
partial=$(mktemp -d "$dest.partial.XXXXXX")
trap 'rm -rf "$work" "$partial"' EXIT

# --- kube-apiserver: a wrapper module that requires k8s.io/kubernetes and maps each of its
# ./staging/src/k8s.io/* replaces to the published v0.<minor>.<patch> module.
staging=v0.${version#v1.}
mkdir "$work/kube" && cd "$work/kube"
go mod init nerstream.local/kube >/dev/null 2>&1
gomod=$(go mod download -json "k8s.io/kubernetes@$version" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
[ -f "$gomod" ] || {
    echo "kube.sh: could not download k8s.io/kubernetes@$version's go.mod" >&2
    exit 1
}
n=0
for mod in $(sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/.*#\1#p' "$gomod"); do
    go mod edit -replace "$mod=$mod@$staging"
    n=$((n + 1))
done
echo "kube.sh: building kube-apiserver $version ($n staging modules at $staging)"
go mod edit -require "k8s.io/kubernetes@$version"
go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$version" >/dev/null
major=${version#v}; major=${major%%.*}
minor=${version#v*.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags="$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
go build -trimpath -ldflags "$ldflags" -o "$partial/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver

# --- etcd: its server module's root package is the etcd main.
echo "kube.sh: building etcd $etcd_version"
mkdir "$work/etcd" && cd "$work/etcd"
go mod init nerstream.local/etcd >/dev/null 2>&1
go get -tool "go.etcd.io/etcd/server/v3@$etcd_version" >/dev/null
go build -trimpath -ldflags "-s -w" -o "$partial/etcd" go.etcd.io/etcd/server/v3

if [ -x "$dest/kube-apiserver" ] && [ -x "$dest/etcd" ]; then
    echo "kube.sh: another run cached them first; keeping its binaries"
else
    rm -rf "$dest"
    mv -T "$partial" "$dest" 2>/dev/null || [ -x "$dest/kube-apiserver" ]  # lost a race: theirs
fi
"$dest/kube-apiserver" --version
"$dest/etcd" --version | head -1
echo "kube.sh: cached in $dest"
