"""Pure parts of streams.kafka.local: version parsing and the generated configs."""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

import pytest

from streams.kafka import local as local_kafka
from streams.settings import KAFKA_VERSION


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ("no java here", None),
    ],
)
def test_parse_java_major(output: str, major: int | None) -> None:
    assert local_kafka.parse_java_major(output) == major


def test_parse_maven_version() -> None:
    assert local_kafka.parse_maven_version("Apache Maven 3.8.7\nMaven home: x") == (3, 8)
    assert local_kafka.parse_maven_version("mvn: command garbled") is None


def test_server_properties_bind_loopback_single_node(tmp_path: Path) -> None:
    text = local_kafka.render_server_properties(tmp_path, 19092, 19093, partitions=4)
    properties = dict(line.split("=", 1) for line in text.splitlines())
    assert properties["process.roles"] == "broker,controller"
    assert properties["listeners"] == ("PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093")
    assert properties["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert properties["log.dirs"] == str(tmp_path / "kraft-logs")
    assert properties["offsets.topic.replication.factor"] == "1"
    assert properties["group.initial.rebalance.delay.ms"] == "0"


def test_pom_pins_the_kafka_version_and_log4j2_backend() -> None:
    pom = local_kafka.render_pom(KAFKA_VERSION)
    assert f"<artifactId>kafka_2.13</artifactId><version>{KAFKA_VERSION}</version>" in pom
    assert "log4j-slf4j2-impl" in pom
    assert "log4j-core" in pom


def test_cluster_id_is_a_base64_uuid() -> None:
    cluster_id = local_kafka.new_cluster_id()
    assert len(cluster_id) == 22
    uuid.UUID(bytes=base64.urlsafe_b64decode(cluster_id + "=="))


def test_our_broker_check_rejects_other_processes(tmp_path: Path) -> None:
    assert not local_kafka.is_our_broker(os.getpid(), tmp_path)


def test_status_dict_reports_error_only_when_unhealthy() -> None:
    healthy = local_kafka.BrokerStatus(True, "4.4.0", "127.0.0.1:9092", 1, ("a",))
    assert healthy.as_dict() == {
        "healthy": True,
        "version": "4.4.0",
        "bootstrap_servers": "127.0.0.1:9092",
        "pid": 1,
        "topics": ["a"],
    }
    down = local_kafka.BrokerStatus(False, None, "127.0.0.1:9092", None, (), "not running")
    assert down.as_dict()["error"] == "not running"


@pytest.mark.parametrize(("check", "tool"), [("check_java", "java"), ("check_maven", "mvn")])
def test_missing_tools_are_explained(
    check: str, tool: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(local_kafka.LocalKafkaError, match=f"{tool} not found on PATH"):
        getattr(local_kafka, check)()


def test_the_registry_runs_on_loopback_and_is_marked_as_ours(tmp_path: Path) -> None:
    from streams.kafka import local_registry

    jar = local_registry.runner_jar(tmp_path, "2.6.13.Final")
    command = local_registry.java_command("java", jar, 18081, tmp_path)
    assert "-Dquarkus.http.host=127.0.0.1" in command
    assert "-Dquarkus.http.port=18081" in command
    assert f"-Dnerstream.registry.data_dir={tmp_path}" in command
    assert command[-2:] == ["-jar", str(tmp_path / "apicurio-registry-app-2.6.13.Final-runner.jar")]
    assert local_registry.registry_url(18081) == "http://127.0.0.1:18081/apis/ccompat/v7"
    assert not local_registry.is_our_registry(os.getpid(), tmp_path)
