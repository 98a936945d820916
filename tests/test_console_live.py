"""The live view's numbers: API traffic and latency percentiles from the metrics, plugin
faults, and the feedback funnel per channel and moment from the store."""

from __future__ import annotations

import math
import time

import pytest
from api_support import copy_workspace
from console_support import close, console_app, sign_in, text
from prometheus_client import CollectorRegistry, Histogram

from api import ServerSettings, create_app
from api.console.live import FUNNEL_TTL_SECONDS, quantile, read
from api.metrics import LATENCY_BUCKETS
from recommender import hookimpl
from recommender.plugin_manager import make_plugin_manager

INF = math.inf


@pytest.mark.parametrize(("buckets", "q", "expected"), [
    ([(0.1, 5), (0.5, 10), (INF, 10)], 0.5, 0.1),
    ([(0.1, 5), (0.5, 10), (INF, 10)], 0.75, 0.3),
    ([(0.1, 5), (0.5, 10), (INF, 10)], 1.0, 0.5),
    ([(0.1, 0), (0.5, 4), (INF, 4)], 0.5, 0.3),
    ([(0.1, 5), (INF, 10)], 0.9, 0.1),  # in the open bucket: its lower bound
    ([(0.5, 10), (0.1, 5), (INF, 10)], 0.75, 0.3),  # any order
    ([(0.1, 0), (INF, 0)], 0.5, None),
    ([], 0.5, None),
])
def test_quantile_interpolates_within_its_bucket(buckets, q, expected):
    result = quantile(buckets, q)
    assert result == pytest.approx(expected) if expected is not None else result is None


def test_quantiles_of_observed_latencies_fall_in_the_right_bucket():
    registry = CollectorRegistry()
    histogram = Histogram("recommender_http_request_duration_seconds", "t",
                          ["endpoint", "status"], buckets=LATENCY_BUCKETS, registry=registry)
    latencies = [0.002] * 90 + [0.04] * 9 + [0.7]
    for seconds in latencies:
        histogram.labels(endpoint="/v1/recommendations", status="200").observe(seconds)
    histogram.labels(endpoint="/console/", status="200").observe(3.0)  # not API traffic
    numbers = read(registry.collect())
    assert numbers["latency"]["count"] == 100
    assert 0.001 < numbers["latency"]["p50"] <= 0.0025
    assert 0.025 < numbers["latency"]["p95"] <= 0.05
    assert 0.025 < numbers["latency"]["p99"] <= 0.05


class Broken:
    """An eligibility plugin that fails on every request."""

    @hookimpl
    def check_eligibility(self, products):
        raise RuntimeError("down")


@pytest.fixture(scope="module")
def app(sample_workspace, tmp_path_factory):
    ws = copy_workspace(sample_workspace, tmp_path_factory.mktemp("console-live") / "ws")
    pm = make_plugin_manager(extra_plugins=[("broken-eligibility", Broken())])
    app = create_app(settings=ServerSettings.load(ws.root, environ={},
                                                  admin_token="test-admin-token-0123456789"),
                     plugin_manager=pm)
    yield app
    close(app)


def data(client, window="1h"):
    response = client.get(f"/console/live/data?window={window}")
    assert response.status_code == 200
    return response.get_json()


def test_traffic_counts_api_requests_only_and_faults_name_the_plugin(app):
    client = app.test_client()
    sign_in(client)
    before = data(client)
    for _ in range(4):
        assert client.post("/v1/recommendations", json={
            "customer": {"id": "C0000744"}, "channel": "app", "moment": "query"}
        ).status_code == 200
        client.get("/healthz")
        client.get("/console/catalog/")
    after = data(client)
    assert after["requests"]["total"] - before["requests"]["total"] == 4
    assert after["requests"]["by_endpoint"]["/v1/recommendations"] >= 4
    assert after["latency"]["count"] - before["latency"]["count"] == 4
    assert after["latency"]["p50"] is not None and after["t"] > before["t"]
    faults = {(f["plugin"], f["stage"]): f["count"] for f in after["faults"]}
    assert faults[("broken-eligibility", "eligibility")] >= 4


def test_the_funnel_counts_feedback_per_channel_and_moment(app):
    client = app.test_client()
    sign_in(client)
    for n, action in enumerate(["impression"] * 5 + ["click"] * 2 + ["accept"]):
        assert client.post("/v1/feedback", json={
            "event_id": f"live-{n}", "request_id": f"r{n}", "product": "data_daypass",
            "action": action, "customer_id": "C0000744", "channel": "wechat",
            "moment": "transaction"}).status_code == 201
    time.sleep(FUNNEL_TTL_SECONDS)  # a counted funnel is reused this long
    rows = {(r["channel"], r["moment"]): r for r in data(client, "1h")["funnel"]}
    assert rows[("wechat", "transaction")] == {
        "channel": "wechat", "moment": "transaction", "impression": 5, "click": 2, "accept": 1,
        "dismiss": 0}
    assert set(rows) == {("wechat", "transaction")}  # the sample's feedback is older
    assert len(data(client, "all")["funnel"]) > 1
    html = text(client.get("/console/live/?window=1h"))
    assert "40.0%" in html and "20.0%" in html  # click and accept rates of that row


def test_an_unknown_window_falls_back_to_the_default(app):
    client = app.test_client()
    sign_in(client)
    assert data(client, "forever")["window"] == "7d"


def test_the_live_data_needs_a_session(app):
    response = app.test_client().get("/console/live/data")
    assert response.status_code == 303 and "requests" not in text(response)


def test_console_app_helper_builds_a_console(sample_workspace, tmp_path):
    ws = copy_workspace(sample_workspace, tmp_path / "ws")
    app = console_app(ws.root)
    try:
        assert "recommender-console" in app.extensions
    finally:
        close(app)
