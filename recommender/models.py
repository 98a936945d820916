"""Versioned model directories: train every strategy, write a manifest, load all or nothing.

A model directory holds one sub-folder per strategy (arrays and JSON, never pickle) and a
``manifest.json`` with the data fingerprint, parameters, timings, library versions and a
SHA-256 per file. Loading verifies the manifest first, so a missing, truncated or tampered
artifact is refused before any strategy sees it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .errors import ModelError
from .strategy import Strategy
from .training import TrainingData

MANIFEST = "manifest.json"
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
) -> Path:
    """Fit and save each strategy into a new version folder, then point ``CURRENT`` at it.

    The folder is written under a temporary name and renamed when complete, so a crash
    mid-training never leaves a half-written version that looks usable.
    """
    models_root.mkdir(parents=True, exist_ok=True)
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
    for name, strategy in strategies.items():
        progress(f"training {name}")
        t0 = time.perf_counter()
        strategy.fit(data)
        fit_s = time.perf_counter() - t0
        folder = staging / name
        folder.mkdir()
        strategy.save(folder)
        entries[name] = {
            "class": f"{type(strategy).__module__}.{type(strategy).__qualname__}",
            "parameters": strategy.describe(),
            "fit_seconds": round(fit_s, 3),
        }
        progress(f"trained {name} in {fit_s:.2f} s")

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
    """Read and check a manifest; with ``verify``, every file's checksum too."""
    path = model_dir / MANIFEST
    if not model_dir.is_dir():
        raise ModelError(f"{model_dir}: model directory not found")
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{path}: manifest missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"{path}: manifest is not valid JSON: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        raise ModelError(f"{path}: unsupported manifest format "
                         f"{manifest.get('format') if isinstance(manifest, dict) else None!r}")
    if verify:
        for rel, expected in manifest.get("files", {}).items():
            file = model_dir / rel
            if not file.is_file():
                raise ModelError(f"{file}: listed in the manifest but missing")
            if _sha256(file) != expected:
                raise ModelError(f"{file}: checksum mismatch (truncated or modified)")
    return manifest


def load_models(strategies: Mapping[str, Strategy], model_dir: Path, catalog_ids: list[str]
                ) -> dict[str, Any]:
    """Load every strategy the manifest lists, or raise and load none (all or nothing).

    Strategies are loaded into fresh state only if every one succeeds; on error the caller's
    strategies may be partly loaded, so callers load into new instances (see ``Engine``).
    """
    manifest = read_manifest(model_dir)
    if sorted(catalog_ids) != manifest.get("catalog"):
        raise ModelError(f"{model_dir}: trained on a different catalog; retrain the models")
    for name in manifest.get("strategies", {}):
        if name in strategies:
            strategies[name].load(model_dir / name)
    return manifest
