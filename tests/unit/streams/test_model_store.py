"""The model store and the worker's watcher of its pointer: versions, promote, roll back,
failures remembered until the pointer changes, and the smoke check of a loaded model."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from models.manifest import MANIFEST_FILE
from models.runtime import default_model_dir
from streams.model_store import ModelStoreError, add, current_version, promote, versions
from streams.worker.reload import SMOKE_TEXTS, ModelWatcher, SmokeCheckError, smoke_check


def copy_version(store: Path, version: str) -> Path:
    """The shipped model under another version (files hard-linked, the manifest rewritten)."""
    target = store / version
    shutil.copytree(default_model_dir(), target, copy_function=os.link)
    manifest = json.loads((target / MANIFEST_FILE).read_text("utf-8"))
    (target / MANIFEST_FILE).unlink()
    (target / MANIFEST_FILE).write_text(json.dumps({**manifest, "version": version}), "utf-8")
    return target


def test_add_promote_and_roll_back(tmp_path: Path) -> None:
    store = tmp_path / "store"
    shipped = add(store, default_model_dir())
    copy_version(store, "9.0.0")
    assert versions(store) == sorted([shipped, "9.0.0"])
    with pytest.raises(ModelStoreError, match="pointer"):
        current_version(store)
    promote(store, "9.0.0")
    assert current_version(store) == "9.0.0"
    promote(store, shipped)  # rolling back is promoting the old version
    assert current_version(store) == shipped
    with pytest.raises(ModelStoreError, match="is in the store"):
        add(store, default_model_dir())
    for bad in ("nope", "..", "a/b"):
        with pytest.raises(ModelStoreError):
            promote(store, bad)
    (store / "current").write_text("gone\n")
    with pytest.raises(ModelStoreError, match="not a version"):
        current_version(store)


def test_the_watcher_asks_for_a_new_version_once_and_skips_a_failed_one(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for version in ("1", "2", "3"):
        copy_version(store, version)
    promote(store, "1")
    watcher = ModelWatcher(store, serving="1")
    assert watcher.wanted() is None
    promote(store, "2")
    assert watcher.wanted() == "2"
    watcher.failed("2")
    assert watcher.wanted() is None  # not retried while the pointer stays as it is
    promote(store, "2")  # written again (e.g. after a fix): tried again
    assert watcher.wanted() == "2"
    watcher.failed("2")
    promote(store, "3")
    assert watcher.wanted() == "3"
    watcher.serving = "3"
    assert watcher.wanted() is None


class Model:
    def __init__(self, version: str, entities: list[list[SimpleNamespace]] | None = None) -> None:
        self.manifest = SimpleNamespace(name="m", version=version)
        self.provider = "CPUExecutionProvider"
        self.entities = entities

    def predict(self, texts: list[str]) -> list[list[SimpleNamespace]]:
        return self.entities if self.entities is not None else [[] for _ in texts]


def test_smoke_check() -> None:
    person = SimpleNamespace(type="PER", start=0, end=2, score=0.9)
    smoke_check(Model("2", [[person], []]), "2")
    with pytest.raises(SmokeCheckError, match="store calls it"):
        smoke_check(Model("1"), "2")
    with pytest.raises(SmokeCheckError, match="results"):
        smoke_check(Model("2", [[]]), "2")
    beyond = SimpleNamespace(type="PER", start=0, end=len(SMOKE_TEXTS[0]) + 1, score=0.9)
    with pytest.raises(SmokeCheckError, match="impossible"):
        smoke_check(Model("2", [[beyond], []]), "2")
