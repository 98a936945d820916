"""The operator console: ``/console``, pages for the channel and marketing teams.

Look a customer up and see what every channel would offer at every moment and why; browse the
catalog; edit marketing's rules and the blend weights with a dry run before saving; activate or
roll back a model version; watch traffic, faults and the feedback funnel live; open the offline
evaluation reports. Server-rendered (Jinja2 and a little plain JavaScript, every asset in this
package), in Chinese and English.

The console is a small Flask app of its own, mounted under ``/console`` of the API's app and
sharing its state (the engine slot, settings, metrics): its forms post HTML form data and its
errors are pages, where the API accepts only JSON and answers problem details. Signing in
needs the admin token (``RECOMMENDER_ADMIN_TOKEN``); without one the console is off.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, render_template, request, session
from markupsafe import Markup, escape
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from ..state import EXTENSION, ServiceState, service
from . import auth, catalog, customers, home, live, models, reports, tuning
from .i18n import M_, best_locale, term, translations

log = logging.getLogger("recommender.console")

PREFIX = "/console"
#: Form posts are small (one rule, one weights table); larger bodies are refused with 413.
MAX_FORM_BYTES = 256 * 1024

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Same-origin (not no-referrer): browsers then send the Origin header the form check needs.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
}


def mount(app: Flask) -> Flask:
    """Serve the console under ``/console`` of the API's ``app``; returns the console app."""
    console = create_console(app.extensions[EXTENSION])
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {PREFIX: console})  # type: ignore[method-assign]
    app.extensions["recommender-console"] = console
    return console


def create_console(state: ServiceState) -> Flask:
    """The console app over the API's shared state."""
    console = Flask(__name__, static_folder="static", static_url_path="/static")
    console.extensions[EXTENSION] = state
    console.config.update(MAX_CONTENT_LENGTH=MAX_FORM_BYTES, TEMPLATES_AUTO_RELOAD=False)
    console.jinja_env.trim_blocks = True
    console.jinja_env.lstrip_blocks = True
    store = state.slot.engine.store
    auth.configure(console, state.settings.admin_token, state.settings.viewer_token,
                   store.shared_secret("console-session") if store is not None
                   else secrets.token_bytes(32), store)
    for module in (home, customers, catalog, tuning, models, live, reports):
        console.register_blueprint(module.blp)
    console.before_request(_choose_locale)
    console.context_processor(_template_helpers)
    console.add_template_filter(utc, "utc")
    console.after_request(_security_headers)
    console.register_error_handler(HTTPException, _http_error)
    console.register_error_handler(Exception, _unexpected)
    return console


def _choose_locale() -> None:
    chosen = session.get("locale")
    if chosen not in ("zh-CN", "en"):
        default = service().slot.engine.config.locale("default")
        chosen = best_locale(request, default)
    g.locale = chosen


def translate(locale: str, message: str, **params: Any) -> str | Markup:
    """A template's ``_()``: ``message`` in ``locale``, its ``{placeholders}`` filled with the
    parameters escaped (those already markup, a macro's output, kept as they are)."""
    text = translations(locale).gettext(message)
    return Markup(escape(text)).format(**params) if params else text


def utc(ts: int | float | None) -> str:
    """A unix time as the pages show it."""
    if ts is None:
        return ""
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, OSError, ValueError):  # a row dated past year 9999
        return str(ts)


def _template_helpers() -> dict[str, Any]:
    locale = g.get("locale", "en")
    return {
        "_": lambda message, **params: translate(locale, message, **params),
        "term": lambda kind, value: term(locale, kind, value),
        "locale": locale,
        "csrf_token": auth.csrf_token,
        "signed_in": auth.signed_in(),
        "read_only": auth.read_only(),
    }


def _security_headers(response: Response) -> Response:
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    return response


#: What each error page says (English message ids).
ERROR_MESSAGES: dict[int | str, str] = {
    400: M_("The form was not accepted: it expired or did not come from this console. Reload "
            "the page and try again."),
    403: M_("This request is not allowed here."),
    "read_only": M_("You are signed in read-only (the viewer token): saving, activating and "
                    "rolling back need the admin token. Nothing was changed."),
    404: M_("There is no such page."),
    405: M_("This page does not take that kind of request."),
    413: M_("The form is too large."),
}
#: Words the pages translate from values (moments, kinds, windows), for the catalog.
VALUE_WORDS = (M_("query"), M_("transaction"), M_("success"), M_("failure"), M_("business"),
               M_("service"), M_("1h"), M_("24h"), M_("7d"), M_("30d"), M_("90d"), M_("all"),
               M_("Something went wrong."))


def _http_error(error: HTTPException) -> tuple[str, int]:
    status = error.code or 500
    message = ERROR_MESSAGES.get(
        "read_only" if status == 403 and error.description == "read_only" else status,
        "Something went wrong.")
    return render_template("error.html", status=status, message=message), status


def _unexpected(error: Exception) -> tuple[str, int]:
    # One line at ERROR without the message (it may hold data); the traceback only at DEBUG.
    reference = uuid.uuid4().hex[:12]
    log.error("unhandled %s on %s %s (error %s)", type(error).__name__, request.method,
              request.path, reference)
    log.debug("error %s", reference, exc_info=error)
    return render_template("error.html", status=500, message="Something went wrong.",
                           reference=reference), 500
