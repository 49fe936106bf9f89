"""Scale target: a Kubernetes Deployment's ``scale`` subresource, plus an Event per decision.

The only module of nerstream that imports ``kubernetes`` (an import-linter contract). What it
needs from the API, and nothing more (the RBAC Role in ``k8s/components/autoscaler``): get and
patch ``deployments/scale``, create ``events``.
"""

from __future__ import annotations

import datetime
import json
import socket
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from streams.autoscale.errors import AutoscalePermanentError, AutoscaleTemporaryError
from streams.autoscale.policy import Decision
from streams.settings import AutoscaleSettings

_SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
#: Kubernetes Events carry at most 1 kB of note.
_NOTE_LIMIT = 1024


def api_client(settings: AutoscaleSettings) -> tuple[client.ApiClient, str]:
    """An API client and the namespace to work in: the kubeconfig file when one is set, else the
    pod's service account, else ~/.kube/config."""
    namespace = settings.namespace
    try:
        if not settings.kubeconfig:
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            if not namespace and _SERVICE_ACCOUNT_NAMESPACE.is_file():
                namespace = _SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
            return client.ApiClient(configuration), namespace or "default"
    except ConfigException:
        pass  # not in a cluster: fall back to a kubeconfig
    try:
        api = config.new_client_from_config(config_file=settings.kubeconfig or None)  # type: ignore[no-untyped-call]
        if not namespace:
            _, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                config_file=settings.kubeconfig or None
            )
            namespace = active.get("context", {}).get("namespace", "") if active else ""
    except (ConfigException, OSError) as exc:
        raise AutoscalePermanentError(f"no Kubernetes configuration: {exc}") from exc
    return api, namespace or "default"


def _detail(exc: ApiException) -> str:
    """The API server's own message (a Status object's ``message``), when there is one."""
    try:
        body: Any = json.loads(exc.body or "")
    except ValueError:
        return ""
    return str(body.get("message", "")) if isinstance(body, dict) else ""


def _wrap(exc: ApiException, what: str) -> Exception:
    message = f"cannot {what}: {exc.status} {exc.reason} {_detail(exc)}".rstrip()
    if exc.status in (401, 403, 404, 422):
        return AutoscalePermanentError(message)
    return AutoscaleTemporaryError(message)


class DeploymentTarget:
    """Reads and patches ``deployments/scale`` of one Deployment; records decisions as Events."""

    name = "kubernetes"

    def __init__(self, api: client.ApiClient, namespace: str, deployment: str) -> None:
        self.namespace = namespace
        self.deployment = deployment
        self._apps = client.AppsV1Api(api)
        self._events = client.EventsV1Api(api)
        self._instance = socket.gethostname()

    def replicas(self) -> int:
        try:
            scale: Any = self._apps.read_namespaced_deployment_scale(
                self.deployment, self.namespace
            )
        except ApiException as exc:
            raise _wrap(exc, f"read the scale of {self._ref}") from exc
        return int(scale.spec.replicas or 0)

    def scale(self, replicas: int) -> None:
        try:
            self._apps.patch_namespaced_deployment_scale(
                self.deployment, self.namespace, {"spec": {"replicas": replicas}}
            )
        except ApiException as exc:
            raise _wrap(exc, f"scale {self._ref}") from exc

    def record(self, decision: Decision) -> None:
        """An ``events.k8s.io/v1`` Event on the Deployment (with ``event_time``, which readers
        of the events API need)."""
        reason = {"up": "ScaledUp", "down": "ScaledDown"}.get(decision.direction, "Held")
        event = client.EventsV1Event(
            # <object>.<hex nanoseconds>, as Kubernetes' own event recorders name events.
            metadata=client.V1ObjectMeta(name=f"{self.deployment}.{time.time_ns():x}"),
            event_time=datetime.datetime.now(datetime.UTC),
            reporting_controller="nerstream.io/autoscaler",
            reporting_instance=self._instance[:128],
            action="Scale",
            reason=reason,
            type="Normal",
            note=decision.explain()[:_NOTE_LIMIT],
            regarding=client.V1ObjectReference(
                api_version="apps/v1",
                kind="Deployment",
                name=self.deployment,
                namespace=self.namespace,
            ),
        )
        try:
            self._events.create_namespaced_event(self.namespace, event)
        except ApiException as exc:
            raise _wrap(exc, f"record an event on {self._ref}") from exc

    @property
    def _ref(self) -> str:
        return f"deployment {self.namespace}/{self.deployment}"
