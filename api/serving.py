"""The engine a server process answers with, and how every worker agrees on it.

The store holds one :class:`~recommender.snapshot.ServingRecord`: the snapshot of workspace
files and the model version every worker serves. A reload checks the files as they are on disk
with the requested model by building a complete engine first; only then is it published and
swapped in under a lock: requests already running finish on the engine they leased, new ones
get the new engine, and the old engine is closed when its last request returns. Every
``poll_seconds`` each worker compares the published record with its own and follows it,
building from the stored snapshot, never from the files on disk. A worker that cannot follow
keeps serving what it has and reports itself not ready.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from recommender.engine import Engine
from recommender.errors import ModelError, RecommenderError
from recommender.snapshot import (
    EngineBuilder,
    ServingRecord,
    published,
    server_changes,
    snapshot_server_table,
)

log = logging.getLogger("recommender.api")

#: A record a worker failed to follow is retried after this many polls.
RETRY_POLLS = 10


class EngineSlot:
    """Holds the served engine; ``lease`` it per request, ``reload`` to change it."""

    def __init__(self, engine: Engine, record: ServingRecord, builder: EngineBuilder,
                 poll_seconds: float = 1.0, *, problem: str | None = None,
                 clean: Callable[[str], str] = str,
                 on_swap: Callable[[str, str], None] = lambda previous, new: None,
                 server_table: Mapping[str, Any] | None = None):
        self._engine = engine
        self._record = record
        self._builder = builder
        self._poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._reloading = threading.Lock()
        self._leases: dict[Engine, int] = {engine: 0}
        self._next_poll = time.monotonic() + poll_seconds
        self._failed: tuple[tuple[str, str], float] | None = None
        self._clean = clean
        self._on_swap = on_swap
        #: Why this worker does not serve the published record, or None when it does.
        self.problem = problem
        #: The ``[server]`` table this worker's settings were read from (by default, the one of
        #: the files it starts with): only a restart changes it, whatever a later
        #: publication's files say.
        self.server_table = dict(server_table) if server_table is not None \
            else self._server_table_of(record)

    @property
    def engine(self) -> Engine:
        """The engine new requests get (for read-only status pages)."""
        return self._engine

    @property
    def record(self) -> ServingRecord:
        """What this worker serves."""
        return self._record

    @contextmanager
    def lease(self) -> Iterator[Engine]:
        """The current engine, kept open until the caller is done with it."""
        self.follow()
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
        """Check the workspace files with ``version`` (default: the newest trained), then
        publish them for every worker and swap them in here.

        Returns (previous version, new version). Raises a RecommenderError (the old engine
        keeps serving) if any file or the model is missing, malformed or incompatible.
        """
        with self._reloading:
            new, record = self._builder.activate(version)
            previous = self._swap(new, record)
            self.problem = None
            self._failed = None
            return previous, new.model_version

    def published(self) -> ServingRecord | None:
        return published(self._builder.store)

    def follow(self, *, force: bool = False) -> None:
        """Every ``poll_seconds``, switch to the published record if it changed."""
        if not force and (self._poll_seconds <= 0 or time.monotonic() < self._next_poll):
            return
        if not self._reloading.acquire(blocking=False):
            return  # another thread is already loading; keep serving meanwhile
        try:
            self._next_poll = time.monotonic() + self._poll_seconds
            try:
                record = self.published()
            except RecommenderError as e:
                self.problem = f"cannot read the published model: {e}"
                return
            if record is None or record.key == self._record.key:
                if record is not None and self.problem and self._failed is None:
                    self.problem = None
                return
            if (self._failed is not None and self._failed[0] == record.key
                    and time.monotonic() < self._failed[1]):
                return
            try:
                new = self._builder.from_record(record)
            except (RecommenderError, OSError) as e:  # keep serving what we have; say why
                retry = time.monotonic() + RETRY_POLLS * max(self._poll_seconds, 0.1)
                self._failed = (record.key, retry)
                self.problem = (f"cannot follow the published model {record.version}: "
                                f"{self._clean(str(e))}")
                log.error("%s", self.problem)
                return
            self._swap(new, record)
            self.problem = None
            self._failed = None
            changed = server_changes(self.server_table, self._server_table_of(record))
            if changed:
                log.warning("model %s was published with files that change %s of "
                            "config.toml: this worker serves them but keeps the [server] "
                            "settings it started with until the server is restarted",
                            record.version, ", ".join(changed))
        finally:
            self._reloading.release()

    def _server_table_of(self, record: ServingRecord) -> dict:
        try:
            return snapshot_server_table(self._builder.store, record)
        except (RecommenderError, ValueError):  # built from it already: never expected
            return {}

    def close(self) -> None:
        with self._lock:
            engines = list(self._leases)
        for engine in engines:
            engine.close()

    def _swap(self, new: Engine, record: ServingRecord) -> str:
        with self._lock:
            old = self._engine
            self._engine = new
            self._record = record
            self._leases.setdefault(new, 0)
            retire = self._leases.get(old) == 0 and old is not new
            if retire:
                del self._leases[old]
        if retire:
            old.close()
        log.info("now serving model %s (was %s)", new.model_version, old.model_version)
        self._on_swap(old.model_version, new.model_version)
        return old.model_version


def settle_heap() -> None:
    """Move what is alive now (the engine, catalog, models, schemas) out of the garbage
    collector's generations, after one full collection.

    A serving worker's long-lived objects are tens of thousands; a full collection scanning
    them took 78 ms on a 1M-customer operator, and the collector runs one now and then on
    the request path: a latency spike, even a strategy timeout. Frozen, they are never
    scanned; request garbage is collected as before. Called when a worker has booted and
    after each model swap (the old engine is unfrozen and collected first)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


__all__ = ["EngineSlot", "ModelError", "settle_heap"]
