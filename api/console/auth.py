"""Signing in to the console, the session cookie, roles, and CSRF protection.

The token is asked once, in a form (field ``token``), and compared in constant time; it is
never written into a page, a redirect or a log. The admin token signs in with every right;
the viewer token (``[server] viewer_token``) signs in read-only: every page, and dry runs,
but no POST that saves, activates or rolls back (refused with 403 before the view runs).
What the browser keeps is a session cookie signed with a key derived from a random secret
kept in the store (``Store.shared_secret``) and the tokens (HMAC-SHA256): every worker of the
server accepts it, changing a token signs everyone out, and no token alone signs a session.
The cookie holds a random session id; the role is the server's record of it
(:mod:`api.console.sessions`), so signing out ends the session even for a copy of the cookie.
The cookie is HttpOnly, SameSite=Strict, limited to ``/console``, Secure when the request came
over HTTPS, and expires after :data:`SESSION_HOURS`. Every form carries a random per-session
token that each POST must return; a POST without it, or from another origin, is refused
before the view runs.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from werkzeug.wrappers import Response as BaseResponse

from recommender.errors import ContextError
from recommender.i18n import parse_locale
from recommender.store import Store, StoreError

from ..state import service
from .sessions import ConsoleSessions

log = logging.getLogger("recommender.console")

blp = Blueprint("auth", __name__)

SESSION_HOURS = 8
CSRF_FIELD = "csrf_token"
COOKIE_NAME = "recommender_console"
#: Views anyone may open: the sign-in form, the language switch and the bundled assets.
PUBLIC_ENDPOINTS = frozenset({"auth.sign_in", "auth.language", "static"})


#: Roles a session can have, by the token it signed in with.
ADMIN, VIEWER = "admin", "viewer"
#: What a read-only session may still POST: signing out, and the tuning forms' dry runs
#: (their ``action`` field; saving and deleting are other actions).
VIEWER_POSTS: dict[str, frozenset[str] | None] = {
    "auth.sign_out": None,
    "auth.sign_in": None,  # with the admin token, to change something
    "tuning.weights": frozenset({"dry_run"}),
    "tuning.post_new": frozenset({"dry_run"}),
    "tuning.post_edit": frozenset({"dry_run", "dry_run_delete"}),
}


def session_key(admin_token: str | None, viewer_token: str | None, secret: bytes) -> bytes:
    """The key sessions are signed with: the server's ``secret`` (shared by its workers,
    known to no user) with the tokens, so a new token ends every session and holding a
    token, the viewer's say, is not enough to sign a session; random (no session can be made)
    without a token."""
    if admin_token is None and viewer_token is None:
        return secrets.token_bytes(32)
    tokens = "\0".join(t or "" for t in (admin_token, viewer_token)).encode()
    return hmac.new(secret, b"recommender console session v2\0" + tokens,
                    hashlib.sha256).digest()


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, marked Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure or app.config.get("SESSION_COOKIE_SECURE"))


#: Where the console app keeps its :class:`ConsoleSessions`.
SESSIONS_KEY = "recommender-console-sessions"


def configure(app: Flask, admin_token: str | None, viewer_token: str | None,
              secret: bytes, store: Store | None) -> None:
    """Session settings and the guard that runs before every console view."""
    app.extensions[SESSIONS_KEY] = ConsoleSessions(store, SESSION_HOURS * 3600)
    app.config.update(
        SECRET_KEY=session_key(admin_token, viewer_token, secret),
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_PATH="/console", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS))
    app.session_interface = ConsoleSessionInterface()
    app.before_request(guard)
    app.register_blueprint(blp)


def sessions() -> ConsoleSessions:
    return current_app.extensions[SESSIONS_KEY]


def role() -> str | None:
    """The session's role (:data:`ADMIN` or :data:`VIEWER`), None when not signed in: the
    server's record of the cookie's session id, looked up once per request."""
    if "console_role" not in g:
        value = sessions().role(session.get("sid"))
        g.console_role = value if value in (ADMIN, VIEWER) else None
    return g.console_role


def signed_in() -> bool:
    return role() is not None


def read_only() -> bool:
    """Signed in with the viewer token: pages and dry runs, nothing that changes a thing."""
    return role() == VIEWER


def csrf_token() -> str:
    """This session's form token (made on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def guard() -> BaseResponse | None:
    """Sign-in first (a redirect, showing nothing), then a valid form token on every POST."""
    if request.endpoint is None:
        return None  # no such page: 404
    if request.endpoint not in PUBLIC_ENDPOINTS and not signed_in():
        return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")), 303)
    if request.method == "POST":
        origin = request.headers.get("Origin")
        if origin and origin.rstrip("/") != request.host_url.rstrip("/"):
            abort(403, description="cross-origin form")
        sent = request.form.get(CSRF_FIELD, "")
        expected = session.get("csrf")
        if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(),
                                                                     expected.encode()):
            abort(400, description="csrf")
        if read_only() and not _viewer_may_post(request.endpoint):
            log.warning("console: read-only session refused a change: POST %s from %s",
                        request.path, request.remote_addr)
            abort(403, description="read_only")
    return None


