"""What the views share: the engine slot, settings, metrics. One per app, in ``app.extensions``;
and the reload every way of changing what is served goes through."""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app, g
from flask_smorest import Blueprint as _Blueprint

from recommender.catalog import Catalog
from recommender.errors import ConfigError, RecommenderError
from recommender.snapshot import server_changes, server_table

from .metrics import Metrics
from .problems import StrictJSONParser, without_paths
from .serving import EngineSlot
from .settings import ServerSettings

EXTENSION = "recommender"

log = logging.getLogger("recommender.api")


@dataclass
class ServiceState:
    settings: ServerSettings
    slot: EngineSlot
    metrics: Metrics
    api: Any

    @property
    def catalog(self) -> Catalog:
        return self.slot.engine.catalog


def service() -> ServiceState:
    """The running app's shared state."""
    return current_app.extensions[EXTENSION]


class Blueprint(_Blueprint):
    """A flask-smorest blueprint whose JSON bodies are parsed strictly (see StrictJSONParser)."""

    ARGUMENTS_PARSER = StrictJSONParser()


def request_id(body: Mapping[str, Any]) -> str:
    """The request's id: the body's ``request_id``, else the X-Request-ID header's (or the one
    made up for it), so the response header and body agree."""
    if body.get("request_id"):
        g.request_id = body["request_id"]
    return g.request_id


def reload(version: str | None = None) -> tuple[str, str]:
    """Serve the workspace files as they are on disk now (``catalog.toml``, ``rules.toml``,
    ``config.toml``, ``events.toml`` and the files ``[strategies]`` names) with a model version
    (default: the newest trained) on every worker. ``POST /v1/admin/reload`` calls this.

    Returns (previous version, new version). Nothing changes when it raises.

    :raises ConfigError: ``config.toml``'s ``[server]`` table differs from the one served:
        those settings are read when the server starts, so a restart applies them.
    :raises RecommenderError: a file or the model is missing, malformed or incompatible.
    """
    state = service()
    try:
        _refuse_server_changes(state)
        previous, new = state.slot.reload(version)
    except (RecommenderError, OSError) as e:
        state.metrics.reloads.labels(outcome="refused").inc()
        log.error("reload refused: %s", without_paths(str(e), state.settings))
        raise
    state.metrics.reloads.labels(outcome="done").inc()
    return previous, new


def _refuse_server_changes(state: ServiceState) -> None:
    """Raise if the ``[server]`` table on disk is not the one this worker started with."""
    path = state.settings.root / "config.toml"
    try:
        now = server_table(path.read_bytes() if path.is_file() else None)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return  # the reload itself names the broken file
    changed = server_changes(state.slot.server_table, now)
    if changed:
        raise ConfigError("config.toml", ", ".join(changed),
                          "changed since the server started; [server] settings are read only "
                          "at start: restart the server to apply them, or undo the change to "
                          "reload the other files")
