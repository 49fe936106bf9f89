"""Check rendered Kubernetes manifests against the API schemas of the Kubernetes version
nerstream targets (PyPI ``kubernetes-validate``, strict: unknown fields are errors).

Custom resources (KEDA's ScaledObject, the Prometheus Operator's ServiceMonitor) have no schema
there; they are checked for the fields nerstream relies on.
Usage: python scripts/validate_k8s.py FILE.yaml [...]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.37.0"

#: Custom resources: (apiVersion, kind) -> required dotted paths.
CUSTOM = {
    ("keda.sh/v1alpha1", "ScaledObject"): [
        "spec.scaleTargetRef.name",
        "spec.minReplicaCount",
        "spec.maxReplicaCount",
        "spec.triggers",
    ],
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ["spec.selector", "spec.endpoints"],
}


def _get(doc: dict[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def check(doc: dict[str, Any]) -> list[str]:
    name = f"{doc.get('kind')}/{_get(doc, 'metadata.name')}"
    custom = CUSTOM.get((doc.get("apiVersion", ""), doc.get("kind", "")))
    if custom is not None:
        return [f"{name}: missing {path}" for path in custom if _get(doc, path) is None]
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{name}: {exc.message} at {'.'.join(map(str, exc.path))}"]
    return []


def main(paths: list[str]) -> int:
    errors: list[str] = []
    count = 0
    for path in paths:
        for doc in yaml.safe_load_all(Path(path).read_text()):
            if doc:
                count += 1
                errors += [f"{path}: {error}" for error in check(doc)]
    for error in errors:
        print(error, file=sys.stderr)
    print(f"{count} objects checked against Kubernetes {KUBERNETES_VERSION}: {len(errors)} errors")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
