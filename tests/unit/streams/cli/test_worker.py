"""The worker's CLI commands and settings, without Kafka: what is refused at start, and how."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.cli import EXIT_USAGE, main
from streams.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"topics.formats": "nerstream.records.news=xml"}, "must be one of"),
        ({"topics.formats": "elsewhere=json"}, "not an input topic"),
        ({"topics.formats": "nerstream.records.news"}, "TOPIC=FORMAT"),
        ({"topics.default_format": "protobuf"}, "must be one of"),
        ({"worker.max_text_chars": "0"}, "max_text_chars"),
        ({"worker.lag_interval_s": "0"}, "lag_interval_s"),
        ({"worker.delivery_timeout_s": "0.5"}, "delivery_timeout_s"),
        ({"worker.log_format": "xml"}, "log_format"),
    ],
)
def test_invalid_worker_settings_are_refused(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(overrides, env={})


def test_formats_per_topic_override_the_default() -> None:
    settings = load_settings(
        {"topics.inputs": "a,b,c", "topics.default_format": "json", "topics.formats": "b=avro"},
        env={},
    )
    assert settings.topics.format_by_topic() == {"a": "json", "b": "avro", "c": "json"}


def test_worker_identity_defaults_to_host_and_pid() -> None:
    assert load_settings({"worker.worker_id": "pod-7"}, env={}).worker.identity() == "pod-7"
    assert load_settings({}, env={}).worker.identity().rsplit("-", 1)[1].isdigit()


def test_worker_with_conflicting_settings_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--set", "topics.formats=elsewhere=json", "worker"])
    assert code == EXIT_USAGE
    assert "not an input topic" in capsys.readouterr().err


def test_worker_with_an_unusable_model_dir_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["worker", "--model-dir", str(tmp_path / "missing")])
    assert code == EXIT_USAGE
    assert "cannot load the model" in capsys.readouterr().err


def test_produce_refuses_a_missing_file_or_unknown_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["produce", str(tmp_path / "none.jsonl"), "--topic", "t"]) == EXIT_USAGE
    assert "no such file" in capsys.readouterr().err
    notes = tmp_path / "notes.txt"
    notes.write_text("x", encoding="utf-8")
    assert main(["produce", str(notes), "--topic", "t"]) == EXIT_USAGE
    assert "--format" in capsys.readouterr().err
