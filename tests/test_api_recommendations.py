"""POST /v1/recommendations: the contract channels rely on, moment by moment."""

from __future__ import annotations

import numpy as np
import pytest
from api_support import check_problem

from recommender import Customer, RequestContext, Terminal
from recommender.catalog import Exclusion
from recommender.config import DEFAULT_SLOTS
from recommender.context import Channel, Moment

CUSTOMER = "C0000042"
SUGGESTION_FIELDS = {"product", "name", "kind", "score", "strategies", "reasons",
                     "order_channels", "handoff"}

MOMENT_REQUESTS = {
    "query": {"product": "data_5gb"},
    "transaction": {"product": "plan_5g"},
    "success": {"product": "plan_5g"},
    "failure": {"product": "plan_5g_newsim", "failure_reason": "not_eligible"},
}


def post(client, body):
    return client.post("/v1/recommendations", json=body)


@pytest.mark.parametrize("channel", sorted(DEFAULT_SLOTS))
@pytest.mark.parametrize("moment", sorted(MOMENT_REQUESTS))
def test_every_moment_and_channel_answers_within_its_slots(client, moment, channel):
    r = post(client, {"customer": {"id": CUSTOMER}, "channel": channel, "moment": moment,
                      **MOMENT_REQUESTS[moment]})
    assert r.status_code == 200
    body = r.get_json()
    assert body["moment"] == moment and body["channel"] == channel
    assert body["model_version"] and body["model_version"] != "untrained"
    assert len(body["request_id"]) >= 8
    assert 0 < len(body["suggestions"]) <= DEFAULT_SLOTS[channel]
    for s in body["suggestions"]:
        # the hotline agent gets a talking point per suggestion (agent assist)
        assert set(s) == SUGGESTION_FIELDS | ({"talking_point"} if channel == "hotline" else set())
        assert s["name"] and s["score"] > 0 and s["kind"] == "business"
        assert s["order_channels"]
        # shown elsewhere than it is ordered only where hand-offs are allowed
        assert (channel in s["order_channels"]) == (s["handoff"] is None)
        assert s["handoff"] is None or channel in ("hotline", "sms")
        assert len(s["strategies"]) == len(s["reasons"]) >= 1
    assert "excluded" not in body and "timings" not in body


def test_suggestions_are_eligible_and_not_held(client, api_workspace):
    """Everything served passes the catalog's own eligibility check for the same context."""
    holdings = ["plan_4g", "data_5gb", "caller_id"]
    r = post(client, {"customer": {"holdings": holdings, "tenure_months": 2},
                      "terminal": {"network": "4G", "smartphone": True, "os": "android"},
                      "channel": "web", "moment": "query"})
    catalog = api_workspace.catalog()
    context = RequestContext(
        customer=Customer("anonymous", tenure_months=2, holdings=frozenset(holdings)),
        terminal=Terminal(network="4G", os="android"), channel=Channel("web", 12),
        moment=Moment.QUERY)
    codes = catalog.exclusions(context)
    served = [s["product"] for s in r.get_json()["suggestions"]]
    assert served and not set(served) & set(holdings)
    assert all(codes[catalog.index[p]] == Exclusion.OK for p in served)


def test_k_is_capped_by_the_channel_slots(client):
    few = post(client, {"customer": {"id": CUSTOMER}, "channel": "web", "moment": "query",
                        "k": 3}).get_json()
    capped = post(client, {"customer": {"id": CUSTOMER}, "channel": "sms", "moment": "query",
                           "k": 50}).get_json()
    assert len(few["suggestions"]) == 3
    assert len(capped["suggestions"]) == 1


def test_debug_adds_exclusions_timings_and_errors(client):
    body = post(client, {"customer": {"id": CUSTOMER}, "channel": "app", "moment": "success",
                         "product": "plan_5g", "debug": True}).get_json()
    assert {"product": "plan_5g", "reason": "current_product"} in [
        {k: e[k] for k in ("product", "reason")} for e in body["excluded"]]
    assert all(e["detail"] for e in body["excluded"])
    assert {"cf", "total", "eligibility"} <= set(body["timings"])
    assert body["errors"] == []


def test_failure_explains_why_and_offers_the_alternative(client):
    body = post(client, {"customer": {"holdings": ["plan_4g"], "tenure_months": 24},
                         "terminal": {"network": "5G"}, "channel": "hotline",
                         "moment": "failure", "product": "plan_5g",
                         "failure_reason": "conflict"}).get_json()
    products = [s["product"] for s in body["suggestions"]]
    assert products[0] == "upgrade_5g"
    assert "cross_sell" in body["suggestions"][0]["strategies"]


def test_failure_on_4g_terminal_names_the_terminal(client):
    body = post(client, {"customer": {"holdings": ["plan_4g"]}, "terminal": {"network": "4G"},
                         "channel": "hotline", "moment": "failure",
                         "product": "plan_5g_newsim", "failure_reason": "not_eligible"}
                ).get_json()
    assert body["explanation"]["reason"] == "terminal_network"
    assert "5G" in body["explanation"]["detail"]


def test_inline_attributes_override_the_stored_customer(client):
    stored = post(client, {"customer": {"id": CUSTOMER}, "channel": "web",
                           "moment": "query"}).get_json()
    held = [s["product"] for s in stored["suggestions"]][:2]
    again = post(client, {"customer": {"id": CUSTOMER, "holdings": held}, "channel": "web",
                          "moment": "query"}).get_json()
    assert not {s["product"] for s in again["suggestions"]} & set(held)


