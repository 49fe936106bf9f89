"""``python -m bench``: the worker benchmark (see :mod:`bench.worker_throughput`)."""

from __future__ import annotations

import sys

from bench.worker_throughput import main

if __name__ == "__main__":
    sys.exit(main())
