"""The ``autoscale`` settings section: defaults, environment, and refused combinations."""

from __future__ import annotations

import pytest

from streams.settings import SettingsError, load_settings


def test_defaults_and_environment() -> None:
    scaling = load_settings(env={"NERSTREAM_AUTOSCALE_TARGET": "processes"}).autoscale
    assert scaling.target == "processes"
    assert (scaling.drain_target_s, scaling.replica_rate, scaling.interval_s) == (30, 1000, 10)
    assert load_settings(env={}).describe()["autoscale"]["deployment"] == "nerstream-worker"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"autoscale.target": "docker"}, "kubernetes or processes"),
        ({"autoscale.min_replicas": "5", "autoscale.max_replicas": "2"}, "must not exceed"),
        ({"autoscale.drain_target_s": "0"}, "drain_target_s must be > 0"),
        ({"autoscale.rate_window_s": "5"}, "rate_window_s must be >="),
        ({"autoscale.startup_s": "-1"}, "startup_s must be >= 0"),
        ({"autoscale.scale_to_zero_after_s": "60"}, "needs autoscale.min_replicas=0"),
        ({"autoscale.metrics_port": "70000"}, "metrics_port"),
    ],
)
def test_refused(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(overrides, env={})
