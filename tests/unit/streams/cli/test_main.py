"""The ``nerstream`` CLI without Kafka: settings handling and exit codes."""

from __future__ import annotations

import json

import pytest

from streams.cli import EXIT_OK, EXIT_USAGE, main


def test_settings_prints_effective_settings_with_overrides(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NERSTREAM_WORKER_GROUP_ID", "from-env")
    code = main(["--bootstrap-servers", "broker:1", "--set", "topics.partitions=7", "settings"])
    assert code == EXIT_OK
    printed = json.loads(capsys.readouterr().out)
    assert printed["kafka"]["bootstrap_servers"] == "broker:1"
    assert printed["topics"]["partitions"] == "7"
    assert printed["worker"]["group_id"] == "from-env"


def test_schema_registry_flag_turns_on_registry_mode(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NERSTREAM_SCHEMA_REGISTRY_PASSWORD", "s3cret")
    url = "http://127.0.0.1:8081/apis/ccompat/v7"
    assert main(["--schema-registry", url, "settings"]) == EXIT_OK
    out = capsys.readouterr().out
    registry = json.loads(out)["schema_registry"]
    assert registry["url"] == url and registry["compatibility"] == "BACKWARD"
    assert "s3cret" not in out
    assert main(["--schema-registry", "registry:8081", "settings"]) == EXIT_USAGE
    assert "schema_registry.url must be an http(s) URL" in capsys.readouterr().err


def test_settings_masks_secrets(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NERSTREAM_KAFKA_SASL_PASSWORD", "hunter2")
    assert main(["settings"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "hunter2" not in out
    assert json.loads(out)["kafka"]["sasl_password"] == "****"


@pytest.mark.parametrize(
    "argv",
    [
        ["--set", "worker.max_batch=zero", "settings"],
        ["--set", "no.such=1", "settings"],
        ["--set", "missing-equals", "settings"],
        ["local", "status", "--port", "not-a-port"],
        ["passthrough", "--source", "a", "--sink", "b", "--web-port", "0"],
    ],
)
def test_bad_settings_exit_2_with_a_message(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == EXIT_USAGE
    assert "invalid settings" in capsys.readouterr().err


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["local", "sideways"])
    assert exited.value.code == EXIT_USAGE
    assert "invalid choice" in capsys.readouterr().err
