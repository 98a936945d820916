"""Journeys across channels, replayed through the HTTP API on the sample operator: hand-offs,
failure alternatives, the pre-order check, service events, hotline agent assist, language."""

from __future__ import annotations

import re
import time

import pytest

from recommender import Customer, Exclusion, Moment, RequestContext, Terminal
from recommender.context import CHANNEL_IDS, Channel

HAN = re.compile(r"[\u4e00-\u9fff]")
#: English words the built-in sentences use: none may reach a Chinese answer.
ENGLISH_WORDS = re.compile(
    r"\b(customers?|popular|needs?|order|upgrades?|take|with|the)\b", re.IGNORECASE
)
STEADY = {"holdings": ["plan_4g"], "tenure_months": 24, "value_tier": "mid", "lifecycle": "steady"}


def recommend(client, **body):
    r = client.post("/v1/recommendations", json=body)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def check(client, **body):
    r = client.post("/v1/checks", json=body)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def by_product(body):
    return {s["product"]: s for s in body["suggestions"]}


def sentences(body) -> list[str]:
    """Every sentence of an answer meant for the customer or the agent."""
    out = []
    items = list(body["suggestions"])
    if body.get("check"):
        c = body["check"]
        out += [c["name"]] + ([c["detail"]] if c["detail"] else [])
        if c["handoff"]:
            out.append(c["handoff"]["text"])
        items += c["alternatives"]
    for s in items:
        out += [s["name"], *s["reasons"]]
        out += [s[k] for k in ("talking_point", "text") if s.get(k)]
        if s["handoff"]:
            out.append(s["handoff"]["text"])
    if body.get("explanation"):
        out.append(body["explanation"]["detail"])
    if body.get("assist"):
        out += [x["detail"] for x in body["assist"]["signals"]]
    return out


# -- 1. shown vs orderable: the lost phone on the hotline -------------------------------------


@pytest.mark.parametrize("event", [None, "phone_lost"])
def test_stopping_service_on_the_hotline_hears_of_a_sim_and_a_phone_with_hand_offs(client, event):
    extra = {"event": event} if event else {}
    body = recommend(
        client,
        customer=dict(STEADY),
        terminal={"network": "4G"},
        channel="hotline",
        moment="transaction",
        product="suspend_service",
        **extra,
    )
    offers = by_product(body)
    assert {"sim_replacement", "phone_purchase"} <= set(offers), list(offers)
    sim, phone = offers["sim_replacement"], offers["phone_purchase"]
    assert sim["order_channels"] == ["store"]
    assert sim["handoff"]["channel"] == "store" and sim["handoff"]["action"] == "store_visit"
    assert phone["order_channels"] == ["app", "web", "store"]
    assert phone["handoff"] == {
        "channel": "app",
        "action": "deep_link",
        "text": "请在手机营业厅APP办理购机",
        "link": "https://app.example.com/order?product=phone_purchase",
    }
    for s in (sim, phone):
        assert "hotline" not in s["order_channels"]
        assert s["handoff"]["channel"] in s["order_channels"]
        assert s["talking_point"] and HAN.search(s["talking_point"])
    assert body["check"]["will_succeed"] is True
    if event:
        guide = body["suggestions"][0]
        assert guide["kind"] == "service" and guide["product"] == "guide_report_loss"
        assert guide["text"] and guide["link"].startswith("https://")
        assert guide["order_channels"] == [] and guide["handoff"] is None
        assert "手机丢失" in body["assist"]["likely_need"]


def test_the_event_s_businesses_come_first_even_for_a_well_profiled_customer(client):
    """C0000744 (5G phone on the 4G plan) draws strong association and cross-sell offers; a
    lost phone still puts the SIM and the phone in the hotline's two slots."""
    body = recommend(
        client,
        customer={"id": "C0000744"},
        channel="hotline",
        moment="transaction",
        product="suspend_service",
        event="phone_lost",
    )
    businesses = [s["product"] for s in body["suggestions"] if s["kind"] == "business"]
    assert sorted(businesses) == ["phone_purchase", "sim_replacement"]
    assert [s["kind"] for s in body["suggestions"]] == ["service", "business", "business"]


