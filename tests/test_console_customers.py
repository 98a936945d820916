"""The customer view: the TCPC context, every channel x moment answer as the API gives it,
exclusions and why, and the what-if panel; looking never counts as contacting."""

from __future__ import annotations

import re

import pytest
from api_support import copy_workspace
from console_support import close, console_app, sign_in, signed_in, text

from api import ServerSettings, create_app
from api.console.customers import MOMENTS
from recommender import hookimpl
from recommender.context import CHANNEL_IDS
from recommender.plugin_manager import make_plugin_manager

CUSTOMER = "C0000744"  # mid value, 5G phone on the 4G plan (see the README)


@pytest.fixture(scope="module")
def workspace(sample_workspace, tmp_path_factory):
    return copy_workspace(sample_workspace, tmp_path_factory.mktemp("console-customers") / "ws")


@pytest.fixture(scope="module")
def app(workspace):
    app = console_app(workspace.root)
    yield app
    close(app)


@pytest.fixture
def client(app):
    return signed_in(app)


def cell(html: str, channel: str, moment: str) -> str:
    match = re.search(rf'<td data-cell="{channel}-{moment}">(.*?)</td>\s*(?=<td data-cell|</tr>)',
                      html, re.S)
    assert match is not None, (channel, moment)
    return match.group(1)


def api_answer(client, **body):
    response = client.post("/v1/recommendations", json={
        "customer": {"id": CUSTOMER}, "locale": "en", "debug": True, **body})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_the_grid_shows_what_the_api_answers_on_every_channel_and_moment(client):
    page = client.get(f"/console/customers/{CUSTOMER}?product=intl_roaming")
    assert page.status_code == 200
    html = text(page)
    for channel in CHANNEL_IDS:
        for moment in MOMENTS:
            body = {"channel": channel, "moment": moment}
            if moment != "query":
                body["product"] = "intl_roaming"
            if moment == "failure":
                body["failure_reason"] = "not_eligible"
            answer = api_answer(client, **body)
            shown = cell(html, channel, moment)
            names = re.findall(r"<li><strong>(.*?)</strong> <span class=\"score\">", shown)
            assert names == [s["name"] for s in answer["suggestions"]], (channel, moment)
            if answer["excluded"]:
                assert f"{len(answer['excluded'])} excluded" in shown


def test_the_context_shows_holdings_terminal_and_history(client, app):
    store = app.extensions["recommender"].slot.engine.store
    html = text(client.get(f"/console/customers/{CUSTOMER}"))
    customer = store.customer(CUSTOMER)
    catalog = app.extensions["recommender"].slot.engine.catalog
    for held in customer.holdings:
        assert catalog[held].display_name("en") in html
    terminal = store.terminal(CUSTOMER)
    assert f"<dd>{terminal.network.value}</dd>" in html and terminal.model in html
    assert "Recent events" in html and "Recent responses" in html


def test_what_if_a_4g_phone_excludes_the_5g_businesses_and_says_why(client):
    stored = text(client.get(f"/console/customers/{CUSTOMER}/results?channel=app&moment=query"))
    asked = text(client.get(
        f"/console/customers/{CUSTOMER}/results?channel=app&moment=query&network=4G"))
    assert "<html" not in asked  # a fragment, for the panel to replace in place
    assert "terminal_network" in asked and "terminal_network" not in stored
    assert "Asked with the terminal: network=4G." in asked
    answer = api_answer(client, channel="app", moment="query", terminal={"network": "4G"})
    excluded = {e["product"] for e in answer["excluded"] if e["reason"] == "terminal_network"}
    assert excluded and all(p in asked for p in excluded)


def test_what_if_a_failed_order_explains_the_failure(client):
    html = text(client.get(f"/console/customers/{CUSTOMER}?channel=web&moment=failure"
                           f"&product=plan_5g_newsim&failure_reason=not_eligible"))
    answer = api_answer(client, channel="web", moment="failure", product="plan_5g_newsim",
                        failure_reason="not_eligible")
    if answer.get("explanation"):
        assert answer["explanation"]["detail"] in html
    assert answer["suggestions"][0]["name"] in html


