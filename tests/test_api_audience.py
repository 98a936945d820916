"""``GET /v1/products/<id>/audience`` and inline ``customer.attributes``, checked against the
OpenAPI document, and once over real HTTP on loopback."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator

import pytest
from api_support import check_problem
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from recommender.targeting import target


def test_audience_lists_the_best_eligible_customers(client: FlaskClient, app: Flask) -> None:
    response = client.get("/v1/products/intl_roaming/audience?top=5&channel=app")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["product"] == "intl_roaming" and body["count"] == 5
    assert [c["rank"] for c in body["customers"]] == [1, 2, 3, 4, 5]
    scores = [c["score"] for c in body["customers"]]
    assert scores == sorted(scores, reverse=True)
    assert all(c["strategies"] == ["propensity"] and c["reason"] for c in body["customers"])
    with app.extensions["recommender"].slot.lease() as engine:
        (expected,) = target(
            engine.store,
            engine.catalog,
            engine.config,
            engine.strategies["propensity"],
            ["intl_roaming"],
            top=5,
            channel="app",
        )
    assert [c["customer_id"] for c in body["customers"]] == expected.customers
    assert body["scanned"] == 2000 and body["ineligible"] == expected.ineligible


def test_the_reasons_speak_the_language_asked_and_nothing_else_changes(
        client: FlaskClient) -> None:
    answers = {locale: client.get(f"/v1/products/intl_roaming/audience?top=5&locale={locale}"
                                  ).get_json() for locale in ("en", "zh-CN")}
    english = ("likely to take it (", "customers like this one take it (", "taken by ")
    assert all(c["reason"].startswith(english) for c in answers["en"]["customers"])
    assert not any(c["reason"].startswith(english) for c in answers["zh-CN"]["customers"])
    strip = [{k: v for k, v in c.items() if k != "reason"} for c in answers["en"]["customers"]]
    assert strip == [{k: v for k, v in c.items() if k != "reason"}
                     for c in answers["zh-CN"]["customers"]]


def test_audience_defaults_and_min_score(client: FlaskClient) -> None:
    body = client.get("/v1/products/broadband/audience").get_json()
    assert body["count"] == 100
    above = client.get("/v1/products/broadband/audience?top=1000&min_score=0.3").get_json()
    assert all(c["score"] >= 0.3 for c in above["customers"])


@pytest.mark.parametrize(
    ("path", "status", "fragment"),
    [
        ("/v1/products/no_such/audience", 404, "no_such"),
        ("/v1/products/balance_query/audience", 422, "query service"),
        ("/v1/products/broadband/audience?top=0", 422, "top"),
        ("/v1/products/broadband/audience?top=1001", 422, "top"),
        ("/v1/products/broadband/audience?top=ten", 422, "top"),
        ("/v1/products/broadband/audience?min_score=2", 422, "min_score"),
        ("/v1/products/broadband/audience?channel=fax", 422, "channel"),
        ("/v1/products/broadband/audience?tpo=3", 422, "tpo"),
        ("/v1/products/broadband/audience?locale=fr", 422, "locale"),
    ],
)
def test_bad_audience_requests_are_problems(
    client: FlaskClient, path: str, status: int, fragment: str
) -> None:
    body = check_problem(client.get(path), status)
    assert fragment in json.dumps(body)


def recommend(client: FlaskClient, customer: dict) -> object:
    return client.post(
        "/v1/recommendations", json={"customer": customer, "channel": "app", "moment": "query"}
    )


def test_inline_attributes_are_accepted(client: FlaskClient) -> None:
    response = recommend(client, {"id": "C0000003", "attributes": {"age": 23, "region": "east"}})
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.mark.parametrize(
    "attributes",
    [
        {"age": True},
        {"age": None},
        {"age": [1]},
        {"age": "x" * 129},
        {"9age": 1},
        {f"a{i}": i for i in range(65)},
        ["age"],
        {"age": "\u0007"},
    ],
)
def test_bad_inline_attributes_are_refused(client: FlaskClient, attributes: object) -> None:
    body = check_problem(recommend(client, {"id": "C0000003", "attributes": attributes}), 422)
    assert "attributes" in json.dumps(body)


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def test_audience_over_http(served: str) -> None:
    with urllib.request.urlopen(
        f"{served}/v1/products/broadband/audience?top=3", timeout=30
    ) as response:
        assert response.status == 200
        body = json.loads(response.read())
    assert body["count"] == 3 and len(body["customers"]) == 3
