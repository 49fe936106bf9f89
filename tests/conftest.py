"""Shared fixtures: one real Kafka broker per test session, fresh topic/group names per test.

The broker is started by :mod:`streams.kafka.local` (the same code as ``nerstream local up``) on
free loopback ports, with its data under ``<checkout>/.kafka/pytest-*`` so that ``.ci/run`` can
find and stop it should the session die. It starts only when a test asks for it. The schema
registry (Apicurio, :mod:`streams.kafka.local_registry`, as ``nerstream local up --registry``)
is started the same way, only for the tests that ask for ``registry``; its distribution is
fetched from Maven Central into ``~/.cache/nerstream/registry`` on first use.
"""

from __future__ import annotations

import atexit
import dataclasses
import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import settings as hypothesis_settings

from streams.kafka import local as local_kafka
from streams.kafka import local_registry
from streams.kafka.admin import create_topics
from streams.settings import Settings, load_settings

# Property tests check results, not speed: on a loaded 2-core machine one example can take
# longer than Hypothesis's default 200 ms deadline.
hypothesis_settings.register_profile("nerstream", deadline=None)
hypothesis_settings.load_profile("nerstream")

if TYPE_CHECKING:  # torch comes with the train extra; tests that train import it lazily
    from training.config import TrainConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_KAFKA_ROOT = REPO_ROOT / ".kafka"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def kafka_settings() -> Iterator[Settings]:
    """Settings whose ``kafka.bootstrap_servers`` points at this session's own broker."""
    data_dir = TEST_KAFKA_ROOT / f"pytest-{uuid.uuid4().hex[:12]}"
    port = free_port()
    controller_port = free_port()
    while controller_port == port:
        controller_port = free_port()
    broker_settings = load_settings(
        {
            "local.data_dir": str(data_dir),
            "local.port": str(port),
            "local.controller_port": str(controller_port),
            "kafka.bootstrap_servers": f"127.0.0.1:{port}",
        }
    )

    def stop() -> None:
        local_kafka.down(broker_settings, wipe=True)

    # Belt and braces: the fixture's finally covers failures and Ctrl-C, atexit a crashed session.
    atexit.register(stop)
    try:
        local_kafka.up(broker_settings, log=print)
        yield broker_settings
    finally:
        stop()
        atexit.unregister(stop)


@dataclass(frozen=True)
class Registry:
    """This session's schema registry: its ``schema_registry.url`` and JVM process id."""

    url: str
    pid: int


@pytest.fixture(scope="session")
def registry() -> Iterator[Registry]:
    """A real Confluent-compatible schema registry (Apicurio, in memory) on a free port."""
    registry_settings = load_settings(
        {
            "local.registry_data_dir": str(
                TEST_KAFKA_ROOT / f"pytest-registry-{uuid.uuid4().hex[:12]}"
            ),
            "local.registry_port": str(free_port()),
            "local.start_timeout_s": "240",
        }
    )

    def stop() -> None:
        local_registry.down(registry_settings)
        shutil.rmtree(registry_settings.local.registry_data_dir, ignore_errors=True)

    atexit.register(stop)
    try:
        info = local_registry.up(registry_settings, log=print)
        yield Registry(info.url, info.pid)
    finally:
        stop()
        atexit.unregister(stop)


@dataclass(frozen=True)
class KafkaScope:
    """Unique names for one test, on the session broker."""

    settings: Settings
    prefix: str

    @property
    def bootstrap_servers(self) -> str:
        return self.settings.kafka.bootstrap_servers

    def topic(self, name: str, partitions: int = 1) -> str:
        """Create a fresh topic (``<prefix>.<name>``) and return its full name."""
        full_name = f"{self.prefix}.{name}"
        create_topics(self.settings.kafka, [full_name], partitions)
        return full_name

    def group(self, name: str) -> str:
        return f"{self.prefix}.{name}"


@pytest.fixture
def kafka(kafka_settings: Settings, tmp_path: Path) -> KafkaScope:
    """Per-test names (uuid-based) and settings: a worker data dir under ``tmp_path``."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    worker = dataclasses.replace(kafka_settings.worker, data_dir=tmp_path / "worker")
    return KafkaScope(dataclasses.replace(kafka_settings, worker=worker), prefix)


# --- a tiny NER model, trained once per session (seconds) and exported ---------------------


@dataclass(frozen=True)
class TinyModel:
    run_dir: Path
    checkpoint: Path
    model_dir: Path


def tiny_config(**overrides: Any) -> TrainConfig:
    """The TrainConfig of the tiny test models (seconds of training), with ``overrides``."""
    from training.config import TrainConfig

    settings: dict[str, Any] = {
        "name": "tiny",
        "version": "0.0.1",
        "max_sentences": 800,
        "entity_types": ("PER", "LOC", "ORG", "NUM"),
        "weak_num": True,
        "char_dim": 16,
        "bigram_dim": 8,
        "hidden": 16,
        "epochs": 3,
        "batch_size": 16,
        "learning_rate": 0.02,
        "warmup_steps": 5,
        "threads": 1,
        "max_length": 40,
    }
    return TrainConfig(**{**settings, **overrides})


def _train_tiny_model(factory: pytest.TempPathFactory, encoder: str) -> TinyModel:
    pytest.importorskip("torch")
    from training.export import export_model
    from training.train import train

    run_dir = factory.mktemp(f"tiny-{encoder}-run")
    config = tiny_config(encoder=encoder)
    result = train(config, run_dir, progress=False)
    model_dir = export_model(result.checkpoint, run_dir / "model")
    return TinyModel(run_dir, result.checkpoint, model_dir)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    """A tiny model of the cnn encoder, trained in seconds."""
    return _train_tiny_model(tmp_path_factory, "cnn")


@pytest.fixture(scope="session")
def tiny_bilstm_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return _train_tiny_model(tmp_path_factory, "bilstm")
