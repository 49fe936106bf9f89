"""The HTTP API benchmark: ``nerstream serve`` under a real load generator (``wrk``) at 1, 8 and
64 concurrent clients that send one text per request, against the model alone, in one run.

    .venv/bin/python -m bench.serve [--seconds 10] [--clients 1,8,64] [--texts 2000]
        [--set section.field=value ...]

Needs ``wrk`` on PATH (Debian/Ubuntu: ``apt-get install wrk``).

1. Model only: ``NerModel.predict`` over the texts in calls of ``serve.max_batch`` texts, in
   this process (the rate dynamic batching can reach at best), measured before and after each
   client count's run (while the server idles; the load drifts, so each run is compared with
   the two measurements around it); and in calls of one text (what a server without batching
   could reach), at the start and the end.
2. A real ``nerstream serve`` process (free loopback port, the same settings) is started and
   warmed up; then for each client count, ``wrk`` (one thread, keep-alive connections) sends
   ``POST /v1/entities`` bodies ``{"texts": [one text]}``, cycling over the texts, for
   ``--seconds``. Requests/s, p50/p90/p99 latency and errors come from wrk; the mean texts per
   model call from the server's ``/metrics``; after each run, the model alone in calls of that
   many texts (what is left of the gap is HTTP and sharing the CPUs). wrk runs on the same
   (2-core) machine and takes CPU from the server: the figures include that.
3. The targets: at 64 clients texts/s >= 0.6 x model only (batched); p99 <= 50 ms at 8 clients.

Writes ``bench/results/serve.json`` and ``serve.md`` with the machine's load average before and
after (the machine is shared: read every figure with it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import progress
from bench.worker_throughput import model_only
from models.runtime import NerModel
from streams.model_loader import load_model
from streams.settings import Settings, load_settings
from tests.conftest import REPO_ROOT, free_port
from tests.records import mixed_records

RESULTS = Path(__file__).parent / "results" / "serve.json"
#: Texts of the model-alone measurements in small calls (one text per call is slow).
SAME_CALL_TEXTS = 300
#: The targets of issue 16.
TARGET_RATIO_AT = 64
TARGET_RATIO = 0.6
TARGET_P99_AT = 8
TARGET_P99_MS = 50.0

#: wrk's Lua: POST one body after the other, and print the summary as one JSON line.
WRK_SCRIPT = """
local bodies = {%(bodies)s}
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, bodies[(counter %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %%d, "duration_us": %%d, "connect_errors": %%d, "read_errors": %%d, '
    .. '"write_errors": %%d, "status_errors": %%d, "timeouts": %%d, "p50_us": %%d, '
    .. '"p90_us": %%d, "p99_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def wrk_script(texts: list[str]) -> str:
    # ASCII JSON (\\u escapes) in Lua long strings: no quoting issues.
    bodies = [json.dumps({"texts": [text]}) for text in texts]
    assert not any("]==]" in body for body in bodies)
    return WRK_SCRIPT % {"bodies": ",\n".join(f"[==[{body}]==]" for body in bodies)}


def run_wrk(url: str, script: Path, clients: int, seconds: float) -> dict[str, Any]:
    command = [
        "wrk",
        "--threads", "1",
        "--connections", str(clients),
        "--duration", f"{seconds:g}s",
        "--timeout", "10s",
        "--script", str(script),
        url,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60)
    match = re.search(r"^WRK_JSON (\{.*\})$", done.stdout, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no summary from wrk:\n{done.stdout}\n{done.stderr}")
    summary: dict[str, Any] = json.loads(match.group(1))
    return summary


def scrape(base: str) -> dict[str, float]:
    """The server's model-call counters (texts and calls so far)."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        text = response.read().decode()
    wanted = {
        "nerstream_serve_batch_size_sum": "texts",
        "nerstream_serve_batch_size_count": "calls",
    }
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            values[wanted[name]] = float(value)
    return values


def start_server(settings: Settings, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NERSTREAM_")}
    for section, fields in settings.describe().items():
        if section in ("model", "serve"):
            for name, value in fields.items():
                if name not in ("auth_token", "auth_token_file"):
                    env[f"NERSTREAM_{section}_{name}".upper()] = value
    env["NERSTREAM_SERVE_PORT"] = str(port)
    env["NERSTREAM_SERVE_HOST"] = "127.0.0.1"
    env["PYTHONPATH"] = str(REPO_ROOT)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "serve"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def wait_ready(base: str, server: subprocess.Popen[bytes], timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"nerstream serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=5):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise RuntimeError("nerstream serve did not become ready")


def http_runs(
    settings: Settings,
    texts: list[str],
    *,
    clients: list[int],
    seconds: float,
    work_dir: Path,
    model: NerModel,
) -> list[dict[str, Any]]:
    """One wrk run per client count, each between two measurements of the model alone (the
    load drifts: each run is compared with the model measured right around it), and after it
    the model alone in calls of the size the server made."""
    max_batch = settings.serve.max_batch
    script = work_dir / "bodies.lua"
    script.write_text(wrk_script(texts), encoding="utf-8")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/v1/entities"
    server = start_server(settings, port, work_dir / "serve.log")
    runs = []
    try:
        wait_ready(base, server)
        progress("server ready; warming up (3 s at 8 clients)")
        run_wrk(url, script, 8, 3)
        model_before = model_only(model, texts, max_batch)
        for count in clients:
            before = scrape(base)
            summary = run_wrk(url, script, count, seconds)
            after = scrape(base)
            calls = after["calls"] - before["calls"]
            errors = sum(
                summary[key]
                for key in ("connect_errors", "read_errors", "write_errors", "status_errors")
            )
            rate = summary["requests"] / (summary["duration_us"] / 1e6)
            model_after = model_only(model, texts, max_batch)
            model_around = (model_before + model_after) / 2
            texts_per_call = (after["texts"] - before["texts"]) / calls if calls else 1.0
            call_size = max(round(texts_per_call), 1)
            same_calls = model_only(model, texts[:SAME_CALL_TEXTS], call_size)
            run = {
                "clients": count,
                "requests": summary["requests"],
                "errors": errors + summary["timeouts"],
                "texts_per_s": round(rate, 1),
                "p50_ms": round(summary["p50_us"] / 1000, 2),
                "p90_ms": round(summary["p90_us"] / 1000, 2),
                "p99_ms": round(summary["p99_us"] / 1000, 2),
                "max_ms": round(summary["max_us"] / 1000, 2),
                "mean_texts_per_model_call": round(texts_per_call, 2),
                "model_only_before_and_after_texts_per_s": [
                    round(model_before, 1),
                    round(model_after, 1),
                ],
                "ratio_to_model_only": round(rate / model_around, 3),
                # The model alone in calls as small as the server's: the share of the gap that
                # is the call size, not HTTP.
                "model_only_in_calls_of_that_size_texts_per_s": round(same_calls, 1),
                "ratio_to_model_only_in_calls_of_that_size": round(rate / same_calls, 3),
            }
            model_before = model_after
            runs.append(run)
            progress(
                f"{count} clients: {run['texts_per_s']:.0f} texts/s "
                f"({run['ratio_to_model_only']} x model only), p50 {run['p50_ms']} ms, "
                f"p99 {run['p99_ms']} ms, {run['mean_texts_per_model_call']} texts/call "
                f"(model alone in such calls: {same_calls:.0f} texts/s), {run['errors']} errors"
            )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            code = server.wait()
        if code != 0:
            progress(f"nerstream serve exited with {code}; log: {work_dir / 'serve.log'}")
    return runs


def run(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    settings = load_settings(dict(item.split("=", 1) for item in args.set or []))
    load_before = os.getloadavg()
    texts = [record.text for record in mixed_records(args.texts)]
    model = load_model(settings.model)
    max_batch = settings.serve.max_batch
    progress(f"model {model.manifest.name} {model.manifest.version} on {model.provider}")
    single = [model_only(model, texts[:SAME_CALL_TEXTS], 1)]
    runs = http_runs(
        settings,
        texts,
        clients=args.clients,
        seconds=args.seconds,
        work_dir=work_dir,
        model=model,
    )
    single.append(model_only(model, texts[:SAME_CALL_TEXTS], 1))
    batched = [runs[0]["model_only_before_and_after_texts_per_s"][0]] + [
        run["model_only_before_and_after_texts_per_s"][1] for run in runs
    ]
    model_rps = sum(batched) / len(batched)
    by_clients = {item["clients"]: item for item in runs}
    targets = {}
    if TARGET_RATIO_AT in by_clients:
        ratio = by_clients[TARGET_RATIO_AT]["ratio_to_model_only"]
        targets["ratio_at_64_clients"] = {
            "target": f">= {TARGET_RATIO}",
            "measured": ratio,
            "met": ratio >= TARGET_RATIO,
        }
    if TARGET_P99_AT in by_clients:
        p99 = by_clients[TARGET_P99_AT]["p99_ms"]
        targets["p99_ms_at_8_clients"] = {
            "target": f"<= {TARGET_P99_MS}",
            "measured": p99,
            "met": p99 <= TARGET_P99_MS,
        }
    return {
        "benchmark": "serve",
        "command": " ".join(["python -m bench.serve", *sys.argv[1:]]),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "texts": len(texts),
        "mean_text_chars": round(sum(map(len, texts)) / len(texts), 1),
        "seconds_per_run": args.seconds,
        "load_generator": subprocess.run(
            ["wrk", "--version"], capture_output=True, text=True, check=False
        ).stdout.splitlines()[0],
        "model": {
            "name": model.manifest.name,
            "version": model.manifest.version,
            "provider": model.provider,
            "threads": settings.model.threads,
        },
        "serve": {
            "batch_window_ms": settings.serve.batch_window_ms,
            "max_batch": max_batch,
            "latency_target_ms": settings.serve.latency_target_ms,
        },
        "model_only_texts_per_s": round(model_rps, 1),
        "model_only_measurements_texts_per_s": [round(x, 1) for x in batched],
        "model_only_one_text_per_call_texts_per_s": round(sum(single) / 2, 1),
        "http": runs,
        "targets": targets,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1_5_15_before": [round(x, 2) for x in load_before],
            "load_average_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
            "shared": "yes: other jobs ran meanwhile; wrk ran on the same CPUs as the server",
        },
    }


def markdown(result: dict[str, Any]) -> str:
    machine = result["machine"]
    serve = result["serve"]
    lines = [
        f"# HTTP API benchmark, {result['measured_at']}",
        "",
        f"`{result['command']}` — {result['load_generator']}, one thread, keep-alive; each "
        f"request one text of {result['texts']} (mean {result['mean_text_chars']} chars); "
        f"{result['seconds_per_run']} s per client count; model {result['model']['name']} "
        f"{result['model']['version']} on {result['model']['provider']}, "
        f"{result['model']['threads']} thread(s); batch window {serve['batch_window_ms']} ms, "
        f"max_batch {serve['max_batch']}, latency target {serve['latency_target_ms']} ms.",
        "",
        f"Machine: {machine['cpus']} CPUs, shared (other jobs ran meanwhile, and wrk ran on the "
        f"same CPUs as the server), load average (1/5/15 min) "
        f"{machine['load_average_1_5_15_before']} before, "
        f"{machine['load_average_1_5_15_after']} after: read every figure with it.",
        "",
        f"Model only, same run: **{result['model_only_texts_per_s']} texts/s** in calls of "
        f"{serve['max_batch']} (mean of {result['model_only_measurements_texts_per_s']}, taken "
        "before and after each client count; each ratio below is against the two around its "
        f"run), {result['model_only_one_text_per_call_texts_per_s']} texts/s one text per call.",
        "",
        "| clients | texts/s | x model only | p50 ms | p90 ms | p99 ms | texts per model call "
        "| model alone in calls that size, texts/s | x that | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for item in result["http"]:
        lines.append(
            f"| {item['clients']} | {item['texts_per_s']} | {item['ratio_to_model_only']} | "
            f"{item['p50_ms']} | {item['p90_ms']} | {item['p99_ms']} | "
            f"{item['mean_texts_per_model_call']} | "
            f"{item['model_only_in_calls_of_that_size_texts_per_s']} | "
            f"{item['ratio_to_model_only_in_calls_of_that_size']} | {item['errors']} |"
        )
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    for name, target in result["targets"].items():
        lines.append(
            f"| {name}: {target['target']} | {target['measured']} | "
            f"{'yes' if target['met'] else '**no**'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="per client count")
    parser.add_argument(
        "--clients",
        type=lambda raw: [int(part) for part in raw.split(",")],
        default=[1, 8, 64],
        help="comma-separated concurrent client counts",
    )
    parser.add_argument("--texts", type=int, default=2000, help="distinct texts cycled over")
    parser.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench.serve: wrk is not on PATH (apt-get install wrk)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="nerstream-bench-serve-") as work_dir:
        result = run(args, Path(work_dir))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    summary = markdown(result)
    args.output.with_suffix(".md").write_text(summary)
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
