"""CPU cost of ``NerModel.predict`` per text, by texts per call: this checkout against another.

    python -m bench.predict_cost [--baseline DIR] [--sizes 1,4,32,1024] [--rounds 15]

Each checkout (this one, and ``--baseline``: other code, e.g. ``git archive COMMIT | tar -x -C
/tmp/old``) runs in a child process of its own on one thread, loading the
shipped model from its own sources. The parent drives the children in turn, one measurement at a
time, so both see the same machine load; each measurement is the CPU time (``process_time``) of
calls of one size over the same 100-character MSRA test sentences, and the best of ``--rounds``
counts (other load only ever slows a pass down). First both checkouts tag all 1,024 sentences in
calls of each size, and the run stops unless their entities and scores are the same to the bit.
Results: bench/results/predict_cost.json and .md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent
#: Texts per call size and round: short measurements, many rounds (the best of many is robust
#: to the load of a shared machine).
TEXTS_PER_SIZE = {1: 64, 4: 128, 32: 256}
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def child() -> None:
    """Load the model of the checkout on PYTHONPATH and answer, per line on stdin, ``cost SIZE``
    with the CPU seconds per text of predict calls of SIZE texts, ``digest SIZE`` with the
    ``digest`` of all texts in such calls (texts from the file in argv[2])."""
    from models.runtime import NerModel

    texts: list[str] = json.loads(Path(sys.argv[2]).read_text(encoding="utf-8"))
    model = NerModel.load(provider="cpu", threads=1)
    model.predict(texts[:64])  # warm-up: caches filled, arrays allocated once
    print("ready", flush=True)
    for line in sys.stdin:
        command, size_text = line.split()
        size = int(size_text)
        if command == "digest":
            print(digest(model.predict, texts, size), flush=True)
            continue
        count = max(size, TEXTS_PER_SIZE.get(size, size))
        calls = [texts[first : first + size] for first in range(0, count, size)]
        started = time.process_time()
        for call in calls:
            model.predict(call)
        print((time.process_time() - started) / count, flush=True)


def digest(predict: Callable[[list[str]], list[list[Any]]], texts: list[str], size: int) -> str:
    """A hash of every entity (type, offsets, text, the score's exact bits) of ``texts``."""
    found = hashlib.sha256()
    for first in range(0, len(texts), size):
        for entities in predict(texts[first : first + size]):
            for entity in entities:
                parts = (entity.type, entity.start, entity.end, entity.text, entity.score.hex())
                found.update(repr(parts).encode())
            found.update(b"|")
    return found.hexdigest()


class Checkout:
    """A child process running ``child`` on the sources of one checkout."""

    def __init__(self, name: str, directory: Path, texts_file: Path) -> None:
        self.name = name
        self.directory = directory
        self.process = subprocess.Popen(
            # -P: the script's folder (bench/) stays off sys.path
            [sys.executable, "-P", str(Path(__file__).resolve()), "--child", str(texts_file)],
            cwd=directory,
            env={**os.environ, **SINGLE_THREAD, "PYTHONPATH": str(directory)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self._read() != "ready":
            raise RuntimeError(f"{directory}: the model did not load")

    def _read(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def ask(self, command: str, size: int) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{command} {size}\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def measure(
    directories: dict[str, Path], sizes: list[int], rounds: int, texts_file: Path
) -> dict[str, dict[int, float]]:
    """Best CPU ms per text of each checkout and call size, measured in turns, once the
    checkouts are seen to find the same entities with the same scores (to the bit)."""
    checkouts = [Checkout(name, path, texts_file) for name, path in directories.items()]
    best: dict[str, dict[int, float]] = {c.name: {} for c in checkouts}
    try:
        for size in sizes:
            digests = {checkout.ask("digest", size) for checkout in checkouts}
            if len(digests) > 1:
                raise SystemExit(f"the checkouts' entities or scores differ in calls of {size}")
        for round_number in range(1, rounds + 1):
            for size in sizes:
                for checkout in checkouts if round_number % 2 else checkouts[::-1]:
                    ms = float(checkout.ask("cost", size)) * 1e3
                    previous = best[checkout.name].get(size, ms)
                    best[checkout.name][size] = min(previous, ms)
            print(f"round {round_number}/{rounds}: {best}", file=sys.stderr, flush=True)
    finally:
        for checkout in checkouts:
            checkout.close()
    return best


def markdown(result: dict[str, Any]) -> str:
    names = list(result["ms_per_text"])
    lines = [
        f"# predict CPU cost per text ({result['date']})",
        "",
        f"`python -m bench.predict_cost {result['arguments']}`: the shipped model, one thread, "
        f"100-character MSRA test sentences, the same entities and scores (to the bit) from "
        f"every checkout, CPU ms per text (best of {result['rounds']} "
        f"rounds, checkouts measured in turns; load average {result['load_before']} -> "
        f"{result['load_after']}).",
        "",
        "| texts per call | " + " | ".join(f"{name} ms/text" for name in names)
        + (" | ratio |" if len(names) == 2 else " |"),
        "|---|" + "---|" * (len(names) + (len(names) == 2)),
    ]  # fmt: skip
    for size in result["sizes"]:
        costs = [result["ms_per_text"][name][str(size)] for name in names]
        ratio = f" {costs[0] / costs[1]:.2f} |" if len(names) == 2 else ""
        lines.append(f"| {size} | " + " | ".join(f"{c:.3f}" for c in costs) + " |" + ratio)
    if len(names) == 2:
        lines += ["", f"ratio: {names[0]} / {names[1]} (above 1: {names[1]} is cheaper)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child()
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with")
    parser.add_argument("--sizes", default="1,4,32,1024", help="texts per call")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path, default=RESULTS / "predict_cost")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]

    from training.speed import sentences

    texts_file = args.out.with_suffix(".texts.json")
    texts = sentences(max(*sizes, *TEXTS_PER_SIZE.values()))
    texts_file.write_text(json.dumps(texts), encoding="utf-8")
    directories = {"this checkout": ROOT}
    if args.baseline:
        directories = {"baseline": args.baseline.resolve(), **directories}
    load_before = round(os.getloadavg()[0], 1)
    try:
        best = measure(directories, sizes, args.rounds, texts_file)
    finally:
        texts_file.unlink()
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "arguments": " ".join(argv if argv is not None else sys.argv[1:]),
        "rounds": args.rounds,
        "sizes": sizes,
        "load_before": load_before,
        "load_after": round(os.getloadavg()[0], 1),
        "ms_per_text": {
            name: {str(size): round(ms, 4) for size, ms in costs.items()}
            for name, costs in best.items()
        },
    }
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