def test_a_feature_phone_is_handed_to_the_store_not_to_an_app_it_cannot_run(client):
    body = recommend(
        client,
        customer=dict(STEADY),
        terminal={"network": "3G", "smartphone": False},
        channel="hotline",
        moment="transaction",
        product="suspend_service",
        locale="en",
    )
    phone = by_product(body)["phone_purchase"]
    assert phone["handoff"]["channel"] == "store"
    assert phone["handoff"]["text"] == "Order Phone purchase at the nearest store"


@pytest.mark.parametrize("channel", ["app", "web", "wechat", "store"])
def test_channels_without_hand_offs_still_show_only_what_they_transact(client, channel):
    body = recommend(
        client,
        customer=dict(STEADY),
        channel=channel,
        moment="transaction",
        product="suspend_service",
        terminal={"network": "4G"},
    )
    for s in body["suggestions"]:
        assert channel in s["order_channels"] and s["handoff"] is None, s


def test_hand_offs_offer_only_what_the_customer_can_take(client, api_workspace):
    """The eligibility guarantee holds on hand-off channels: the channel check aside, every
    suggestion passes the catalog's own check for the same customer and terminal."""
    catalog = api_workspace.catalog()
    customers = [
        (
            {"holdings": ["plan_4g"], "tenure_months": 1, "lifecycle": "new"},
            {"network": "3G", "smartphone": False},
        ),
        (
            {"holdings": ["plan_5g", "broadband"], "tenure_months": 40, "value_tier": "high"},
            {"network": "5G", "os": "ios"},
        ),
        (dict(STEADY), {"network": "4G", "os": "android"}),
    ]
    for customer, terminal in customers:
        for channel in ("hotline", "sms"):
            for moment, product in (
                ("query", "balance_query"),
                ("success", "broadband"),
                ("transaction", "suspend_service"),
            ):
                if product in customer["holdings"]:
                    continue
                body = recommend(
                    client,
                    customer=customer,
                    terminal=terminal,
                    channel=channel,
                    moment=moment,
                    product=product,
                )
                context = RequestContext(
                    customer=Customer(
                        "anonymous",
                        **{
                            k: (frozenset(v) if k == "holdings" else v) for k, v in customer.items()
                        },
                    ),
                    terminal=Terminal(**terminal),
                    channel=Channel(channel, 2),
                    moment=Moment(moment),
                    product=product,
                )
                codes = catalog.exclusions(context, channels=False)
                for s in body["suggestions"]:
                    assert codes[catalog.index[s["product"]]] == Exclusion.OK, (body, s)
                    if s["handoff"] is not None:
                        assert s["handoff"]["channel"] in catalog[s["product"]].channels
                        if not terminal.get("smartphone", True):
                            assert s["handoff"]["channel"] not in ("app", "wechat")


# -- 2. failure alternatives from the catalog -------------------------------------------------


@pytest.mark.parametrize("failure_reason", [None, "other", "not_eligible"])
def test_a_4g_phone_failing_the_5g_plan_gets_a_5g_phone_and_the_path_that_works(
    client, failure_reason
):
    extra = {"failure_reason": failure_reason} if failure_reason else {}
    body = recommend(
        client,
        customer=dict(STEADY),
        terminal={"network": "4G"},
        channel="app",
        moment="failure",
        product="plan_5g",
        locale="zh-CN",
        **extra,
    )
    assert body["explanation"]["reason"] == "terminal_network"
    first = [s["product"] for s in body["suggestions"][:2]]
    assert first == ["phone_5g", "plan_4g_plus"], first
    phone, path = body["suggestions"][0], body["suggestions"][1]
    assert phone["strategies"][0] == "alternatives"
    assert phone["reasons"][0].startswith("5G套餐（不换卡）需要5G手机，您的手机是4G")
    assert "5G手机" in phone["reasons"][0]
    assert "4G畅享升级套餐升级您的4G畅享套餐" in path["reasons"][0]
    for s in body["suggestions"]:
        assert s["product"] not in ("plan_5g", "plan_5g_newsim", "upgrade_5g")
        assert "alternatives" in s["strategies"]


