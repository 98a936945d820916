"""X-Request-ID: taken from the caller when safe, made up otherwise, and the same id in the
response header, the body, error bodies and the access log."""

from __future__ import annotations

import re
import time
import urllib.request

import pytest
from api_support import check_problem, copy_workspace, make_app, serving

BODY = {"customer": {"id": "C0000042"}, "channel": "app", "moment": "query"}
HEX = re.compile(r"[0-9a-f]{32}")


def test_a_given_id_is_echoed_and_becomes_the_body_s(client) -> None:
    response = client.post("/v1/recommendations", json=BODY,
                           headers={"X-Request-ID": "app-7f3c:0001"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "app-7f3c:0001"
    assert response.get_json()["request_id"] == "app-7f3c:0001"


def test_without_one_an_id_is_made_up_and_the_header_matches_the_body(client) -> None:
    response = client.post("/v1/recommendations", json=BODY)
    made_up = response.headers["X-Request-ID"]
    assert HEX.fullmatch(made_up) and response.get_json()["request_id"] == made_up
    other = client.post("/v1/recommendations", json=BODY).headers["X-Request-ID"]
    assert other != made_up
    assert HEX.fullmatch(client.get("/healthz").headers["X-Request-ID"])


def test_the_body_s_request_id_wins_and_the_header_says_so(client) -> None:
    response = client.post("/v1/recommendations", json={**BODY, "request_id": "page-42"},
                           headers={"X-Request-ID": "ignored-1"})
    assert response.get_json()["request_id"] == "page-42"
    assert response.headers["X-Request-ID"] == "page-42"


@pytest.mark.parametrize("unsafe", ["has space", "x" * 65, "semi;colon", "<script>", "é"])
def test_an_unsafe_id_is_replaced_not_echoed(client, unsafe: str) -> None:
    response = client.post("/v1/recommendations", json=BODY, headers={"X-Request-ID": unsafe})
    assert response.status_code == 200
    echoed = response.headers["X-Request-ID"]
    assert echoed != unsafe and HEX.fullmatch(echoed)


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("post", "/v1/recommendations", {"channel": "app"}, 422),
    ("get", "/v1/products/no_such_business", None, 404),
    ("get", "/no/such/path", None, 404),
])
def test_error_bodies_carry_the_id(client, method, path, body, status) -> None:
    response = getattr(client, method)(path, json=body, headers={"X-Request-ID": "err-1"})
    assert check_problem(response, status)["request_id"] == "err-1"
    assert response.headers["X-Request-ID"] == "err-1"


def test_browsers_may_send_it_and_read_it(api_workspace) -> None:
    app = make_app(api_workspace.root, cors_origins=["https://app.example.com"])
    try:
        client = app.test_client()
        preflight = client.options("/v1/recommendations", headers={
            "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-request-id"})
        assert preflight.status_code == 200
        allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
        assert "x-request-id" in allowed and "content-type" in allowed
        answer = client.post("/v1/recommendations", json=BODY, headers={
            "Origin": "https://app.example.com", "X-Request-ID": "cors-1"})
        exposed = answer.headers["Access-Control-Expose-Headers"].lower()
        assert "x-request-id" in exposed and "retry-after" in exposed
    finally:
        app.extensions["recommender"].slot.close()


def test_the_access_log_names_the_id(sample_workspace, tmp_path) -> None:
    """A real gunicorn server with its access log on: the line of a request carries its id."""
    ws = copy_workspace(sample_workspace, tmp_path / "ws")
    log_path = tmp_path / "server.log"
    with serving(ws.root, log_path, "--workers", "1", "--threads", "2") as (base, _):
        request = urllib.request.Request(
            base + "/v1/recommendations", data=b'{"customer": {"id": "C0000042"}, '
            b'"channel": "app", "moment": "query"}', method="POST",
            headers={"Content-Type": "application/json", "X-Request-ID": "logged-77"})
        with urllib.request.urlopen(request, timeout=30) as r:
            assert r.headers["X-Request-ID"] == "logged-77"
        deadline = time.monotonic() + 10
        while "request_id=logged-77" not in log_path.read_text():
            assert time.monotonic() < deadline, log_path.read_text()[-2000:]
            time.sleep(0.1)
        line = next(x for x in log_path.read_text().splitlines() if "logged-77" in x)
        assert '"POST /v1/recommendations HTTP/1.1" 200' in line