def test_client_request_id_is_echoed(client):
    body = post(client, {"customer": {"id": CUSTOMER}, "channel": "app", "moment": "query",
                         "request_id": "app-req-0001"}).get_json()
    assert body["request_id"] == "app-req-0001"


BASE = {"customer": {"id": CUSTOMER}, "channel": "app", "moment": "query"}


@pytest.mark.parametrize(("change", "field"), [
    ({"customer": None}, "customer"),
    ({"customer": {}}, "customer.id"),
    ({"customer": "C1"}, "customer"),
    ({"customer": {"id": ""}}, "customer.id"),
    ({"customer": {"id": "x" * 129}}, "customer.id"),
    ({"customer": {"id": 42}}, "customer.id"),
    ({"customer": {"id": CUSTOMER, "value_tier": "platinum"}}, "customer.value_tier"),
    ({"customer": {"id": CUSTOMER, "persona": "gamer"}}, "customer.persona"),
    ({"customer": {"id": CUSTOMER, "lifecycle": "dead"}}, "customer.lifecycle"),
    ({"customer": {"id": CUSTOMER, "tenure_months": -1}}, "customer.tenure_months"),
    ({"customer": {"id": CUSTOMER, "tenure_months": 2.5}}, "customer.tenure_months"),
    ({"customer": {"id": CUSTOMER, "vip_level": 11}}, "customer.vip_level"),
    ({"customer": {"id": CUSTOMER, "holdings": "plan_4g"}}, "customer.holdings"),
    ({"customer": {"id": CUSTOMER, "holdings": [1]}}, "customer.holdings.0"),
    ({"customer": {"id": CUSTOMER, "holdings": ["x"] * 501}}, "customer.holdings"),
    ({"customer": {"id": CUSTOMER, "holdings": ["no_such"]}}, "customer.holdings"),
    ({"customer": {"id": CUSTOMER, "colour": "red"}}, "customer.colour"),
    ({"customer": {"id": "nobody-we-know"}}, "customer.id"),
    ({"terminal": {"network": "6G"}}, "terminal.network"),
    ({"terminal": {"smartphone": "yes"}}, "terminal.smartphone"),
    ({"terminal": {"os": "symbian"}}, "terminal.os"),
    ({"terminal": {"pixels": 4}}, "terminal.pixels"),
    ({"channel": None}, "channel"),
    ({"channel": "fax"}, "channel"),
    ({"moment": "later"}, "moment"),
    ({"moment": None}, "moment"),
    ({"product": "no_such"}, "product"),
    ({"product": 7}, "product"),
    ({"moment": "transaction"}, "product"),
    ({"moment": "failure"}, "product"),
    ({"failure_reason": "not_eligible"}, "failure_reason"),
    ({"moment": "failure", "product": "plan_5g", "failure_reason": "bad luck"},
     "failure_reason"),
    ({"k": 0}, "k"), ({"k": -3}, "k"), ({"k": 101}, "k"), ({"k": 10**30}, "k"),
    ({"k": "5"}, "k"), ({"k": 2.0}, "k"), ({"k": True}, "k"),
    ({"debug": "true"}, "debug"), ({"debug": 1}, "debug"),
    ({"request_id": "has spaces"}, "request_id"),
    ({"extra": 1}, "extra"),
])
def test_each_field_rule_is_a_422_naming_the_field(client, change, field):
    body = {**BASE, **change}
    body = {k: v for k, v in body.items() if not (v is None and k in ("customer", "channel",
                                                                          "moment"))}
    problem = check_problem(post(client, body), 422)
    assert field in problem["errors"], problem
    assert field.split(".")[0] in problem["detail"]


def test_suggestion_scores_are_sorted(client):
    scores = [s["score"] for s in post(client, {**BASE, "channel": "web"}
                                       ).get_json()["suggestions"]]
    assert scores == sorted(scores, reverse=True)
    assert np.all(np.isfinite(scores))


def test_the_response_is_exactly_what_its_schema_documents(client):
    """The endpoint writes the engine's dict without a marshmallow pass: for every channel,
    moment, language, event and debug flag, dumping it through the documented schema would
    change nothing (no field undeclared, renamed or reformatted)."""
    from api.schemas import RecommendationSchema

    engine = client.application.extensions["recommender"].slot.engine
    schema = RecommendationSchema()
    events = [None, *sorted(engine.events.events)]
    rng = np.random.default_rng(5)
    checked = 0
    for channel in sorted(DEFAULT_SLOTS):
        for moment, extra in MOMENT_REQUESTS.items():
            for debug in (False, True):
                body = {"customer": {"id": CUSTOMER}, "channel": channel, "moment": moment,
                        "locale": str(rng.choice(["zh-CN", "en"])), "debug": debug, **extra}
                event = events[int(rng.integers(len(events)))]
                if event is not None:
                    body["event"] = event
                r = post(client, body)
                assert r.status_code == 200 and r.mimetype == "application/json"
                got = r.get_json()
                assert schema.dump(got) == got, body
                assert not schema.validate(got), body
                checked += 1
    assert checked == len(DEFAULT_SLOTS) * len(MOMENT_REQUESTS) * 2
