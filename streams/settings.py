"""The one settings object: frozen, typed, sections per concern.

Every field is read, in increasing priority, from its default, from an environment variable
``NERSTREAM_<SECTION>_<FIELD>`` (e.g. ``NERSTREAM_KAFKA_BOOTSTRAP_SERVERS``) and from an override
passed by the CLI as ``"section.field"`` (e.g. ``{"kafka.bootstrap_servers": "..."}``).
Invalid or conflicting values raise :class:`SettingsError` at start, never later.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from errors import UsageError

ENV_PREFIX = "NERSTREAM_"

#: The Apache Kafka version the local broker runs; the one place it is pinned.
KAFKA_VERSION = "4.4.0"
#: The Apicurio Registry version ``nerstream local up --registry`` runs (the last line that
#: runs on Java 17); the one place it is pinned.
APICURIO_VERSION = "2.6.13.Final"


class SettingsError(UsageError, ValueError):
    """A setting is missing, malformed, or conflicts with another one (exit 2)."""


class Secret(str):
    """A string that never shows itself when printed or logged."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('****')"

    def __str__(self) -> str:
        return "****"

    def reveal(self) -> str:
        return str.__str__(self)


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nerstream"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "nerstream"


@dataclass(frozen=True)
class KafkaSettings:
    """How both Kafka clients (aiokafka inside Faust, and confluent-kafka) reach the cluster."""

    #: Comma-separated host:port list.
    bootstrap_servers: str = "127.0.0.1:9092"
    #: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    security_protocol: str = "PLAINTEXT"
    #: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 when a SASL protocol is used.
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: Secret = Secret("")
    #: CA bundle for SSL / SASL_SSL.
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""

    def validate(self) -> None:
        protocols = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}
        if self.security_protocol not in protocols:
            raise SettingsError(
                f"kafka.security_protocol must be one of {sorted(protocols)}, "
                f"got {self.security_protocol!r}"
            )
        if not self.bootstrap_servers.strip():
            raise SettingsError("kafka.bootstrap_servers must not be empty")
        uses_sasl = self.security_protocol.startswith("SASL")
        if uses_sasl and not (self.sasl_mechanism and self.sasl_username):
            raise SettingsError(
                f"kafka.security_protocol={self.security_protocol} needs "
                "kafka.sasl_mechanism and kafka.sasl_username"
            )
        if not uses_sasl and self.sasl_mechanism:
            raise SettingsError(
                "kafka.sasl_mechanism is set but kafka.security_protocol "
                f"is {self.security_protocol}"
            )

    def confluent_config(self) -> dict[str, str]:
        """Client properties for confluent-kafka (librdkafka names)."""
        config = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        optional = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password.reveal(),
            "ssl.ca.location": self.ssl_cafile,
            "ssl.certificate.location": self.ssl_certfile,
            "ssl.key.location": self.ssl_keyfile,
        }
        config.update({key: value for key, value in optional.items() if value})
        return config