def test_a_missing_prerequisite_is_offered_first_and_named(client):
    body = recommend(
        client,
        customer=dict(STEADY),
        channel="app",
        moment="failure",
        product="intl_data_daypass",
        locale="en",
    )
    top = body["suggestions"][0]
    assert top["product"] == "intl_roaming"
    assert top["reasons"][0] == (
        "International data day-pass needs International roaming: order International roaming first"
    )


def test_a_failed_roaming_order_gets_what_the_customer_can_take_with_the_obstacle_named(client):
    body = recommend(
        client,
        customer={**STEADY, "tenure_months": 1},
        channel="app",
        moment="failure",
        product="intl_roaming",
        locale="zh-CN",
    )
    products = [s["product"] for s in body["suggestions"]]
    assert set(products[:2]) == {"intl_sms", "intl_ld"}, products
    assert "intl_data_daypass" not in products and "intl_ld_pack" not in products
    for s in body["suggestions"]:
        assert s["reasons"][0].startswith("国际漫游需要在网满3个月，您在网1个月"), s


# -- 3. the pre-order check -------------------------------------------------------------------


def test_a_conflicting_plan_is_warned_about_before_the_order_is_placed(client):
    customer = {**STEADY, "holdings": ["plan_5g"]}
    body = recommend(
        client,
        customer=customer,
        terminal={"network": "5G"},
        channel="app",
        moment="transaction",
        product="plan_5g_newsim",
    )
    verdict = body["check"]
    assert verdict["will_succeed"] is False and verdict["reason"] == "conflict"
    assert verdict["detail"] == "5G套餐（换新卡）与您已办理的5G套餐（不换卡）冲突"
    assert body["moment"] == "transaction" and "explanation" not in body
    alternatives = [a["product"] for a in verdict["alternatives"]]
    assert alternatives == [s["product"] for s in body["suggestions"]] and alternatives
    assert "plan_5g_newsim" not in alternatives and "plan_5g" not in alternatives
    assert all(a["reasons"][0].startswith(verdict["detail"]) for a in verdict["alternatives"])

    alone = check(
        client,
        customer=customer,
        terminal={"network": "5G"},
        channel="app",
        product="plan_5g_newsim",
    )
    assert alone["check"]["will_succeed"] is False
    assert {k: alone["check"][k] for k in ("reason", "detail")} == {
        k: verdict[k] for k in ("reason", "detail")
    }
    assert alone["locale"] == "zh-CN" and alone["channel"] == "app"


def test_an_order_that_will_succeed_keeps_its_cross_sell(client):
    body = recommend(
        client, customer=dict(STEADY), channel="app", moment="transaction", product="intl_roaming"
    )
    assert body["check"] == {
        "product": "intl_roaming",
        "name": "国际漫游",
        "will_succeed": True,
        "reason": None,
        "detail": None,
        "order_channels": ["app", "web", "hotline", "sms", "store"],
        "handoff": None,
        "alternatives": [],
    }
    assert "intl_data_daypass" in by_product(body)  # needs roaming: offered while ordering it


@pytest.mark.parametrize(
    ("channel", "succeeds", "handoff"),
    [("web", True, None), ("hotline", False, "app"), ("app", True, None), ("wechat", False, None)],
)
def test_a_check_says_where_an_order_can_be_placed(client, channel, succeeds, handoff):
    body = check(
        client, customer=dict(STEADY), channel=channel, product="phone_purchase", locale="en"
    )["check"]
    assert body["will_succeed"] is succeeds
    assert body["order_channels"] == ["app", "web", "store"]
    if not succeeds:
        assert body["reason"] == "channel" and body["alternatives"]
        assert (body["handoff"] or {}).get("channel") == handoff  # wechat: no hand-offs


