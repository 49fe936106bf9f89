"""The ``nerstream`` CLI without Kafka: settings handling and exit codes."""

from __future__ import annotations

import json

import pytest

from streams.cli import EXIT_OK, EXIT_USAGE, build_parser, main
from streams.cli.common import settings_overrides


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


def test_set_is_accepted_after_the_command_too() -> None:
    # The README's command, exactly as written there.
    args = build_parser().parse_args(
        ["local", "up", "--port", "19092", "--set", "local.controller_port=19093"]
    )
    assert settings_overrides(args) == {"local.port": "19092", "local.controller_port": "19093"}
    before = ["--set", "worker.max_batch=3", "--set", "worker.group_id=g"]
    both = build_parser().parse_args([*before, "settings", "--set", "worker.max_batch=5"])
    # After the command wins over before it, like a later flag.
    assert settings_overrides(both) == {"worker.max_batch": "5", "worker.group_id": "g"}


def test_set_after_the_command_reaches_the_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settings", "--set", "topics.partitions=9"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["topics"]["partitions"] == "9"


def test_train_keeps_its_own_set_for_config_keys() -> None:
    args = build_parser().parse_args(["train", "--config", "c.json", "--set", "epochs=1"])
    assert args.config_set == ["epochs=1"]
    assert settings_overrides(args) == {}


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
        ["settings", "--set", "no.such=1"],
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
