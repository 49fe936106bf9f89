"""What the k8s/ manifests and docker-compose.yml promise, read from the files themselves
(``kustomize build`` and the schema check run in scripts/validate_deploy.sh)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from streams.settings import load_settings
from tests.conftest import REPO_ROOT

K8S = REPO_ROOT / "k8s"


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def one(path: Path, kind: str) -> dict[str, Any]:
    found = [d for d in docs(path) if d["kind"] == kind]
    assert len(found) == 1
    return found[0]


def test_worker_deployment_is_restricted_probed_and_drains_gracefully() -> None:
    deployment = one(K8S / "base/deployment.yaml", "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"requests", "limits"} <= set(container["resources"])
    # Longer than the worker's drain: the delivery timeout of the batches in flight.
    drain = load_settings(env={}).worker.delivery_timeout_s
    assert pod["terminationGracePeriodSeconds"] > drain
    settings = one(K8S / "base/configmap.yaml", "ConfigMap")["data"]
    assert settings["NERSTREAM_WORKER_WEB_HOST"] == "0.0.0.0"
    secret_refs = [e for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    assert {e["name"] for e in secret_refs} == {
        "NERSTREAM_KAFKA_SASL_USERNAME",
        "NERSTREAM_KAFKA_SASL_PASSWORD",
    }


def test_every_configmap_key_is_a_real_setting() -> None:
    known = {
        f"NERSTREAM_{section}_{name}".upper()
        for section, fields in load_settings(env={}).describe().items()
        for name in fields
    }
    keys = set(one(K8S / "base/configmap.yaml", "ConfigMap")["data"])
    assert keys <= known, keys - known


def test_autoscaler_role_is_minimal() -> None:
    role = one(K8S / "components/autoscaler/rbac.yaml", "Role")
    rules = {
        (tuple(r["apiGroups"]), tuple(r["resources"]), tuple(r["verbs"])) for r in role["rules"]
    }
    assert rules == {
        (("apps",), ("deployments/scale",), ("get", "patch")),
        (("events.k8s.io",), ("events",), ("create",)),
    }
    scale_rule = next(r for r in role["rules"] if r["resources"] == ["deployments/scale"])
    assert scale_rule["resourceNames"] == ["nerstream-worker"]


def test_keda_lag_threshold_is_derived_from_the_measured_rate() -> None:
    scaled = one(K8S / "components/keda/scaledobject.yaml", "ScaledObject")
    trigger = scaled["spec"]["triggers"][0]["metadata"]
    scaling = load_settings(env={}).autoscale
    assert int(trigger["lagThreshold"]) == round(scaling.replica_rate * scaling.drain_target_s)
    assert trigger["offsetResetPolicy"] == "earliest"  # the worker starts at the earliest
    assert scaled["spec"]["maxReplicaCount"] == scaling.max_replicas


def test_gpu_overlay_asks_for_a_gpu_on_gpu_nodes() -> None:
    patch = one(K8S / "overlays/gpu/worker-gpu.yaml", "Deployment")["spec"]["template"]["spec"]
    assert patch["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert patch["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert patch["nodeSelector"]


def test_compose_publishes_on_loopback_only_and_has_every_service() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {
        "kafka",
        "schema-registry",
        "topics",
        "worker-1",
        "worker-2",
        "autoscaler",
        "prometheus",
        "grafana",
    } <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "--dry-run" in services["autoscaler"]["command"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    dashboard = REPO_ROOT / "deploy/grafana/dashboards/nerstream.json"
    text = dashboard.read_text()
    for metric in (
        "nerstream_consumer_lag",
        "nerstream_records_consumed_total",
        "nerstream_end_to_end_latency_seconds_bucket",
        "nerstream_batch_size",
        "nerstream_records_dead_lettered_total",
    ):
        assert metric in text


def test_serve_deployment_is_restricted_probed_and_outlasts_its_drain() -> None:
    from streams.serve.server import SHUTDOWN_TIMEOUT_S

    manifests = {d["kind"]: d for d in docs(K8S / "base/serve.yaml")}
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == ["serve"]
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["terminationGracePeriodSeconds"] > SHUTDOWN_TIMEOUT_S
    port = load_settings(env={}).serve.port
    assert container["ports"][0]["containerPort"] == port
    assert manifests["Service"]["spec"]["ports"][0]["port"] == port
    env = {e["name"]: e for e in container["env"]}
    assert env["NERSTREAM_SERVE_HOST"]["value"] == "0.0.0.0"
    token = env["NERSTREAM_SERVE_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token["optional"] is True  # no Secret: no auth, inside the cluster only
    assert "serve.yaml" in (K8S / "base/kustomization.yaml").read_text()
