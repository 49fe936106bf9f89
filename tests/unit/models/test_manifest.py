"""Model directory validation: every way a directory can be broken has its own stable code."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from models.features import FEATURE_FILES
from models.manifest import (
    MANIFEST_FILE,
    REQUIRED_FILES,
    Manifest,
    ModelError,
    directory_checksums,
    read_manifest,
    vocab_sha256,
    write_manifest,
)
from models.tags import label_set


def make_model_dir(directory: Path) -> Path:
    """A directory that passes validation (the ONNX files are opaque bytes to the manifest)."""
    directory.mkdir()
    for name in REQUIRED_FILES:
        (directory / name).write_bytes(f"content of {name}\n".encode())
    files = directory_checksums(directory)
    manifest = Manifest(
        name="test",
        version="1.0.0",
        scheme="BMES",
        entity_types=("PER", "LOC"),
        labels=label_set(("PER", "LOC"), "BMES"),
        max_length=100,
        window_overlap=20,
        max_word_length=8,
        vocab_sizes={"chars": 1, "bigrams": 1, "lexicon": 1},
        vocab_sha256=vocab_sha256({name: files[name] for name in FEATURE_FILES}),
        opset=17,
        files=files,
        created_at="2026-01-01T00:00:00+00:00",
    )
    write_manifest(directory, manifest)
    return directory


def edit_manifest(change: Callable[[dict[str, object]], object]) -> Callable[[Path], None]:
    def apply(directory: Path) -> None:
        path = directory / MANIFEST_FILE
        manifest = json.loads(path.read_text("utf-8"))
        change(manifest)
        path.write_text(json.dumps(manifest), "utf-8")

    return apply


def test_a_good_directory_reads_back(tmp_path: Path) -> None:
    manifest = read_manifest(make_model_dir(tmp_path / "model"))
    assert manifest.labels[0] == "O"
    assert set(manifest.files) == set(REQUIRED_FILES)


def _remove_tree(directory: Path) -> None:
    for path in directory.iterdir():
        path.unlink()
    directory.rmdir()


BREAKAGES: dict[str, tuple[Callable[[Path], object], str]] = {
    "manifest missing": (lambda d: (d / MANIFEST_FILE).unlink(), ModelError.MISSING_FILE),
    "onnx model missing": (lambda d: (d / "model.int8.onnx").unlink(), ModelError.MISSING_FILE),
    "vocabulary missing": (lambda d: (d / "chars.txt").unlink(), ModelError.MISSING_FILE),
    "manifest not JSON": (
        lambda d: (d / MANIFEST_FILE).write_text("{not json", "utf-8"),
        ModelError.BAD_MANIFEST,
    ),
    "manifest not an object": (
        lambda d: (d / MANIFEST_FILE).write_text("[]", "utf-8"),
        ModelError.BAD_MANIFEST,
    ),
    "field missing": (edit_manifest(lambda m: m.pop("labels")), ModelError.BAD_MANIFEST),
    "unknown field": (edit_manifest(lambda m: m.update(extra=1)), ModelError.BAD_MANIFEST),
    "wrong field type": (
        edit_manifest(lambda m: m.update(max_length="100")),
        ModelError.BAD_MANIFEST,
    ),
    "labels reordered": (
        edit_manifest(lambda m: m.update(labels=list(reversed(m["labels"])))),  # type: ignore[call-overload]
        ModelError.LABELS_MISMATCH,
    ),
    "labels of other types": (
        edit_manifest(lambda m: m.update(entity_types=["PER", "ORG"])),
        ModelError.LABELS_MISMATCH,
    ),
    "onnx model corrupt": (
        lambda d: (d / "model.onnx").write_bytes(b"garbage"),
        ModelError.CHECKSUM_MISMATCH,
    ),
    "crf scores corrupt": (
        lambda d: (d / "crf.npz").write_bytes(b"garbage"),
        ModelError.CHECKSUM_MISMATCH,
    ),
    "vocabulary changed": (
        lambda d: (d / "bigrams.txt").write_text("xy\n", "utf-8"),
        ModelError.VOCAB_MISMATCH,
    ),
    "directory missing": (_remove_tree, ModelError.MISSING_DIR),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_broken_directories_raise_coded_errors(tmp_path: Path, breakage: str) -> None:
    directory = make_model_dir(tmp_path / "model")
    damage, code = BREAKAGES[breakage]
    damage(directory)
    with pytest.raises(ModelError) as raised:
        read_manifest(directory)
    assert raised.value.code == code
    assert str(raised.value).startswith(code)
