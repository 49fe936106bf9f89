"""The first slice: a Faust worker that copies every record of one topic to another, unchanged.

It proves the whole stack (settings -> Faust app -> aiokafka -> broker -> committed offsets)
before any model is involved. Keys and values travel as raw bytes.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust

from streams.settings import KafkaSettings, Settings


def broker_urls(kafka: KafkaSettings) -> list[str]:
    """Faust's ``kafka://host:port`` form of ``kafka.bootstrap_servers``."""
    return [
        f"kafka://{host.strip()}" for host in kafka.bootstrap_servers.split(",") if host.strip()
    ]


def broker_credentials(kafka: KafkaSettings) -> Any:
    """Faust credentials for the configured security protocol (None for PLAINTEXT)."""
    if kafka.security_protocol == "PLAINTEXT":
        return None
    context = None
    if kafka.security_protocol.endswith("SSL"):
        context = ssl.create_default_context(cafile=kafka.ssl_cafile or None)
        if kafka.ssl_certfile:
            context.load_cert_chain(kafka.ssl_certfile, kafka.ssl_keyfile or None)
    if kafka.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.reveal(),
            mechanism=kafka.sasl_mechanism,
            ssl_context=context,
        )
    return faust.SSLCredentials(context)


def create_app(settings: Settings, source: str, sink: str) -> faust.App:
    """A Faust app with one agent copying ``source`` to ``sink`` (raw key and value bytes)."""
    worker = settings.worker
    datadir = worker.data_dir / worker.group_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        worker.group_id,
        broker=broker_urls(settings.kafka),
        broker_credentials=broker_credentials(settings.kafka),
        # Faust binds 0.0.0.0 unless told otherwise.
        web_bind=worker.web_host,
        web_host=worker.web_host,
        web_port=worker.web_port,
        datadir=str(datadir),
        topic_replication_factor=settings.topics.replication_factor,
        key_serializer="raw",
        value_serializer="raw",
        autodiscover=False,
    )
    source_topic = app.topic(source, key_type=bytes, value_type=bytes)
    sink_topic = app.topic(sink, key_type=bytes, value_type=bytes)

    @app.agent(source_topic, name="passthrough")
    async def passthrough(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            # Buffered, not awaited per record: Faust flushes the producer before every offset
            # commit, so a source offset is never committed ahead of its copy's delivery.
            await sink_topic.send(key=event.key, value=event.value)

    return app


def run_passthrough(settings: Settings, source: str, sink: str) -> None:
    """Run the worker in the foreground until SIGTERM/SIGINT, then stop cleanly."""
    app = create_app(settings, source, sink)
    worker = faust.Worker(app, loglevel="INFO", override_logging=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise
