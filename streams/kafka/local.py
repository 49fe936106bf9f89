"""A single-node Apache Kafka (KRaft, broker + controller in one JVM) on 127.0.0.1.

Used by ``nerstream local up|down|status`` and by the test suite's session fixture.

Layout (``local.cache_dir`` and ``local.data_dir`` from :mod:`streams.settings`):

- ``<cache_dir>/<version>/libs/*.jar``: the broker's jars, resolved from Maven Central with
  ``mvn`` on first use (``pom.xml`` next to it is generated; ``mvn.log`` keeps Maven's output).
- ``<data_dir>/server.properties`` and ``log4j2.properties``: generated configs.
- ``<data_dir>/kraft-logs/``: the topic data and KRaft metadata log.
- ``<data_dir>/broker.log`` (log4j2) and ``jvm.out`` (the JVM's own stdout/stderr).
- ``<data_dir>/broker.json``: PID, version and address of the running broker.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.kafka.admin import KafkaToolError, create_topics, list_topics
from streams.settings import KAFKA_VERSION, KafkaSettings, Settings

Log = Callable[[str], None]

MIN_JAVA = 17
MIN_MAVEN = (3, 6)
#: Kafka 4.x logs through SLF4J 2 and leaves the backend to the distribution; these are the
#: versions the Apache Kafka 4.x distribution ships with.
LOG4J2_VERSION = "2.25.5"
SLF4J_VERSION = "2.0.17"
HEAP_OPTS = ("-Xms256m", "-Xmx768m")
STOP_TIMEOUT_S = 30.0
#: Marks the JVM command line so ``down`` can tell our broker from any other process.
_MARKER_PROPERTY = "-Dnerstream.kafka.data_dir="
_STATE_FILE = "broker.json"
#: Brokers this Python process started, kept so they are reaped (and not warned about) here.
_children: dict[int, subprocess.Popen[bytes]] = {}
_CONFIG_FILE = "server.properties"


class LocalKafkaError(KafkaToolError):
    """The local broker cannot be resolved, started, reached or stopped."""


@dataclass(frozen=True)
class BrokerInfo:
    version: str
    bootstrap_servers: str
    pid: int
    data_dir: Path


@dataclass(frozen=True)
class BrokerStatus:
    healthy: bool
    version: str | None
    bootstrap_servers: str
    pid: int | None
    topics: tuple[str, ...]
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "healthy": self.healthy,
            "version": self.version,
            "bootstrap_servers": self.bootstrap_servers,
            "pid": self.pid,
            "topics": list(self.topics),
        }
        if self.error:
            result["error"] = self.error
        return result


def _silent(_: str) -> None:
    pass


# --- tools: java and mvn -----------------------------------------------------------------------


def parse_java_major(version_output: str) -> int | None:
    """The major version from ``java -version`` output (``"1.8.0_392"`` is 8, ``"17.0.2"`` 17)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def parse_maven_version(version_output: str) -> tuple[int, int] | None:
    match = re.search(r"Apache Maven (\d+)\.(\d+)", version_output)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _tool_output(name: str, *args: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise LocalKafkaError(_missing_tool_message(name))
    result = subprocess.run([path, *args], capture_output=True, text=True, timeout=60, check=False)
    return result.stdout + result.stderr


def _missing_tool_message(name: str) -> str:
    if name == "java":
        return f"java not found on PATH: install a Java {MIN_JAVA}+ runtime (e.g. openjdk-17-jre)"
    return "mvn not found on PATH: install Apache Maven 3.6+ (used once to fetch Kafka's jars)"


def check_java() -> str:
    """Path of a java >= 17, or a clear error."""
    major = parse_java_major(_tool_output("java", "-version"))
    if major is None or major < MIN_JAVA:
        raise LocalKafkaError(
            f"Kafka {KAFKA_VERSION} needs Java {MIN_JAVA}+, but `java -version` reports "
            f"{major or 'an unknown version'}"
        )
    return shutil.which("java") or "java"


def check_maven() -> str:
    version = parse_maven_version(_tool_output("mvn", "-v"))
    if version is None or version < MIN_MAVEN:
        raise LocalKafkaError(
            f"Apache Maven {MIN_MAVEN[0]}.{MIN_MAVEN[1]}+ is needed, `mvn -v` reports "
            f"{version or 'an unknown version'}"
        )
    return shutil.which("mvn") or "mvn"


# --- jars --------------------------------------------------------------------------------------


def render_pom(version: str) -> str:
    """A throwaway POM whose runtime dependencies are exactly the broker's classpath."""
    dependencies = [
        ("org.apache.kafka", "kafka_2.13", version),
        ("org.apache.logging.log4j", "log4j-core", LOG4J2_VERSION),
        ("org.apache.logging.log4j", "log4j-slf4j2-impl", LOG4J2_VERSION),
        ("org.slf4j", "slf4j-api", SLF4J_VERSION),
    ]
    rendered = "\n".join(
        f"    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
        f"<version>{ver}</version></dependency>"
        for group, artifact, ver in dependencies
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by nerstream to resolve the local Kafka broker's jars; safe to delete. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.nerstream</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
{rendered}
  </dependencies>
</project>
"""


def ensure_jars(cache_dir: Path, version: str = KAFKA_VERSION, log: Log = _silent) -> Path:
    """The folder holding Kafka ``version``'s jars, resolving them with ``mvn`` on first use."""
    version_dir = cache_dir / version
    libs = version_dir / "libs"
    if libs.is_dir() and any(libs.glob(f"kafka_2.13-{version}.jar")):
        return libs
    mvn = check_maven()
    version_dir.mkdir(parents=True, exist_ok=True)
    (version_dir / "pom.xml").write_text(render_pom(version), encoding="utf-8")
    staging = version_dir / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    log(f"Resolving Kafka {version} jars from Maven Central into {libs} (first use only)...")
    command = [
        mvn,
        "-B",
        "-f",
        str(version_dir / "pom.xml"),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    downloaded = 0
    started = time.monotonic()
    maven_log = version_dir / "mvn.log"
    with (
        maven_log.open("w", encoding="utf-8") as sink,
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as process,
    ):
        assert process.stdout is not None
        for line in process.stdout:
            sink.write(line)
            if "Downloaded from" in line and ".jar " in line:
                downloaded += 1
                if downloaded % 10 == 0:
                    log(f"  downloaded {downloaded} jars ({time.monotonic() - started:.0f} s)")
        code = process.wait()
    if code != 0:
        tail = "".join(maven_log.read_text(encoding="utf-8").splitlines(True)[-20:])
        raise LocalKafkaError(
            f"mvn could not resolve Kafka {version} (exit {code}); full log: {maven_log}\n{tail}"
        )
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    log(f"Resolved {len(list(libs.glob('*.jar')))} jars for Kafka {version}")
    return libs


# --- configuration -----------------------------------------------------------------------------


def render_server_properties(
    data_dir: Path, port: int, controller_port: int, partitions: int
) -> str:
    """Combined broker+controller on loopback, tuned for one node and fast test start-up."""
    properties = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir / "kraft-logs"),
        "num.partitions": str(partitions),
        "default.replication.factor": "1",
        "offsets.topic.replication.factor": "1",
        # One partition: a 50-partition offsets topic costs seconds on every fresh start.
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # A lone consumer should not wait 3 s for others to join.
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "2",
        "log.retention.hours": "168",
    }
    return "".join(f"{key}={value}\n" for key, value in properties.items())


def render_log4j2_properties(log_file: Path) -> str:
    return f"""status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.filePattern = {log_file}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 2
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
"""


def new_cluster_id() -> str:
    """A Kafka cluster id: a random UUID, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")


# --- processes ---------------------------------------------------------------------------------


def command_line(pid: int) -> str | None:
    result = subprocess.run(
        ["ps", "-ww", "-o", "command=", "-p", str(pid)],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or None if result.returncode == 0 else None


def is_our_broker(pid: int, data_dir: Path) -> bool:
    """Whether ``pid`` is alive and is the Kafka JVM started for ``data_dir``."""
    command = command_line(pid)
    return (
        command is not None
        and "kafka.Kafka" in command
        and f"{_MARKER_PROPERTY}{data_dir.resolve()} " in command + " "
    )


def _read_state(data_dir: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((data_dir / _STATE_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return state


def _running_pid(data_dir: Path) -> tuple[int | None, dict[str, Any] | None]:
    state = _read_state(data_dir)
    if state is None:
        return None, None
    pid = int(state["pid"])
    return (pid if is_our_broker(pid, data_dir) else None), state


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "".join(path.read_text(encoding="utf-8", errors="replace").splitlines(True)[-lines:])
    except FileNotFoundError:
        return f"(no {path.name})"


def _wait_ready(
    process: subprocess.Popen[bytes], bootstrap_servers: str, deadline: float, data_dir: Path
) -> None:
    while True:
        if process.poll() is not None:
            raise LocalKafkaError(
                f"the broker exited with code {process.returncode} while starting; "
                f"{data_dir / 'broker.log'}:\n{tail(data_dir / 'broker.log')}\n"
                f"{data_dir / 'jvm.out'}:\n{tail(data_dir / 'jvm.out')}"
            )
        try:
            list_topics(KafkaSettings(bootstrap_servers), timeout_s=2.0, quiet=True)
            return
        except KafkaToolError:
            pass
        if time.monotonic() > deadline:
            terminate(process.pid)
            raise LocalKafkaError(
                f"the broker did not answer at {bootstrap_servers} in time (stopped it); "
                f"{data_dir / 'broker.log'}:\n{tail(data_dir / 'broker.log')}"
            )
        time.sleep(0.5)


def _format_storage(java: str, classpath: str, data_dir: Path, log: Log) -> None:
    if (data_dir / "kraft-logs" / "meta.properties").exists():
        return
    log("Formatting KRaft storage...")
    result = subprocess.run(
        [
            java,
            f"-Dlog4j2.configurationFile={data_dir / 'log4j2.properties'}",
            "-cp",
            classpath,
            "kafka.tools.StorageTool",
            "format",
            # One argument: an id may start with "-" (1 in 32), which argparse takes for a flag.
            f"--cluster-id={new_cluster_id()}",
            "--config",
            str(data_dir / _CONFIG_FILE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise LocalKafkaError(f"formatting KRaft storage failed:\n{result.stdout}{result.stderr}")


def up(settings: Settings, log: Log = _silent) -> BrokerInfo:
    """Start the broker (or find it running), wait until it answers, create the project topics."""
    local = settings.local
    data_dir = local.data_dir.resolve()
    bootstrap = f"127.0.0.1:{local.port}"
    pid, state = _running_pid(data_dir)
    if pid is not None and state is not None:
        log(f"Kafka already running (pid {pid})")
        bootstrap = state["bootstrap_servers"]
    else:
        for port in (local.port, local.controller_port):
            if not port_free(port):
                raise LocalKafkaError(
                    f"port {port} on 127.0.0.1 is taken by another process; "
                    "choose others with --port / --set local.controller_port=..."
                )
        java = check_java()
        libs = ensure_jars(local.cache_dir, KAFKA_VERSION, log)
        pid = _start(java, libs, settings, data_dir, log)
    assert pid is not None
    create_topics(
        KafkaSettings(bootstrap),
        settings.topics.all,
        settings.topics.partitions,
        settings.topics.replication_factor,
    )
    return BrokerInfo(
        version=state["version"] if state and pid == state["pid"] else KAFKA_VERSION,
        bootstrap_servers=bootstrap,
        pid=pid,
        data_dir=data_dir,
    )


def _start(java: str, libs: Path, settings: Settings, data_dir: Path, log: Log) -> int:
    local = settings.local
    bootstrap = f"127.0.0.1:{local.port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / _CONFIG_FILE).write_text(
        render_server_properties(
            data_dir, local.port, local.controller_port, settings.topics.partitions
        ),
        encoding="utf-8",
    )
    log4j_config = data_dir / "log4j2.properties"
    log4j_config.write_text(render_log4j2_properties(data_dir / "broker.log"), encoding="utf-8")
    classpath = str(libs / "*")
    _format_storage(java, classpath, data_dir, log)
    log(f"Starting Kafka {KAFKA_VERSION} on {bootstrap} (log: {data_dir / 'broker.log'})...")
    process = start_jvm(
        [
            java,
            *HEAP_OPTS,
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j_config}",
            f"{_MARKER_PROPERTY}{data_dir}",
            "-cp",
            classpath,
            "kafka.Kafka",
            str(data_dir / _CONFIG_FILE),
        ],
        data_dir,
        data_dir / "jvm.out",
    )
    state = {"pid": process.pid, "version": KAFKA_VERSION, "bootstrap_servers": bootstrap}
    (data_dir / _STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
    _wait_ready(process, bootstrap, time.monotonic() + local.start_timeout_s, data_dir)
    log(f"Kafka answered on {bootstrap}")
    return process.pid


def start_jvm(command: list[str], data_dir: Path, output: Path) -> subprocess.Popen[bytes]:
    """Start a JVM (broker or registry) in ``data_dir`` with its output in ``output``, adopted.

    Its own session: it outlives the CLI and ignores the terminal's Ctrl-C.
    """
    with output.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=data_dir,
            start_new_session=True,
        )
    adopt(process)
    return process


def adopt(process: subprocess.Popen[bytes]) -> None:
    """Keep a JVM this process started, so that :func:`alive` reaps it once it exits."""
    _children[process.pid] = process


def terminate(pid: int, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM (a clean shutdown), then SIGKILL if it has not exited in time."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.2)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while alive(pid):
        time.sleep(0.1)


def alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _children[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    command = command_line(pid)
    return command is not None and "<defunct>" not in command


def down(settings: Settings, wipe: bool = False, log: Log = _silent) -> bool:
    """Stop the broker started for ``local.data_dir``; True if one was running."""
    data_dir = settings.local.data_dir.resolve()
    pid, state = _running_pid(data_dir)
    if pid is not None:
        log(f"Stopping Kafka (pid {pid})...")
        terminate(pid)
    elif state is not None:
        log(f"pid {state['pid']} in {data_dir / _STATE_FILE} is no longer our broker; not stopped")
    (data_dir / _STATE_FILE).unlink(missing_ok=True)
    if wipe and data_dir.exists():
        if not (data_dir / _CONFIG_FILE).exists():
            raise LocalKafkaError(
                f"{data_dir} does not look like a nerstream Kafka data dir; not deleting it"
            )
        shutil.rmtree(data_dir)
        log(f"Deleted {data_dir}")
    return pid is not None


def status(settings: Settings) -> BrokerStatus:
    """Whether our broker runs and answers a metadata request, and which topics it has."""
    data_dir = settings.local.data_dir.resolve()
    pid, state = _running_pid(data_dir)
    bootstrap = state["bootstrap_servers"] if state else f"127.0.0.1:{settings.local.port}"
    version = state["version"] if state else None
    if pid is None:
        return BrokerStatus(False, version, bootstrap, None, (), "not running")
    try:
        topics = tuple(list_topics(KafkaSettings(bootstrap), timeout_s=5.0, quiet=True))
    except KafkaToolError as exc:
        return BrokerStatus(False, version, bootstrap, pid, (), f"no answer: {exc}")
    return BrokerStatus(True, version, bootstrap, pid, topics)
