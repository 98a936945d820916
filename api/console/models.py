"""Model versions: when each was trained, on what, its strategies and offline metrics; serve
another one (activate, or roll back to the one before) through the admin reload."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from recommender.errors import ModelError, RecommenderError
from recommender.models import CURRENT, current_model_dir, read_manifest

from ..problems import without_paths
from ..state import reload as reload_served
from ..state import service
from . import reports

log = logging.getLogger("recommender.console")

blp = Blueprint("models", __name__, url_prefix="/models")


@dataclass(frozen=True)
class Version:
    """One trained version as its manifest describes it (``problem`` when unreadable)."""

    name: str
    created: str | None = None
    customers: int | None = None
    products: int | None = None
    events: int | None = None
    strategies: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None


def describe(folder: Path) -> Version:
    """A version folder as its manifest says (read, not verified: listing stays fast)."""
    try:
        manifest = read_manifest(folder, verify=False)
    except ModelError as e:
        return Version(folder.name, problem=str(e).replace(str(folder), folder.name))
    data = manifest.get("data") if isinstance(manifest.get("data"), dict) else {}
    return Version(
        folder.name, created=manifest.get("created"), customers=data.get("customers"),
        products=data.get("products"), events=data.get("events"),
        strategies=manifest["strategies"],
        failed=manifest.get("failed") if isinstance(manifest.get("failed"), dict) else {})


def versions(models_root: Path) -> list[Version]:
    """Every version folder under ``models_root``, newest first (names start with the
    training time)."""
    if not models_root.is_dir():
        return []
    return [describe(folder) for folder in sorted(models_root.iterdir(),
                                                  key=lambda p: p.name, reverse=True)
            if not folder.name.startswith(".") and folder.is_dir()]


def previous(listed: list[Version], served: str) -> str | None:
    """The newest readable version older than the served one: what a rollback serves."""
    names = [v.name for v in listed]
    if served not in names:
        return None
    for version in listed[names.index(served) + 1:]:
        if version.problem is None:
            return version.name
    return None


def models_root() -> Path:
    state = service()
    return state.settings.models or state.settings.root / "models"


@blp.route("/")
def index() -> str:
    state = service()
    state.slot.follow(force=True)
    listed = versions(models_root())
    served = state.slot.record.version
    newest = current_model_dir(models_root())
    metrics = {v.name: reports.metrics_for(v.name) for v in listed}
    return render_template("models.html", versions=listed, served=served,
                           newest=newest.name if newest is not None else None,
                           rollback=previous(listed, served), metrics=metrics,
                           current_file=CURRENT, poll=state.settings.reload_poll_seconds)


@blp.route("/activate", methods=["POST"])
def activate() -> Response:
    """Check and serve the posted version on every worker (the admin reload underneath)."""
    state = service()
    version = request.form.get("version", "").strip()
    names = {v.name for v in versions(models_root())}
    if version not in names:
        flash(("error", "unknown_version", version))
        return redirect(url_for("models.index"), 303)
    try:  # the admin reload: the [server] check, the metrics, every worker follows
        previous_version, now = reload_served(version)
    except (RecommenderError, OSError) as e:
        reason = without_paths(str(e), state.settings)
        log.error("console: activating %s refused: %s", version, reason)
        flash(("error", "refused", reason[:600]))  # the session cookie holds it
        return redirect(url_for("models.index"), 303)
    log.info("console: model %s activated (was %s)", now, previous_version)
    flash(("done", previous_version, now))
    return redirect(url_for("models.index"), 303)
