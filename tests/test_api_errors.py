"""Every error is problem details: 400, 404, 405, 413, 415, 422 and 500, never HTML or a trace."""

from __future__ import annotations

import pytest
from api_support import check_problem, make_app

BODY = {"customer": {"id": "C0000042"}, "channel": "app", "moment": "query"}


def test_unknown_path_is_404(client):
    problem = check_problem(client.get("/v1/nothing-here"), 404)
    assert problem["instance"] == "/v1/nothing-here"


def test_unknown_product_is_404(client):
    problem = check_problem(client.get("/v1/products/no_such"), 404)
    assert "no_such" in problem["detail"]


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/v1/recommendations"), ("delete", "/v1/recommendations"),
    ("put", "/v1/feedback"), ("post", "/v1/products"), ("post", "/healthz"),
])
def test_wrong_method_is_405_with_allow(client, method, path):
    response = getattr(client, method)(path)
    problem = check_problem(response, 405)
    assert response.headers["Allow"]
    assert method.upper() in problem["detail"]


@pytest.mark.parametrize(("data", "content_type", "status", "needle"), [
    ('{"customer": ', "application/json", 400, "line 1"),
    ("{bad json}", "application/json", 400, "line 1 column 2"),
    ("[" * 20000 + "]" * 20000, "application/json", 400, "nested too deeply"),
    (b'{"customer": {"id": "\xff\xfe"}}', "application/json", 400, "not UTF-8"),
    ('{"k": NaN}', "application/json", 400, "NaN"),
    ('{"k": Infinity}', "application/json", 400, "Infinity"),
    ('{"k": -Infinity}', "application/json", 400, "Infinity"),
    ("customer=C1", "application/x-www-form-urlencoded", 415, "application/json"),
    ('{"customer": {"id": "C1"}}', "text/plain", 415, "text/plain"),
    ("[]", "application/json", 422, "schema"),
    ('"just a string"', "application/json", 422, "schema"),
])
def test_bad_bodies_are_refused_with_a_reason(client, data, content_type, status, needle):
    response = client.post("/v1/recommendations", data=data, content_type=content_type)
    problem = check_problem(response, status)
    assert needle in problem["detail"]


def test_empty_body_names_the_missing_fields(client):
    problem = check_problem(client.post("/v1/recommendations", data=b"",
                                        content_type="application/json"), 422)
    assert {"customer", "channel", "moment"} <= set(problem["errors"])


def test_a_body_over_the_limit_is_413(api_workspace):
    app = make_app(api_workspace.root, max_body_bytes=2048)
    client = app.test_client()
    big = {**BODY, "customer": {"id": "C0000042", "tags": ["t" * 60] * 60}}
    problem = check_problem(client.post("/v1/recommendations", json=big), 413)
    assert "2048" in problem["detail"]
    assert client.post("/v1/recommendations", json=BODY).status_code == 200
    app.extensions["recommender"].slot.close()


def test_default_body_limit_is_64_kib(client):
    huge = {**BODY, "request_id": "x" * (64 * 1024)}
    problem = check_problem(client.post("/v1/recommendations", json=huge), 413)
    assert "65536" in problem["detail"]


def test_an_unexpected_error_is_a_500_problem_without_internals(api_workspace):
    app = make_app(api_workspace.root)

    @app.route("/boom")
    def boom():
        raise RuntimeError(f"secret path {api_workspace.root}/store.sqlite")

    response = app.test_client().get("/boom")
    problem = check_problem(response, 500)
    assert "secret" not in response.get_data(as_text=True)
    assert problem["title"] == "Internal Server Error"
    app.extensions["recommender"].slot.close()


def test_security_headers_on_every_answer(client):
    for response in (client.get("/healthz"), client.get("/nope"),
                     client.post("/v1/recommendations", json=BODY)):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