def test_a_check_of_a_business_already_held_says_so(client):
    body = check(client, customer=dict(STEADY), channel="app", product="plan_4g", locale="en")[
        "check"
    ]
    assert body["will_succeed"] is False and body["reason"] == "held"
    assert body["detail"] == "the customer already has 4G plan"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "app", "customer": {"id": "C0000042"}}, "product"),
        (
            {
                "channel": "app",
                "customer": {"id": "C0000042"},
                "product": "plan_5g",
                "moment": "query",
            },
            "moment",
        ),
        ({"channel": "fax", "customer": {"id": "C0000042"}, "product": "plan_5g"}, "channel"),
        (
            {
                "channel": "app",
                "customer": {"id": "C0000042"},
                "product": "plan_5g",
                "locale": "fr",
            },
            "locale",
        ),
        ({"channel": "app", "customer": {"id": "C0000042"}, "product": "no_such"}, "product"),
    ],
)
def test_a_bad_check_request_is_refused_naming_the_field(client, body, field):
    r = client.post("/v1/checks", json=body)
    assert r.status_code == 422
    assert field in r.get_json()["errors"], r.get_json()


# -- 4. service events ------------------------------------------------------------------------


def test_data_low_on_sms_gives_the_guidance_and_one_data_business(client):
    body = recommend(
        client,
        customer=dict(STEADY),
        terminal={"network": "4G", "smartphone": False},
        channel="sms",
        moment="query",
        event="data_low",
    )
    guide, *businesses = body["suggestions"]
    assert guide == {
        "product": "guide_data_balance",
        "name": "查询剩余流量",
        "kind": "service",
        "score": 1.0,
        "strategies": ["events"],
        "reasons": ["本月流量即将用完"],
        "order_channels": [],
        "handoff": None,
        "text": "发送CXLL到10086查询本月剩余流量",
        "link": "sms:10086?body=CXLL",
    }
    assert len(businesses) == 1  # the SMS hall's one slot
    assert businesses[0]["product"] in {"data_daypass", "data_5gb", "data_1gb"}
    assert "sms" in businesses[0]["order_channels"] and businesses[0]["handoff"] is None
    assert body["event"] == "data_low" and "assist" not in body


def test_an_unknown_event_is_refused_with_the_known_ones(client):
    r = client.post(
        "/v1/recommendations",
        json={
            "customer": dict(STEADY),
            "channel": "app",
            "moment": "query",
            "event": "phone_stolen",
        },
    )
    assert r.status_code == 422
    message = " ".join(r.get_json()["errors"]["event"])
    assert "phone_lost" in message and "data_low" in message
    r = client.post(
        "/v1/recommendations",
        json={"customer": dict(STEADY), "channel": "app", "moment": "query", "event": "DROP TABLE"},
    )
    assert r.status_code == 422 and "event" in r.get_json()["errors"]


# -- 5. hotline agent assist ------------------------------------------------------------------


def test_the_hotline_agent_sees_a_failed_order_of_the_last_hour_and_talking_points(
    client, api_workspace
):
    with api_workspace.store() as store:
        cid = store.customer_ids(limit=1)[0]
        store.add_rows(
            "events",
            [
                (
                    int(time.time()) - 1200,
                    cid,
                    "intl_ld_pack",
                    "app",
                    "failure",
                    "missing_prerequisite",
                    f"journeys-{cid}",
                )
            ],
        )
        customer = store.customer(cid)
    body = recommend(
        client, customer={"id": cid}, channel="hotline", moment="query", product="bill_query"
    )
    signal = body["assist"]["signals"][0]
    assert signal["kind"] == "failed_order" and signal["product"] == "intl_ld_pack"
    assert body["assist"]["likely_need"].startswith("20分钟前办理国际定向长途优惠包失败")
    assert body["suggestions"]
    for s in body["suggestions"]:
        assert s["talking_point"] and HAN.search(s["talking_point"]), s
    english = recommend(
        client,
        customer={"id": cid},
        channel="hotline",
        moment="query",
        product="bill_query",
        locale="en",
    )
    assert english["assist"]["likely_need"].startswith(
        "Ordering International directional long-distance package failed 20 minutes ago"
    )
    app = recommend(client, customer={"id": cid}, channel="app", moment="query")
    assert "assist" not in app and all("talking_point" not in s for s in app["suggestions"])
    assert customer is not None


