"""``POST /v1/admin/reload``: serve another model version without a restart or a dropped request."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import request
from flask_smorest import abort

from recommender.errors import RecommenderError

from .problems import without_paths
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
@blp.alt_response(409, description="A file or the model version is refused; the previous "
                                    "ones keep serving.")
@blp.doc(security=[{"bearerAuth": []}])
def reload(body: dict[str, Any]) -> dict[str, Any]:
    """Check the workspace files and a model version, then serve them on every worker.

    The version defaults to the newest trained one (``CURRENT``). Everything is checked
    first: the catalog, rules and configuration as they are on disk now, and the model
    (manifest, checksums, catalog). Anything missing, malformed, tampered with or
    incompatible is refused with 409 naming the file and the problem, and the previous
    files and model keep serving. On success, requests already running finish on the old
    engine and later ones use the new one; every worker of the server follows within
    ``reload_poll_seconds``, and a worker that starts later serves the same.
    """
    state = service()
    try:
        previous, version = state.slot.reload(body.get("version"))
    except (RecommenderError, OSError) as e:
        state.metrics.reloads.labels(outcome="refused").inc()
        reason = without_paths(str(e), state.settings)
        log.error("reload refused: %s", reason)
        abort(409, message="reload refused, the previous model keeps serving: "
              + reason)
    state.metrics.reloads.labels(outcome="done").inc()
    return {"previous_version": previous, "model_version": version}

