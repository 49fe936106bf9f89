"""``nerstream local`` against real brokers: the session's, and one started and stopped here."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from streams.kafka import local as local_kafka
from streams.kafka.admin import create_topics, list_topics
from streams.settings import KAFKA_VERSION, Settings, load_settings
from tests.conftest import TEST_KAFKA_ROOT, KafkaScope, free_port


@pytest.mark.integration
def test_session_broker_is_healthy_with_project_topics(kafka_settings: Settings) -> None:
    status = local_kafka.status(kafka_settings)
    assert status.healthy, status.error
    assert status.version == KAFKA_VERSION
    assert set(kafka_settings.topics.all) <= set(status.topics)
    assert local_kafka.is_our_broker(status.pid or -1, kafka_settings.local.data_dir)


@pytest.mark.integration
def test_up_again_reuses_the_running_broker(kafka_settings: Settings) -> None:
    first = local_kafka.status(kafka_settings)
    again = local_kafka.up(kafka_settings)
    assert again.pid == first.pid
    assert again.bootstrap_servers == kafka_settings.kafka.bootstrap_servers


@pytest.mark.integration
def test_create_topics_is_idempotent(kafka: KafkaScope) -> None:
    topic = kafka.topic("twice", partitions=3)
    assert create_topics(kafka.settings.kafka, [topic], partitions=3) == {topic: "exists"}
    assert list_topics(kafka.settings.kafka)[topic] == 3


@pytest.mark.integration
def test_status_of_a_stopped_broker_is_unhealthy(tmp_path: Path) -> None:
    settings = load_settings({"local.data_dir": str(tmp_path / "none")})
    status = local_kafka.status(settings)
    assert not status.healthy
    assert status.pid is None


@pytest.mark.integration
def test_up_refuses_a_port_taken_by_someone_else(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        settings = load_settings(
            {"local.data_dir": str(tmp_path / "kafka"), "local.port": str(taken)}
        )
        with pytest.raises(local_kafka.LocalKafkaError, match=f"port {taken}"):
            local_kafka.up(settings)


@pytest.mark.integration
@pytest.mark.slow
def test_cli_up_status_down_lifecycle(kafka_settings: Settings) -> None:
    """The real commands, as a user runs them: up, status (healthy), down --wipe (no process)."""
    data_dir = TEST_KAFKA_ROOT / f"{kafka_settings.local.data_dir.name}-cli"
    env = {
        **os.environ,
        "NERSTREAM_LOCAL_DATA_DIR": str(data_dir),
        "NERSTREAM_LOCAL_PORT": str(free_port()),
        "NERSTREAM_LOCAL_CONTROLLER_PORT": str(free_port()),
        "NERSTREAM_TOPICS_PARTITIONS": "1",
    }

    def nerstream(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "streams.cli", "local", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    settings = load_settings(env={k: v for k, v in env.items() if k.startswith("NERSTREAM_")})
    try:
        started = nerstream("up")
        assert started.returncode == 0, started.stderr
        status = nerstream("status")
        assert status.returncode == 0, status.stderr
        reported = json.loads(status.stdout)
        assert reported["healthy"] is True
        assert reported["version"] == KAFKA_VERSION
        assert set(settings.topics.all) <= set(reported["topics"])
        pid = reported["pid"]

        stopped = nerstream("down", "--wipe")
        assert stopped.returncode == 0, stopped.stderr
        assert "Kafka stopped" in stopped.stdout
        assert not local_kafka.is_our_broker(pid, data_dir)
        assert not data_dir.exists()
        assert nerstream("status").returncode == 1
    finally:
        local_kafka.down(settings, wipe=True)