def test_a_moment_that_needs_a_business_asks_for_one(client):
    html = text(client.get(f"/console/customers/{CUSTOMER}?product=&channel=app"
                           f"&moment=transaction"))
    assert "This moment needs the business acted on" in html
    assert "Choose the business acted on in the what-if panel." in cell(html, "app",
                                                                         "transaction")


@pytest.mark.parametrize("query", ["product=no_such_business", "network=6G", "moment=later",
                                   "channel=fax", "event=meteor", "smartphone=maybe"])
def test_a_value_outside_the_choices_is_ignored_and_named(client, query):
    response = client.get(f"/console/customers/{CUSTOMER}?{query}")
    assert response.status_code == 200
    assert "Ignored values that are not among the choices: " + query.split("=")[0] in text(
        response)


def test_an_unknown_customer_is_a_404_page(client):
    response = client.get("/console/customers/NOBODY")
    assert response.status_code == 404
    assert "No customer has this id." in text(response)


def test_search_opens_an_exact_id_and_lists_a_prefix(client):
    exact = client.get(f"/console/customers/?q={CUSTOMER}")
    assert exact.status_code == 303 and exact.headers["Location"].endswith(CUSTOMER)
    listed = text(client.get("/console/customers/?q=C000074"))
    ids = re.findall(r">(C\d{7})</a>", listed)
    assert ids == sorted(ids) and ids and all(i.startswith("C000074") for i in ids)
    first = text(client.get("/console/customers/"))
    more = re.search(r'after=(C\d{7})', first)
    assert more is not None
    second = text(client.get(f"/console/customers/?after={more.group(1)}"))
    assert re.findall(r">(C\d{7})</a>", second)[0] > more.group(1)


def test_looking_at_a_customer_records_no_contact_and_tells_no_observer(sample_workspace,
                                                                       tmp_path):
    ws = copy_workspace(sample_workspace, tmp_path / "ws")
    config = (ws.root / "config.toml").read_text()
    (ws.root / "config.toml").write_text(config.replace(
        "max_per_channel_day = 0", "max_per_channel_day = 2"))
    app = console_app(ws.root)
    try:
        client = app.test_client()
        sign_in(client)
        store = app.extensions["recommender"].slot.engine.store
        metrics = app.extensions["recommender"].metrics
        before = metrics.registry.get_sample_value(
            "recommender_contact_policy_exclusions_total", {"rule": "policy_channel_day_cap"})
        for _ in range(3):
            html = text(client.get(f"/console/customers/{CUSTOMER}?product=intl_roaming"))
        assert "Contact caps are configured but not applied here" in html
        assert store.db.execute("SELECT COUNT(*) FROM contacts").fetchone()[0] == 0
        assert metrics.registry.get_sample_value(
            "recommender_contact_policy_exclusions_total",
            {"rule": "policy_channel_day_cap"}) == before
        # the API itself records what it serves under the same caps
        client.post("/v1/recommendations", json={
            "customer": {"id": CUSTOMER}, "channel": "app", "moment": "query"})
        assert store.db.execute("SELECT COUNT(*) FROM contacts").fetchone()[0] > 0
    finally:
        close(app)


class Observer:
    """A plugin that counts the answers it is told were served."""

    def __init__(self) -> None:
        self.served = 0

    @hookimpl
    def recommendation_served(self, recommendation):
        self.served += 1


def test_no_observer_hears_of_what_the_console_asks(sample_workspace, tmp_path):
    ws = copy_workspace(sample_workspace, tmp_path / "ws")
    observer = Observer()
    app = create_app(settings=ServerSettings.load(ws.root, environ={},
                                                  admin_token="test-admin-token-0123456789"),
                     plugin_manager=make_plugin_manager(extra_plugins=[("observer", observer)]))
    try:
        client = app.test_client()
        sign_in(client)
        assert client.get(f"/console/customers/{CUSTOMER}?product=intl_roaming"
                          ).status_code == 200
        assert observer.served == 0
        client.post("/v1/recommendations", json={
            "customer": {"id": CUSTOMER}, "channel": "app", "moment": "query"})
        assert observer.served == 1
    finally:
        close(app)
