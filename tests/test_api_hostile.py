"""Hostile input: every kind of bad request gets a 4xx problem naming what was wrong, the
service keeps answering, and nothing already stored is lost or changed."""

from __future__ import annotations

import json
import logging

import pytest
from api_support import check_problem

GOOD = {"customer": {"id": "C0000042"}, "channel": "app", "moment": "query"}


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def raw(body: object) -> bytes:
    return json.dumps(body).encode()


# (name, path, body bytes, content type, expected status, field or text the problem names)
CASES = [
    ("truncated JSON", "/v1/recommendations", raw(GOOD)[:-7], "application/json", 400, "body"),
    ("malformed JSON", "/v1/recommendations", b"{'customer': 1}", "application/json", 400,
     "body"),
    ("trailing garbage", "/v1/recommendations", raw(GOOD) + b"}}", "application/json", 400,
     "body"),
    ("wrong content type", "/v1/recommendations", raw(GOOD), "text/xml", 415, "Content-Type"),
    ("form body", "/v1/feedback", b"action=click", "application/x-www-form-urlencoded", 415,
     "Content-Type"),
    ("deep nesting beyond the parser", "/v1/recommendations",
     b"[" * 30000 + b"]" * 30000, "application/json", 400, "body"),
    ("deep nesting in a field", "/v1/recommendations",
     raw({**GOOD, "customer": {"id": "C1", "tags": nested(500)}}), "application/json", 422,
     "customer.tags.0"),
    ("huge holdings array", "/v1/recommendations",
     raw({**GOOD, "customer": {"id": "C1", "holdings": ["plan_4g"] * 5000}}),
     "application/json", 422, "customer.holdings"),
    ("holdings over the body limit", "/v1/recommendations",
     raw({**GOOD, "customer": {"id": "C1", "holdings": ["plan_4g"] * 20000}}),
     "application/json", 413, "limit"),
    ("very long id", "/v1/recommendations", raw({**GOOD, "customer": {"id": "C" * 20000}}),
     "application/json", 422, "customer.id"),
    ("non-UTF-8 string", "/v1/recommendations",
     b'{"customer": {"id": "C\xc3\x28"}, "channel": "app", "moment": "query"}',
     "application/json", 400, "body"),
    ("lone surrogate", "/v1/recommendations",
     b'{"customer": {"id": "\\ud800"}, "channel": "app", "moment": "query"}',
     "application/json", 422, "customer.id"),
    ("lone surrogate in a field name", "/v1/feedback", b'{"\\ud800": 1}', "application/json",
     422, "\ud800"),
    ("lone surrogate in an attribute name", "/v1/recommendations",
     b'{"customer": {"id": "C0000042", "attributes": {"\\ud800": 1}}, "channel": "app", '
     b'"moment": "query"}', "application/json", 422, "customer.attributes"),
    ("lone surrogate in an attribute value", "/v1/recommendations",
     b'{"customer": {"id": "C0000042", "attributes": {"plan": "\\udc00"}}, "channel": "app", '
     b'"moment": "query"}', "application/json", 422, "customer.attributes"),
    ("request id ending in a newline", "/v1/recommendations",
     raw({**GOOD, "request_id": "abc\n"}), "application/json", 422, "request_id"),
    ("NUL in an id", "/v1/recommendations", raw({**GOOD, "customer": {"id": "C\u0000"}}),
     "application/json", 422, "customer.id"),
    ("SQL in the customer id", "/v1/recommendations",
     raw({**GOOD, "customer": {"id": "C1' OR '1'='1"}}), "application/json", 422,
     "customer.id"),
    ("SQL in a holding", "/v1/recommendations",
     raw({**GOOD, "customer": {"id": "C0000042", "holdings": ["x'); DROP TABLE holdings;--"]}}),
     "application/json", 422, "customer.holdings"),
    ("SQL in the product path", "/v1/products/plan_4g'%20OR%201=1--", None, None, 404,
     "no product"),
    ("NaN", "/v1/recommendations", b'{"k": NaN}', "application/json", 400, "body"),
    ("Infinity", "/v1/feedback", b'{"ts": Infinity}', "application/json", 400, "body"),
    ("negative k", "/v1/recommendations", raw({**GOOD, "k": -1}), "application/json", 422, "k"),
    ("huge k", "/v1/recommendations", raw({**GOOD, "k": 10**100}), "application/json", 422,
     "k"),
    ("float k", "/v1/recommendations", raw({**GOOD, "k": 1e308}), "application/json", 422,
     "k"),
    ("unknown top-level field", "/v1/recommendations", raw({**GOOD, "admin": True}),
     "application/json", 422, "admin"),
    ("unknown nested field", "/v1/recommendations",
     raw({**GOOD, "terminal": {"network": "5G", "imei": "1"}}), "application/json", 422,
     "terminal.imei"),
    ("array instead of object", "/v1/feedback", b"[1, 2, 3]", "application/json", 422,
     "body"),
    ("null body", "/v1/feedback", b"null", "application/json", 422, "body"),
    ("feedback for an unknown business", "/v1/feedback",
     raw({"request_id": "r", "product": "'; DELETE FROM feedback;--", "action": "click"}),
     "application/json", 422, "product"),
]


def store_snapshot(app) -> dict[str, int]:
    return app.extensions["recommender"].slot.engine.store.counts() | {
        "feedback": len(app.extensions["recommender"].slot.engine.store.feedback())}


@pytest.mark.parametrize(("name", "path", "body", "content_type", "status", "names"), CASES,
                         ids=[c[0] for c in CASES])
def test_hostile_input_is_refused_and_changes_nothing(app, client, caplog, name, path, body,
                                                      content_type, status, names):
    before = store_snapshot(app)
    with caplog.at_level(logging.INFO):
        if body is None:
            response = client.get(path)
        else:
            response = client.post(path, data=body, content_type=content_type)
    problem = check_problem(response, status)
    named = set(problem.get("errors", {})) | {problem["detail"]}
    assert any(names in n for n in named), problem
    assert store_snapshot(app) == before
    assert client.post("/v1/recommendations", json=GOOD).status_code == 200
    for record in caplog.records:
        assert "Traceback" not in record.getMessage()
        assert str(app.extensions["recommender"].settings.root) not in record.getMessage()
