"""scripts/validate_k8s.py really rejects what the API server would."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import yaml

from tests.conftest import REPO_ROOT
from tests.unit.deploy.scripts import load_script


def validator() -> ModuleType:
    return load_script("scripts/validate_k8s.py")


def deployment() -> dict[str, Any]:
    text = (REPO_ROOT / "k8s/base/deployment.yaml").read_text()
    doc: dict[str, Any] = yaml.safe_load(text)
    return doc


def test_the_worker_deployment_is_valid_and_a_typo_is_not() -> None:
    check = validator().check
    good = deployment()
    assert check(good) == []
    bad = deployment()
    bad["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    assert check(bad), "an unknown field must be an error (strict)"
    wrong = deployment()
    wrong["spec"]["replicas"] = "two"
    assert check(wrong)


def test_custom_resources_need_their_fields() -> None:
    check = validator().check
    scaled = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "x"}}
    assert any("spec.triggers" in error for error in check(scaled))
