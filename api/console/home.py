"""The console's first page: what this server serves, and where to go from here."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from recommender.snapshot import UNTRAINED

from ..state import service
from .models import describe, models_root

blp = Blueprint("home", __name__)


@blp.route("/")
def index() -> Any:
    state = service()
    slot = state.slot
    slot.follow(force=True)
    record = slot.record
    published = slot.published()
    served = None if record.version == UNTRAINED else describe(models_root() / record.version)
    return render_template(
        "home.html", record=record, published=published, problem=slot.problem,
        untrained=record.version == UNTRAINED, served=served,
        strategies=sorted(slot.engine.strategies), products=len(slot.engine.catalog),
        poll=state.settings.reload_poll_seconds)