@dataclass(frozen=True)
class TopicSettings:
    """Topic names, and how the local broker / ``nerstream topics create`` make them."""

    #: Comma-separated input topics; one agent consumes each.
    inputs: tuple[str, ...] = ("nerstream.records.news", "nerstream.records.medical")
    entities: str = "nerstream.entities"
    dead_letter: str = "nerstream.dead-letter"
    #: Review tasks of records the ``review.*`` rules select (off by default).
    review: str = "nerstream.review"
    partitions: int = 4
    replication_factor: int = 1
    #: Format of input values that carry no ``content-type`` header: avro or json.
    default_format: str = "avro"
    #: Per-topic exceptions to ``default_format``, comma-separated ``TOPIC=FORMAT`` pairs.
    formats: tuple[str, ...] = ()

    def validate(self) -> None:
        if not self.inputs:
            raise SettingsError("topics.inputs must name at least one topic")
        self.format_by_topic()
        outputs = {self.entities, self.dead_letter, self.review}
        if len(outputs) != 3:
            raise SettingsError("topics.entities, topics.dead_letter and topics.review must differ")
        if outputs & set(self.inputs):
            raise SettingsError("an input topic must not also be an output topic")
        if self.partitions < 1 or self.replication_factor < 1:
            raise SettingsError("topics.partitions and topics.replication_factor must be >= 1")

    @property
    def all(self) -> tuple[str, ...]:
        return (*self.inputs, self.entities, self.dead_letter, self.review)

    def format_by_topic(self) -> dict[str, str]:
        """The configured format of every input topic (a header can still override it)."""
        from schemas.codecs import FORMATS  # lazily: settings load on every CLI start

        by_topic = dict.fromkeys(self.inputs, self.default_format)
        for item in self.formats:
            topic, sep, format_name = item.partition("=")
            if not sep:
                raise SettingsError(f"topics.formats expects TOPIC=FORMAT items, got {item!r}")
            if topic not in by_topic:
                raise SettingsError(f"topics.formats names {topic!r}, which is not an input topic")
            by_topic[topic] = format_name
        for topic, format_name in by_topic.items():
            if format_name not in FORMATS:
                raise SettingsError(
                    f"format of {topic!r} must be one of {list(FORMATS)}, got {format_name!r}"
                )
        return by_topic


