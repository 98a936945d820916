"""The OpenAPI document as generated clients read it: every error status of every operation is
declared as a Problem, enums are named, and nothing optional is forced on callers."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
from api_support import ADMIN_TOKEN, copy_workspace, serving
from http_support import exchange, operations

from api.enums import ENUMS
from recommender.context import CHANNEL_IDS, FailureReason, Moment
from recommender.i18n import LOCALES

PROBLEM_MEDIA = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
#: Per operation and route: requests over it are answered 429 (see ``rate_limited_server``).
LIMIT = 12

#: What each operation can answer besides success, as the app's handlers and views give it.
ERRORS = {
    "recommend": {400, 413, 415, 422, 429, 500},
    "check": {400, 413, 415, 422, 429, 500},
    "add_feedback": {400, 409, 413, 415, 422, 429, 500, 503},
    "list_products": {422, 429, 500},
    "get_product": {404, 429, 500},
    "get_audience": {404, 409, 422, 429, 500},
    "list_strategies": {429, 500},
    "list_plugins": {429, 500},
    "healthz": {500},
    "readyz": {500, 503},
    "metrics": {500},
    "reload": {400, 401, 403, 409, 413, 415, 422, 429, 500},
}


@pytest.fixture(scope="module")
def rate_limited_server(sample_workspace, tmp_path_factory):
    """``recommender serve`` (one worker, so one rate-limit counter) with an admin token and a
    limit of ``LIMIT`` requests a minute per route."""
    ws = copy_workspace(sample_workspace, tmp_path_factory.mktemp("contract") / "ws")
    env = {"RECOMMENDER_ADMIN_TOKEN": ADMIN_TOKEN, "RECOMMENDER_RATE_LIMIT": f"{LIMIT}/minute"}
    with serving(ws.root, ws.root / "server.log", "--workers", "1", "--no-access-log",
                 env=env) as (base, _):
        status, _, raw = exchange(base, "GET", "/openapi.json")
        assert status == 200
        yield base, json.loads(raw)


def test_every_operation_declares_each_error_it_can_answer_as_a_problem(rate_limited_server):
    _, spec = rate_limited_server
    found = operations(spec)
    assert set(found) == set(ERRORS), "an operation was added: list the errors it can answer"
    for name, (_, _, op) in found.items():
        declared = {int(code) for code in op["responses"] if code.isdigit()}
        assert ERRORS[name] <= declared, (name, sorted(ERRORS[name] - declared))
        for code, response in op["responses"].items():
            if code.isdigit() and int(code) < 400:
                continue
            if "$ref" in response:
                response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
            assert response["content"] == {PROBLEM_MEDIA: {"schema": {"$ref": PROBLEM_REF}}}, \
                (name, code)
        if ERRORS[name] & {429}:
            assert "Retry-After" in op["responses"]["429"]["headers"], name


def _bad_requests(path: str, method: str, op: dict[str, Any]) -> list[dict[str, Any]]:
    """Requests to ``op`` that its contract refuses, from its shape in the document."""
    known = re.sub(r"\{product_id\}", "cloud_storage", path)
    unknown = re.sub(r"\{product_id\}", "no_such_business", path)
    json_type = {"Content-Type": "application/json"}
    headers = dict(AUTH) if op.get("security") else {}
    out: list[dict[str, Any]] = []
    if unknown != known:
        out.append({"path": unknown, "headers": headers})
    if "requestBody" in op:
        out += [{"path": known, "data": data, "headers": {**headers, **kind}} for data, kind in (
            (b"{oops", json_type), (b'{"a": 1}', {"Content-Type": "text/plain"}),
            (b'{"x": "' + b"y" * 70_000 + b'"}', json_type), (b'{"nosuch": 1}', json_type),
            (b'{"customer": {}, "channel": "fax"}', json_type))]
    if any(p["in"] == "query" for p in op.get("parameters", [])):
        out += [{"path": known + "?nosuch=1", "headers": headers},
                {"path": known + "?channel=fax", "headers": headers}]
    if op.get("security"):
        out += [{"path": known, "headers": {}},
                {"path": known, "headers": {"Authorization": "Bearer wrong-token-0123456789"}}]
    return [{"method": method.upper(), **request} for request in out]


def test_every_error_answered_over_http_is_declared_and_a_problem(rate_limited_server):
    """Bad requests of every kind the document allows for, sent to each operation, and then
    more than the rate limit: every error status that comes back is declared for that
    operation, and its body is a Problem."""
    base, spec = rate_limited_server
    problem_schema = spec["components"]["schemas"]["Problem"]
    seen: dict[str, set[int]] = {}
    for name, (path, method, op) in operations(spec).items():
        declared = {int(code) for code in op["responses"] if code.isdigit()}
        requests = _bad_requests(path, method, op)
        requests += [requests[-1] if requests else {"method": method.upper(), "path": path}
                     ] * (LIMIT + 1)
        for request in requests:
            status, headers, raw = exchange(base, request["method"], request["path"],
                                            data=request.get("data"),
                                            headers=request.get("headers"))
            if status < 400:
                continue
            seen.setdefault(name, set()).add(status)
            assert status in declared, (name, request["path"], status, raw[:200])
            assert headers["Content-Type"] == PROBLEM_MEDIA, (name, status)
            body = json.loads(raw)
            jsonschema.validate(body, problem_schema)
            assert body["status"] == status
            if status == 429:
                assert int(headers["Retry-After"]) >= 0
    # The battery reached what it aims at (so the test cannot pass by provoking nothing).
    assert seen["recommend"] >= {400, 413, 415, 422, 429}
    assert seen["reload"] >= {401, 429}
    assert seen["get_product"] >= {404, 429}
    assert seen["list_products"] >= {422, 429}
    assert not {*seen.get("healthz", ()), *seen.get("readyz", ()), *seen.get("metrics", ())}, \
        "probes and metrics are never limited"


def test_the_domain_enums_are_named_components(client):
    spec = client.get("/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    for enum, values in (("Moment", [m.value for m in Moment]), ("Channel", list(CHANNEL_IDS)),
                         ("FailureReason", [r.value for r in FailureReason]),
                         ("Locale", list(LOCALES))):
        assert schemas[enum]["enum"] == values, enum
    for enum in ENUMS:
        assert schemas[enum.name]["enum"] == list(enum.values)

    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{name}"}

    response = schemas["Recommendation"]["properties"]
    assert {k: response[k]["$ref"] for k in ("moment", "channel", "locale")} == {
        "moment": ref("Moment")["$ref"], "channel": ref("Channel")["$ref"],
        "locale": ref("Locale")["$ref"]}
    assert schemas["Suggestion"]["properties"]["order_channels"]["items"] == ref("Channel")
    assert schemas["Strategy"]["properties"]["status"]["$ref"] == ref("StrategyStatus")["$ref"]
    assert schemas["Health"]["properties"]["status"]["$ref"] == ref("HealthStatus")["$ref"]
    assert schemas["Readiness"]["properties"]["status"]["$ref"] == \
        ref("ReadinessStatus")["$ref"]
    # Codes plugins may extend: the known ones, or any string; a check's is null on success.
    assert schemas["Exclusion"]["properties"]["reason"]["anyOf"] == [
        ref("ExclusionCode"), {"type": "string"}]
    assert schemas["Check"]["properties"]["reason"]["anyOf"] == [
        ref("ExclusionCode"), {"type": "string"}, {"type": "null"}]
    assert schemas["StrategyError"]["properties"]["stage"]["anyOf"] == [
        ref("StrategyStage"), {"type": "string"}]
    # A nullable enum is "the enum or null", the same way wherever it appears.
    assert schemas["RecommendationRequest"]["properties"]["failure_reason"]["anyOf"] == [
        ref("FailureReason"), {"type": "null"}]


def _properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return list(schema.get("properties", {}).items())


def test_request_bodies_force_no_optional_field_on_callers(client):
    """A property with a ``default`` is required in TypeScript types (openapi-typescript's
    default), so request bodies document defaults in words; ``debug`` stays optional."""
    spec = client.get("/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    bodies = {op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/")[-1]
              for _, _, op in operations(spec).values() if "requestBody" in op}
    assert "RecommendationRequest" in bodies
    seen, todo = set(), list(bodies)
    while todo:  # every schema reachable from a request body
        name = todo.pop()
        seen.add(name)
        for field, prop in _properties(schemas[name]):
            assert "default" not in prop, (name, field)
            for ref in re.findall(r'"#/components/schemas/(\w+)"', json.dumps(prop)):
                if ref not in seen and "properties" in schemas[ref]:
                    todo.append(ref)
    request = schemas["RecommendationRequest"]
    assert "debug" in request["properties"] and "debug" not in request["required"]


@pytest.mark.parametrize("debug", [None, False, True])
def test_debug_is_off_unless_asked(client, debug):
    body = {"customer": {"id": "C0000042"}, "channel": "app", "moment": "query"}
    if debug is not None:
        body["debug"] = debug
    answer = client.post("/v1/recommendations", json=body).get_json()
    assert ("excluded" in answer and "timings" in answer) is bool(debug)


def test_a_null_failure_reason_is_accepted_as_documented(client):
    response = client.post("/v1/recommendations", json={
        "customer": {"id": "C0000042"}, "channel": "app", "moment": "failure",
        "product": "plan_5g_newsim", "failure_reason": None})
    assert response.status_code == 200, response.get_json()


def test_every_code_served_is_in_the_documented_enums(client, api_workspace):
    """Debug answers over many customers, channels and moments: each exclusion reason and
    strategy error stage is one the document lists (clients switch on them)."""
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    codes, stages = set(schemas["ExclusionCode"]["enum"]), set(schemas["StrategyStage"]["enum"])
    served_codes: set[str] = set()
    with api_workspace.store() as store:
        customers = store.customer_ids(limit=12)
    for i, customer in enumerate(customers):
        for channel in CHANNEL_IDS:
            moment, extra = [("query", {}), ("transaction", {"product": "plan_5g"}),
                             ("success", {"product": "intl_roaming"}),
                             ("failure", {"product": "plan_5g_newsim",
                                          "failure_reason": "not_eligible"})][i % 4]
            answer = client.post("/v1/recommendations", json={
                "customer": {"id": customer}, "channel": channel, "moment": moment,
                "debug": True, **extra}).get_json()
            served_codes |= {e["reason"] for e in answer["excluded"]}
            served_codes |= {answer[k]["reason"] for k in ("explanation", "check")
                             if k in answer and answer[k]["reason"]}
            assert {e["stage"] for e in answer["errors"]} <= stages
    assert served_codes and served_codes <= codes, served_codes - codes