def test_a_talking_point_fills_the_plan_terminal_and_price(client):
    body = recommend(
        client,
        customer=dict(STEADY),
        terminal={"network": "5G", "model": "P60"},
        channel="hotline",
        moment="query",
        product="balance_query",
    )
    upgrade = by_product(body).get("upgrade_5g")
    assert upgrade is not None, body
    assert upgrade["talking_point"] == "您的P60支持5G，保留4G畅享套餐不换卡，每月加30元即可用5G"


# -- 6. language ------------------------------------------------------------------------------

JOURNEYS = [
    {
        "channel": "hotline",
        "moment": "transaction",
        "product": "suspend_service",
        "event": "phone_lost",
    },
    {"channel": "app", "moment": "failure", "product": "plan_5g", "terminal": {"network": "4G"}},
    {
        "channel": "app",
        "moment": "transaction",
        "product": "plan_5g_newsim",
        "customer": {**STEADY, "holdings": ["plan_5g"]},
        "terminal": {"network": "5G"},
    },
    {
        "channel": "web",
        "moment": "failure",
        "product": "intl_roaming",
        "customer": {**STEADY, "tenure_months": 1},
    },
    {
        "channel": "sms",
        "moment": "query",
        "event": "data_low",
        "terminal": {"network": "4G", "smartphone": False},
    },
    {
        "channel": "hotline",
        "moment": "query",
        "product": "balance_query",
        "terminal": {"network": "5G"},
    },
    {"channel": "app", "moment": "success", "product": "intl_roaming"},
    {
        "channel": "wechat",
        "moment": "query",
        "product": "balance_query",
        "customer": {"id": "C0000042"},
    },
    {
        "channel": "store",
        "moment": "success",
        "product": "broadband",
        "customer": {"id": "C0000042"},
    },
]


@pytest.mark.parametrize("journey", JOURNEYS, ids=lambda j: f"{j['channel']}-{j['moment']}")
def test_every_sentence_is_chinese_with_zh_cn_and_english_with_en(client, journey):
    base = {"customer": dict(STEADY), **journey}
    chinese = recommend(client, **base, locale="zh-CN")
    english = recommend(client, **base, locale="en")
    default = recommend(client, **base)  # the sample operator speaks Chinese by default
    assert chinese["locale"] == default["locale"] == "zh-CN" and english["locale"] == "en"
    zh, en = sentences(chinese), sentences(english)
    assert zh and en
    for text in zh:
        assert HAN.search(text) and not ENGLISH_WORDS.search(text), text
    for text in en:
        assert not HAN.search(text), text
    for text in sentences(default):
        assert HAN.search(text) and not ENGLISH_WORDS.search(text), text


@pytest.mark.parametrize("channel", CHANNEL_IDS)
def test_exclusions_are_explained_in_the_request_locale(client, channel):
    for locale, pattern in (("zh-CN", HAN), ("en", re.compile(r"^[\x20-\x7e]+$"))):
        body = recommend(
            client,
            customer={**STEADY, "tenure_months": 1},
            channel=channel,
            moment="query",
            debug=True,
            locale=locale,
            terminal={"network": "3G", "smartphone": False},
        )
        assert body["excluded"]
        for item in body["excluded"]:
            assert pattern.search(item["detail"]), (locale, item)
