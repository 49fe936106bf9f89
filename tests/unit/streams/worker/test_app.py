"""The Faust app factory: security settings reach aiokafka as they reach confluent-kafka, and
the web server binds where the settings say."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import certifi
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from streams.settings import load_settings
from streams.worker.app import broker_credentials, broker_urls, create_app

SASL = {
    "kafka.sasl_mechanism": "SCRAM-SHA-512",
    "kafka.sasl_username": "ner",
    "kafka.sasl_password": "s3cret",
}


def aiokafka_auth(overrides: dict[str, str]) -> dict[str, object]:
    kafka = load_settings(overrides, env={}).kafka
    return dict(credentials_to_aiokafka_auth(broker_credentials(kafka)))


def test_plaintext_needs_no_credentials() -> None:
    assert aiokafka_auth({}) == {"security_protocol": "PLAINTEXT"}


def test_sasl_plaintext() -> None:
    auth = aiokafka_auth({"kafka.security_protocol": "SASL_PLAINTEXT", **SASL})
    assert auth["security_protocol"] == "SASL_PLAINTEXT"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("ner", "s3cret")
    assert auth["ssl_context"] is None


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_tls_protocols_get_a_context_with_the_configured_ca(protocol: str) -> None:
    sasl = SASL if protocol == "SASL_SSL" else {}
    auth = aiokafka_auth(
        {"kafka.security_protocol": protocol, "kafka.ssl_cafile": certifi.where(), **sasl}
    )
    assert auth["security_protocol"] == protocol
    context = auth["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.get_ca_certs()


def test_app_binds_the_configured_web_host_and_brokers(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "kafka.bootstrap_servers": "b1:9092, b2:9092",
            "worker.group_id": "ner",
            "worker.web_port": "6070",
            "worker.data_dir": str(tmp_path / "w"),
        },
        env={},
    )
    assert broker_urls(settings.kafka) == ["kafka://b1:9092", "kafka://b2:9092"]
    app = create_app(settings)
    assert app.conf.web_bind == "127.0.0.1" and app.conf.web_port == 6070
    assert app.conf.id == "ner"
    assert (tmp_path / "w" / "ner").is_dir()
    assert app.conf.stream_buffer_maxsize == settings.worker.max_batch
    assert app.conf.broker_session_timeout == settings.worker.session_timeout_s
    assert app.conf.broker_heartbeat_interval == settings.worker.heartbeat_interval_s
    assert app.conf.broker_commit_interval == settings.worker.commit_interval_s
    # No worker_id: the default identity changes on every restart, so membership is dynamic.
    assert app.conf.consumer_group_instance_id is None
    # aiokafka's round-robin assignor, not Faust's (see create_app).
    assert app.conf.table_standby_replicas == 0


def test_a_named_worker_is_a_static_group_member(tmp_path: Path) -> None:
    def conf(**overrides: str) -> Any:
        values = {"worker.data_dir": str(tmp_path), "worker.worker_id": "pod-3", **overrides}
        return create_app(load_settings(values, env={})).conf

    assert conf().consumer_group_instance_id == "pod-3"
    assert conf(**{"worker.static_membership": "false"}).consumer_group_instance_id is None