@dataclass(frozen=True)
class WorkerSettings:
    """The Faust worker: consumer group, micro-batching and its web/metrics server."""

    group_id: str = "nerstream"
    #: Most records inferred in one batch.
    max_batch: int = 256
    #: Longest time, in seconds, a fetched record waits before the worker's batcher sees it
    #: (Faust's ``take`` window). Batches are not filled by waiting: the batcher sends what is
    #: there whenever the model is free (see ``latency_target_ms``).
    max_wait_s: float = 0.01
    #: End-to-end latency the adaptive batcher aims at, in milliseconds: under backlog a batch
    #: grows (up to ``max_batch``) only while its measured cost keeps within a third of this,
    #: and doubles up to ``max_batch`` once the backlog is late anyway (streams.worker.batching).
    #: 0 turns it off: batches are always ``max_batch`` (or what is waiting).
    latency_target_ms: float = 100.0
    #: Batches taken and not yet acked (one inferring, the rest waiting for their delivery
    #: reports); bounds memory and the work a graceful stop finishes.
    max_in_flight_batches: int = 4
    #: Faust's web server (health probes and Prometheus metrics); 127.0.0.1 unless deployed.
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    #: Where Faust keeps its local state.
    data_dir: Path = field(default_factory=lambda: _default_data_dir() / "worker")
    #: This instance's name in dead letters, logs and metrics; empty means ``<hostname>-<pid>``.
    worker_id: str = ""
    #: Hard limit on a record's text, in characters; longer records are dead-lettered
    #: (TEXT_TOO_LONG). Texts longer than the model's window are chunked, not rejected.
    max_text_chars: int = 100_000
    #: Seconds between consumer-lag measurements (the ``nerstream_consumer_lag`` gauge).
    lag_interval_s: float = 10.0
    #: How long one output may stay undelivered (librdkafka ``message.timeout.ms``) before the
    #: worker retries it; after 3 failed attempts it stops without committing (crash-stop).
    delivery_timeout_s: float = 60.0
    #: Log lines as ``text`` or as ``json`` objects (with topic/partition/offset fields).
    log_format: str = "text"
    #: Seconds the broker waits for a silent worker before it gives the worker's partitions to
    #: the others (Faust's ``broker_session_timeout``). Measured (``python -m bench.recovery``):
    #: Faust's 60 s default stalled a crashed worker's partitions for about a minute. The
    #: broker only accepts values between its ``group.min.session.timeout.ms`` (6 s) and
    #: ``group.max.session.timeout.ms`` (30 min).
    session_timeout_s: float = 10.0
    #: Seconds between the consumer's heartbeats (Faust's ``broker_heartbeat_interval``); at
    #: most a third of ``session_timeout_s``, so that two lost heartbeats are survived.
    heartbeat_interval_s: float = 1.0
    #: Seconds between commits of the acknowledged offsets (Faust's ``broker_commit_interval``);
    #: after a crash about this much input is processed again (plus what was in flight). The
    #: first batch delivered after an assignment is committed at once.
    commit_interval_s: float = 1.0
    #: Static group membership (Kafka's ``group.instance.id`` = ``worker_id``): a worker that
    #: crashed and comes back under the same ``worker_id`` within ``session_timeout_s`` gets its
    #: partitions back at once, without a rebalance. Needs an explicit, stable ``worker_id``
    #: (a pod name); with the default ``<hostname>-<pid>`` membership stays dynamic. A graceful
    #: stop still leaves the group, so its partitions move on at once.
    static_membership: bool = True

    def validate(self) -> None:
        if self.max_batch < 1:
            raise SettingsError("worker.max_batch must be >= 1")
        if self.max_wait_s <= 0:
            raise SettingsError("worker.max_wait_s must be > 0")
        if self.latency_target_ms < 0:
            raise SettingsError("worker.latency_target_ms must be >= 0 (0: fixed batches)")
        if self.max_in_flight_batches < 1:
            raise SettingsError("worker.max_in_flight_batches must be >= 1")
        if not 0 < self.web_port < 65536:
            raise SettingsError("worker.web_port must be a TCP port (1-65535)")
        if self.max_text_chars < 1:
            raise SettingsError("worker.max_text_chars must be >= 1")
        if self.lag_interval_s <= 0:
            raise SettingsError("worker.lag_interval_s must be > 0")
        if self.delivery_timeout_s < 1:
            raise SettingsError("worker.delivery_timeout_s must be >= 1")
        if self.log_format not in ("text", "json"):
            raise SettingsError(f"worker.log_format must be text or json, got {self.log_format!r}")
        if self.session_timeout_s <= 0:
            raise SettingsError("worker.session_timeout_s must be > 0")
        if not 0 < self.heartbeat_interval_s * 3 <= self.session_timeout_s:
            raise SettingsError(
                "worker.heartbeat_interval_s must be > 0 and at most a third of "
                "worker.session_timeout_s"
            )
        if self.commit_interval_s <= 0:
            raise SettingsError("worker.commit_interval_s must be > 0")

    def identity(self) -> str:
        """``worker_id``, or ``<hostname>-<pid>`` when it is empty."""
        return self.worker_id or f"{socket.gethostname()}-{os.getpid()}"

    def group_instance_id(self) -> str | None:
        """Kafka's ``group.instance.id`` for static membership, or None (dynamic membership)."""
        return self.worker_id if self.static_membership and self.worker_id else None


@dataclass(frozen=True)
class ModelSettings:
    """Which NER model the worker serves, and how ONNX Runtime runs it."""

    #: A model directory; empty means the default model shipped inside the package (or the
    #: store's current version when ``store_dir`` is set).
    model_dir: str = ""
    #: A model store (``streams.model_store``): the worker serves the version its ``current``
    #: pointer names and switches, without a restart, when the pointer changes.
    store_dir: str = ""
    #: Seconds between two reads of the store's pointer.
    reload_interval_s: float = 5.0
    #: auto (TensorRT, then CUDA, then CPU, as available), tensorrt, cuda or cpu.
    provider: str = "auto"
    #: ONNX Runtime intra-op threads; 0 lets ONNX Runtime decide.
    threads: int = 1
    #: Which of the model directory's ONNX files runs: auto (fp16 on GPU when there is one,
    #: else fp32; int8 on CPU), int8, fp32 or fp16.
    precision: str = "auto"
    #: Most texts (windows of long texts count one each) featurized and CRF-decoded together
    #: in one bucket of similar lengths; ``worker.max_batch`` records make at least as many.
    bucket_texts: int = 1024
    #: Most padded characters (texts x longest text) in one bucket; a longer text still gets a
    #: bucket of its own.
    bucket_chars: int = 102_400
    #: Texts per run of the ONNX network inside a bucket (small runs keep its working set in
    #: the CPU cache).
    onnx_batch: int = 8

    def validate(self) -> None:
        providers = {"auto", "tensorrt", "cuda", "cpu"}
        if self.provider not in providers:
            raise SettingsError(
                f"model.provider must be one of {sorted(providers)}, got {self.provider!r}"
            )
        precisions = {"auto", "int8", "fp32", "fp16"}
        if self.precision not in precisions:
            raise SettingsError(
                f"model.precision must be one of {sorted(precisions)}, got {self.precision!r}"
            )
        if self.threads < 0:
            raise SettingsError("model.threads must be >= 0")
        if self.model_dir and self.store_dir:
            raise SettingsError("set model.model_dir or model.store_dir, not both")
        if self.reload_interval_s <= 0:
            raise SettingsError("model.reload_interval_s must be > 0")
        for name in ("bucket_texts", "bucket_chars", "onnx_batch"):
            if getattr(self, name) < 1:
                raise SettingsError(f"model.{name} must be >= 1")


