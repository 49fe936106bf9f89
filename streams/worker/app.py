"""The one Faust application factory: every nerstream Faust worker is configured here.

Keys and values travel as raw bytes (decoding is the pipeline's job, so a bad message becomes
a dead letter instead of a Faust deserialization crash). Security settings reach aiokafka
through Faust's credentials; confluent-kafka gets the same ones from
:meth:`streams.settings.KafkaSettings.confluent_config`.
"""

from __future__ import annotations

import ssl
from typing import Any, cast

import faust

from streams.settings import KafkaSettings, Settings


def broker_urls(kafka: KafkaSettings) -> list[str]:
    """Faust's ``kafka://host:port`` form of ``kafka.bootstrap_servers``."""
    return [
        f"kafka://{host.strip()}" for host in kafka.bootstrap_servers.split(",") if host.strip()
    ]


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    """The TLS context for SSL and SASL_SSL: the configured CA (else the system's) and client
    certificate, if any."""
    context = ssl.create_default_context(cafile=kafka.ssl_cafile or None)
    if kafka.ssl_certfile:
        context.load_cert_chain(kafka.ssl_certfile, kafka.ssl_keyfile or None)
    return context


def broker_credentials(kafka: KafkaSettings) -> Any:
    """Faust credentials for the configured security protocol (None for PLAINTEXT)."""
    if kafka.security_protocol == "PLAINTEXT":
        return None
    context = ssl_context(kafka) if kafka.security_protocol.endswith("SSL") else None
    if kafka.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.reveal(),
            mechanism=kafka.sasl_mechanism,
            ssl_context=context,
        )
    return faust.SSLCredentials(context)


def create_app(settings: Settings) -> faust.App:
    """A Faust app for ``settings``: group, brokers, credentials, web server and data dir."""
    worker = settings.worker
    datadir = worker.data_dir / worker.group_id
    # Faust creates only the last level of its data dir.
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
        # A new group starts at the beginning: records produced before the first worker
        # started are processed too.
        consumer_auto_offset_reset="earliest",
        # Back-pressure: fetch and buffer only one batch ahead per topic (the worker's own
        # pipeline holds a batch more, plus the batches in flight), so a graceful stop, which
        # finishes everything already handed to the agents, stays short.
        broker_max_poll_records=worker.max_batch,
        stream_buffer_maxsize=worker.max_batch,
        # No tables, so no standby replicas: aiokafka's round-robin assignor then replaces
        # Faust's, whose assignments carry each member's web URL and which crashes aiokafka's
        # group coordinator (the worker then hangs without partitions) when a static member
        # rejoins under another URL and is handed its old assignment.
        table_standby_replicas=0,
        broker_session_timeout=worker.session_timeout_s,
        broker_heartbeat_interval=worker.heartbeat_interval_s,
        broker_commit_interval=worker.commit_interval_s,
        consumer_group_instance_id=worker.group_instance_id(),
        key_serializer="raw",
        value_serializer="raw",
        autodiscover=False,
    )
    if worker.group_instance_id() is not None:
        leave_group_when_stopping(app)
    return app


def leave_group_when_stopping(app: faust.App) -> None:
    """Make a graceful stop leave the consumer group even under static membership.

    aiokafka sends no LeaveGroup for a static member (it expects it back), so the partitions of
    a worker stopped for good (scaled down, replaced by a pod of another name) would wait
    ``worker.session_timeout_s``. Faust signals ``on_before_shutdown`` after the streams are
    drained and the last offsets committed, before the consumer closes; dropping the instance
    id there makes aiokafka's close send the LeaveGroup by member id, which the broker accepts
    for static members too. A crash sends nothing, which is what static membership is for.
    """

    async def dynamic_from_now(sender: faust.App, **_: Any) -> None:
        # Private aiokafka state (0.14: AIOKafkaConsumer._coordinator); no public way exists.
        consumer = getattr(getattr(sender.consumer, "_thread", None), "_consumer", None)
        coordinator = getattr(consumer, "_coordinator", None)
        if coordinator is not None:
            coordinator._group_instance_id = None

    # mode's Signal types receivers as (sender, *args); this one needs only the sender.
    app.on_before_shutdown.connect(cast(Any, dynamic_from_now))


def raw_topic(app: faust.App, name: str) -> faust.TopicT:
    """A topic whose keys and values are plain bytes."""
    return app.topic(name, key_type=bytes, value_type=bytes)


def run_app(app: faust.App) -> None:
    """Run ``app`` in the foreground until SIGTERM/SIGINT, then stop cleanly."""
    worker = faust.Worker(app, loglevel="INFO", override_logging=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise
