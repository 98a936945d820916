"""What the views share: the engine slot, settings, metrics. One per app, in ``app.extensions``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app, g
from flask_smorest import Blueprint as _Blueprint

from recommender.catalog import Catalog

from .metrics import Metrics
from .problems import StrictJSONParser
from .serving import EngineSlot
from .settings import ServerSettings

EXTENSION = "recommender"


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
