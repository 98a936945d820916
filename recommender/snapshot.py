"""What a server serves: a verified snapshot of the workspace files plus a model version.

Files on disk change under a running server: an operator saves a half-edited ``rules.toml``,
``recommender train`` writes a new model version. A server must not pick those up by accident,
and its worker processes must never disagree about what they serve. So serving never reads the
workspace files directly:

- a :class:`Snapshot` is the exact bytes of ``catalog.toml``, ``config.toml``, ``rules.toml``,
  ``events.toml`` and any file the ``[strategies]`` settings or ``[events] file`` name by a
  path inside the workspace, kept in the
  store under its SHA-256 digest;
- the :class:`ServingRecord` in the store names the snapshot digest and the model version every
  worker serves. It changes only when an engine was built and checked from exactly those bytes
  and that model (server start, ``POST /v1/admin/reload``, ``recommender train --activate``);
- a worker that starts (or restarts after a crash) builds its engine from the published record,
  not from what the disk holds now, so a broken file cannot stop it booting.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import json
import shutil
import tempfile
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pluggy

from .engine import Engine
from .errors import ModelError, RecommenderError
from .models import current_model_dir, set_current
from .store import Store
from .workspace import Workspace

#: Store ``meta`` key of the published serving record.
SERVING_KEY = "serving_model"
SNAPSHOT_PREFIX = "snapshot:"
#: The files every snapshot carries when they exist.
WORKSPACE_FILES = ("catalog.toml", "config.toml", "rules.toml", "events.toml")
#: Larger files named in ``[strategies]`` settings are read where they are, not snapshotted.
MAX_SNAPSHOT_FILE_BYTES = 16 * 1024 * 1024
UNTRAINED = "untrained"


@dataclass(frozen=True)
class Snapshot:
    """The workspace files an engine is built from, by relative path."""

    files: Mapping[str, bytes]

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(name.encode() + b"\0" + hashlib.sha256(self.files[name]).digest())
        return h.hexdigest()

    @classmethod
    def capture(cls, root: Path) -> Snapshot:
        """Read the serving files of the workspace at ``root`` as they are now."""
        files: dict[str, bytes] = {}
        for name in WORKSPACE_FILES:
            path = root / name
            if path.is_file():
                files[name] = path.read_bytes()
        for name in _referenced_files(files.get("config.toml"), root):
            files[name] = (root / name).read_bytes()
        return cls(files)

    def to_json(self) -> str:
        return json.dumps({name: base64.b64encode(data).decode("ascii")
                           for name, data in sorted(self.files.items())})

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        try:
            raw = json.loads(text)
            files = {name: base64.b64decode(data, validate=True) for name, data in raw.items()}
        except (ValueError, AttributeError, TypeError) as e:
            raise ModelError(f"the stored serving snapshot is unreadable: {e}") from None
        for name in files:
            _check_relative(name)
        return cls(files)

    def materialise(self, parent: Path) -> Path:
        """Write the files under ``parent/<digest>`` (once) and return that folder."""
        folder = parent / self.digest
        if folder.is_dir():
            return folder
        staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=parent))
        for name, data in self.files.items():
            target = staging / _check_relative(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        try:
            staging.rename(folder)
        except OSError:  # another thread wrote the same digest first
            shutil.rmtree(staging, ignore_errors=True)
        return folder


@dataclass(frozen=True)
class ServingRecord:
    """What every worker serves: a snapshot digest and a model version (folder name)."""

    version: str
    snapshot: str
    at: float = 0.0

    @property
    def key(self) -> tuple[str, str]:
        return self.version, self.snapshot

    def to_json(self) -> str:
        return json.dumps({"version": self.version, "snapshot": self.snapshot, "at": self.at})

    @classmethod
    def from_json(cls, text: str) -> ServingRecord | None:
        """The record, or None when it is absent or from an older release (no snapshot)."""
        try:
            raw = json.loads(text)
        except ValueError:
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("version"), str) \
                or not isinstance(raw.get("snapshot"), str):
            return None
        return cls(raw["version"], raw["snapshot"], float(raw.get("at") or 0.0))


#: The ``config.toml`` table a server reads only when it starts (address, workers, token...).
SERVER_TABLE = "server"


def server_table(config: bytes | None) -> dict[str, Any]:
    """``config.toml``'s ``[server]`` table (empty without the file or the table).

    :raises tomllib.TOMLDecodeError, UnicodeDecodeError: the file is not TOML.
    """
    if config is None:
        return {}
    table = tomllib.loads(config.decode("utf-8")).get(SERVER_TABLE, {})
    return table if isinstance(table, dict) else {}


def server_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The ``server.<key>`` names whose values differ between two ``[server]`` tables."""
    return [f"{SERVER_TABLE}.{key}" for key in sorted({*before, *after})
            if before.get(key) != after.get(key)]


def snapshot_server_table(store: Store, record: ServingRecord) -> dict[str, Any]:
    """The ``[server]`` table of the files ``record`` serves."""
    return server_table(stored_snapshot(store, record.snapshot).files.get("config.toml"))


