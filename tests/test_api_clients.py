"""Client tokens over real HTTP: when the server names its callers, every /v1 call but the
admin ones needs one of their tokens (or the admin token); probes and documents stay open;
nothing a refused call carried is stored; no token reaches the log."""

from __future__ import annotations

import shutil

import pytest
from api_support import ADMIN_TOKEN, call, copy_workspace, serving

from recommender.store import Store

APP_TOKEN = "app-channel-token-0123456789abcdef"
CRM_TOKEN = "crm-outbound-token-fedcba9876543210"
VIEWER_TOKEN = "viewer-token-for-the-channel-team-0042"

FEEDBACK = {"request_id": "r-1", "product": "cloud_storage", "action": "dismiss",
            "customer_id": "C0000042", "channel": "app", "moment": "query"}
GUARDED = [
    ("POST", "/v1/recommendations", {"customer": {"id": "C0000042"}, "channel": "app",
                                     "moment": "query"}, 200),
    ("POST", "/v1/checks", {"customer": {"id": "C0000042"}, "channel": "app",
                            "product": "plan_5g"}, 200),
    ("POST", "/v1/feedback", FEEDBACK, 201),
    ("GET", "/v1/products", None, 200),
    ("GET", "/v1/products/plan_5g", None, 200),
    ("GET", "/v1/products/intl_roaming/audience?top=3", None, 200),
    ("GET", "/v1/strategies", None, 200),
    ("GET", "/v1/plugins", None, 200),
]
OPEN = ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/"]


@pytest.fixture(scope="module")
def server(sample_workspace, tmp_path_factory):
    ws = copy_workspace(sample_workspace, tmp_path_factory.mktemp("clients") / "ws")
    env = {"RECOMMENDER_ADMIN_TOKEN": ADMIN_TOKEN, "RECOMMENDER_VIEWER_TOKEN": VIEWER_TOKEN,
           "RECOMMENDER_CLIENT_TOKENS": f"app={APP_TOKEN},crm={CRM_TOKEN}"}
    with serving(ws.root, ws.root / "server.log", "--workers", "1", env=env) as (base, _):
        yield {"base": base, "ws": ws}
    shutil.rmtree(ws.root, ignore_errors=True)


def feedback_count(ws) -> int:
    with Store(ws.store_path) as store:
        return len(store.feedback())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("headers", [
    {}, bearer("not-a-token-of-this-server-000000"), bearer(VIEWER_TOKEN), bearer(""),
    {"Authorization": f"Basic {APP_TOKEN}"}, {"Authorization": APP_TOKEN},
    bearer(APP_TOKEN[:-1]), bearer(APP_TOKEN + "0"),
], ids=["none", "unknown", "viewer", "empty", "basic", "no scheme", "shorter", "longer"])
@pytest.mark.parametrize(("method", "path", "body", "ok"), GUARDED,
                         ids=[f"{m} {p}" for m, p, _, _ in GUARDED])
def test_without_a_client_token_every_v1_call_is_a_401(server, headers, method, path, body,
                                                        ok):
    before = feedback_count(server["ws"])
    status, ctype, problem = call(server["base"], method, path, body, headers=headers)
    assert (status, ctype) == (401, "application/problem+json"), problem
    assert "client bearer token" in problem["detail"] and problem["instance"] == \
        path.split("?")[0]
    assert feedback_count(server["ws"]) == before


@pytest.mark.parametrize("token", [APP_TOKEN, CRM_TOKEN, ADMIN_TOKEN],
                         ids=["app", "crm", "admin"])
@pytest.mark.parametrize(("method", "path", "body", "ok"), GUARDED,
                         ids=[f"{m} {p}" for m, p, _, _ in GUARDED])
def test_each_client_token_and_the_admin_token_are_let_through(server, token, method, path,
                                                                body, ok):
    if body is FEEDBACK:
        body = {**FEEDBACK, "event_id": f"fb-{token[:3]}"}
    status, _, answer = call(server["base"], method, path, body, headers=bearer(token))
    assert status == ok, answer


def test_the_401_says_how_to_authenticate(server):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(server["base"] + "/v1/strategies")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    assert info.value.code == 401
    assert info.value.headers["WWW-Authenticate"] == 'Bearer realm="recommender"'


@pytest.mark.parametrize("path", OPEN)
def test_probes_metrics_and_documents_need_no_token(server, path):
    assert call(server["base"], "GET", path)[0] == 200


def test_a_client_token_opens_no_admin_endpoint(server):
    status, _, problem = call(server["base"], "POST", "/v1/admin/reload", {},
                              headers=bearer(APP_TOKEN))
    assert status == 401 and "admin" in problem["detail"]


def test_the_document_says_which_operations_can_answer_401(server):
    spec = call(server["base"], "GET", "/openapi.json")[2]
    schemes = spec["components"]["securitySchemes"]
    assert schemes["clientToken"]["scheme"] == "bearer"
    for method, path, _, _ in GUARDED:
        template = {"/v1/products/plan_5g": "/v1/products/{product_id}",
                    "/v1/products/intl_roaming/audience?top=3":
                        "/v1/products/{product_id}/audience"}.get(path, path)
        operation = spec["paths"][template][method.lower()]
        assert "security" not in operation, path  # generated clients keep a plain Client
        assert "client_tokens" in operation["responses"]["401"]["description"], path
    assert spec["paths"]["/v1/admin/reload"]["post"]["security"] == [{"bearerAuth": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]


def test_a_refused_path_cannot_forge_a_log_line(server):
    call(server["base"], "GET", "/v1/x%0a127.0.0.1%20-%20-%20FORGED%20GET%20/v1/admin/reload")
    lines = (server["ws"].root / "server.log").read_text().splitlines()
    assert not any(line.startswith("127.0.0.1 - - FORGED") for line in lines)
    assert any("FORGED" in line and "no valid client token" in line for line in lines)


def test_refused_calls_count_against_the_rate_limit(sample_workspace, tmp_path):
    """Guessing tokens is throttled like any other call: the limit counts the 401s."""
    ws = copy_workspace(sample_workspace, tmp_path / "ws")
    env = {"RECOMMENDER_CLIENT_TOKENS": f"app={APP_TOKEN}", "RECOMMENDER_RATE_LIMIT": "5/minute"}
    with serving(ws.root, tmp_path / "server.log", "--workers", "1", env=env) as (base, _):
        statuses = [call(base, "GET", "/v1/strategies", headers=bearer(f"guess-{n:012d}"))[0]
                    for n in range(7)]
        assert statuses == [401] * 5 + [429] * 2
        assert call(base, "GET", "/v1/strategies", headers=bearer(APP_TOKEN))[0] == 429


def test_no_token_reaches_the_log(server):
    call(server["base"], "GET", "/v1/strategies", headers=bearer(APP_TOKEN[::-1]))
    log = (server["ws"].root / "server.log").read_text()
    assert "no valid client token" in log
    for token in (APP_TOKEN, CRM_TOKEN, ADMIN_TOKEN, APP_TOKEN[::-1]):
        assert token not in log
