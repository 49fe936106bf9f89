"""Which model version to load next, and whether a loaded one may serve.

The worker reads the store's ``current`` pointer every ``model.reload_interval_s``
(:meth:`ModelWatcher.wanted`); when it names another version, the worker loads it off the event
loop and off the inference thread, checks it with :func:`smoke_check`, and switches to it
between two batches (``streams.worker.agents``). A version that failed is not tried again until
the pointer changes (to it again, after a fix, or to another one); the old model keeps serving.

Does not belong here: loading (the worker is handed a loader), Faust, threads. The protocol of a
served model lives here because both the worker and the smoke check speak it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from errors import PermanentError
from streams.model_store import POINTER, ModelStoreError, current_version
from streams.worker.pipeline import Entity

#: Texts a new model must tag before it serves: a person, a place, an organisation, a number.
SMOKE_TEXTS = ["张三在北京大学工作了3年。", "没有实体"]


class SmokeCheckError(PermanentError):
    """A loaded model gave unusable results on the smoke texts."""


class ModelManifest(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...


class ServedModel(Protocol):
    """The model as the worker uses it (``models.runtime.NerModel`` satisfies it)."""

    @property
    def manifest(self) -> ModelManifest: ...
    @property
    def provider(self) -> str: ...
    def predict(self, texts: list[str]) -> Sequence[Sequence[Entity]]: ...


def smoke_check(model: ServedModel, expected_version: str) -> None:
    """Raise SmokeCheckError unless the model names itself and tags the smoke texts sanely."""
    manifest = model.manifest
    if not manifest.name or manifest.version != expected_version:
        raise SmokeCheckError(
            f"the manifest says {manifest.name!r} {manifest.version!r}, "
            f"the store calls it {expected_version!r}"
        )
    results = model.predict(list(SMOKE_TEXTS))
    if len(results) != len(SMOKE_TEXTS):
        raise SmokeCheckError(f"{len(results)} results for {len(SMOKE_TEXTS)} smoke texts")
    for text, entities in zip(SMOKE_TEXTS, results, strict=True):
        for entity in entities:
            if not (0 <= entity.start < entity.end <= len(text) and 0 <= entity.score <= 1):
                raise SmokeCheckError(
                    f"entity [{entity.start}, {entity.end}) score {entity.score} is impossible "
                    f"in a smoke text of {len(text)} characters"
                )


@dataclass(frozen=True)
class _Pointer:
    version: str
    #: (mtime_ns, inode) of the pointer file: a rewrite with the same name counts as a change.
    stamp: tuple[int, int]


class ModelWatcher:
    """Follows the store's pointer; says which version to load, remembers failures."""

    def __init__(self, store: Path, serving: str) -> None:
        self.store = store
        self.serving = serving
        self._failed: _Pointer | None = None

    def _pointer(self) -> _Pointer:
        version = current_version(self.store)
        try:
            status = (self.store / POINTER).stat()
        except OSError as exc:  # promoted away between the read and the stat
            raise ModelStoreError(f"{self.store / POINTER}: {exc.strerror or exc}") from exc
        return _Pointer(version, (status.st_mtime_ns, status.st_ino))

    def wanted(self) -> str | None:
        """The version to load now, or None (the served one, or one that failed as is).

        Raises ModelStoreError when the pointer is unreadable or names no version.
        """
        pointer = self._pointer()
        if pointer.version == self.serving or pointer == self._failed:
            return None
        return pointer.version

    def failed(self, version: str) -> None:
        """Loading ``version`` failed: skip it until the pointer is written again."""
        try:
            pointer = self._pointer()
        except ModelStoreError:
            return
        if pointer.version == version:
            self._failed = pointer

    def directory(self, version: str) -> Path:
        return self.store / version