def published(store: Store) -> ServingRecord | None:
    """The record every worker should serve, or None before the first publication."""
    text = store.meta(SERVING_KEY)
    return None if text is None else ServingRecord.from_json(text)


def publish(store: Store, snapshot: Snapshot, version: str) -> ServingRecord:
    """Store the snapshot (content-addressed) and make (snapshot, version) the served pair."""
    record = ServingRecord(version, snapshot.digest, time.time())
    key = SNAPSHOT_PREFIX + snapshot.digest
    if store.meta(key) is None:
        store.set_meta(key, snapshot.to_json())
    store.set_meta(SERVING_KEY, record.to_json())
    return record


def stored_snapshot(store: Store, digest: str) -> Snapshot:
    text = store.meta(SNAPSHOT_PREFIX + digest)
    if text is None:
        raise ModelError(f"serving snapshot {digest[:12]} is not in the store")
    snapshot = Snapshot.from_json(text)
    if snapshot.digest != digest:
        raise ModelError(f"serving snapshot {digest[:12]} does not match its digest")
    return snapshot


class EngineBuilder:
    """Builds engines from snapshots for one workspace, its store and its plugins."""

    def __init__(self, root: Path, models_root: Path, store: Store,
                 plugin_manager: pluggy.PluginManager):
        self.root = root
        self.models_root = models_root
        self.store = store
        self.pm = plugin_manager

    def build(self, snapshot: Snapshot, version: str) -> Engine:
        """An engine from exactly these files and this model version (or untrained).

        Errors name the workspace's own files, not the private copy built from.
        """
        folder = snapshot.materialise(_cache_dir())
        model_dir = None if version == UNTRAINED else self.model_dir(version)
        try:
            return Workspace(folder).engine(plugin_manager=self.pm, model_dir=model_dir,
                                            store=self.store)
        except RecommenderError as e:
            e.args = (str(e).replace(str(folder), str(self.root)),)
            raise

    def model_dir(self, version: str) -> Path:
        if not version or "/" in version or "\\" in version or version.startswith(".") \
                or version != version.strip():
            raise ModelError(f"{version!r} is not a model version name")
        return self.models_root / version

    def from_disk(self, version: str | None = None) -> tuple[Engine, Snapshot, str]:
        """Check the workspace files as they are now with ``version`` (default: the newest
        trained, ``CURRENT``); returns the engine, the snapshot and the version name."""
        if version is None:
            current = current_model_dir(self.models_root)
            version = UNTRAINED if current is None else current.name
        snapshot = Snapshot.capture(self.root)
        return self.build(snapshot, version), snapshot, version

    def from_record(self, record: ServingRecord) -> Engine:
        return self.build(stored_snapshot(self.store, record.snapshot), record.version)

    def activate(self, version: str | None = None) -> tuple[Engine, ServingRecord]:
        """Check the workspace files with ``version``, then publish them for every worker."""
        engine, snapshot, version = self.from_disk(version)
        try:
            record = publish(self.store, snapshot, version)
            if version != UNTRAINED:
                set_current(self.models_root, version)
        except BaseException:
            engine.close()
            raise
        return engine, record


def _referenced_files(config: bytes | None, root: Path) -> list[str]:
    """Relative paths inside the workspace that ``[strategies]`` settings name."""
    if config is None:
        return []
    try:
        data = tomllib.loads(config.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return []  # the build reports the broken file
    strategies = data.get("strategies")
    out = []
    if not isinstance(strategies, dict):
        strategies = {}
    events = data.get("events")
    if isinstance(events, dict):
        strategies = {**strategies, "(events)": events}
    resolved_root = root.resolve()
    for settings in strategies.values():
        if not isinstance(settings, dict):
            continue
        for value in settings.values():
            if not isinstance(value, str) or not value or value in WORKSPACE_FILES:
                continue
            path = PurePosixPath(value)
            if path.is_absolute() or ".." in path.parts:
                continue
            candidate = root / value
            try:
                if (candidate.is_file() and candidate.resolve().is_relative_to(resolved_root)
                        and candidate.stat().st_size <= MAX_SNAPSHOT_FILE_BYTES):
                    out.append(str(path))
            except OSError:
                continue
    return sorted(set(out))


def _check_relative(name: Any) -> str:
    path = PurePosixPath(str(name))
    if not str(name) or path.is_absolute() or ".." in path.parts:
        raise ModelError(f"the serving snapshot names an unsafe path {name!r}")
    return str(path)


_CACHE: Path | None = None


def _cache_dir() -> Path:
    """This process's private folder of materialised snapshots (removed at exit)."""
    global _CACHE
    if _CACHE is None or not _CACHE.is_dir():
        _CACHE = Path(tempfile.mkdtemp(prefix="recommender-snapshots-"))
        atexit.register(shutil.rmtree, _CACHE, True)
    return _CACHE
