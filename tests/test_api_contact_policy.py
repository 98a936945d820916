"""The contact policy over HTTP, against a real two-worker server: refusals posted as feedback
take effect on the next request on every channel and worker, for that customer only, and caps
hold under concurrent clients."""

from __future__ import annotations

import sys
import threading
import uuid
from collections import Counter
from pathlib import Path

import pytest
from api_support import copy_workspace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
from _server import Server, call  # noqa: E402

from recommender.store import Store  # noqa: E402

CAP = 4
CHANNELS = ("hotline", "app", "web", "wechat", "sms", "store")


@pytest.fixture(scope="module")
def server(sample_workspace, tmp_path_factory):
    ws = copy_workspace(sample_workspace, tmp_path_factory.mktemp("policy") / "ws")
    config = ws.root / "config.toml"
    text = config.read_text()
    assert "max_per_channel_day = 0" in text
    config.write_text(text.replace("max_per_channel_day = 0", f"max_per_channel_day = {CAP}"))
    with Server(ws.root, workers=2) as server:
        yield server, ws


def ask(base, customer, channel, moment="query", debug=True):
    status, body = call(base, "POST", "/v1/recommendations", {
        "customer": {"id": customer}, "channel": channel, "moment": moment, "debug": debug})
    assert status == 200, body
    return body


def products(body):
    return [s["product"] for s in body["suggestions"]]


def dismiss(base, customer, product, channel):
    status, body = call(base, "POST", "/v1/feedback", {
        "event_id": uuid.uuid4().hex, "request_id": "t", "product": product,
        "action": "dismiss", "customer_id": customer, "channel": channel, "moment": "query"})
    assert status == 201, body


def test_three_hotline_dismissals_remove_it_everywhere_for_that_customer_only(server):
    srv, _ = server
    customer, other = "C0000010", "C0000011"
    top = products(ask(srv.base, customer, "hotline"))[0]
    before_other = {ch: products(ask(srv.base, other, ch, debug=False)) for ch in ("app", "web")}
    for _ in range(3):
        dismiss(srv.base, customer, top, "hotline")
    for channel in CHANNELS:
        for _ in range(3):  # fresh connections: both workers answer
            body = ask(srv.base, customer, channel)
            assert top not in products(body), (channel, body)
            codes = {e["product"]: e["reason"] for e in body["excluded"]}
            if top in codes:
                assert codes[top] == "policy_suppressed"
    for channel, shown in before_other.items():
        assert top not in shown or products(ask(srv.base, other, channel, debug=False)) == shown
    _, metrics = call(srv.base, "GET", "/metrics")
    assert 'recommender_contact_policy_exclusions_total{rule="policy_suppressed"}' in metrics


def test_caps_hold_under_eight_concurrent_clients(server):
    srv, ws = server
    customer = "C0000042"
    catalog = ws.catalog()
    served: Counter[str] = Counter()
    errors: list[str] = []

    def client() -> None:
        for _ in range(6):
            try:
                body = ask(srv.base, customer, "app", debug=False)
            except Exception as e:  # pragma: no cover - the assertion shows it
                errors.append(repr(e))
                return
            served.update(p for p in products(body) if catalog[p].kind.value != "service")

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with Store(ws.store_path) as store:
        logged = store.db.execute(
            "SELECT COUNT(*) FROM contacts WHERE customer_id = ? AND channel = 'app'",
            (customer,)).fetchone()[0]
    shown = sum(served.values())
    assert logged == shown  # every marketing suggestion served was logged, and no more
    assert shown == CAP, served  # 48 requests, and the customer saw exactly the cap
    body = ask(srv.base, customer, "app")
    assert {e["reason"] for e in body["excluded"]} >= {"policy_channel_day_cap"}
    # another channel has its own cap
    assert products(ask(srv.base, customer, "web", debug=False))
