"""The console's door: sign-in with the admin token, the session cookie, CSRF on every form,
and nothing (no page, no fragment, no form post) without a session; the token never appears in
a page or a log."""

from __future__ import annotations

import hashlib
import hmac
import http.cookiejar
import json
import re
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager

import pytest
from api_support import ADMIN_TOKEN, copy_workspace, serving
from console_support import close, console_app, csrf_of, sign_in, text

from recommender.models import current_model_dir

CUSTOMER = "C0000744"
VIEWER_TOKEN = "viewer-token-for-the-channel-team-0042"
COOKIE = "recommender_console"


@pytest.fixture(scope="module")
def workspace(sample_workspace, tmp_path_factory):
    ws = copy_workspace(sample_workspace, tmp_path_factory.mktemp("console-auth") / "ws")
    reports = ws.root / "reports"
    reports.mkdir()
    (reports / "latest.json").write_text(json.dumps({"cf": {"ndcg@10": 0.5}}))
    (reports / "latest.html").write_text("<html><body>report</body></html>")
    return ws


@pytest.fixture(scope="module")
def app(workspace):
    app = console_app(workspace.root)
    yield app
    close(app)


def routes(app) -> list[tuple[str, str, str]]:
    """Every console route as (endpoint, method, a path to it), sample values filled in."""
    console = app.extensions["recommender-console"]
    samples = {"customer_id": CUSTOMER, "number": "1", "name": "latest.json", "code": "en",
               "filename": "console.css"}
    out = []
    for rule in console.url_map.iter_rules():
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: samples[m.group(1)], rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, "/console" + path))
    return out


PUBLIC = {"auth.sign_in", "auth.language", "static"}


def data_strings(app) -> list[str]:
    """Strings only a page with data would contain: businesses, the model, other customers."""
    state = app.extensions["recommender"]
    engine = state.slot.engine
    names = [p.name for p in engine.catalog] + [p.name_en for p in engine.catalog if p.name_en]
    customers = [c for c in engine.store.customer_ids(20) if c != CUSTOMER]
    return [*names, *customers, engine.model_version, "ndcg@10", "rules.toml"]


def test_every_route_is_covered_here(app):
    """A new console page must be added to the checks below (this fails until it is)."""
    endpoints = {endpoint for endpoint, _, _ in routes(app)}
    assert endpoints >= {"home.index", "customers.view", "customers.results", "catalog.index",
                         "tuning.index", "tuning.weights", "models.activate", "live.data",
                         "reports.open_report", "auth.sign_out"}
    assert len([r for r in routes(app) if r[0] not in PUBLIC]) >= 17


def test_without_a_session_every_page_and_fragment_redirects_and_shows_no_data(app):
    client = app.test_client()
    leaks = data_strings(app)
    checked = 0
    for endpoint, method, path in routes(app):
        if endpoint in PUBLIC or method != "GET":
            continue
        response = client.get(path)
        assert response.status_code == 303, (path, response.status_code)
        assert response.headers["Location"].startswith("/console/sign-in?next="), path
        body = text(response)
        assert [s for s in leaks if s in body] == [], path
        checked += 1
    assert checked >= 13


def test_without_a_session_no_form_post_does_anything(app, workspace):
    client = app.test_client()
    state = app.extensions["recommender"]
    before = {name: hashlib.sha256((workspace.root / name).read_bytes()).hexdigest()
              for name in ("rules.toml", "config.toml")}
    record = state.slot.record
    for endpoint, method, path in routes(app):
        if endpoint in PUBLIC or method != "POST":
            continue
        response = client.post(path, data={"action": "save", "version": record.version,
                                           "priority": "1", "id": "x"})
        assert response.status_code == 303, path
        assert "/console/sign-in" in response.headers["Location"]
    after = {name: hashlib.sha256((workspace.root / name).read_bytes()).hexdigest()
             for name in before}
    assert after == before and state.slot.record == record


