"""Review tasks in registry mode: framed with the ReviewTask schema registered under the review
topic's subject, and read back by ``nerstream consume`` and ``nerstream review --from-topic``.

A file of its own that sorts after ``test_schema_registry.py``, whose tests start the session's
registry first.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from schemas.codecs import REVIEW_TASK
from streams.registry.client import RegistryClient
from tests.conftest import KafkaScope, Registry
from tests.integration.test_review_routing import check_review_routing, routing_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_review_tasks_in_registry_mode(
    kafka: KafkaScope, registry: Registry, tmp_path: Path, serving_model_dir: Path
) -> None:
    """The tasks are framed with the ReviewTask schema registered under the review topic."""
    base = routing_settings(kafka)
    settings = dataclasses.replace(
        base, schema_registry=dataclasses.replace(base.schema_registry, url=registry.url)
    )
    check_review_routing(settings, tmp_path, serving_model_dir)
    subject = f"{settings.topics.review}-value"
    assert RegistryClient(settings.schema_registry).lookup(subject, REVIEW_TASK.schema_text)
