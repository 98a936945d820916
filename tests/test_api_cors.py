"""Browsers calling the API from another origin, over real HTTP: every operation answers its
CORS preflight (admin included), preflights are never rate-limited, and the headers a
front-end needs (X-Request-ID, Retry-After, ETag) are exposed."""

from __future__ import annotations

import json

import pytest
from api_support import ADMIN_TOKEN, copy_workspace, serving
from http_support import exchange, operations

ORIGIN = "https://hall.example.com"
#: Requests a minute per route; the preflights below are many times this.
LIMIT = 3
ASKED_HEADERS = ("content-type", "authorization", "x-request-id", "if-none-match")


@pytest.fixture(scope="module")
def browser_server(sample_workspace, tmp_path_factory):
    ws = copy_workspace(sample_workspace, tmp_path_factory.mktemp("cors") / "ws")
    env = {"RECOMMENDER_ADMIN_TOKEN": ADMIN_TOKEN, "RECOMMENDER_CORS_ORIGINS": ORIGIN,
           "RECOMMENDER_RATE_LIMIT": f"{LIMIT}/minute"}
    with serving(ws.root, ws.root / "server.log", "--workers", "1", "--no-access-log",
                 env=env) as (base, _):
        status, _, raw = exchange(base, "GET", "/openapi.json")
        assert status == 200
        yield base, json.loads(raw)


def preflight(base: str, path: str, method: str, origin: str = ORIGIN
              ) -> tuple[int, dict[str, str]]:
    status, headers, _ = exchange(base, "OPTIONS", path, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": ", ".join(ASKED_HEADERS)})
    return status, {k.lower(): v for k, v in headers.items()}


def listed(value: str | None) -> set[str]:
    return {part.strip().lower() for part in (value or "").split(",") if part.strip()}


def test_every_operation_answers_its_preflight_and_none_is_rate_limited(browser_server):
    base, spec = browser_server
    found = operations(spec)
    assert "reload" in found
    for name, (path, method, _) in found.items():
        path = path.replace("{product_id}", "cloud_storage")
        for _ in range(LIMIT * 3):
            status, headers = preflight(base, path, method.upper())
            assert status == 200, (name, status)
            assert headers["access-control-allow-origin"] == ORIGIN, name
            assert method.upper() in {m.upper() for m in listed(
                headers["access-control-allow-methods"])}, name
            assert listed(headers["access-control-allow-headers"]) >= set(ASKED_HEADERS), name
            assert headers["access-control-max-age"] == "600"


def test_preflights_leave_the_rate_limit_to_the_requests(browser_server):
    base, _ = browser_server
    for _ in range(LIMIT * 4):
        assert preflight(base, "/v1/plugins", "GET")[0] == 200
    statuses = []
    for _ in range(LIMIT + 1):
        status, headers, _ = exchange(base, "GET", "/v1/plugins", headers={"Origin": ORIGIN})
        statuses.append(status)
        assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert statuses == [200] * LIMIT + [429]
    # The browser may read why, and when to come back.
    assert int(headers["Retry-After"]) > 0
    assert listed(headers["Access-Control-Expose-Headers"]) >= {"retry-after", "x-request-id"}


def test_answers_expose_the_request_id_and_the_etag(browser_server):
    base, _ = browser_server
    status, headers, _ = exchange(base, "GET", "/v1/products/intl_sms", headers={
        "Origin": ORIGIN, "X-Request-ID": "hall-0001"})
    assert status == 200 and headers["X-Request-ID"] == "hall-0001"
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert listed(headers["Access-Control-Expose-Headers"]) >= {"x-request-id", "etag",
                                                                "retry-after"}


def test_admin_preflight_needs_no_token_but_the_call_does(browser_server):
    base, _ = browser_server
    status, headers = preflight(base, "/v1/admin/reload", "POST")
    assert status == 200 and "authorization" in listed(headers["access-control-allow-headers"])
    status, headers, raw = exchange(base, "POST", "/v1/admin/reload", headers={
        "Origin": ORIGIN, "Content-Type": "application/json"})
    assert status == 401 and json.loads(raw)["status"] == 401
    assert headers["Access-Control-Allow-Origin"] == ORIGIN  # the page can show the error


def test_another_origin_is_not_allowed(browser_server):
    base, _ = browser_server
    status, headers = preflight(base, "/v1/recommendations", "POST",
                                origin="https://evil.example.net")
    assert "access-control-allow-origin" not in headers
