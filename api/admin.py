"""``POST /v1/admin/reload``: serve another model version without a restart or a dropped request."""

from __future__ import annotations

import hmac
from typing import Any

from flask import request
from flask_smorest import abort

from recommender.errors import RecommenderError

from .problems import without_paths
from .schemas import ReloadRequestSchema, ReloadSchema
from .state import Blueprint, service
from .state import reload as reload_served

blp = Blueprint("admin", __name__, url_prefix="/v1/admin",
                description="Operations that need the admin bearer token.")


def require_token() -> None:
    """Refuse unless the request carries the configured bearer token (constant-time check)."""
    token = service().settings.admin_token
    if token is None:
        abort(403, message="admin endpoints are disabled: set RECOMMENDER_ADMIN_TOKEN")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    given_bytes = given.strip().encode()
    if scheme.lower() == "bearer" and hmac.compare_digest(given_bytes, token.encode()):
        return
    viewer = service().settings.viewer_token
    if scheme.lower() == "bearer" and viewer is not None and hmac.compare_digest(
            given_bytes, viewer.encode()):
        abort(403, message="the viewer token is read-only: this endpoint needs the admin "
                           "token")
    abort(401, message="a valid admin bearer token is required",
          headers={"WWW-Authenticate": 'Bearer realm="recommender-admin"'})


@blp.before_request
def _authenticate() -> None:
    if request.method != "OPTIONS":  # a browser's preflight carries no credentials
        require_token()


@blp.route("/reload", methods=["POST"])
@blp.arguments(ReloadRequestSchema, required=False)
@blp.response(200, ReloadSchema)
@blp.alt_response(401, description="Missing or wrong bearer token.")
@blp.alt_response(403, description="No admin token is configured, or the token given is "
                                    "the read-only viewer token.")
@blp.alt_response(409, description="A file or the model version is refused, or the "
                                    "[server] table of config.toml changed (restart to "
                                    "apply it); what was served keeps serving.")
@blp.doc(security=[{"bearerAuth": []}])
def reload(body: dict[str, Any]) -> dict[str, Any]:
    """Check the workspace files and a model version, then serve them on every worker.

    The version defaults to the newest trained one (``CURRENT``). Everything is checked
    first: ``catalog.toml``, ``rules.toml``, ``config.toml``, ``events.toml`` and the files
    ``[strategies]`` names, as they are on disk now, and the model (manifest, checksums,
    catalog). Anything missing, malformed, tampered with or incompatible is refused with 409
    naming the file and the problem, and the previous files and model keep serving. So is a
    changed ``[server]`` table of ``config.toml``: those settings (address, workers, token,
    CORS origins, limits) are read when the server starts; restart it to apply them. On
    success, requests already running finish on the old engine and later ones use the new
    one; every worker of the server follows within ``reload_poll_seconds``, and a worker that
    starts later serves the same.
    """
    try:
        previous, version = reload_served(body.get("version"))
    except (RecommenderError, OSError) as e:
        abort(409, message="reload refused, what was served keeps serving: "
              + without_paths(str(e), service().settings))
    return {"previous_version": previous, "model_version": version}

