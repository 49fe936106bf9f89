"""Scale target: ``nerstream worker`` processes on this host (single-host use, and the closed-loop
test). Each worker gets its own web port, worker id and data dir; scale-down stops the newest
workers with SIGTERM and waits for their graceful drain.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from streams.autoscale.errors import AutoscaleTemporaryError
from streams.autoscale.policy import Decision
from streams.settings import Settings


def settings_environment(settings: Settings) -> dict[str, str]:
    """This process's environment with ``settings`` as ``NERSTREAM_*`` variables, so that a
    worker started from here sees what the autoscaler was given (flags included)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NERSTREAM_")}
    for section, fields in settings.describe().items():
        if section in ("local", "autoscale"):
            continue
        for name, value in fields.items():
            if name != "sasl_password":
                env[f"NERSTREAM_{section}_{name}".upper()] = value
    if settings.kafka.sasl_password.reveal():
        env["NERSTREAM_KAFKA_SASL_PASSWORD"] = settings.kafka.sasl_password.reveal()
    return env


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class _Worker:
    name: str
    process: subprocess.Popen[bytes]
    web_port: int


class LocalProcesses:
    """Start and stop ``nerstream worker`` processes."""

    name = "processes"

    def __init__(
        self,
        env: Mapping[str, str],
        data_dir: Path,
        *,
        web_host: str = "127.0.0.1",
        command: Sequence[str] = (sys.executable, "-m", "streams.cli", "worker"),
        stop_timeout_s: float = 90.0,
    ) -> None:
        self.env = dict(env)
        self.data_dir = data_dir
        self.web_host = web_host
        self.command = tuple(command)
        self.stop_timeout_s = stop_timeout_s
        self.workers: list[_Worker] = []
        self._started = 0

    def replicas(self) -> int:
        """Live workers (exited ones are forgotten, so the next decision replaces them)."""
        self.workers = [w for w in self.workers if w.process.poll() is None]
        return len(self.workers)

    def scale(self, replicas: int) -> None:
        current = self.replicas()
        for _ in range(replicas - current):
            self._start()
        if replicas < current:
            self._stop(self.workers[replicas:])
            self.workers = self.workers[:replicas]

    def record(self, decision: Decision) -> None:
        """Processes have no event stream; the decision's log line is the record."""

    def web_ports(self) -> list[int]:
        return [w.web_port for w in self.workers]

    def close(self) -> None:
        self._stop(self.workers)
        self.workers = []

    def _start(self) -> None:
        self._started += 1
        name = f"autoscaled-{os.getpid()}-{self._started}"
        port = _free_port(self.web_host)
        directory = self.data_dir / name
        directory.mkdir(parents=True, exist_ok=True)
        env = {
            **self.env,
            "NERSTREAM_WORKER_WORKER_ID": name,
            "NERSTREAM_WORKER_WEB_HOST": self.web_host,
            "NERSTREAM_WORKER_WEB_PORT": str(port),
            "NERSTREAM_WORKER_DATA_DIR": str(directory / "state"),
            "PYTHONUNBUFFERED": "1",
        }
        try:
            with (directory / "worker.log").open("ab") as log:
                process = subprocess.Popen(
                    self.command, env=env, stdout=log, stderr=subprocess.STDOUT
                )
        except OSError as exc:
            raise AutoscaleTemporaryError(f"cannot start a worker: {exc}") from exc
        self.workers.append(_Worker(name, process, port))

    def _stop(self, workers: Sequence[_Worker]) -> None:
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.process.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
