"""The model directory's ``manifest.json``: what the model is, and checks that it is intact.

A model directory holds the ONNX models, the feature files (models.features.FEATURE_FILES), the
CRF scores (crf.npz) and this manifest. Anything missing, corrupt or inconsistent raises
:class:`ModelError` with a stable code, so a worker can refuse the model with a clear message.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from errors import PermanentError
from models.features import FEATURE_FILES
from models.tags import label_set

MANIFEST_FILE = "manifest.json"
CRF_FILE = "crf.npz"
FLOAT_MODEL = "model.onnx"
INT8_MODEL = "model.int8.onnx"
FP16_MODEL = "model.fp16.onnx"
#: Files every model directory must have; FP16_MODEL is optional.
REQUIRED_FILES = (FLOAT_MODEL, INT8_MODEL, CRF_FILE, *FEATURE_FILES)
FORMAT_VERSION = 1


class ModelError(PermanentError):
    """A model directory cannot be used; ``code`` is stable, the message says what to do."""

    MISSING_DIR = "MODEL_MISSING_DIR"
    MISSING_FILE = "MODEL_MISSING_FILE"
    BAD_MANIFEST = "MODEL_BAD_MANIFEST"
    CHECKSUM_MISMATCH = "MODEL_CHECKSUM_MISMATCH"
    VOCAB_MISMATCH = "MODEL_VOCAB_MISMATCH"
    LABELS_MISMATCH = "MODEL_LABELS_MISMATCH"
    BAD_ARTIFACT = "MODEL_BAD_ARTIFACT"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    scheme: str
    entity_types: tuple[str, ...]
    #: Label ids are positions in this tuple (models.tags.label_set of the types and scheme).
    labels: tuple[str, ...]
    #: Longest text the model tags in one piece; longer texts are cut into windows.
    max_length: int
    #: Characters shared by neighbouring windows.
    window_overlap: int
    max_word_length: int
    #: Entries in each feature file (chars and bigrams count the two special tokens).
    vocab_sizes: dict[str, int]
    #: sha256 over the feature files, in FEATURE_FILES order.
    vocab_sha256: str
    opset: int
    #: sha256 of every file in the directory except the manifest.
    files: dict[str, str]
    created_at: str
    training: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def vocab_sha256(file_hashes: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name in FEATURE_FILES:
        digest.update(f"{name}:{file_hashes[name]}\n".encode())
    return digest.hexdigest()


def directory_checksums(directory: Path) -> dict[str, str]:
    """sha256 of every file in the directory except the manifest, by name."""
    return {
        path.name: file_sha256(path)
        for path in sorted(directory.iterdir())
        if path.is_file() and path.name != MANIFEST_FILE
    }


def write_manifest(directory: Path, manifest: Manifest) -> None:
    (directory / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")


def _parse(raw: Any) -> Manifest:
    if not isinstance(raw, dict):
        raise ValueError("the manifest must be a JSON object")
    names = {f.name for f in fields(Manifest)}
    required = {f.name for f in fields(Manifest) if f.default is f.default_factory is MISSING}
    missing = sorted(required - set(raw))
    if missing:
        raise ValueError(f"missing field(s): {', '.join(missing)}")
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}")
    values = dict(raw)
    for name in ("entity_types", "labels"):
        if not isinstance(values[name], list) or not all(isinstance(v, str) for v in values[name]):
            raise ValueError(f"{name} must be a list of strings")
        values[name] = tuple(values[name])
    for name in ("max_length", "window_overlap", "max_word_length", "opset", "format_version"):
        if name in values and not isinstance(values[name], int):
            raise ValueError(f"{name} must be an integer")
    for name in ("files", "vocab_sizes"):
        if not isinstance(values[name], dict):
            raise ValueError(f"{name} must be an object")
    manifest = Manifest(**values)
    if manifest.format_version != FORMAT_VERSION:
        raise ValueError(f"format_version {manifest.format_version} is not {FORMAT_VERSION}")
    if not 0 <= manifest.window_overlap < manifest.max_length // 2:
        raise ValueError("window_overlap must lie in [0, max_length // 2)")
    return manifest


def read_manifest(directory: Path, verify_files: bool = True) -> Manifest:
    """Read and check the manifest; with ``verify_files`` also every file's checksum.

    Raises ModelError: MODEL_MISSING_DIR, MODEL_MISSING_FILE, MODEL_BAD_MANIFEST,
    MODEL_LABELS_MISMATCH, MODEL_VOCAB_MISMATCH (a feature file changed) or
    MODEL_CHECKSUM_MISMATCH (any other file changed).
    """
    if not directory.is_dir():
        raise ModelError(ModelError.MISSING_DIR, f"{directory} is not a model directory")
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise ModelError(ModelError.MISSING_FILE, f"{path} is missing")
    try:
        manifest = _parse(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError included
        raise ModelError(ModelError.BAD_MANIFEST, f"{path}: {exc}") from exc
    if manifest.labels != label_set(manifest.entity_types, manifest.scheme):  # type: ignore[arg-type]
        raise ModelError(
            ModelError.LABELS_MISMATCH,
            f"{path}: labels do not match the {manifest.scheme} labels of {manifest.entity_types}",
        )
    for name in (*REQUIRED_FILES, *manifest.files):
        if not (directory / name).is_file():
            raise ModelError(ModelError.MISSING_FILE, f"{directory / name} is missing")
    if not set(REQUIRED_FILES) <= set(manifest.files):
        raise ModelError(ModelError.BAD_MANIFEST, f"{path}: files must list {REQUIRED_FILES}")
    if verify_files:
        _verify_checksums(directory, manifest)
    return manifest


def _verify_checksums(directory: Path, manifest: Manifest) -> None:
    actual = {name: file_sha256(directory / name) for name in manifest.files}
    if vocab_sha256(actual) != manifest.vocab_sha256:
        raise ModelError(
            ModelError.VOCAB_MISMATCH,
            f"{directory}: the feature files ({', '.join(FEATURE_FILES)}) are not the ones the "
            "model was trained with",
        )
    for name, expected in manifest.files.items():
        if actual[name] != expected:
            raise ModelError(
                ModelError.CHECKSUM_MISMATCH,
                f"{directory / name} is corrupt or was changed (checksum mismatch)",
            )
