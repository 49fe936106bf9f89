"""Checkpoint -> model directory: ONNX models (float, int8 and fp16), feature files, CRF scores,
manifest. The directory is everything serving needs (models.runtime never imports torch).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.features import FEATURE_FILES, Featurizer
from models.manifest import (
    CRF_FILE,
    FLOAT_MODEL,
    FP16_MODEL,
    INT8_MODEL,
    Manifest,
    directory_checksums,
    read_manifest,
    vocab_sha256,
    write_manifest,
)
from training.checkpoint import checkpoint_featurizer, load_checkpoint
from training.model import Tagger
from training.quantize import calibration_batches, convert_fp16, quantize_int8

log = logging.getLogger(__name__)

OPSET = 17
WINDOW_OVERLAP_FRACTION = 5
INPUT_NAMES = ["chars", "bigrams", "lexicon", "lengths"]
OUTPUT_NAMES = ["emissions"]


def export_onnx(model: Tagger, featurizer: Featurizer, path: Path) -> None:
    """Dynamic batch and time axes; traced on two rows of different lengths."""
    texts = ["中华人民共和国国务院总理", "北京大学"]
    batch = featurizer.encode(texts)
    arguments = tuple(torch.from_numpy(value) for value in batch.as_inputs().values())
    axes = {
        "chars": {0: "batch", 1: "time"},
        "bigrams": {0: "batch", 1: "time"},
        "lexicon": {0: "batch", 1: "time"},
        "lengths": {0: "batch"},
        "emissions": {0: "batch", 1: "time"},
    }
    with warnings.catch_warnings():
        # The TorchScript exporter warns about its own deprecation and LSTM batch sizes.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            arguments,
            str(path),
            input_names=INPUT_NAMES,
            output_names=OUTPUT_NAMES,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def _write_derived_models(staging: Path, featurizer: Featurizer, training: dict[str, Any]) -> None:
    """int8 (calibrated on the training sources) and fp16 models from the staged float model."""
    calibration = calibration_batches(featurizer, training["train_data"], training["max_length"])
    quantize_int8(staging / FLOAT_MODEL, staging / INT8_MODEL, calibration)
    convert_fp16(staging / FLOAT_MODEL, staging / FP16_MODEL)


def _write_directory(output: Path, fill: Callable[[Path], Manifest]) -> Path:
    """Fill a staging directory next to ``output`` (``fill`` writes the files and returns the
    manifest), check it, then put it in ``output``'s place (replacing it)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=output.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; a model directory is package data
    try:
        write_manifest(staging, fill(staging))
        read_manifest(staging)
        if output.exists():
            shutil.rmtree(output)
        staging.replace(output)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return output


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def export_model(checkpoint: Path, output: Path) -> Path:
    """Write a complete, validated model directory at ``output`` (replacing it)."""
    model, payload = load_checkpoint(checkpoint)
    config = payload["config"]
    featurizer = checkpoint_featurizer(payload)

    def fill(staging: Path) -> Manifest:
        featurizer.save(staging)
        transitions, start, end = model.crf.numpy_scores()
        np.savez(staging / CRF_FILE, transitions=transitions, start=start, end=end)
        export_onnx(model, featurizer, staging / FLOAT_MODEL)
        _write_derived_models(staging, featurizer, config)
        files = directory_checksums(staging)
        return Manifest(
            name=config["name"],
            version=config["version"],
            scheme=config["scheme"],
            entity_types=tuple(config["entity_types"]),
            labels=tuple(payload["labels"]),
            max_length=config["max_length"],
            # Enough context on both sides of a window cut for an entity to be seen whole.
            window_overlap=config["max_length"] // WINDOW_OVERLAP_FRACTION,
            max_word_length=config["max_word_length"],
            vocab_sizes={
                "chars": len(featurizer.chars),
                "bigrams": len(featurizer.bigrams),
                "lexicon": len(featurizer.lexicon),
            },
            vocab_sha256=vocab_sha256({name: files[name] for name in FEATURE_FILES}),
            opset=OPSET,
            files=files,
            created_at=_now(),
            training=config,
            data=payload["data"],
            metrics={"dev": payload["dev"], "step": payload["step"], "epoch": payload["epoch"]},
        )

    _write_directory(output, fill)
    log.info("exported %s to %s", checkpoint, output)
    return output


def requantize_model(source: Path, output: Path, version: str) -> Path:
    """``source``'s model directory with its int8 and fp16 models rebuilt from its float model
    by this checkout's quantizer, as model ``version`` at ``output`` (no checkpoint needed:
    weights, features and CRF are copied unchanged)."""
    manifest = read_manifest(source)
    if source.resolve() == output.resolve() and version == manifest.version:
        raise ValueError(f"{source}: a rebuilt model needs a new version (it is {version})")

    def fill(staging: Path) -> Manifest:
        for name in (*FEATURE_FILES, CRF_FILE, FLOAT_MODEL):
            shutil.copy2(source / name, staging / name)
        featurizer = Featurizer.load(staging, manifest.max_word_length)
        _write_derived_models(staging, featurizer, manifest.training)
        return dataclasses.replace(
            manifest,
            version=version,
            files=directory_checksums(staging),
            created_at=_now(),  # training and metrics still describe the weights' training
        )

    _write_directory(output, fill)
    log.info(
        "rebuilt %s's int8 and fp16 models as %s %s in %s", source, manifest.name, version, output
    )
    return output