@pytest.mark.parametrize("token", [None, "", "forged-token-value-0000000000000000000000"])
def test_a_post_without_the_form_token_is_refused(app, workspace, token):
    client = app.test_client()
    sign_in(client)
    rules = (workspace.root / "rules.toml").read_bytes()
    form = {"action": "save", "id": "new-rule", "moments": "query", "priority": "50",
            "rows": "1", "recommend-0-product": "intl_sms", "reason": "x"}
    if token is not None:
        form["csrf_token"] = token
    for path in ("/console/rules/new", "/console/rules/weights", "/console/models/activate",
                 "/console/sign-out"):
        response = client.post(path, data=form)
        assert response.status_code == 400, path
        assert "expired or did not come from this console" in text(response)
    assert (workspace.root / "rules.toml").read_bytes() == rules
    assert client.get("/console/").status_code == 200  # sign-out was refused too


def test_a_sign_in_without_the_form_token_is_refused(app):
    client = app.test_client()
    response = client.post("/console/sign-in", data={"token": ADMIN_TOKEN})
    assert response.status_code == 400
    assert client.get("/console/").status_code == 303


def test_a_post_from_another_origin_is_refused(app):
    client = app.test_client()
    csrf = sign_in(client)
    response = client.post("/console/sign-out", data={"csrf_token": csrf},
                           headers={"Origin": "https://attacker.example"})
    assert response.status_code == 403
    assert client.get("/console/").status_code == 200


def test_a_wrong_token_is_refused_and_not_repeated(app):
    client = app.test_client()
    client.get("/console/language/en")
    page = client.get("/console/sign-in")
    wrong = "not-the-token-but-close-0123456789"
    response = client.post("/console/sign-in", data={
        "token": wrong, "csrf_token": csrf_of(text(page))})
    assert response.status_code == 401
    assert "That is not the admin token." in text(response)
    assert wrong not in text(response) and ADMIN_TOKEN not in text(response)
    assert client.get("/console/").status_code == 303


def test_the_session_cookie_is_signed_httponly_strict_and_limited_to_the_console(app):
    client = app.test_client()
    page = client.get("/console/sign-in")
    response = client.post("/console/sign-in", data={
        "token": ADMIN_TOKEN, "csrf_token": csrf_of(text(page)), "next": "/catalog/"})
    assert response.status_code == 303 and response.headers["Location"] == "/console/catalog/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback
    assert ADMIN_TOKEN not in cookie
    secure = app.test_client()
    page = secure.get("/console/sign-in", base_url="https://console.example")
    response = secure.post("/console/sign-in", base_url="https://console.example", data={
        "token": ADMIN_TOKEN, "csrf_token": csrf_of(text(page))})
    assert "Secure" in response.headers["Set-Cookie"]


def status_elsewhere(client, root, **settings) -> int:
    """What a server with these settings answers to ``client``'s session cookie."""
    other = console_app(root, **settings)
    try:
        elsewhere = other.test_client()
        cookie = client.get_cookie("recommender_console", path="/console")
        elsewhere.set_cookie(cookie.key, cookie.value, path="/console")
        return elsewhere.get("/console/").status_code
    finally:
        close(other)


def test_a_session_from_a_server_with_another_token_is_not_accepted(app, workspace):
    client = app.test_client()
    sign_in(client)
    assert status_elsewhere(client, workspace.root) == 200  # another worker, same token
    assert status_elsewhere(client, workspace.root,
                            admin_token="another-admin-token-987654321") == 303


@pytest.mark.parametrize("target", ["//attacker.example/x", "https://attacker.example/",
                                    "/\\attacker.example", "javascript:alert(1)"])
def test_after_sign_in_the_console_never_sends_you_elsewhere(app, target):
    client = app.test_client()
    page = client.get("/console/sign-in")
    response = client.post("/console/sign-in", data={
        "token": ADMIN_TOKEN, "csrf_token": csrf_of(text(page)), "next": target})
    assert response.headers["Location"] == "/console/"


def test_sign_out_ends_the_session(app):
    client = app.test_client()
    csrf = sign_in(client)
    assert client.post("/console/sign-out", data={"csrf_token": csrf}).status_code == 303
    assert client.get(f"/console/customers/{CUSTOMER}").status_code == 303