def _viewer_may_post(endpoint: str) -> bool:
    if endpoint not in VIEWER_POSTS:
        return False
    actions = VIEWER_POSTS[endpoint]
    return actions is None or request.form.get("action") in actions


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path inside the console, else its home."""
    if (value and value.startswith("/") and not value.startswith("//") and "\\" not in value
            and value.isprintable()):
        parts = urlsplit(value)
        if not parts.scheme and not parts.netloc:
            return request.script_root + value
    return url_for("home.index")


@blp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    """The sign-in form; on a matching token, a fresh session."""
    settings = service().settings
    next_path = request.values.get("next", "")

    def form(**values: Any) -> str:
        return render_template("sign_in.html", viewer=settings.viewer_token is not None,
                               **values)

    if settings.admin_token is None and settings.viewer_token is None:
        return form(disabled=True, next=next_path), 503
    if request.method == "GET":
        if signed_in() and not read_only():  # a viewer may sign in again, as admin
            return redirect(safe_next(next_path), 303)
        return form(next=next_path)
    given = hashlib.sha256(request.form.get("token", "").encode()).digest()
    # Both compared every time, so the time taken does not say which token was close.
    matches = {name: token is not None and hmac.compare_digest(
                   given, hashlib.sha256(token.encode()).digest())
               for name, token in ((ADMIN, settings.admin_token),
                                   (VIEWER, settings.viewer_token))}
    granted = ADMIN if matches[ADMIN] else VIEWER if matches[VIEWER] else None
    if granted is None:
        log.warning("console: sign-in refused (not a console token) from %s",
                    request.remote_addr)
        return form(failed=True, next=next_path), 401
    try:
        session_id = sessions().open(granted)
    except StoreError as e:
        log.error("console: sign-in as %s not recorded: the store is busy or failing (%s)",
                  granted, e.code or type(e).__name__)
        return form(busy=True, next=next_path), 503
    log.info("console: signed in as %s from %s", granted, request.remote_addr)
    locale = session.get("locale")
    sessions().close(session.get("sid"))  # signing in again ends the session it replaces
    session.clear()
    session.permanent = True
    session["sid"] = session_id
    g.console_role = granted
    session["csrf"] = secrets.token_urlsafe(32)
    if locale:
        session["locale"] = locale
    return redirect(safe_next(next_path), 303)


@blp.route("/sign-out", methods=["POST"])
def sign_out() -> Response:
    """End the session on the server too: a copy of the cookie opens nothing afterwards."""
    sessions().close(session.get("sid"))
    session.clear()
    return redirect(url_for("auth.sign_in"), 303)


@blp.route("/language/<code>")
def language(code: str) -> Response:
    """Switch the console's language for this browser, then go back."""
    try:
        session["locale"] = parse_locale(code)
    except ContextError:
        abort(404)
    return redirect(safe_next(request.args.get("next")), 303)
