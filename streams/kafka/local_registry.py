"""A Confluent-compatible schema registry on 127.0.0.1: Apicurio Registry, in memory.

Used by ``nerstream local up --registry`` (beside the local broker) and by the test suite's
registry fixture. Apicurio ships a ready-to-run Quarkus distribution on Maven Central; like the
broker's jars it is fetched with ``mvn`` once and cached. Storage is in memory: schemas and ids
live as long as the process (ids start at 1 again after a restart).

Layout (``local.registry_cache_dir`` and ``local.registry_data_dir``):

- ``<cache_dir>/<version>/``: the unpacked distribution (``apicurio-registry-app-*-runner.jar``
  and ``lib/``); ``mvn.log`` keeps Maven's output.
- ``<data_dir>/registry.log``: the JVM's output; ``<data_dir>/registry.json``: PID, version, URL.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.kafka.local import (
    LocalKafkaError,
    Log,
    check_java,
    check_maven,
    command_line,
    port_free,
    start_jvm,
    tail,
    terminate,
)
from streams.registry.client import RegistryClient, RegistryUnavailableError
from streams.settings import APICURIO_VERSION, SchemaRegistrySettings, Settings

ARTIFACT = "io.apicurio:apicurio-registry-app:{version}:tar.gz:all"
#: The Confluent-compatible API under Apicurio's root.
CCOMPAT_PATH = "/apis/ccompat/v7"
HEAP_OPTS = ("-Xms64m", "-Xmx256m")
_MARKER_PROPERTY = "-Dnerstream.registry.data_dir="
_STATE_FILE = "registry.json"
_LOG_FILE = "registry.log"


@dataclass(frozen=True)
class RegistryInfo:
    version: str
    url: str
    pid: int
    data_dir: Path


def _silent(_: str) -> None:
    pass


def registry_url(port: int) -> str:
    """The ``schema_registry.url`` of a local registry on ``port``."""
    return f"http://127.0.0.1:{port}{CCOMPAT_PATH}"


def runner_jar(version_dir: Path, version: str) -> Path:
    return version_dir / f"apicurio-registry-app-{version}-runner.jar"


def java_command(java: str, jar: Path, port: int, data_dir: Path) -> list[str]:
    """The JVM command line: HTTP on loopback only, in-memory storage, marked as ours."""
    return [
        java,
        *HEAP_OPTS,
        "-Djava.awt.headless=true",
        "-Dquarkus.http.host=127.0.0.1",
        f"-Dquarkus.http.port={port}",
        # 3.x opens a management port on 0.0.0.0 unless told otherwise; harmless on 2.x.
        "-Dquarkus.management.host=127.0.0.1",
        f"{_MARKER_PROPERTY}{data_dir}",
        "-jar",
        str(jar),
    ]


def ensure_distribution(
    cache_dir: Path, version: str = APICURIO_VERSION, log: Log = _silent
) -> Path:
    """The runner jar of Apicurio ``version``, fetching and unpacking it on first use."""
    version_dir = cache_dir / version
    jar = runner_jar(version_dir, version)
    if jar.is_file():
        return jar
    mvn = check_maven()
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = cache_dir / f"{version}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    log(f"Fetching Apicurio Registry {version} from Maven Central into {version_dir} (once)...")
    maven_log = cache_dir / f"mvn-{version}.log"
    with maven_log.open("w", encoding="utf-8") as sink:
        code = subprocess.run(
            [
                mvn,
                "-B",
                "dependency:copy",
                f"-Dartifact={ARTIFACT.format(version=version)}",
                f"-DoutputDirectory={staging}",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=staging,
            check=False,
        ).returncode
    archives = list(staging.glob("*.tar.gz"))
    if code != 0 or len(archives) != 1:
        raise LocalKafkaError(
            f"mvn could not fetch Apicurio Registry {version} (exit {code}); "
            f"full log: {maven_log}\n{tail(maven_log, 20)}"
        )
    log(f"Unpacking {archives[0].name}...")
    with tarfile.open(archives[0]) as archive:
        archive.extractall(staging, filter="data")
    archives[0].unlink()
    if not runner_jar(staging, version).is_file():
        raise LocalKafkaError(f"the Apicurio {version} archive has no {jar.name}")
    shutil.rmtree(version_dir, ignore_errors=True)
    staging.rename(version_dir)
    return jar


def is_our_registry(pid: int, data_dir: Path) -> bool:
    """Whether ``pid`` is alive and is the registry JVM started for ``data_dir``."""
    command = command_line(pid)
    return command is not None and f"{_MARKER_PROPERTY}{data_dir.resolve()} " in command + " "


def _running(data_dir: Path) -> tuple[int | None, dict[str, Any] | None]:
    try:
        state: dict[str, Any] = json.loads((data_dir / _STATE_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None, None
    pid = int(state["pid"])
    return (pid if is_our_registry(pid, data_dir) else None), state


def answers(url: str, timeout_s: float = 2.0) -> bool:
    """Whether a registry answers at ``url``."""
    try:
        RegistryClient(SchemaRegistrySettings(url=url, timeout_s=timeout_s)).subjects()
    except RegistryUnavailableError:
        return False
    return True


def up(settings: Settings, log: Log = _silent) -> RegistryInfo:
    """Start the registry (or find it running) and wait until it answers."""
    local = settings.local
    data_dir = local.registry_data_dir.resolve()
    pid, state = _running(data_dir)
    if pid is not None and state is not None:
        log(f"Schema registry already running (pid {pid})")
        return RegistryInfo(state["version"], state["url"], pid, data_dir)
    port = local.registry_port
    if not port_free(port):
        raise LocalKafkaError(
            f"port {port} on 127.0.0.1 is taken by another process; "
            "choose another with --registry-port / --set local.registry_port=..."
        )
    java = check_java()
    jar = ensure_distribution(local.registry_cache_dir, APICURIO_VERSION, log)
    url = registry_url(port)
    data_dir.mkdir(parents=True, exist_ok=True)
    log(f"Starting Apicurio Registry {APICURIO_VERSION} on {url} ...")
    process = start_jvm(java_command(java, jar, port, data_dir), data_dir, data_dir / _LOG_FILE)
    state = {"pid": process.pid, "version": APICURIO_VERSION, "url": url}
    (data_dir / _STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
    deadline = time.monotonic() + local.start_timeout_s
    while not answers(url):
        if process.poll() is not None:
            raise LocalKafkaError(
                f"the registry exited with code {process.returncode} while starting; "
                f"{data_dir / _LOG_FILE}:\n{tail(data_dir / _LOG_FILE)}"
            )
        if time.monotonic() > deadline:
            terminate(process.pid)
            raise LocalKafkaError(
                f"the registry did not answer at {url} in time (stopped it); "
                f"{data_dir / _LOG_FILE}:\n{tail(data_dir / _LOG_FILE)}"
            )
        time.sleep(0.5)
    log(f"Schema registry answered on {url}")
    return RegistryInfo(APICURIO_VERSION, url, process.pid, data_dir)


def down(settings: Settings, log: Log = _silent) -> bool:
    """Stop the registry started for ``local.registry_data_dir``; True if one was running."""
    data_dir = settings.local.registry_data_dir.resolve()
    pid, _ = _running(data_dir)
    if pid is not None:
        log(f"Stopping the schema registry (pid {pid})...")
        terminate(pid)
    (data_dir / _STATE_FILE).unlink(missing_ok=True)
    return pid is not None


def status(settings: Settings) -> dict[str, Any]:
    """Whether our registry runs and answers."""
    data_dir = settings.local.registry_data_dir.resolve()
    pid, state = _running(data_dir)
    url = state["url"] if state else registry_url(settings.local.registry_port)
    return {
        "healthy": pid is not None and answers(url),
        "version": state["version"] if state else None,
        "url": url,
        "pid": pid,
    }
