"""Running ``nerstream worker`` as a real process in integration tests, and reading its results.

Workers run as subprocesses (the same command a user runs), so SIGTERM, exit codes and the
web server behave as in production. Everything binds 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from streams.settings import Settings
from tests.conftest import REPO_ROOT, free_port


def settings_env(settings: Settings, overrides: Mapping[str, str]) -> dict[str, str]:
    """Environment for a worker process: the test's settings as NERSTREAM_* variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NERSTREAM_")}
    described = settings.describe()
    for section, fields in described.items():
        if section == "local":
            continue
        for name, value in fields.items():
            env[f"NERSTREAM_{section}_{name}".upper()] = value
    for key, value in overrides.items():
        section, name = key.split(".")
        env[f"NERSTREAM_{section}_{name}".upper()] = value
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class WorkerProcess:
    """One ``nerstream worker`` process with its own web port and log file."""

    settings: Settings
    log_path: Path
    overrides: dict[str, str] = field(default_factory=dict)
    web_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        env = settings_env(self.settings, {**self.overrides, "worker.web_port": str(self.web_port)})
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker"],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def get(self, path: str) -> tuple[int, dict[str, object] | str]:
        """Status and body (JSON when it is JSON) of a GET on the worker's web server."""
        url = f"http://127.0.0.1:{self.web_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                status, body = response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read().decode()
        try:
            return status, json.loads(body)
        except json.JSONDecodeError:
            return status, body

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.assert_running()
            try:
                status, _ = self.get("/readyz")
                if status == 200:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"worker not ready after {timeout_s} s\n{self.log_tail()}")

    def assert_running(self) -> None:
        assert self.process is not None
        code = self.process.poll()
        if code is not None:
            raise AssertionError(f"worker exited with {code}\n{self.log_tail()}")

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM, then wait for a clean exit; return the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"worker ignored SIGTERM for {timeout_s} s\n{self.log_tail()}"
            ) from None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def committed_offsets(
    settings: Settings, group: str, partitions: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    """The group's committed offset per partition (-1001 when nothing is committed)."""
    consumer = Consumer(
        {**settings.kafka.confluent_config(), "group.id": group, "enable.auto.commit": False}
    )
    try:
        committed = consumer.committed(
            [TopicPartition(topic, partition) for topic, partition in partitions], timeout=10
        )
        return {(tp.topic, tp.partition): tp.offset for tp in committed}
    finally:
        consumer.close()


def end_offsets(settings: Settings, topic: str, partitions: int) -> dict[tuple[str, int], int]:
    consumer = Consumer({**settings.kafka.confluent_config(), "group.id": "end-offsets"})
    try:
        return {
            (topic, partition): consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=10
            )[1]
            for partition in range(partitions)
        }
    finally:
        consumer.close()


def wait_for_outputs(
    settings: Settings, worker: WorkerProcess, count: int, timeout_s: float = 120.0
) -> None:
    """Wait until the 2-partition entity topic holds ``count`` events (fails with the log)."""
    deadline = time.monotonic() + timeout_s
    while sum(end_offsets(settings, "entities", 2).values()) < count:
        assert time.monotonic() < deadline, worker.log_tail()
        time.sleep(0.05)


def wait_committed_to_end(
    settings: Settings, group: str, topic: str, partitions: int, timeout_s: float = 60.0
) -> dict[tuple[str, int], int]:
    """Wait until the group has committed every partition of ``topic`` up to its end."""
    ends = end_offsets(settings, topic, partitions)
    deadline = time.monotonic() + timeout_s
    while True:
        committed = committed_offsets(settings, group, ends)
        if committed == ends or time.monotonic() > deadline:
            return committed
        time.sleep(1.0)