@dataclass(frozen=True)
class ReviewSettings:
    """Review routing in the worker (which records also go to ``topics.review``, see
    ``streams.worker.review``) and ``nerstream review``, the local web app that corrects them."""

    #: Route a record when one of its entities scores below this, in (0, 1]; 0: off.
    entity_score_below: float = 0.0
    #: Route a record whose sequence confidence (product of its entity scores) is below this;
    #: 0: off.
    sequence_confidence_below: float = 0.0
    #: Fraction of all records routed at random, for an unbiased check; 0: off.
    sample_rate: float = 0.0
    #: Seed of that random sample.
    sample_seed: int = 0
    #: ``nerstream review``'s web server; 127.0.0.1 unless you mean to share it.
    host: str = "127.0.0.1"
    port: int = 6070
    #: Seconds a reviewer holds a task without touching it before another one may get it.
    lease_s: float = 600.0
    #: The tasks, every decision, and (unless ``--output`` says otherwise) the corrections.
    state_dir: Path = field(default_factory=lambda: _default_data_dir() / "review")

    def validate(self) -> None:
        for name in ("entity_score_below", "sequence_confidence_below", "sample_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise SettingsError(f"review.{name} must lie in [0, 1] (0: off)")
        if not 0 < self.port < 65536:
            raise SettingsError("review.port must be a TCP port (1-65535)")
        if self.lease_s <= 0:
            raise SettingsError("review.lease_s must be > 0")


@dataclass(frozen=True)
class LocalKafkaSettings:
    """The single-node KRaft broker that ``nerstream local`` runs for development and tests."""

    port: int = 9092
    controller_port: int = 9093
    #: Broker data, logs and PID file.
    data_dir: Path = field(default_factory=lambda: _default_data_dir() / "kafka")
    #: Jars resolved from Maven Central, one folder per Kafka version.
    cache_dir: Path = field(default_factory=lambda: _default_cache_dir() / "kafka")
    #: Seconds to wait for the broker (and the registry) to answer.
    start_timeout_s: float = 90.0
    #: The local schema registry (Apicurio, ``nerstream local up --registry``): its port, its
    #: log and PID file, and the distribution fetched from Maven Central.
    registry_port: int = 8081
    registry_data_dir: Path = field(default_factory=lambda: _default_data_dir() / "registry")
    registry_cache_dir: Path = field(default_factory=lambda: _default_cache_dir() / "registry")

    def validate(self) -> None:
        ports = (self.port, self.controller_port, self.registry_port)
        if len(set(ports)) != len(ports):
            raise SettingsError(
                "local.port, local.controller_port and local.registry_port must differ"
            )


@dataclass(frozen=True)
class SchemaRegistrySettings:
    """The Confluent wire format: a Confluent-compatible schema registry for inputs and outputs.

    With ``url`` empty (the default) every Avro value is plain schemaless Avro. With it set, the
    worker registers its output schemas on start-up and writes entity events and dead letters
    as magic byte 0 + 4-byte schema id + Avro body; framed inputs are read with their writer
    schema (fetched by id, cached) resolved to the current Record schema; ``produce`` frames
    the records it sends and ``consume`` reads framed outputs.
    """

    #: Base URL of the registry's Confluent API, e.g. ``http://127.0.0.1:8081/apis/ccompat/v7``
    #: (Apicurio) or ``http://registry:8081`` (Confluent). Empty: plain Avro, no registry.
    url: str = ""
    #: HTTP basic authentication (Confluent Cloud: API key and secret); none without a username.
    username: str = ""
    password: Secret = Secret("")
    #: Subject names: ``topic`` (``<topic>-value``), ``record`` (the record's full name) or
    #: ``topic_record`` (``<topic>-<full name>``).
    subject_strategy: str = "topic"
    #: Register the output schemas on start-up. Off: they must already be registered under
    #: their subjects, else the worker refuses to start.
    auto_register: bool = True
    #: Compatibility level set on the subjects it auto-registers; empty leaves the registry's.
    compatibility: str = "BACKWARD"
    #: Seconds one request to the registry may take.
    timeout_s: float = 10.0
    #: How long the worker backs off and retries while the registry cannot be reached for a new
    #: writer schema, before it stops without committing (crash-stop); records are never
    #: dead-lettered because of an outage.
    outage_timeout_s: float = 300.0

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def validate(self) -> None:
        from schemas.framing import COMPATIBILITY_LEVELS, SUBJECT_STRATEGIES  # lazily, as above

        if self.url and not self.url.startswith(("http://", "https://")):
            raise SettingsError(f"schema_registry.url must be an http(s) URL, got {self.url!r}")
        if self.subject_strategy not in SUBJECT_STRATEGIES:
            raise SettingsError(
                f"schema_registry.subject_strategy must be one of {list(SUBJECT_STRATEGIES)}, "
                f"got {self.subject_strategy!r}"
            )
        if self.compatibility and self.compatibility not in COMPATIBILITY_LEVELS:
            raise SettingsError(
                f"schema_registry.compatibility must be empty or one of "
                f"{list(COMPATIBILITY_LEVELS)}, got {self.compatibility!r}"
            )
        if self.timeout_s <= 0 or self.outage_timeout_s < 0:
            raise SettingsError(
                "schema_registry.timeout_s must be > 0 and schema_registry.outage_timeout_s >= 0"
            )


@dataclass(frozen=True)
class AutoscaleSettings:
    """``nerstream autoscale``: the lag-based controller of the worker group (group and topics
    are ``worker.group_id`` and ``topics.inputs``). See ``streams.autoscale.policy``."""

    #: What it scales: ``kubernetes`` (a Deployment's scale subresource) or ``processes``
    #: (local ``nerstream worker`` processes on this host).
    target: str = "kubernetes"
    #: Seconds between two reads of the group's offsets (and two decisions).
    interval_s: float = 10.0
    min_replicas: int = 1
    #: Also capped at the input topics' partition count.
    max_replicas: int = 12
    #: The lag, in seconds of processing, is kept within this: a backlog may build up to it
    #: while arrivals exceed the replicas; scale-down keeps up and drains within it.
    drain_target_s: float = 30.0
    #: Records/s one replica processes (measured: ~1,000-1,150 on one CPU); replaced by the
    #: observed rate while the group is saturated.
    replica_rate: float = 1000.0
    #: Scale down only this long after the last change, to the window's highest recommendation.
    scale_down_window_s: float = 60.0
    #: 0: never below min_replicas; otherwise zero replicas after this long idle.
    scale_to_zero_after_s: float = 0.0
    #: Lag on a partition whose commit has not moved for this long (members alive) is stuck
    #: and does not drive scale-up.
    stuck_after_s: float = 120.0
    #: Seconds of offset history the arrival and processing rates are measured over.
    rate_window_s: float = 30.0
    #: Seconds from asking for a replica until it processes (start, model load, group join):
    #: a decision holds only if the lag stays within drain_target_s that long after the next.
    startup_s: float = 20.0
    #: A scale-up takes the fewest replicas that keep the projected lag within drain_target_s
    #: this long, arrivals rising at their current trend: longer, fewer and larger steps.
    scale_up_horizon_s: float = 150.0
    #: The Deployment to scale; an empty namespace means the pod's own (in a cluster) or the
    #: kubeconfig context's.
    namespace: str = ""
    deployment: str = "nerstream-worker"
    #: A kubeconfig file; empty: the in-cluster service account, else ~/.kube/config.
    kubeconfig: str = ""
    #: Prometheus metrics of the autoscaler; port 0 turns the server off.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    #: Logs and state of the local worker processes (``target=processes``).
    data_dir: Path = field(default_factory=lambda: _default_data_dir() / "autoscale")

    def validate(self) -> None:
        if self.target not in ("kubernetes", "processes"):
            raise SettingsError(
                f"autoscale.target must be kubernetes or processes, got {self.target!r}"
            )
        if self.min_replicas < 0 or self.max_replicas < 1:
            raise SettingsError("autoscale.min_replicas must be >= 0 and max_replicas >= 1")
        if self.min_replicas > self.max_replicas:
            raise SettingsError("autoscale.min_replicas must not exceed autoscale.max_replicas")
        for name in ("interval_s", "drain_target_s", "replica_rate"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"autoscale.{name} must be > 0")
        for name in (
            "scale_down_window_s",
            "scale_to_zero_after_s",
            "stuck_after_s",
            "startup_s",
            "scale_up_horizon_s",
        ):
            if getattr(self, name) < 0:
                raise SettingsError(f"autoscale.{name} must be >= 0")
        if self.rate_window_s < self.interval_s:
            raise SettingsError("autoscale.rate_window_s must be >= autoscale.interval_s")
        if self.scale_to_zero_after_s > 0 and self.min_replicas > 0:
            raise SettingsError("autoscale.scale_to_zero_after_s needs autoscale.min_replicas=0")
        if not 0 <= self.metrics_port < 65536:
            raise SettingsError("autoscale.metrics_port must be a TCP port, or 0 for none")


@dataclass(frozen=True)
class ServeSettings:
    """``nerstream serve``: the HTTP API, its limits, auth and its dynamic batching (the model
    is ``model.*``, as for the worker)."""

    #: 127.0.0.1 unless deployed (the container image sets 0.0.0.0).
    host: str = "127.0.0.1"
    port: int = 8080
    #: Most texts (or records) in one request (413 above it).
    max_texts: int = 256
    #: Most characters in one text (413 above it).
    max_text_chars: int = 10_000
    #: Most characters in all texts of one request (413 above it).
    max_request_chars: int = 200_000
    #: Most bytes of one request body (413 above it).
    max_body_bytes: int = 1_048_576
    #: Requests admitted and not yet answered (waiting for or in a model call); one more is
    #: refused with 429 rather than queued without bound.
    max_pending_requests: int = 512
    #: How long, in milliseconds, the first request waiting for the model waits for others to
    #: join its model call once the model is free; 0 dispatches at once. Requests that arrive
    #: while the model is busy join the next call anyway.
    batch_window_ms: float = 2.0
    #: Most texts in one model call.
    max_batch: int = 256
    #: Latency the adaptive batcher aims at (``worker.latency_target_ms``'s logic), in
    #: milliseconds; 0: every call takes up to ``max_batch`` texts.
    latency_target_ms: float = 50.0
    #: Bearer token that ``/v1/*`` requires; empty (and no ``auth_token_file``): no auth.
    auth_token: Secret = Secret("")
    #: A file holding the bearer token (e.g. a mounted Kubernetes Secret); trailing whitespace
    #: is ignored. Not together with ``auth_token``.
    auth_token_file: str = ""

    def validate(self) -> None:
        if not 0 < self.port < 65536:
            raise SettingsError("serve.port must be a TCP port (1-65535)")
        for name in (
            "max_texts",
            "max_text_chars",
            "max_request_chars",
            "max_body_bytes",
            "max_pending_requests",
            "max_batch",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"serve.{name} must be >= 1")
        if self.batch_window_ms < 0:
            raise SettingsError("serve.batch_window_ms must be >= 0")
        if self.latency_target_ms < 0:
            raise SettingsError("serve.latency_target_ms must be >= 0 (0: full batches)")
        if self.auth_token and self.auth_token_file:
            raise SettingsError("set serve.auth_token or serve.auth_token_file, not both")

    def bearer_token(self) -> Secret | None:
        """The token requests must bear, read from ``auth_token_file`` if set; None: no auth."""
        if self.auth_token_file:
            try:
                token = Path(self.auth_token_file).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise SettingsError(
                    f"serve.auth_token_file: cannot read {self.auth_token_file}: {exc}"
                ) from exc
            if not token:
                raise SettingsError(f"serve.auth_token_file: {self.auth_token_file} is empty")
            return Secret(token)
        return self.auth_token or None


@dataclass(frozen=True)
class Settings:
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    topics: TopicSettings = field(default_factory=TopicSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    local: LocalKafkaSettings = field(default_factory=LocalKafkaSettings)
    schema_registry: SchemaRegistrySettings = field(default_factory=SchemaRegistrySettings)
    review: ReviewSettings = field(default_factory=ReviewSettings)
    autoscale: AutoscaleSettings = field(default_factory=AutoscaleSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)

    def validate(self) -> Settings:
        for section in dataclasses.fields(self):
            getattr(self, section.name).validate()
        return self

    def describe(self) -> dict[str, dict[str, str]]:
        """Every field as text, secrets masked: what ``nerstream settings`` prints."""
        return {
            section.name: {
                name: _format(value) for name, value in vars(getattr(self, section.name)).items()
            }
            for section in dataclasses.fields(self)
        }


def _format(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def _parse(raw: str, annotation: Any, key: str) -> Any:
    try:
        if annotation is bool:
            lowered = raw.strip().lower()
            if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError(raw)
            return lowered in {"1", "true", "yes", "on"}
        if annotation in (int, float, Path, Secret, str):
            return annotation(raw)
        if typing.get_origin(annotation) is tuple:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise SettingsError(f"{key}: cannot read {raw!r} as {annotation.__name__}") from exc
    raise SettingsError(f"{key}: unsupported setting type {annotation!r}")


def _section_types(section_cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(section_cls)
    return {
        name: (typing.get_args(hint)[0] if isinstance(hint, types.UnionType) else hint)
        for name, hint in hints.items()
    }


def load_settings(
    overrides: Mapping[str, str | None] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Build and validate settings from defaults, ``NERSTREAM_*`` variables and overrides.

    ``overrides`` maps ``"section.field"`` to a raw string (``None`` values are ignored, so
    unset CLI flags can be passed straight through).
    """
    env = os.environ if env is None else env
    overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
    section_classes = {f.name: f.type for f in dataclasses.fields(Settings)}
    known: set[str] = set()
    sections: dict[str, Any] = {}
    hints = typing.get_type_hints(Settings)
    for section_name in section_classes:
        section_cls = hints[section_name]
        values: dict[str, Any] = {}
        for name, annotation in _section_types(section_cls).items():
            key = f"{section_name}.{name}"
            known.add(key)
            env_name = f"{ENV_PREFIX}{section_name}_{name}".upper()
            raw = overrides.get(key, env.get(env_name))
            if raw is not None:
                values[name] = _parse(raw, annotation, key)
        sections[section_name] = section_cls(**values)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")
    return Settings(**sections).validate()
