"""The autoscaler's Kubernetes scale target against a real kube-apiserver (tests/integration/
kube.py), with the autoscaler's own ServiceAccount, Role and RoleBinding from k8s/: it can read
and patch ``deployments/scale`` of the worker Deployment and create Events, and nothing more."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, utils
from kubernetes.client.exceptions import ApiException

from streams.autoscale.errors import AutoscalePermanentError
from streams.autoscale.kube import DeploymentTarget, api_client
from streams.autoscale.policy import Decision
from streams.settings import AutoscaleSettings
from tests.conftest import REPO_ROOT
from tests.integration.kube import KubeServer, kube_binaries, start_kube

pytestmark = [pytest.mark.integration]

K8S = REPO_ROOT / "k8s"


@pytest.fixture(scope="session")
def kube_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeServer]:
    bin_dir = kube_binaries()
    if bin_dir is None:
        message = "kube-apiserver/etcd not built: run scripts/kube.sh (scripts/test.sh does)"
        if os.environ.get("NERSTREAM_REQUIRE_KUBE"):
            pytest.fail(message)
        pytest.skip(message)
    yield from start_kube(tmp_path_factory.mktemp("kube"), bin_dir)


def connect(server: KubeServer, token: str) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = server.url
    configuration.ssl_ca_cert = str(server.ca_file)
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(configuration)


def manifests(path: Path, namespace: str) -> list[dict[str, Any]]:
    """The objects of one k8s/ file, placed in ``namespace`` as kustomize's namespace: does."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
    return docs


def status(call: Callable[[], object]) -> int:
    try:
        call()
    except ApiException as exc:
        return int(exc.status)
    return 200


@pytest.fixture
def cluster(kube_server: KubeServer) -> dict[str, Any]:
    """A fresh namespace with the worker Deployment and the autoscaler's RBAC applied (as admin),
    and an API client holding the autoscaler ServiceAccount's token."""
    admin = connect(kube_server, kube_server.admin_token)
    namespace = f"nerstream-{uuid.uuid4().hex[:10]}"
    client.CoreV1Api(admin).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
    )
    for doc in [
        *manifests(K8S / "base/deployment.yaml", namespace),
        *manifests(K8S / "components/autoscaler/rbac.yaml", namespace),
    ]:
        utils.create_from_dict(admin, doc, namespace=namespace)
    other = manifests(K8S / "base/deployment.yaml", namespace)[0]
    other["metadata"]["name"] = "other"
    utils.create_from_dict(admin, other, namespace=namespace)
    token: Any = (
        client.CoreV1Api(admin)
        .create_namespaced_service_account_token(
            "nerstream-autoscaler",
            namespace,
            client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
            ),
        )
        .status
    )
    token = token.token
    return {
        "admin": admin,
        "autoscaler": connect(kube_server, token),
        "token": token,
        "namespace": namespace,
    }


def decision(current: int, desired: int) -> Decision:
    return Decision(
        at=0.0,
        current=current,
        desired=desired,
        recommended=desired,
        reason="projected lag 40.0 s over the 30 s target within 30 s at 2; 5 keep it within",
        lag=120_000,
        backlog=120_000,
        arrival_rate=3000.0,
        arrival_trend=0.0,
        replica_rate=1000.0,
        rate_source="configured",
        partitions=12,
    )


def test_the_autoscaler_scales_and_explains_with_its_own_service_account(
    cluster: dict[str, Any],
) -> None:
    namespace = cluster["namespace"]
    target = DeploymentTarget(cluster["autoscaler"], namespace, "nerstream-worker")
    assert target.replicas() == 2  # as k8s/base/deployment.yaml has it
    target.scale(5)
    assert target.replicas() == 5
    stored = client.AppsV1Api(cluster["admin"]).read_namespaced_deployment(
        "nerstream-worker", namespace
    )
    assert stored.spec.replicas == 5

    target.record(decision(2, 5))
    events = client.EventsV1Api(cluster["admin"]).list_namespaced_event(namespace).items
    assert len(events) == 1
    event: Any = events[0]
    assert (event.reason, event.action, event.type) == ("ScaledUp", "Scale", "Normal")
    assert event.regarding.kind == "Deployment" and event.regarding.name == "nerstream-worker"
    assert event.note.startswith("up 2->5: projected lag 40.0 s over the 30 s target")
    assert event.reporting_controller == "nerstream.io/autoscaler"


def test_the_autoscaler_can_do_nothing_more(cluster: dict[str, Any]) -> None:
    namespace, api = cluster["namespace"], cluster["autoscaler"]
    apps, core, events = client.AppsV1Api(api), client.CoreV1Api(api), client.EventsV1Api(api)
    forbidden = {
        "read the Deployment (its pod template)": lambda: apps.read_namespaced_deployment(
            "nerstream-worker", namespace
        ),
        "patch the Deployment": lambda: apps.patch_namespaced_deployment(
            "nerstream-worker", namespace, {"spec": {"paused": True}}
        ),
        "delete the Deployment": lambda: apps.delete_namespaced_deployment(
            "nerstream-worker", namespace
        ),
        "scale another Deployment": lambda: apps.patch_namespaced_deployment_scale(
            "other", namespace, {"spec": {"replicas": 9}}
        ),
        "read another Deployment's scale": lambda: apps.read_namespaced_deployment_scale(
            "other", namespace
        ),
        "list pods": lambda: core.list_namespaced_pod(namespace),
        "read secrets": lambda: core.list_namespaced_secret(namespace),
        "read events": lambda: events.list_namespaced_event(namespace),
        "delete events": lambda: events.delete_collection_namespaced_event(namespace),
        "scale in another namespace": lambda: apps.read_namespaced_deployment_scale(
            "nerstream-worker", "default"
        ),
    }
    statuses = {what: status(call) for what, call in forbidden.items()}
    assert statuses == dict.fromkeys(forbidden, 403)
    with pytest.raises(AutoscalePermanentError, match="403"):
        DeploymentTarget(api, namespace, "other").scale(3)


def test_api_client_reads_a_kubeconfig_and_its_namespace(
    cluster: dict[str, Any], kube_server: KubeServer, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "test",
                        "cluster": {
                            "server": kube_server.url,
                            "certificate-authority": str(kube_server.ca_file),
                        },
                    }
                ],
                "users": [{"name": "autoscaler", "user": {"token": cluster["token"]}}],
                "contexts": [
                    {
                        "name": "test",
                        "context": {
                            "cluster": "test",
                            "user": "autoscaler",
                            "namespace": cluster["namespace"],
                        },
                    }
                ],
                "current-context": "test",
            }
        )
    )
    api, namespace = api_client(AutoscaleSettings(kubeconfig=str(kubeconfig)))
    assert namespace == cluster["namespace"]
    assert DeploymentTarget(api, namespace, "nerstream-worker").replicas() == 2
