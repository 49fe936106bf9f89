"""A Kafka broker that requires what production clusters require: TLS, SASL and ACLs.

One listener, ``SASL_SSL`` with SCRAM-SHA-512, on 127.0.0.1 (the KRaft controller listener stays
PLAINTEXT on loopback); a throw-away CA and server certificate made with ``cryptography``; the
KRaft ``StandardAuthorizer``, so a principal may do only what an ACL allows. The SCRAM users are
created when the storage is formatted (``--add-scram``), the only way before the broker runs.
The jars, Java and the base properties come from :mod:`streams.kafka.local`, the code behind
``nerstream local up``.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from streams.kafka import local as local_kafka
from streams.kafka.admin import admin_client
from streams.settings import KAFKA_VERSION, KafkaSettings, LocalKafkaSettings, Secret

ADMIN = "admin"
MECHANISM = "SCRAM-SHA-512"


@dataclass(frozen=True)
class Tls:
    ca_file: Path
    #: The server's private key and certificate chain, one PEM file (Kafka's PEM keystore).
    keystore_file: Path


def make_tls(folder: Path) -> Tls:
    """A CA and a server certificate for 127.0.0.1 and localhost, valid for a day."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nerstream test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    keystore = folder / "server.pem"
    keystore.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + cert.public_bytes(serialization.Encoding.PEM)
        + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    return Tls(ca_file, keystore)


def secure_properties(
    data_dir: Path, port: int, controller_port: int, tls: Tls, admin_password: str
) -> str:
    """``nerstream local``'s broker properties, with the client listener made SASL_SSL and
    the StandardAuthorizer on."""
    base = local_kafka.render_server_properties(data_dir, port, controller_port, 1)
    properties = dict(line.split("=", 1) for line in base.splitlines() if line)
    properties.update(
        {
            "listeners": f"SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"SASL_SSL://127.0.0.1:{port}",
            "inter.broker.listener.name": "SASL_SSL",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{ADMIN}" password="{admin_password}";'
            ),
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(tls.keystore_file),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(tls.ca_file),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            # The broker talks to its own controller over the loopback PLAINTEXT listener,
            # as ANONYMOUS.
            "super.users": f"User:{ADMIN};User:ANONYMOUS",
            "allow.everyone.if.no.acl.found": "false",
        }
    )
    return "".join(f"{key}={value}\n" for key, value in properties.items())


@dataclass
class SecureBroker:
    """A running secure broker and how to reach it as any of its users."""

    data_dir: Path
    port: int
    tls: Tls
    passwords: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    def kafka(self, user: str, password: str | None = None) -> KafkaSettings:
        """Client settings for ``user`` (with its password unless another is given)."""
        return KafkaSettings(
            bootstrap_servers=f"127.0.0.1:{self.port}",
            security_protocol="SASL_SSL",
            sasl_mechanism=MECHANISM,
            sasl_username=user,
            sasl_password=Secret(self.passwords[user] if password is None else password),
            ssl_cafile=str(self.tls.ca_file),
        )

    def start(self, controller_port: int, timeout_s: float = 120.0) -> SecureBroker:
        java = local_kafka.check_java()
        libs = local_kafka.ensure_jars(LocalKafkaSettings().cache_dir, KAFKA_VERSION)
        classpath = str(libs / "*")
        config = self.data_dir / "server.properties"
        config.write_text(
            secure_properties(
                self.data_dir, self.port, controller_port, self.tls, self.passwords[ADMIN]
            ),
            encoding="utf-8",
        )
        log4j = self.data_dir / "log4j2.properties"
        log4j.write_text(
            local_kafka.render_log4j2_properties(self.data_dir / "broker.log"), encoding="utf-8"
        )
        scram = [
            arg
            for user, password in self.passwords.items()
            for arg in ("--add-scram", f"{MECHANISM}=[name={user},password={password}]")
        ]
        subprocess.run(
            [
                *(java, f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath),
                *("kafka.tools.StorageTool", "format", "--cluster-id"),
                *(local_kafka.new_cluster_id(), "--config", str(config), *scram),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        with (self.data_dir / "jvm.out").open("wb") as out:
            self.process = subprocess.Popen(
                [
                    *(java, *local_kafka.HEAP_OPTS, f"-Dlog4j2.configurationFile={log4j}"),
                    *("-cp", classpath, "kafka.Kafka", str(config)),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.process.poll() is None, (self.data_dir / "jvm.out").read_text()
            assert time.monotonic() < deadline, "the secure broker did not answer"
            try:
                # The port first: a client retrying a closed port fills the log.
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                self.admin().list_topics(timeout=5)
                return self
            except (OSError, KafkaException):
                time.sleep(0.5)

    def admin(self) -> AdminClient:
        return admin_client(self.kafka(ADMIN))

    def allow(
        self,
        user: str,
        resource: ResourceType,
        name: str,
        operations: list[AclOperation],
        *,
        pattern: ResourcePatternType = ResourcePatternType.LITERAL,
        permission: AclPermissionType = AclPermissionType.ALLOW,
    ) -> None:
        """ACLs allowing (or denying) ``user`` each of ``operations`` on a resource."""
        bindings = [
            AclBinding(resource, name, pattern, f"User:{user}", "*", operation, permission)
            for operation in operations
        ]
        admin = self.admin()  # referenced until the futures are done, or they fail
        for future in admin.create_acls(bindings).values():
            future.result(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
