"""The HTTP API channels call: ``create_app`` builds the Flask app over a workspace folder.

::

    from api import create_app
    app = create_app("recommender-data")     # or: recommender serve --dir recommender-data
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pluggy
from flask import Flask, Response, request
from flask_cors import CORS
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from recommender.engine import Engine
from recommender.errors import ConfigError
from recommender.models import current_model_dir
from recommender.plugin_manager import make_plugin_manager
from recommender.store import Store
from recommender.workspace import DEFAULT_DIR, Workspace

from . import admin, docs, feedback, operations, products, recommendations, strategies
from .metrics import Metrics
from .problems import ProblemApi, problem
from .serving import EngineSlot
from .settings import ServerSettings
from .state import EXTENSION, ServiceState

__all__ = ["ServerSettings", "create_app"]

JSON_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


def _version() -> str:
    try:
        return version("recommender")
    except PackageNotFoundError:
        return "0"


def create_app(root: str | Path | None = None, *, settings: ServerSettings | None = None,
               plugin_manager: pluggy.PluginManager | None = None,
               environ: Mapping[str, str] | None = None) -> Flask:
    """Build the app over the workspace at ``root`` (settings from its config and environment).

    :param plugin_manager: use these plugins instead of the default set (tests, embedding).
    :raises ConfigError: the workspace or its settings are missing or malformed.
    :raises ModelError: the current model version cannot be loaded.
    """
    settings = settings or ServerSettings.load(root or DEFAULT_DIR, environ)
    workspace = Workspace(settings.root)
    if not workspace.exists():
        raise ConfigError(str(settings.root), "catalog.toml", "no workspace here; create one "
                          "with 'recommender quickstart' or 'recommender demo-data'")
    models_root = settings.models or workspace.models_path
    config = workspace.config()
    metrics = Metrics()
    pm = plugin_manager or make_plugin_manager()
    pm.register(metrics, name="api-metrics")
    store = Store(settings.store or workspace.store_path)

    def build(model_dir: Path | None) -> Engine:
        if model_dir is None:
            return Engine(workspace.catalog(), config, store=store, plugin_manager=pm)
        return workspace.engine(plugin_manager=pm, model_dir=model_dir, config=config,
                                store=store)

    slot = EngineSlot(build(current_model_dir(models_root)), build, models_root,
                      settings.reload_poll_seconds)
    metrics.set_model(None, slot.engine.model_version)

    app = Flask(__name__)
    app.config.update(
        API_TITLE="Touchpoint recommendation API", API_VERSION=_version(),
        OPENAPI_VERSION="3.1.0", OPENAPI_URL_PREFIX="/", OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        API_SPEC_OPTIONS={
            "info": {"description": "Suggestions for telecom channels at each moment of a "
                                    "customer's journey, with eligibility and reasons."},
            "components": {"securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer"}}},
        },
    )
    app.json.sort_keys = False  # keep the contract's field order: request_id first
    app.json.ensure_ascii = False  # Chinese names readable as sent (the body is UTF-8)
    api = ProblemApi(app)
    for module in (recommendations, feedback, products, strategies, operations, admin):
        api.register_blueprint(module.blp)
    app.register_blueprint(docs.blp)
    app.extensions[EXTENSION] = ServiceState(settings=settings, slot=slot, metrics=metrics,
                                             api=api)
    metrics.init_app(app)
    if settings.cors_origins:
        CORS(app, origins=list(settings.cors_origins), methods=["GET", "POST"],
             allow_headers=["Content-Type", "Authorization"], max_age=600)

    @app.before_request
    def _check_body() -> Response | None:
        if request.method not in JSON_BODY_METHODS:
            return None
        length = request.content_length
        if length is not None and length > settings.max_body_bytes:
            return problem(413, f"the body is {length} bytes; the limit is "
                                f"{settings.max_body_bytes}")
        if (length or request.headers.get("Transfer-Encoding")) and not request.is_json:
            return problem(415, f"send the body as application/json, not "
                                f"{request.mimetype or 'no content type'}",
                           errors={"Content-Type": [f"{request.mimetype!r} is not JSON"]})
        return None

    @app.after_request
    def _security_headers(response: Response) -> Response:
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    @app.route("/")
    def index() -> dict[str, str]:
        return {"name": "recommender", "version": _version(), "docs": "/docs",
                "openapi": "/openapi.json"}

    if settings.rate_limit:
        limiter = Limiter(get_remote_address, app=app, default_limits=[settings.rate_limit],
                          storage_uri="memory://", headers_enabled=True)
        for view in ("operations.healthz", "operations.readyz", "operations.metrics",
                     "docs.docs", "api-docs.openapi_json", "index"):
            if view in app.view_functions:
                limiter.exempt(app.view_functions[view])
    return app
