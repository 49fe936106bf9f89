"""py-spy profiles of a running worker, summarized: where each thread spends its samples.

``record(pid, seconds)`` runs ``py-spy record --format raw --threads`` on a process (py-spy is a
dev dependency); :func:`summarize` (pure) turns its collapsed stacks into the figures the
benchmark stores: each thread's share of the samples (how busy it was) and the top functions by
self samples (the leaf frame: where the time is actually spent).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

#: py-spy's default sampling rate (samples per second per thread).
RATE = 100


def record(pid: int, seconds: float, rate: int = RATE) -> str | None:
    """Collapsed stacks of ``pid`` over ``seconds``, or None when py-spy is missing or fails."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile.txt"
        done = subprocess.run(
            [py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds)),
             "--rate", str(rate), "--format", "raw", "--threads", "--nonblocking",
             "--output", str(out)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0 or not out.exists():
            print(done.stderr[-2000:], file=sys.stderr)
            return None
        return out.read_text(encoding="utf-8", errors="replace")


def _thread_name(frame: str) -> str:
    """A ``thread (1234): name`` frame, as py-spy's --threads writes it, to the name."""
    name = frame.split("): ", 1)[1] if "): " in frame else frame
    return re.sub(r"_\d+$", "", name.strip('"'))


def _short(frame: str) -> str:
    """``function (path/to/module.py:123)`` -> ``function (module.py)``."""
    match = re.match(r"^(.*?) \((.*?)(?::\d+)?\)$", frame)
    if not match:
        return frame
    function, path = match.groups()
    return f"{function} ({Path(path).name})"


def summarize(collapsed: str, seconds: float, rate: int = RATE, top: int = 15) -> dict[str, Any]:
    """Per-thread busy share and the ``top`` functions by self samples (share of all samples).

    Idle samples are not recorded by py-spy (without ``--idle``), so a thread's samples over
    ``seconds * rate`` is the share of the time it was running Python or native code.
    """
    threads: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = next((f for f in frames if f.startswith("thread (")), "?")
        threads[_thread_name(thread)] += count
        leaves[_short(frames[-1])] += count
        total += count
    possible = seconds * rate
    return {
        "seconds": seconds,
        "samples": total,
        "thread_busy_share": {
            name: round(count / possible, 3) for name, count in threads.most_common()
        },
        "top_self": [
            {"function": name, "share_of_samples": round(count / max(total, 1), 3)}
            for name, count in leaves.most_common(top)
        ],
    }
