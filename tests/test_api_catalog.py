"""GET /v1/products and /v1/strategies: what front-ends show and operators check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_support import check_problem
from werkzeug.http import http_date


def test_products_list_the_whole_catalog(client, catalog):
    body = client.get("/v1/products").get_json()
    assert body["count"] == len(catalog) == len(body["products"])
    assert [p["id"] for p in body["products"]] == list(catalog.ids)


def test_a_product_carries_what_a_front_end_needs_to_explain_it(client):
    p = client.get("/v1/products/plan_5g_newsim").get_json()
    assert p["name"] == "5G套餐（换新卡）"
    assert p["eligibility"]["min_network"] == "5G"
    assert p["category"] and p["channels"] and "plan_5g" in p["conflicts"]


def test_products_filter_by_channel_and_category(client, catalog):
    sms = client.get("/v1/products?channel=sms").get_json()["products"]
    assert sms and all("sms" in p["channels"] for p in sms)
    assert len(sms) == sum("sms" in p.channels for p in catalog)
    plans = client.get("/v1/products?category=plan").get_json()["products"]
    assert plans and {p["category"] for p in plans} == {"plan"}


@pytest.mark.parametrize(("query", "field"), [
    ("channel=fax", "channel"), ("colour=red", "colour"), ("category=", "category")])
def test_bad_product_queries_are_422(client, query, field):
    assert field in check_problem(client.get(f"/v1/products?{query}"), 422)["errors"]


def test_strategies_name_their_plugin_moments_and_status(client):
    body = client.get("/v1/strategies").get_json()
    by_name = {s["name"]: s for s in body["strategies"]}
    assert {"cf", "association", "cross_sell", "popularity", "item_similarity"} <= set(by_name)
    assert by_name["item_similarity"]["plugin"] == "cf"
    assert by_name["item_similarity"]["moments"] == ["query", "transaction"]
    assert by_name["cf"]["status"] == "ready"
    assert by_name["cf"]["weights"]["success"] > 0
    assert all(s["model_version"] == body["model_version"] for s in body["strategies"])


def test_strategies_show_the_weight_each_channel_applies(client, api_workspace):
    config = api_workspace.config()
    body = client.get("/v1/strategies").get_json()
    hotline = config.channel_blend[("success", "hotline")]
    for strategy in body["strategies"]:
        effective, name = strategy["effective_weights"], strategy["name"]
        assert set(effective) == {"query", "transaction", "success", "failure"}
        # The hotline's own table at the success moment; the moment's table elsewhere.
        assert effective["success"]["hotline"] == hotline.get(name, 0.0)
        assert effective["success"]["app"] == strategy["weights"]["success"]
    by_name = {s["name"]: s for s in body["strategies"]}
    differs = [n for n in by_name if by_name[n]["effective_weights"]["success"]["hotline"]
               != by_name[n]["weights"]["success"]]
    assert differs, "the sample's hotline override changes no weight"


@pytest.mark.parametrize("path", ["/v1/products", "/v1/products?channel=app",
                                  "/v1/products/cloud_storage"])
def test_the_catalog_is_cacheable_with_etags(client, path):
    first = client.get(path)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    assert again.headers["ETag"] == etag
    stale = client.get(path, headers={"If-None-Match": '"not-the-etag"'})
    assert stale.status_code == 200 and stale.get_json() == first.get_json()
    # Errors and other endpoints carry none.
    assert "ETag" not in client.get("/v1/products/no_such_business").headers
    assert "ETag" not in client.get("/healthz").headers


def test_different_answers_have_different_etags(client):
    tags = {client.get(path).headers["ETag"] for path in (
        "/v1/products", "/v1/products?channel=app", "/v1/products?channel=store",
        "/v1/products/cloud_storage", "/v1/products/intl_sms")}
    assert len(tags) == 5


@pytest.mark.parametrize("path", ["/v1/products", "/v1/products?category=international",
                                  "/v1/products/cloud_storage"])
def test_the_catalog_has_a_last_modified_and_honours_if_modified_since(app, client, path):
    first = client.get(path)
    published = app.extensions["recommender"].slot.record.at
    assert first.last_modified == datetime.fromtimestamp(int(published), UTC)
    assert first.headers["Cache-Control"] == "no-cache"  # kept, but asked again before use
    modified = first.headers["Last-Modified"]
    again = client.get(path, headers={"If-Modified-Since": modified})
    assert again.status_code == 304 and again.get_data() == b""
    assert again.headers["ETag"] == first.headers["ETag"]
    earlier = http_date(first.last_modified - timedelta(seconds=1))
    assert client.get(path, headers={"If-Modified-Since": earlier}).status_code == 200
    # If-None-Match wins: a stale ETag gets the body whatever the date says.
    both = client.get(path, headers={"If-None-Match": '"stale"', "If-Modified-Since": modified})
    assert both.status_code == 200 and both.get_json() == first.get_json()
    assert client.get(path, headers={"If-Modified-Since": "yesterday"}).status_code == 200
