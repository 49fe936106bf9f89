"""The model store: a directory of model versions and a ``current`` pointer to the served one.

Layout::

    STORE/
      2.0.0/                      a model directory (models.manifest), named by its version
      2.0.0+corrections.1a2b3c4d/
      current                     one line: the version the workers serve

Promoting a version rewrites ``current`` atomically (write a temporary file, then rename), so a
worker polling it never reads half a name; rolling back is promoting the old version again.
Workers watch the pointer (``streams.worker.reload``); this module only reads and writes the
store. Does not belong here: loading models into ONNX Runtime (``streams.model_loader``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from errors import UsageError
from models.manifest import MANIFEST_FILE, ModelError, read_manifest

POINTER = "current"


class ModelStoreError(UsageError):
    """The store, its pointer or a version in it is unusable (exit 2: fix the configuration)."""


def versions(store: Path) -> list[str]:
    """The versions in the store (directories with a manifest), sorted by name."""
    if not store.is_dir():
        raise ModelStoreError(f"{store} is not a model store directory")
    return sorted(path.name for path in store.iterdir() if (path / MANIFEST_FILE).is_file())


def current_version(store: Path) -> str:
    """The version ``current`` names; ModelStoreError when it is missing or names nothing."""
    pointer = store / POINTER
    try:
        version = pointer.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ModelStoreError(
            f"{pointer}: cannot read the pointer ({exc.strerror or exc}); "
            "promote a version with `nerstream models promote VERSION`"
        ) from exc
    if not version or not (store / version / MANIFEST_FILE).is_file():
        raise ModelStoreError(f"{pointer} names {version!r}, which is not a version in the store")
    return version


def promote(store: Path, version: str) -> None:
    """Point ``current`` at ``version`` after checking its manifest and files."""
    directory = store / version
    if version in ("", ".", "..") or "/" in version:
        raise ModelStoreError(f"{version!r} is not a version name")
    try:
        read_manifest(directory)
    except ModelError as exc:
        raise ModelStoreError(f"{version} cannot be promoted: {exc}") from exc
    partial = store / f".{POINTER}.partial"
    partial.write_text(version + "\n", encoding="utf-8")
    partial.replace(store / POINTER)


def add(store: Path, model_dir: Path) -> str:
    """Copy a model directory into the store under its manifest version; return the version."""
    try:
        manifest = read_manifest(model_dir)
    except ModelError as exc:
        raise ModelStoreError(f"{model_dir} cannot be added: {exc}") from exc
    target = store / manifest.version
    if target.exists():
        raise ModelStoreError(f"{target} exists: version {manifest.version} is in the store")
    store.mkdir(parents=True, exist_ok=True)
    partial = store / f".{manifest.version}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(model_dir, partial)
    partial.rename(target)
    return manifest.version
