"""``nerstream export``: a checkpoint becomes a model directory, and ``--from-model`` rebuilds a
directory's int8 and fp16 models as a new version, weights unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.manifest import CRF_FILE, FLOAT_MODEL, read_manifest
from models.runtime import NerModel
from streams.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from tests.conftest import TinyModel
from tests.unit.training.test_quantize import keyed, varied_texts


@pytest.mark.training
def test_from_model_rebuilds_the_quantized_models_as_a_new_version(
    tiny_model: TinyModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "rebuilt"
    source_dir = str(tiny_model.model_dir)
    code = main(
        ["export", "--from-model", source_dir, "--version", "0.0.2", "--output", str(output)]
    )
    assert code == EXIT_OK
    assert f"model directory: {output}" in capsys.readouterr().out
    source, rebuilt = read_manifest(tiny_model.model_dir), read_manifest(output)
    assert (rebuilt.name, rebuilt.version) == (source.name, "0.0.2")
    assert (rebuilt.training, rebuilt.metrics) == (source.training, source.metrics)
    for name in (FLOAT_MODEL, CRF_FILE):
        assert rebuilt.files[name] == source.files[name]
    # The same quantizer and calibration as the export: the same int8 entities.
    texts = varied_texts(60)
    expected = NerModel.load(tiny_model.model_dir, provider="cpu", precision="int8").predict(texts)
    found = NerModel.load(output, provider="cpu", precision="int8").predict(texts)
    assert [keyed(entities) for entities in found] == [keyed(entities) for entities in expected]
    stamp = json.loads((output / "manifest.json").read_text())["created_at"]
    assert stamp >= json.loads((tiny_model.model_dir / "manifest.json").read_text())["created_at"]


def test_from_model_needs_a_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["export", "--from-model", str(tmp_path), "--output", str(tmp_path / "out")])
    assert code == EXIT_USAGE
    assert "--from-model needs --version" in capsys.readouterr().err


def test_checkpoint_and_from_model_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["export", "--checkpoint", "c.pt", "--from-model", "m", "--output", "out"])
    assert exited.value.code == EXIT_USAGE


@pytest.mark.training
def test_rebuilding_in_place_needs_a_new_version(
    tiny_model: TinyModel, capsys: pytest.CaptureFixture[str]
) -> None:
    version = read_manifest(tiny_model.model_dir).version
    directory = str(tiny_model.model_dir)
    code = main(["export", "--from-model", directory, "--version", version, "--output", directory])
    assert code == EXIT_FAILED
    assert "needs a new version" in capsys.readouterr().err
    assert read_manifest(tiny_model.model_dir).version == version


def test_a_missing_checkpoint_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.pt"
    code = main(["export", "--checkpoint", str(missing), "--output", str(tmp_path / "out")])
    assert code == EXIT_FAILED
    assert "no such checkpoint" in capsys.readouterr().err
