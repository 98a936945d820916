"""Strategy state on disk: named NumPy arrays in one ``.npz`` plus ``settings.json``.

Never pickle: ``np.load(..., allow_pickle=False)``, so a model directory cannot run code. Every
read error becomes a ModelError naming the strategy and the file.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError


def save_arrays(directory: Path, filename: str, arrays: Mapping[str, np.ndarray],
                settings: Mapping[str, Any]) -> None:
    """Write ``arrays`` to ``directory/filename`` and ``settings`` to ``settings.json``."""
    np.savez(directory / filename, **arrays)
    (directory / "settings.json").write_text(json.dumps(dict(settings), ensure_ascii=False))


def load_arrays(directory: Path, filename: str, owner: str, keys: Iterable[str]
                ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read the arrays named ``keys`` and the settings; each must be finite numeric data.

    :raises ModelError: a file is missing or unreadable, or an array is absent or not finite.
    """
    path = directory / filename
    try:
        with np.load(path, allow_pickle=False) as f:
            stored = {key: f[key] for key in f.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise ModelError(f"{owner}: cannot read {path}: {e}") from e
    arrays = {}
    for key in keys:
        if key not in stored:
            raise ModelError(f"{owner}: {path} has no array {key!r}")
        array = stored[key]
        if array.dtype.kind not in "fiub" or (array.dtype.kind == "f"
                                              and not np.isfinite(array).all()):
            raise ModelError(f"{owner}: {path} array {key!r} is not finite numeric data")
        arrays[key] = array
    settings_path = directory / "settings.json"
    try:
        settings = json.loads(settings_path.read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"{owner}: cannot read {settings_path}: {e}") from e
    if not isinstance(settings, dict):
        raise ModelError(f"{owner}: {settings_path} does not hold a settings table")
    return arrays, settings
