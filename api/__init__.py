"""The HTTP API channels call: ``create_app`` builds the Flask app over a workspace folder.

::

    from api import create_app
    app = create_app("recommender-data")     # or: recommender serve --dir recommender-data
"""

from __future__ import annotations

import functools
import logging
import re
import uuid
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pluggy
from flask import Flask, Response, g, request
from flask_cors import CORS
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from recommender.engine import Engine
from recommender.errors import ConfigError, RecommenderError
from recommender.plugin_manager import make_plugin_manager
from recommender.snapshot import (
    UNTRAINED,
    EngineBuilder,
    ServingRecord,
    published,
    stored_snapshot,
)
from recommender.store import Store
from recommender.workspace import DEFAULT_DIR, Workspace

from . import (
    admin,
    checks,
    clients,
    docs,
    feedback,
    operations,
    plugins,
    products,
    recommendations,
    strategies,
)
from .contract import CLIENT_SCHEME
from .limits import BodyLimit
from .metrics import Metrics
from .problems import OperationIds, ProblemApi, problem, without_paths
from .serving import EngineSlot, settle_heap
from .settings import ServerSettings
from .state import EXTENSION, ServiceState

__all__ = ["ServerSettings", "create_app"]

log = logging.getLogger("recommender.api")

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


#: The header a caller may send to name its request; echoed on every response.
REQUEST_ID_HEADER = "X-Request-ID"
#: What a request id may be (the same as the body's ``request_id``).
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def create_app(root: str | Path | None = None, *, settings: ServerSettings | None = None,
               plugin_manager: pluggy.PluginManager | None = None,
               environ: Mapping[str, str] | None = None,
               follow_published: bool = False) -> Flask:
    """Build the app over the workspace at ``root`` (settings from its config and environment).

    By default the workspace files and the newest trained model are checked and published as
    what every worker of the server serves. With ``follow_published`` (the workers of
    ``recommender serve``) the app builds from what is already published instead, whatever
    the files on disk hold now.

    :param plugin_manager: use these plugins instead of the default set (tests, embedding).
    :raises ConfigError: the workspace or its settings are missing or malformed.
    :raises ModelError: the current model version cannot be loaded.
    """
    settings = settings or ServerSettings.load(root or DEFAULT_DIR, environ)
    workspace = Workspace(settings.root)
    if not follow_published and not workspace.exists():
        raise ConfigError(str(settings.root), "catalog.toml", "no workspace here; create one "
                          "with 'recommender quickstart' or 'recommender demo-data'")
    metrics = Metrics()
    pm = plugin_manager or make_plugin_manager()
    pm.register(metrics, name="api-metrics")
    store = Store(settings.store or workspace.store_path)
    builder = EngineBuilder(settings.root, settings.models or workspace.models_path, store, pm)
    if follow_published:
        engine, record, trouble = _boot_published(builder, settings)
    else:
        engine, record = builder.activate()
        trouble = None
    on_swap = metrics.set_model
    if follow_published:  # a server worker: long-lived objects kept out of the collector's way
        def on_swap(previous: str, new: str) -> None:
            metrics.set_model(previous, new)
            settle_heap()

    slot = EngineSlot(engine, record, builder, settings.reload_poll_seconds, problem=trouble,
                      clean=functools.partial(without_paths, settings=settings),
                      on_swap=on_swap, server_table=settings.server_table)
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
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "The admin token ([server] admin_token)."},
                CLIENT_SCHEME: {"type": "http", "scheme": "bearer", "description": (
                    "A client token ([server] client_tokens), or the admin token; needed only "
                    "when the server sets client tokens.")}}},
        },
    )
    app.json.sort_keys = False  # keep the contract's field order: request_id first
    app.json.ensure_ascii = False  # Chinese names readable as sent (the body is UTF-8)
    api = ProblemApi(app, spec_kwargs={"extra_plugins": [OperationIds()]})
    for module in (recommendations, checks, feedback, products, strategies, plugins, operations,
                   admin):
        api.register_blueprint(module.blp)
    app.register_blueprint(docs.blp)
    app.wsgi_app = BodyLimit(app.wsgi_app, settings.max_body_bytes)
    app.extensions[EXTENSION] = ServiceState(settings=settings, slot=slot, metrics=metrics,
                                             api=api)
    metrics.init_app(app)
    if settings.cors_origins:  # every path answers a preflight, admin included
        CORS(app, origins=list(settings.cors_origins), methods=["GET", "POST"],
             allow_headers=["Content-Type", "Authorization", REQUEST_ID_HEADER,
                            "If-None-Match", "If-Modified-Since"],
             expose_headers=[REQUEST_ID_HEADER, "Retry-After", "ETag"], max_age=600)
    app.config["RATELIMIT_DEFAULTS_EXEMPT_WHEN"] = lambda: request.method == "OPTIONS"
    from .compression import compress

    compress(app)  # gzip, when the request accepts it

    @app.before_request
    def _request_id() -> None:
        """The caller's X-Request-ID when it is a safe token, else a new one: echoed in the
        response header, in error bodies and in the access log."""
        given = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex

    @app.before_request
    def _check_body() -> Response | None:
        if request.environ.get(BodyLimit.OVER):
            return problem(413, f"the body is over the limit of {settings.max_body_bytes} "
                                f"bytes")
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
        if "request_id" in g:
            response.headers[REQUEST_ID_HEADER] = g.request_id
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
    # After the limiter: a refused call counts against the caller's limit (token guessing).
    clients.install(app, settings.client_tokens, settings.admin_token)
    from .console import mount as mount_console  # the operator console, under /console

    mount_console(app)
    return app


def _boot_published(builder: EngineBuilder, settings: ServerSettings
                    ) -> tuple[Engine, ServingRecord, str | None]:
    """A worker's engine: what is published, whatever the files on disk hold now.

    If the published model cannot be built here (its folder was removed, say), the worker
    still starts, serves the published files without a model and reports itself not ready,
    so one bad model folder cannot stop the whole server; it retries as it polls.
    """
    record = published(builder.store)
    if record is None:
        engine, record = builder.activate()
        return engine, record, None
    try:
        return builder.from_record(record), record, None
    except (RecommenderError, OSError) as e:
        trouble = (f"cannot build the published model {record.version}: "
                   f"{without_paths(str(e), settings)}")
        log.error("%s", trouble)
        engine = builder.build(stored_snapshot(builder.store, record.snapshot), UNTRAINED)
        return engine, ServingRecord(UNTRAINED, record.snapshot), trouble