def test_a_copy_of_a_signed_out_cookie_opens_nothing_on_any_worker(app, workspace):
    """The cookie is still validly signed after sign-out; the server's record of its session
    is gone, here and on another worker of the same store, and its form token does nothing."""
    client = app.test_client()
    csrf = sign_in(client)
    copied = client.get_cookie(COOKIE, path="/console").value
    other = app.test_client()
    sign_in(other)  # another browser, left signed in
    assert client.post("/console/sign-out", data={"csrf_token": csrf}).status_code == 303
    replay = app.test_client()
    replay.set_cookie(COOKIE, copied, path="/console")
    assert replay.get("/console/models/").status_code == 303
    before = current_model_dir(workspace.root / "models")
    response = replay.post("/console/models/activate", data={"csrf_token": csrf,
                                                             "version": "anything"})
    assert response.status_code == 303 and "/sign-in" in response.headers["Location"]
    assert current_model_dir(workspace.root / "models") == before
    assert status_elsewhere(replay, workspace.root) == 303
    assert other.get("/console/models/").status_code == 200
    assert status_elsewhere(other, workspace.root) == 200


@contextmanager
def store_locked(workspace):
    """Another writer (an import) holding the store's write lock."""
    db = sqlite3.connect(workspace.store_path, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        db.execute("ROLLBACK")
        db.close()


def test_a_busy_store_makes_sign_in_a_503_saying_why_and_sign_out_still_signs_out(
        app, workspace, caplog):
    client = app.test_client()
    csrf = sign_in(client)
    page = app.test_client()
    page.get("/console/language/en")
    form = page.get("/console/sign-in")
    with store_locked(workspace):
        started = time.monotonic()
        response = page.post("/console/sign-in", data={
            "token": ADMIN_TOKEN, "csrf_token": csrf_of(text(form))})
        assert time.monotonic() - started < 5
        assert response.status_code == 503 and "could not record the sign-in" in text(response)
        assert page.get("/console/models/").status_code == 303  # no session was made
        out = client.post("/console/sign-out", data={"csrf_token": csrf})
        assert out.status_code == 303 and "/sign-in" in out.headers["Location"]
    assert client.get("/console/models/").status_code == 303  # this browser is signed out
    assert "could not be ended on the server" in caplog.text
    assert ADMIN_TOKEN not in caplog.text


def test_scripted_sign_ins_keep_the_newest_sessions_only(app, workspace, monkeypatch):
    store = app.extensions["recommender"].slot.engine.store
    monkeypatch.setattr(store, "MAX_CONSOLE_SESSIONS", 3)
    clients = [app.test_client() for _ in range(5)]
    for client in clients:
        sign_in(client)
    assert [c.get("/console/").status_code for c in clients] == [303, 303, 200, 200, 200]


def test_signing_in_again_ends_the_session_it_replaces(viewer_app):
    """A viewer signing in as admin: the viewer's cookie, copied before, opens nothing."""
    client = viewer_app.test_client()
    sign_in(client, VIEWER_TOKEN)
    first = client.get_cookie(COOKIE, path="/console").value
    page = client.get("/console/sign-in")
    assert client.post("/console/sign-in", data={
        "token": ADMIN_TOKEN, "csrf_token": csrf_of(text(page))}).status_code == 303
    replay = viewer_app.test_client()
    replay.set_cookie(COOKIE, first, path="/console")
    assert replay.get("/console/").status_code == 303
    assert client.get("/console/").status_code == 200


@pytest.mark.parametrize("target", ["/%0d%0aX", "/models/%0aSet-Cookie:%20x=1", "/\tx"])
def test_a_next_with_control_characters_still_signs_in(app, target):
    client = app.test_client()
    page = client.get("/console/sign-in")
    response = client.post("/console/sign-in", data={
        "token": ADMIN_TOKEN, "csrf_token": csrf_of(text(page)),
        "next": urllib.parse.unquote(target).replace("\\t", "\t")})
    assert response.status_code == 303 and response.headers["Location"] == "/console/"
    assert client.get("/console/models/").status_code == 200


def test_without_an_admin_token_the_console_is_off(workspace):
    app = console_app(workspace.root, admin_token=None)
    try:
        client = app.test_client()
        page = client.get("/console/sign-in")
        assert page.status_code == 503
        assert "RECOMMENDER_ADMIN_TOKEN" in text(page) and 'name="token"' not in text(page)
        assert client.get("/console/catalog/").status_code == 303
    finally:
        close(app)


def test_pages_forbid_framing_caching_and_outside_scripts(app):
    client = app.test_client()
    sign_in(client)
    response = client.get(f"/console/customers/{CUSTOMER}")
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in text(response) and "style=" not in text(response)


def test_an_opened_html_report_runs_no_script(app):
    client = app.test_client()
    sign_in(client)
    response = client.get("/console/reports/latest.html")
    assert response.status_code == 200 and "report" in text(response)
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert "script-src" not in response.headers["Content-Security-Policy"]


# -- over a real server: the token is never in a page or in the log --------------------------

class Browser:
    """A cookie-keeping HTTP client on a real server (stdlib only)."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.pages: list[str] = []

    def open(self, path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        data = None if form is None else urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(self.base + path, data=data)
        try:
            with self.opener.open(request, timeout=60) as response:
                status, body = response.status, response.read().decode()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read().decode()
        self.pages.append(body)
        return status, body


def test_the_token_never_appears_in_a_page_or_the_log(sample_workspace, tmp_path):
    ws = copy_workspace(sample_workspace, tmp_path / "ws")
    log_path = tmp_path / "server.log"
    wrong = "a-wrong-token-typed-by-someone-42"
    with serving(ws.root, log_path, "--workers", "2",
                 env={"RECOMMENDER_ADMIN_TOKEN": ADMIN_TOKEN}) as (base, _):
        browser = Browser(base)
        status, page = browser.open("/console/sign-in?next=/catalog/")
        assert status == 200
        status, _ = browser.open("/console/sign-in", {"token": wrong,
                                                      "csrf_token": csrf_of(page)})
        assert status == 401
        status, page = browser.open("/console/sign-in", {
            "token": ADMIN_TOKEN, "csrf_token": csrf_of(page), "next": "/catalog/"})
        assert status == 200 and "intl_roaming" in page  # followed the redirect, signed in
        version = current_model_dir(ws.models_path).name
        for path in ("/console/", f"/console/customers/{CUSTOMER}", "/console/rules/",
                     "/console/rules/1", "/console/models/", "/console/live/",
                     "/console/live/data", "/console/reports/",
                     f"/console/customers/{CUSTOMER}/results?network=4G"):
            status, _ = browser.open(path)
            assert status == 200, path
        status, page = browser.open("/console/rules/1")
        status, _ = browser.open("/console/rules/1", {
            "csrf_token": csrf_of(page), "action": "dry_run", "base": "", "rows": "0",
            "id": "x", "moments": "query", "priority": "50"})
        status, page = browser.open("/console/models/")
        status, _ = browser.open("/console/models/activate", {
            "csrf_token": csrf_of(page), "version": version})
        assert status == 200
    log = log_path.read_text()
    assert "POST /console/sign-in" in log  # the log is the server's access log indeed
    for secret in (ADMIN_TOKEN, wrong):
        assert secret not in log
        assert not [p for p in browser.pages if secret in p]


# -- the read-only role ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def viewer_app(workspace):
    app = console_app(workspace.root, viewer_token=VIEWER_TOKEN)
    yield app
    close(app)


def fingerprint(app, workspace) -> tuple:
    """What a change would move: the files on disk, what is published and served."""
    state = app.extensions["recommender"]
    files = {name: hashlib.sha256((workspace.root / name).read_bytes()).hexdigest()
             for name in ("rules.toml", "config.toml")}
    return files, state.slot.published(), state.slot.record


def test_a_viewer_sees_every_page_and_no_button_that_changes_anything(viewer_app):
    client = viewer_app.test_client()
    sign_in(client, VIEWER_TOKEN)
    seen = 0
    for endpoint, method, path in routes(viewer_app):
        if endpoint in PUBLIC or method != "GET" or endpoint == "live.data":
            continue
        response = client.get(path)
        assert response.status_code == 200, path
        page = text(response)
        if endpoint == "reports.open_report":
            continue  # the report's own file, as written
        fragment = endpoint == "customers.results"  # replaced in place inside a page
        assert fragment or 'id="read-only"' in page, path
        assert not re.search(r'value="(save|delete)"', page), path
        assert "/console/models/activate" not in page, path
        seen += 1
    assert seen >= 10
    assert 'value="dry_run"' in text(client.get("/console/rules/1"))
    admin = viewer_app.test_client()
    sign_in(admin)
    page = text(admin.get("/console/rules/1"))
    assert 'id="read-only"' not in page and 'value="save"' in page


@pytest.mark.parametrize("action", ["save", "delete", "", None, "dry_run_delete"])
def test_a_viewer_post_that_would_change_anything_is_refused(viewer_app, workspace, action):
    """Every form post of the console but sign-out and the dry runs, whatever its action."""
    client = viewer_app.test_client()
    csrf = sign_in(client, VIEWER_TOKEN)
    state = viewer_app.extensions["recommender"]
    before = fingerprint(viewer_app, workspace)
    form = {"csrf_token": csrf, "version": state.slot.record.version, "base": "",
            "id": "x", "moments": "query", "priority": "50", "rows": "1",
            "recommend-0-product": "intl_sms", "w:query:popularity": "9"}
    if action is not None:
        form["action"] = action
    refused = 0
    for endpoint, method, path in routes(viewer_app):
        if endpoint in PUBLIC or method != "POST" or endpoint == "auth.sign_out":
            continue
        if action == "dry_run_delete" and endpoint == "tuning.post_edit":
            continue  # a dry run of deleting a rule: allowed
        response = client.post(path, data=form)
        assert response.status_code == 403, (path, action)
        assert "signed in read-only" in text(response) and "Nothing was changed" in text(
            response)
        refused += 1
    assert refused >= (3 if action == "dry_run_delete" else 4)
    assert fingerprint(viewer_app, workspace) == before
    assert client.get("/console/").status_code == 200  # still signed in, still read-only


def test_a_viewer_may_dry_run_a_change_and_nothing_is_saved(viewer_app, workspace):
    client = viewer_app.test_client()
    csrf = sign_in(client, VIEWER_TOKEN)
    before = fingerprint(viewer_app, workspace)
    response = client.post("/console/rules/weights", data={
        "csrf_token": csrf, "action": "dry_run", "base": "", "w:query:popularity": "9"})
    assert response.status_code == 200, text(response)[:500]
    assert 'id="dry-run"' in text(response) and "Nothing is saved yet." in text(response)
    assert fingerprint(viewer_app, workspace) == before


def test_the_viewer_token_opens_no_admin_endpoint(viewer_app):
    client = viewer_app.test_client()
    version = viewer_app.extensions["recommender"].slot.record
    response = client.post("/v1/admin/reload",
                           headers={"Authorization": f"Bearer {VIEWER_TOKEN}"})
    assert response.status_code == 403
    assert "viewer token is read-only" in response.get_json()["detail"]
    assert VIEWER_TOKEN not in response.get_data(as_text=True)
    assert viewer_app.extensions["recommender"].slot.record == version
    wrong = client.post("/v1/admin/reload", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


def test_with_only_a_viewer_token_the_console_is_read_only(workspace):
    app = console_app(workspace.root, admin_token=None, viewer_token=VIEWER_TOKEN)
    try:
        client = app.test_client()
        client.get("/console/language/en")
        page = client.get("/console/sign-in")
        assert page.status_code == 200 and "Admin or viewer token" in text(page)
        csrf = sign_in(client, VIEWER_TOKEN)
        assert 'id="read-only"' in text(client.get("/console/models/"))
        assert client.post("/console/models/activate", data={
            "csrf_token": csrf, "version": "x"}).status_code == 403
        admin = client.post("/v1/admin/reload",
                            headers={"Authorization": f"Bearer {VIEWER_TOKEN}"})
        assert admin.status_code == 403 and "disabled" in admin.get_json()["detail"]
    finally:
        close(app)


def test_a_new_viewer_token_ends_the_viewers_sessions(viewer_app, workspace):
    client = viewer_app.test_client()
    sign_in(client, VIEWER_TOKEN)
    assert status_elsewhere(client, workspace.root, viewer_token=VIEWER_TOKEN) == 200
    assert status_elsewhere(client, workspace.root,
                            viewer_token="another-viewer-token-0000000001") == 303


def test_a_wrong_token_names_neither_token_when_a_viewer_token_is_set(viewer_app):
    client = viewer_app.test_client()
    client.get("/console/language/en")
    page = client.get("/console/sign-in")
    response = client.post("/console/sign-in", data={
        "token": VIEWER_TOKEN[:-1], "csrf_token": csrf_of(text(page))})
    assert response.status_code == 401
    assert "That is not a token of this console." in text(response)
    assert VIEWER_TOKEN not in text(response) and ADMIN_TOKEN not in text(response)


def forged(key: bytes, data: dict) -> str:
    """A session cookie signed with ``key`` the way the console signs its own."""
    from flask import Flask
    from flask.sessions import SecureCookieSessionInterface

    forger = Flask("forger")
    forger.secret_key = key
    return SecureCookieSessionInterface().get_signing_serializer(forger).dumps(data)


def test_a_viewer_cannot_sign_an_admin_session_even_without_an_admin_token(workspace):
    """The viewer holds a token the session key depends on; the key also needs the server's
    own secret, kept in its store, which no token gives."""
    from api.console.auth import session_key

    app = console_app(workspace.root, admin_token=None, viewer_token=VIEWER_TOKEN)
    try:
        store = app.extensions["recommender"].slot.engine.store
        admin = {"sid": store.open_console_session("admin", now=time.time(), idle_s=3600),
                 "role": "admin", "csrf": "x" * 20}
        guesses = [hashlib.sha256(VIEWER_TOKEN.encode()).digest(),
                   session_key(None, VIEWER_TOKEN, b""),
                   session_key(None, VIEWER_TOKEN, VIEWER_TOKEN.encode()),
                   hmac.new(("\0" + VIEWER_TOKEN).encode(), b"recommender console session v1",
                            hashlib.sha256).digest()]
        for key in guesses:
            client = app.test_client()
            client.set_cookie(COOKIE, forged(key, admin), path="/console")
            assert client.get("/console/models/").status_code == 303
        real = session_key(None, VIEWER_TOKEN, store.shared_secret("console-session"))
        client = app.test_client()  # the control: a cookie signed with the real key passes
        client.set_cookie(COOKIE, forged(real, admin), path="/console")
        assert client.get("/console/models/").status_code == 200
    finally:
        close(app)


def test_every_worker_of_a_store_shares_the_session_secret(workspace):
    first = console_app(workspace.root, viewer_token=VIEWER_TOKEN)
    second = console_app(workspace.root, viewer_token=VIEWER_TOKEN)
    try:
        assert first.extensions["recommender-console"].secret_key == \
            second.extensions["recommender-console"].secret_key
    finally:
        close(first)
        close(second)


def test_a_viewer_can_sign_in_again_as_admin(viewer_app):
    client = viewer_app.test_client()
    sign_in(client, VIEWER_TOKEN)
    page = client.get("/console/sign-in?next=/models/")
    assert page.status_code == 200 and 'name="token"' in text(page)
    response = client.post("/console/sign-in", data={
        "token": ADMIN_TOKEN, "csrf_token": csrf_of(text(page)), "next": "/models/"})
    assert response.status_code == 303 and response.headers["Location"] == "/console/models/"
    assert 'id="read-only"' not in text(client.get("/console/models/"))
