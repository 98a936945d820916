"""``GET /v1/plugins``: what is installed, in which version, and what it provides."""

from __future__ import annotations

from typing import Any

from recommender.plugin_info import engine_plugins

from .schemas import PluginListSchema
from .state import Blueprint, service

blp = Blueprint("plugins", __name__, url_prefix="/v1",
                description="The registered plugins: distributions, versions, hooks.")


@blp.route("/plugins", methods=["GET"])
@blp.response(200, PluginListSchema)
def list_plugins() -> dict[str, Any]:
    """Every registered plugin, built-in or installed: its distribution and version, the hooks
    it implements, and its strategies with their state in the served model (``trained in
    VERSION``, ``not trained``, ``needs no training`` or ``not in blend``).

    ``load_warnings`` names strategies the served model holds from another plugin version.
    """
    engine = service().slot.engine
    return {"model_version": engine.model_version if engine.trained_strategies else None,
            "load_warnings": list(engine.load_warnings),
            "plugins": [info.as_dict() for info in engine_plugins(engine)]}
