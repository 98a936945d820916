"""The engine a server process answers with, and how a new model version replaces it.

A reload builds and checks a complete new engine first, then swaps one reference under a lock:
requests already running finish on the engine they leased, new ones get the new engine, and the
old engine is closed when its last request returns. A model that fails to load is never swapped
in. The version to serve is published in the store's ``meta`` table so that every worker
process of a server picks up a reload made through any one of them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from recommender.engine import Engine
from recommender.errors import ModelError
from recommender.models import current_model_dir, set_current

log = logging.getLogger("recommender.api")

SERVING_KEY = "serving_model"


class EngineSlot:
    """Holds the served engine; ``lease`` it per request, ``swap`` in a new one on reload."""

    def __init__(self, engine: Engine, build: Callable[[Path | None], Engine], models_root: Path,
                 poll_seconds: float = 1.0):
        self._engine = engine
        self._build = build
        self._models_root = models_root
        self._poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._reloading = threading.Lock()
        self._leases: dict[Engine, int] = {engine: 0}
        self._published = self._read_published()
        self._next_poll = time.monotonic() + poll_seconds
        self._refused: str | None = None

    @property
    def engine(self) -> Engine:
        """The engine new requests get (for read-only status pages)."""
        return self._engine

    @contextmanager
    def lease(self) -> Iterator[Engine]:
        """The current engine, kept open until the caller is done with it."""
        self._follow_other_workers()
        with self._lock:
            engine = self._engine
            self._leases[engine] += 1
        try:
            yield engine
        finally:
            with self._lock:
                self._leases[engine] -= 1
                retire = engine is not self._engine and self._leases[engine] == 0
                if retire:
                    del self._leases[engine]
            if retire:
                engine.close()

    def reload(self, version: str | None = None) -> tuple[str, str]:
        """Load ``version`` (default: the one ``CURRENT`` names), swap it in, publish it.

        Returns (previous version, new version). Raises ModelError, leaving the old engine
        serving, if the version is missing, incomplete, tampered with or incompatible.
        """
        with self._reloading:
            model_dir = self._model_dir(version)
            new = self._build(model_dir)
            previous = self._swap(new)
            set_current(self._models_root, model_dir.name)
            self._publish(new.model_version)
            return previous, new.model_version

    def close(self) -> None:
        with self._lock:
            engines = list(self._leases)
        for engine in engines:
            engine.close()

    # -- internals ----------------------------------------------------------------------------

    def _model_dir(self, version: str | None) -> Path:
        if version is None:
            model_dir = current_model_dir(self._models_root)
            if model_dir is None:
                raise ModelError("no trained model version to load; run 'recommender train'")
            return model_dir
        if not version or "/" in version or "\\" in version or version.startswith("."):
            raise ModelError(f"{version!r} is not a model version name")
        return self._models_root / version

    def _swap(self, new: Engine) -> str:
        with self._lock:
            old = self._engine
            self._engine = new
            self._leases.setdefault(new, 0)
            retire = self._leases.get(old) == 0 and old is not new
            if retire:
                del self._leases[old]
        if retire:
            old.close()
        log.info("now serving model %s (was %s)", new.model_version, old.model_version)
        return old.model_version

    def _publish(self, version: str) -> None:
        store = self._engine.store
        if store is None:
            return
        record = json.dumps({"version": version, "at": time.time()})
        store.set_meta(SERVING_KEY, record)
        self._published = record

    def _read_published(self) -> str | None:
        store = self._engine.store
        return None if store is None else store.meta(SERVING_KEY)

    def _follow_other_workers(self) -> None:
        """Every ``poll_seconds``, load the version another worker published, if it changed."""
        if self._poll_seconds <= 0 or time.monotonic() < self._next_poll:
            return
        if not self._reloading.acquire(blocking=False):
            return  # another thread is already loading; keep serving meanwhile
        try:
            self._next_poll = time.monotonic() + self._poll_seconds
            record = self._read_published()
            if record is None or record == self._published or record == self._refused:
                return
            version = json.loads(record)["version"]
            if version != self._engine.model_version:
                try:
                    self._swap(self._build(self._model_dir(version)))
                except Exception as e:  # keep serving the old model, say why once
                    self._refused = record
                    log.error("could not follow the reload to model %s: %s", version,
                              str(e).replace(str(self._models_root), "<models>"))
                    return
            self._published = record
        finally:
            self._reloading.release()
