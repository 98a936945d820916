"""Probes, metrics, the OpenAPI document and the docs page."""

from __future__ import annotations

import random
import re
import string

import pytest
from api_support import check_problem, copy_workspace, make_app, metric
from openapi_spec_validator import validate

from recommender import Strategy, hookimpl
from recommender.plugin_manager import make_plugin_manager

BODY = {"customer": {"id": "C0000042"}, "channel": "app", "moment": "query"}

#: The API's operations: what the OpenAPI document must publish, no more, no less.
SPEC_PATHS = {
    ("/v1/recommendations", "post"), ("/v1/checks", "post"), ("/v1/feedback", "post"),
    ("/v1/products", "get"),
    ("/v1/products/{product_id}", "get"), ("/v1/strategies", "get"), ("/v1/plugins", "get"),
    ("/v1/products/{product_id}/audience", "get"),
    ("/healthz", "get"),
    ("/readyz", "get"), ("/metrics", "get"), ("/v1/admin/reload", "post"),
}


def test_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_when_models_and_store_are_there(client):
    body = client.get("/readyz").get_json()
    assert body["status"] == "ready"
    assert body["checks"] == {"store": "ok", "serving": "ok", "models": "ok"}


def test_readyz_is_503_without_models(sample_workspace, tmp_path):
    ws = copy_workspace(sample_workspace, tmp_path / "ws")
    for child in ws.models_path.iterdir():
        child.unlink() if child.is_file() else None
    (ws.models_path / "CURRENT").unlink(missing_ok=True)
    app = make_app(ws.root)
    problem = check_problem(app.test_client().get("/readyz"), 503)
    assert problem["checks"]["store"] == "ok"
    assert problem["checks"]["models"].startswith("not loaded")
    app.extensions["recommender"].slot.close()


def test_metrics_count_requests_and_latency_by_endpoint_and_status(client):
    before = client.get("/metrics").get_data(as_text=True)
    client.post("/v1/recommendations", json=BODY)
    client.post("/v1/recommendations", json={**BODY, "k": 0})
    text = client.get("/metrics").get_data(as_text=True)
    for status in ("200", "422"):
        labels = {"endpoint": "/v1/recommendations", "status": status}
        assert metric(text, "recommender_http_requests_total", **labels) == \
            metric(before, "recommender_http_requests_total", **labels) + 1
        assert metric(text, "recommender_http_request_duration_seconds_count", **labels) >= 1
    assert re.search(r'recommender_model_info\{version="[^"]+"\} 1\.0', text)


class Broken(Strategy):
    name = "broken"

    def candidates(self, context, n):
        raise RuntimeError("model file went missing")


class BrokenPlugin:
    @hookimpl
    def register_strategies(self):
        return [Broken()]

    @hookimpl
    def extra_context(self, context):
        raise ConnectionError("CRM is down")


@pytest.fixture
def faulty_app(sample_workspace, tmp_path):
    ws = copy_workspace(sample_workspace, tmp_path / "ws")
    config = re.sub(r"(?m)^\[blend\.query\].*$", "[blend.query]\nbroken = 1.0",
                    ws.config_path.read_text())
    ws.config_path.write_text(config)
    pm = make_plugin_manager(extra_plugins=[("broken-plugin", BrokenPlugin())])
    app = make_app(ws.root, plugin_manager=pm)
    yield app
    app.extensions["recommender"].slot.close()


def test_faulty_plugins_degrade_the_answer_and_are_counted(faulty_app):
    client = faulty_app.test_client()
    r = client.post("/v1/recommendations", json={**BODY, "debug": True})
    assert r.status_code == 200
    body = r.get_json()
    assert body["suggestions"]
    assert any("broken-plugin" in w for w in body["warnings"])
    assert {"strategy": "broken", "stage": "strategy",
            "error": "RuntimeError: model file went missing"} in body["errors"]
    text = client.get("/metrics").get_data(as_text=True)
    assert metric(text, "recommender_plugin_faults_total", plugin="broken", stage="strategy") == 1
    assert metric(text, "recommender_plugin_faults_total", plugin="broken-plugin",
                  stage="context") == 1


def test_openapi_document_is_valid_and_complete(client):
    spec = client.get("/openapi.json").get_json()
    validate(spec)
    operations = {(path, method): op for path, item in spec["paths"].items()
                  for method, op in item.items() if method != "parameters"}
    assert set(operations) == SPEC_PATHS
    for (path, method), op in operations.items():
        assert op.get("summary"), (path, method)
        assert "default" in op["responses"], (path, method)
    # Generated clients name their methods after operationId: present, unique, identifiers.
    ids = [op.get("operationId") for op in operations.values()]
    assert all(isinstance(i, str) and i.isidentifier() for i in ids), ids
    assert len(set(ids)) == len(ids), ids
    assert operations[("/v1/recommendations", "post")]["operationId"] == "recommend"


def test_docs_page_lists_every_operation(client):
    response = client.get("/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    for path, _ in SPEC_PATHS:
        assert f"<code>{path}</code>" in html
    assert "<script" not in html and "http://" not in html.replace("http://localhost", "")


@pytest.mark.parametrize(("body", "mimetype", "status", "valid"), [
    ({"status": "ok"}, "application/json", 200, True),
    ({"status": 1}, "application/json", 200, False),
    ({"type": "t", "title": "Not Found", "status": 404, "detail": "d"},
     "application/problem+json", 404, True),
    ({"title": 3}, "application/problem+json", 404, False),
])
def test_the_contract_check_catches_a_body_off_the_schema(app, body, mimetype, status, valid):
    """The client fixture's validation is real: a body off the schema fails it."""
    import json

    from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
    from werkzeug import Request, Response

    request = Request.from_values(path="/healthz", method="GET", base_url="http://localhost")
    response = Response(json.dumps(body), status=status, mimetype=mimetype)
    check = app.test_client_class.openapi.validate_response
    if valid:
        check(WerkzeugOpenAPIRequest(request), WerkzeugOpenAPIResponse(response))
    else:
        with pytest.raises(Exception, match="InvalidData|not valid"):
            check(WerkzeugOpenAPIRequest(request), WerkzeugOpenAPIResponse(response))


def test_each_problem_type_is_described_on_the_docs_page(client):
    html = client.get("/docs").get_data(as_text=True)
    for response in (client.get("/nope"), client.post("/v1/recommendations", json={}),
                     client.post("/v1/recommendations", data="{", content_type="application/json"),
                     client.delete("/healthz")):
        problem_type = response.get_json()["type"]
        assert problem_type.startswith("/docs#problem-")
        assert f'id="{problem_type.split("#")[1]}"' in html


def test_metric_labels_come_only_from_known_values(client):
    """Random methods and paths are client input: they must not become new series."""
    rng = random.Random(7)

    def series() -> set[str]:
        text = client.get("/metrics").get_data(as_text=True)
        return {line.rsplit(" ", 1)[0] for line in text.splitlines()
                if line.startswith("recommender_http_requests_total{")}

    client.open("/healthz", method="BREW")
    client.open("/no-such-page", method="BREW")
    before = series()
    for _ in range(200):
        method = "".join(rng.choices(string.ascii_uppercase, k=8))
        path = "/" + "".join(rng.choices(string.ascii_lowercase, k=12))
        client.open(rng.choice([path, "/healthz"]), method=method)
    added = series() - before
    assert not added, added
    assert any('method="other"' in s for s in before)
