"""``python -m bench.scenarios``: the fault scenarios at full size, and their report.

Runs ``tests/integration/test_scenarios.py`` (crash-restart with ``kill -9`` at random moments,
rebalances on six partitions, a fuzzed poison stream) and the broker-outage tests of
``tests/integration/test_worker_outage.py`` through pytest, with ``NERSTREAM_SCENARIO_SCALE``
(default 1: full size), collects the row each scenario writes, and writes
``bench/results/scenarios.json`` and ``scenarios.md``: per scenario the records sent, events,
dead letters, lost, duplicates and recovery times. The outage tests report pass or fail (their
assertions: nothing lost, exit 3 and a completing restart).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "scenarios.json"
REPO = Path(__file__).resolve().parent.parent
TESTS = ["tests/integration/test_scenarios.py", "tests/integration/test_worker_outage.py"]
COLUMNS = ("sent", "events", "dead_letters", "lost", "duplicates")


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Fault scenarios (`python -m bench.scenarios`)",
        "",
        f"Scale {result['scale']}; pytest exit code {result['pytest_exit_code']} "
        f"({result['host']}; a shared machine, so times are indicative).",
        "",
        "| scenario | sent | events | dead letters | lost | duplicates | recovery / details |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["scenarios"]:
        details = {k: v for k, v in row.items() if k not in (*COLUMNS, "scenario")}
        cells = " | ".join(str(row.get(column, "")) for column in COLUMNS)
        lines.append(f"| {row['scenario']} | {cells} | {json.dumps(details)} |")
    lines += ["", "pytest summary:", "", "```", *result["pytest_summary"], "```"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scenarios", description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="1: full size; 0.1: CI size")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nerstream-scenarios-") as rows_dir:
        env = {
            **os.environ,
            "NERSTREAM_SCENARIO_SCALE": str(args.scale),
            "NERSTREAM_SCENARIO_REPORT": rows_dir,
            # The outage the worker rides out, and one beyond its delivery budget.
            "NERSTREAM_IT_OUTAGE_S": str(max(8.0, 30.0 * args.scale)),
            "NERSTREAM_IT_LONG_OUTAGE_S": str(max(20.0, 40.0 * args.scale)),
        }
        run = subprocess.run(
            [
                *(sys.executable, "-m", "pytest", *TESTS, "-m", "integration", "-q", "-rA"),
                *("-o", "timeout=3600", "-p", "no:cacheprovider"),
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        rows = [json.loads(path.read_text()) for path in sorted(Path(rows_dir).glob("*.json"))]
    summary = [line for line in run.stdout.splitlines() if line.startswith(("PASSED", "FAILED"))]
    summary.append(run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr)
    result = {
        "scale": args.scale,
        "host": f"{platform.machine()}, {len(os.sched_getaffinity(0))} CPUs",
        "pytest_exit_code": run.returncode,
        "pytest_summary": summary,
        "scenarios": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    args.output.with_suffix(".md").write_text(markdown(result) + "\n", encoding="utf-8")
    print(markdown(result))
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
