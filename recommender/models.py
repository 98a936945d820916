"""Versioned model directories: train every strategy, write a manifest, load all or nothing.

A model directory holds one sub-folder per strategy (arrays and JSON, never pickle) and a
``manifest.json`` with the data fingerprint, parameters, timings, library versions and a
SHA-256 per file. Loading verifies the manifest first, so a missing, truncated or tampered
artifact is refused before any strategy sees it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import platform
import shutil
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .errors import ModelError
from .plugin_info import provenance, provenance_problems
from .strategy import Strategy
from .training import TrainingData

log = logging.getLogger("recommender.models")

MANIFEST = "manifest.json"
TRAIN_LOCK = ".train.lock"
CURRENT = "CURRENT"
FORMAT_VERSION = 1


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("recommender", "numpy", "scipy", "implicit", "pluggy"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def train_models(
    strategies: Mapping[str, Strategy],
    data: TrainingData,
    models_root: Path,
    *,
    fingerprint: str = "",
    progress: Callable[[str], None] = lambda message: None,
    sources: Mapping[str, str] | None = None,
    only: Collection[str] | None = None,
) -> Path:
    """Fit and save each strategy into a new version folder, then point ``CURRENT`` at it.

    A strategy whose ``fit`` or ``save`` raises is left out of the version, which is written
    with the others: the manifest lists it under ``failed`` with its plugin and the error, and
    serving treats it as untrained. With ``only``, just those strategies are fitted; the
    others' artifacts are copied, checked, from the current version (``reused_from`` in their
    manifest entries).

    The folder is written under a temporary name and renamed when complete, so a crash
    mid-training never leaves a half-written version that looks usable. Trainings into the
    same folder run one at a time (a lock file); each removes what a killed one left.
    ``CURRENT`` names the newest trained version; what a server serves changes only when it
    is reloaded or activated (see ``recommender.snapshot``).
    """
    models_root.mkdir(parents=True, exist_ok=True)
    with _training_lock(models_root, progress):
        for stale in models_root.glob(".*.partial"):
            progress(f"removing {stale.name}, left by an interrupted training")
            shutil.rmtree(stale, ignore_errors=True)
        reuse = _reusable(models_root, strategies, only, data.catalog.ids)
        return _train(strategies, data, models_root, fingerprint, progress, sources or {},
                      reuse, frozenset(only or ()))


@contextmanager
def _training_lock(models_root: Path, progress: Callable[[str], None]) -> Iterator[None]:
    """Hold ``models_root/.train.lock`` exclusively; wait for another training to finish."""
    with (models_root / TRAIN_LOCK).open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress("another training into this folder is running; waiting for it")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _reusable(models_root: Path, strategies: Mapping[str, Strategy],
              only: Collection[str] | None, catalog_ids: Iterable[str]
              ) -> tuple[Path, dict[str, Any]] | None:
    """The current version and its manifest, when training ``only`` some strategies."""
    if only is None:
        return None
    unknown = sorted(set(only) - set(strategies))
    if unknown:
        raise ModelError(f"cannot train {unknown[0]!r}: not an enabled strategy; enabled: "
                         f"{', '.join(sorted(strategies))}")
    source = current_model_dir(models_root)
    if source is None:
        raise ModelError(f"{models_root}: no trained version to reuse the other strategies "
                         f"from; train them all first")
    manifest = read_manifest(source)
    if manifest["catalog"] != sorted(catalog_ids):
        raise ModelError(f"{source}: trained on another catalog; train every strategy")
    return source, manifest


def _train(strategies: Mapping[str, Strategy], data: TrainingData, models_root: Path,
           fingerprint: str, progress: Callable[[str], None], sources: Mapping[str, str],
           reuse: tuple[Path, dict[str, Any]] | None, only: frozenset[str]) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    version_id = f"{stamp}-{hashlib.sha256(fingerprint.encode()).hexdigest()[:8]}"
    final = models_root / version_id
    suffix = 1
    while final.exists():
        suffix += 1
        final = models_root / f"{version_id}.{suffix}"
    staging = models_root / f".{final.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()

    entries: dict[str, Any] = {}
    failed: dict[str, Any] = {}
    for name, strategy in strategies.items():
        folder = staging / name
        if reuse is not None and name not in only:
            source, manifest = reuse
            if name in manifest["strategies"]:
                shutil.copytree(source / name, folder)
                entries[name] = {**manifest["strategies"][name],
                                 "reused_from": manifest["strategies"][name].get(
                                     "reused_from", source.name)}
                progress(f"kept {name} from {source.name}")
            else:
                progress(f"{name} is not in {source.name}: left untrained")
            continue
        progress(f"training {name}")
        t0 = time.perf_counter()
        try:
            strategy.fit(data)
            fit_s = time.perf_counter() - t0
            folder.mkdir()
            strategy.save(folder)
        except Exception as e:  # one plugin's failure must not throw the others' work away
            shutil.rmtree(folder, ignore_errors=True)
            error = f"{type(e).__name__}: {e}"[:500]
            failed[name] = {"plugin": sources.get(name, ""), "error": error}
            progress(f"training {name} failed (plugin {sources.get(name, '?')!r}): {error}; "
                     f"the version is written without it")
            continue
        entries[name] = {
            "class": f"{type(strategy).__module__}.{type(strategy).__qualname__}",
            "parameters": strategy.describe(),
            "fit_seconds": round(fit_s, 3),
            **provenance(sources.get(name, ""), type(strategy).__module__,
                         strategy.state_format),
        }
        progress(f"trained {name} in {fit_s:.2f} s")

    if failed and not entries:
        shutil.rmtree(staging, ignore_errors=True)
        first, why = next(iter(failed.items()))
        raise ModelError(f"every strategy failed to train, nothing written; {first} (plugin "
                         f"{why['plugin']!r}): {why['error']}")
    files = {str(p.relative_to(staging)): _sha256(p)
             for p in sorted(staging.rglob("*")) if p.is_file()}
    manifest = {
        "format": FORMAT_VERSION,
        "version": final.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": {"fingerprint": fingerprint, "customers": data.n_customers,
                 "products": data.n_products, "events": len(data.events)},
        "catalog": sorted(data.catalog.ids),
        "strategies": entries,
        "failed": failed,
        "libraries": library_versions(),
        "files": files,
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    os.replace(staging, final)
    set_current(models_root, final.name)
    return final


def set_current(models_root: Path, version_id: str) -> None:
    """Atomically point ``CURRENT`` at ``version_id``."""
    tmp = models_root / f".{CURRENT}.tmp"
    tmp.write_text(version_id + "\n")
    os.replace(tmp, models_root / CURRENT)


def current_model_dir(models_root: Path) -> Path | None:
    """The folder ``CURRENT`` names, or None when nothing has been trained yet."""
    pointer = models_root / CURRENT
    if not pointer.exists():
        return None
    name = pointer.read_text().strip()
    if not name or "/" in name or name.startswith("."):
        raise ModelError(f"{pointer}: does not name a model version ({name!r})")
    return models_root / name


def read_manifest(model_dir: Path, *, verify: bool = True) -> dict[str, Any]:
    """Read and check a manifest; with ``verify``, every file too.

    The manifest must be an object of the expected shape whose ``version`` is the folder's
    name; with ``verify`` every file of the folder must be listed with its checksum, and every
    listed file must be there and match. Anything else is a ModelError naming the problem.
    """
    path = model_dir / MANIFEST
    if not model_dir.is_dir():
        raise ModelError(f"{model_dir}: model directory not found")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: manifest missing") from None
    except (IsADirectoryError, PermissionError, OSError) as e:
        raise ModelError(f"{path}: manifest unreadable ({e.strerror or type(e).__name__})"
                         ) from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise ModelError(f"{path}: manifest is not valid JSON: {e}") from None
    _check_shape(manifest, path, model_dir.name)
    if verify:
        listed = manifest["files"]
        for rel, expected in listed.items():
            file = model_dir / rel
            if not file.is_file():
                raise ModelError(f"{file}: listed in the manifest but missing")
            if _sha256(file) != expected:
                raise ModelError(f"{file}: checksum mismatch (truncated or modified)")
        for file in sorted(model_dir.rglob("*")):
            rel = file.relative_to(model_dir).as_posix()
            if rel != MANIFEST and not file.is_dir() and rel not in listed:
                raise ModelError(f"{file}: not listed in the manifest (added or renamed)")
    return manifest


def _check_shape(manifest: Any, path: Path, folder_name: str) -> None:
    """Refuse a manifest that is not the object ``train_models`` writes."""
    def bad(key: str, message: str) -> ModelError:
        return ModelError(f"{path}: {key} {message}")

    if not isinstance(manifest, dict):
        raise ModelError(f"{path}: the manifest must be a JSON object, not "
                         f"{type(manifest).__name__}")
    if manifest.get("format") != FORMAT_VERSION:
        raise ModelError(f"{path}: unsupported manifest format {manifest.get('format')!r}")
    version = manifest.get("version")
    if not isinstance(version, str) or not version:
        raise bad("'version'", "must be the version name (a string)")
    if version != folder_name:
        raise bad("'version'", f"is {version!r} but the folder is named {folder_name!r}; "
                  f"a version folder must not be renamed")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and len(v) == 64 for k, v in files.items()):
        raise bad("'files'", "must map each file to its SHA-256")
    for rel in files:
        parts = Path(rel).parts
        if not rel or Path(rel).is_absolute() or ".." in parts or rel == MANIFEST:
            raise bad("'files'", f"names an unsafe path {rel!r}")
    strategies = manifest.get("strategies")
    if not isinstance(strategies, dict) or not all(
            isinstance(k, str) and k and isinstance(v, dict) for k, v in strategies.items()):
        raise bad("'strategies'", "must map each strategy name to its entry")
    catalog = manifest.get("catalog")
    if not isinstance(catalog, list) or not all(isinstance(c, str) for c in catalog):
        raise bad("'catalog'", "must be the list of product ids")


def load_models(strategies: Mapping[str, Strategy], model_dir: Path, catalog_ids: list[str],
                *, sources: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Load every strategy the manifest lists, or raise and load none (all or nothing).

    Strategies are loaded into fresh state only if every one succeeds; on error the caller's
    strategies may be partly loaded, so callers load into new instances (see ``Engine``).
    A strategy saved in another ``state_format`` is refused; one trained by another plugin
    version is loaded with a warning (logged, and listed in the returned manifest's
    ``load_warnings``). ``sources`` maps strategy names to their plugins (``Engine.sources``).
    """
    manifest = read_manifest(model_dir)
    if sorted(catalog_ids) != manifest["catalog"]:
        raise ModelError(f"{model_dir}: trained on a different catalog; retrain the models")
    warnings = manifest["load_warnings"] = []
    for name, entry in manifest["strategies"].items():
        if name in strategies:
            strategy = strategies[name]
            refusal, warning = provenance_problems(
                entry, (sources or {}).get(name, entry.get("plugin", "")),
                type(strategy).__module__, strategy.state_format)
            if refusal:
                raise ModelError(f"{model_dir / name}: strategy {name!r} {refusal}")
            if warning:
                log.warning("%s: strategy %r %s", model_dir, name, warning)
                warnings.append(f"{name}: {warning}")
            try:
                strategies[name].load(model_dir / name)
            except ModelError:
                raise
            except Exception as e:  # a strategy's own loader on artifacts it cannot read
                raise ModelError(f"{model_dir / name}: strategy {name!r} cannot load its "
                                 f"artifacts: {type(e).__name__}: {e}") from None
    return manifest
