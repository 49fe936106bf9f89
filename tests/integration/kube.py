"""A real Kubernetes API server for tests: etcd + kube-apiserver built by scripts/kube.sh,
started on free loopback ports with RBAC on, a self-signed certificate and a static admin token.

No controller-manager runs: Deployments are stored and their scale subresource works, but no
pods start. Each test works in a namespace of its own and never waits for a delete.
"""

from __future__ import annotations

import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO_ROOT, free_port

ADMIN_TOKEN = "nerstream-test-admin"  # a test cluster's static token


@dataclass(frozen=True)
class KubeServer:
    url: str
    ca_file: Path
    admin_token: str


def kube_binaries() -> Path | None:
    """The cached binaries' directory, or None when scripts/kube.sh has not built them."""
    out = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts/kube.sh"), "--print-dir"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    directory = Path(out)
    ok = all((directory / name).is_file() for name in ("kube-apiserver", "etcd"))
    return directory if ok else None


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _wait(
    url: str, timeout_s: float, context: ssl.SSLContext | None = None, token: str = ""
) -> None:
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    while True:
        try:
            with urllib.request.urlopen(request, timeout=2, context=context) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} not ready after {timeout_s} s")
        time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_kube(directory: Path, bin_dir: Path) -> Iterator[KubeServer]:
    """etcd and kube-apiserver in ``directory`` (both on 127.0.0.1), stopped at the end."""
    crt, key = directory / "apiserver.crt", directory / "apiserver.key"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
        "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(crt),
    )  # fmt: skip
    sa_key, sa_pub = directory / "sa.key", directory / "sa.pub"
    _openssl("genrsa", "-out", str(sa_key), "2048")
    _openssl("rsa", "-in", str(sa_key), "-pubout", "-out", str(sa_pub))
    tokens = directory / "tokens.csv"
    tokens.write_text(f'{ADMIN_TOKEN},nerstream-admin,nerstream-admin,"system:masters"\n')
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    etcd_log = (directory / "etcd.log").open("ab")
    api_log = (directory / "apiserver.log").open("ab")
    etcd = subprocess.Popen(
        [
            str(bin_dir / "etcd"),
            "--name=test",
            f"--data-dir={directory / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=test=http://127.0.0.1:{peer_port}",
        ],
        stdout=etcd_log,
        stderr=subprocess.STDOUT,
    )
    apiserver: subprocess.Popen[bytes] | None = None
    try:
        _wait(f"http://127.0.0.1:{etcd_port}/health", 30)
        issuer = f"https://127.0.0.1:{api_port}"
        apiserver = subprocess.Popen(
            [
                str(bin_dir / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",  # or 127.0.0.1 is refused as advertised
                f"--secure-port={api_port}",
                f"--tls-cert-file={crt}",
                f"--tls-private-key-file={key}",
                f"--service-account-issuer={issuer}",
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--profiling=false",
            ],
            stdout=api_log,
            stderr=subprocess.STDOUT,
        )
        context = ssl.create_default_context(cafile=str(crt))
        _wait(f"{issuer}/readyz", 90, context, ADMIN_TOKEN)
        yield KubeServer(issuer, crt, ADMIN_TOKEN)
    finally:
        if apiserver is not None:
            _stop(apiserver)
        _stop(etcd)
        etcd_log.close()
        api_log.close()
