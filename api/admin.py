"""``POST /v1/admin/reload``: serve another model version without a restart or a dropped request."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import request
from flask_smorest import abort

from recommender.errors import ModelError

from .schemas import ReloadRequestSchema, ReloadSchema
from .state import Blueprint, service

log = logging.getLogger("recommender.api")

blp = Blueprint("admin", __name__, url_prefix="/v1/admin",
                description="Operations that need the admin bearer token.")


def require_token() -> None:
    """Refuse unless the request carries the configured bearer token (constant-time check)."""
    token = service().settings.admin_token
    if token is None:
        abort(403, message="admin endpoints are disabled: set RECOMMENDER_ADMIN_TOKEN")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             token.encode()):
        abort(401, message="a valid admin bearer token is required",
              headers={"WWW-Authenticate": 'Bearer realm="recommender-admin"'})


@blp.before_request
def _authenticate() -> None:
    require_token()


@blp.route("/reload", methods=["POST"])
@blp.arguments(ReloadRequestSchema, required=False)
@blp.response(200, ReloadSchema)
@blp.alt_response(401, description="Missing or wrong bearer token.")
@blp.alt_response(403, description="No admin token is configured.")
@blp.alt_response(409, description="The model version cannot be loaded; the old one serves.")
@blp.doc(security=[{"bearerAuth": []}])
def reload(body: dict[str, Any]) -> dict[str, Any]:
    """Load a model version (default: the one ``CURRENT`` names) and swap it in atomically.

    Requests already running finish on the old model; later ones use the new one, and every
    response names the version that answered it. A version that is missing, incomplete,
    tampered with or trained on another catalog is refused and the old one keeps serving.
    Every worker of the server follows within ``reload_poll_seconds``.
    """
    state = service()
    try:
        previous, version = state.slot.reload(body.get("version"))
    except ModelError as e:
        state.metrics.reloads.labels(outcome="refused").inc()
        log.error("reload refused: %s", _without_paths(str(e), state.settings))
        abort(409, message="model version refused, the previous one keeps serving: "
              + _without_paths(str(e), state.settings))
    state.metrics.reloads.labels(outcome="done").inc()
    state.metrics.set_model(previous, version)
    return {"previous_version": previous, "model_version": version}


def _without_paths(message: str, settings: Any) -> str:
    """Strip the server's folders from a message before it leaves the process."""
    for folder in (settings.models, settings.root / "models", settings.root):
        if folder is not None:
            message = message.replace(str(folder.resolve()), "").replace(str(folder), "")
    return message.replace("//", "/").lstrip("/")
