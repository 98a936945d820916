"""Clients generated from /openapi.json, used as a client author would: the Python client of
openapi-python-client calls a served app and parses every answer, errors as Problem; the
TypeScript types of openapi-typescript type every error body as Problem."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import httpx
import pytest
from api_support import ADMIN_TOKEN, copy_workspace, serving
from http_support import exchange, operations

PACKAGE = "recommender_api_client"
PROBLEM_TS = 'components["schemas"]["Problem"]'


@pytest.fixture(scope="module")
def served(sample_workspace, tmp_path_factory) -> Any:
    ws = copy_workspace(sample_workspace, tmp_path_factory.mktemp("clients") / "ws")
    with serving(ws.root, ws.root / "server.log", "--workers", "1", "--no-access-log",
                 env={"RECOMMENDER_ADMIN_TOKEN": ADMIN_TOKEN}) as (base, _):
        status, _, raw = exchange(base, "GET", "/openapi.json")
        assert status == 200
        yield base, json.loads(raw)


@pytest.fixture(scope="module")
def generated(served, tmp_path_factory) -> ModuleType:
    """The Python client openapi-python-client generates from the served /openapi.json."""
    base, _ = served
    folder = tmp_path_factory.mktemp("generated")
    result = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--url",
         f"{base}/openapi.json", "--meta", "none", "--output-path", str(folder / PACKAGE),
         "--fail-on-warning"], capture_output=True, text=True, timeout=300, cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def endpoint(package: ModuleType, tag: str, operation: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.api.{tag}.{operation}")


def models(package: ModuleType) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.models")


def clients(package: ModuleType, base: str) -> tuple[Any, Any]:
    """A plain client and one carrying the admin token (raising on no status)."""
    return (package.Client(base_url=base),
            package.AuthenticatedClient(base_url=base, token=ADMIN_TOKEN))


def test_every_operation_has_a_generated_function(generated, served):
    _, spec = served
    for name, (_, _, op) in operations(spec).items():
        module = endpoint(generated, op["tags"][0].lower(), name)
        assert callable(module.sync_detailed), name


#: Successful calls: (tag, operation, arguments builder, status, model name).
SUCCESSES: list[tuple[str, str, Callable[[ModuleType], dict[str, Any]], int, str]] = [
    ("recommendations", "recommend", lambda m: {"body": m.RecommendationRequest(
        customer=m.Customer(id="C0000042"), channel=m.Channel.APP, moment=m.Moment.FAILURE,
        product="plan_5g_newsim", failure_reason=m.FailureReason.NOT_ELIGIBLE, debug=True)},
     200, "Recommendation"),
    ("recommendations", "recommend", lambda m: {"body": m.RecommendationRequest(
        customer=m.Customer(id="C0000042"), channel=m.Channel.HOTLINE,
        moment=m.Moment.TRANSACTION, product="plan_5g", locale=m.Locale.EN)},
     200, "Recommendation"),
    ("checks", "check", lambda m: {"body": m.CheckRequest(
        customer=m.Customer(id="C0000042"), channel=m.Channel.APP, product="plan_5g_newsim")},
     200, "CheckResponse"),
    ("feedback", "add_feedback", lambda m: {"body": m.FeedbackRequest(
        event_id="generated-client-1", request_id="r1", product="cloud_storage",
        action=m.FeedbackAction.CLICK)}, 201, "FeedbackAck"),
    ("products", "list_products", lambda m: {"channel": m.Channel.SMS}, 200, "ProductList"),
    ("products", "get_product", lambda m: {"product_id": "plan_5g"}, 200, "Product"),
    ("products", "get_audience", lambda m: {"product_id": "intl_roaming", "top": 3}, 200,
     "Audience"),
    ("strategies", "list_strategies", lambda m: {}, 200, "StrategyList"),
    ("plugins", "list_plugins", lambda m: {}, 200, "PluginList"),
    ("operations", "healthz", lambda m: {}, 200, "Health"),
    ("operations", "readyz", lambda m: {}, 200, "Readiness"),
    ("admin", "reload", lambda m: {"body": m.ReloadRequest()}, 200, "Reload"),
]


@pytest.mark.parametrize(("tag", "operation", "arguments", "status", "model"), SUCCESSES,
                         ids=[f"{s[1]}-{i}" for i, s in enumerate(SUCCESSES)])
def test_success_bodies_parse_into_their_models(generated, served, tag, operation, arguments,
                                                status, model):
    base, _ = served
    _, admin = clients(generated, base)
    m = models(generated)
    response = endpoint(generated, tag, operation).sync_detailed(client=admin,
                                                                 **arguments(m))
    assert response.status_code == status, response.content[:300]
    assert isinstance(response.parsed, getattr(m, model))
    # Nothing the server said is lost or changed on the way through the model.
    assert response.parsed.to_dict() == json.loads(response.content)


def _raw(base: str, method: str, path: str, content: bytes, content_type: str,
         headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.request(method, base + path, content=content,
                         headers={"Content-Type": content_type, **(headers or {})})


#: Failing calls: (tag, operation, how to call, status). The generated functions build valid
#: JSON only, so malformed bodies are sent raw and parsed by the operation's generated parser.
ERRORS: list[tuple[str, str, Callable[..., Any], int]] = [
    ("recommendations", "recommend",
     lambda base, ep, c, m: ep._build_response(client=c, response=_raw(
         base, "POST", "/v1/recommendations", b"{oops", "application/json")), 400),
    ("recommendations", "recommend",
     lambda base, ep, c, m: ep._build_response(client=c, response=_raw(
         base, "POST", "/v1/recommendations", b"{}", "text/plain")), 415),
    ("recommendations", "recommend",
     lambda base, ep, c, m: ep._build_response(client=c, response=_raw(
         base, "POST", "/v1/recommendations", b"[" + b" " * 70_000 + b"]",
         "application/json")), 413),
    ("recommendations", "recommend",
     lambda base, ep, c, m: ep.sync_detailed(client=c, body=m.RecommendationRequest(
         customer=m.Customer(id="C0000042"), channel=m.Channel.APP,
         moment=m.Moment.TRANSACTION)), 422),
    ("checks", "check",
     lambda base, ep, c, m: ep.sync_detailed(client=c, body=m.CheckRequest(
         customer=m.Customer(id="C0000042"), channel=m.Channel.APP, product="no_such")), 422),
    ("products", "get_product",
     lambda base, ep, c, m: ep.sync_detailed(client=c, product_id="no_such_business"), 404),
    ("products", "get_audience",
     lambda base, ep, c, m: ep.sync_detailed(client=c, product_id="no_such_business"), 404),
    ("admin", "reload",
     lambda base, ep, c, m: ep.sync_detailed(client=c, body=m.ReloadRequest()), 401),
    ("feedback", "add_feedback",
     lambda base, ep, c, m: [ep.sync_detailed(client=c, body=m.FeedbackRequest(
         event_id="generated-clash", request_id="r1", product=product,
         action=m.FeedbackAction.CLICK)) for product in ("caller_id", "intl_sms")][-1], 409),
]


@pytest.mark.parametrize(("tag", "operation", "call", "status"), ERRORS,
                         ids=[f"{e[1]}-{e[3]}" for e in ERRORS])
def test_error_bodies_parse_as_problem(generated, served, tag, operation, call, status):
    base, _ = served
    plain, _ = clients(generated, base)
    m = models(generated)
    response = call(base, endpoint(generated, tag, operation), plain, m)
    assert response.status_code == status, response.content[:300]
    problem = response.parsed
    assert isinstance(problem, m.Problem), type(problem)
    assert problem.status == status and problem.detail and problem.title
    assert problem.to_dict() == json.loads(response.content)
    if status == 422:
        assert problem.errors.additional_properties, "the fields at fault are named"


def _shared_responses(text: str) -> dict[str, str]:
    """Response name -> "media type => TypeScript type" of its body, from the
    ``components.responses`` openapi-typescript writes."""
    shared: dict[str, str] = {}
    name = None
    for line in text[text.index("\n    responses: {"):].splitlines()[1:]:
        if line == "    };":
            break
        if m := re.fullmatch(r" {8}(\w+): \{", line):
            name = m.group(1)
            shared[name] = ""
        elif (m := re.fullmatch(r' {16}"([^"]+)": (.+);', line)) and name is not None:
            shared[name] += f"{m.group(1)} => {m.group(2)}"
    return shared


def _typescript_responses(text: str) -> dict[str, dict[str, str]]:
    """operation -> status -> "media type => TypeScript type" of its body, read from
    openapi-typescript's ``operations`` interface; a shared response it refers to (in
    ``components.responses``) is read in its place."""
    shared = _shared_responses(text)
    out: dict[str, dict[str, str]] = {}
    reference = re.compile(r'components\["responses"\]\["(\w+)"\]')
    operation = status = None
    for line in text[text.index("export interface operations {"):].splitlines():
        if m := re.fullmatch(r" {4}(\w+): \{", line):
            operation, status = m.group(1), None
            out[operation] = {}
        elif m := re.fullmatch(r" {12}(\d{3}|default): (.*?);?", line):
            status, body = m.group(1), m.group(2)
            ref = reference.fullmatch(body)
            out[operation][status] = ("" if body == "{" else
                                      shared[ref.group(1)] if ref and status != "default"
                                      else body)
        elif (m := re.fullmatch(r' {20}"([^"]+)": (.+);', line)) and status is not None:
            out[operation][status] += f"{m.group(1)} => {m.group(2)}"
    return out


def test_typescript_types_every_error_body_as_problem(served, tmp_path):
    """openapi-typescript (run through npx) on the served document."""
    npx = shutil.which("npx")
    if npx is None or shutil.which("node") is None:
        pytest.skip("node and npx are not installed: cannot run openapi-typescript")
    tool = "openapi-typescript@7"
    probe = subprocess.run([npx, "--yes", tool, "--version"], capture_output=True, text=True,
                           timeout=300)
    if probe.returncode != 0:
        pytest.skip(f"npx could not get {tool} (offline?): {probe.stderr.strip()[-200:]}")
    base, spec = served
    (tmp_path / "openapi.json").write_text(json.dumps(spec))
    result = subprocess.run([npx, "--yes", tool, str(tmp_path / "openapi.json"), "-o",
                             str(tmp_path / "api.d.ts")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (tmp_path / "api.d.ts").read_text()
    typed = _typescript_responses(text)
    problem = f"application/problem+json => {PROBLEM_TS}"
    for name, (_, _, op) in operations(spec).items():
        assert set(typed[name]) == set(op["responses"]), name
        for status, body in typed[name].items():
            if status == "default":
                assert body == 'components["responses"]["DEFAULT_ERROR"]', name
            elif int(status) >= 400:
                assert body == problem, (name, status, body)
    assert _shared_responses(text)["DEFAULT_ERROR"] == problem
    # Optional request fields stay optional for TypeScript callers.
    request = text[text.index("        RecommendationRequest: {"):]
    request = request[:request.index("\n        };")]
    assert re.search(r"\n\s+debug\?: boolean;", request)
    assert re.search(r'failure_reason\?: components\["schemas"\]\["FailureReason"\] \| null;',
                     request)
