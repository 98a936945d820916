"""Hotline agent assist: talking points from catalog templates, the caller's likely need from
recent events; and the catalog fields they and the failure alternatives read."""

from __future__ import annotations

import pytest

from recommender import (
    Catalog,
    CatalogError,
    Channel,
    Customer,
    Moment,
    Product,
    RequestContext,
    Store,
    Suggestion,
    Terminal,
)
from recommender.assist import RECENT_FAILURE_S, agent_line, likely_need
from recommender.catalog import product_to_dict
from recommender.context import OS, Network
from recommender.events import Events, parse_events

CATALOG = Catalog(
    [
        Product("plan_4g", "4G畅享套餐", "plan", name_en="4G plan", price=58),
        Product(
            "upgrade",
            "5G升级包",
            "plan",
            name_en="5G upgrade pack",
            price=30,
            talking_point="您的{terminal}支持5G，保留{plan}，每月{price}元",
            talking_point_en="Your {terminal} does 5G: keep the {plan} for {price} yuan",
        ),
        Product("daypass", "流量日包", "data", name_en="Data day-pass", price=5),
        Product("sim", "补换卡", "service", kind="service", name_en="SIM replacement"),
    ]
)


def context(
    locale="zh-CN", *, holdings=("plan_4g",), tags=(), model=None, event=None, smartphone=True
) -> RequestContext:
    return RequestContext(
        customer=Customer("C1", holdings=frozenset(holdings), tags=frozenset(tags)),
        terminal=Terminal(network="5G", model=model, smartphone=smartphone),
        channel=Channel("hotline", 2),
        moment=Moment.QUERY,
        locale=locale,
        event=event,
    )


def suggestion(product: str, reason: str = "理由") -> Suggestion:
    return Suggestion(product, product, 1.0, ("x",), (reason,))


@pytest.mark.parametrize(
    ("locale", "model", "line"),
    [
        ("zh-CN", "Mate 60", "您的Mate 60支持5G，保留4G畅享套餐，每月30元"),
        ("zh-CN", None, "您的5G智能手机支持5G，保留4G畅享套餐，每月30元"),
        ("en", None, "Your 5G smartphone does 5G: keep the 4G plan for 30 yuan"),
    ],
)
def test_a_talking_point_fills_the_template_from_the_context(locale, model, line) -> None:
    assert agent_line(CATALOG, context(locale, model=model), suggestion("upgrade")) == line


def test_without_a_template_the_line_is_built_from_the_reason() -> None:
    assert (
        agent_line(CATALOG, context(), suggestion("daypass", "应急首选"))
        == "流量日包（5元）：应急首选"
    )
    assert (
        agent_line(CATALOG, context("en", holdings=()), suggestion("daypass", "Quick fix"))
        == "Data day-pass (5 yuan): Quick fix"
    )


EVENTS = parse_events(
    {
        "event": [
            {
                "id": "phone_lost",
                "name": "丢失",
                "need": "手机丢了",
                "need_en": "Lost the phone",
                "recommend": [{"product": "sim", "reason": "补卡"}],
            }
        ]
    },
    CATALOG,
    source="events.toml",
)


def test_the_likely_need_puts_the_event_first_then_recent_failures_then_tags(tmp_path) -> None:
    now = 1_800_000_000
    with Store(tmp_path / "store.sqlite") as store:
        store.add_rows(
            "events",
            [
                (now - 600, "C1", "upgrade", "app", "failure", "not_eligible"),
                (now - RECENT_FAILURE_S - 1, "C1", "daypass", "app", "failure", "other"),
                (now - 60, "C2", "daypass", "app", "failure", "other"),  # someone else
                (now - 60, "C1", "daypass", "app", "success", None),
                # dated ahead (an import's typo): not happened yet, and not pushing out the
                # real failure from the five newest
                *[(now + 3600 * 24 * 365 * (70 + n), "C1", "daypass", "app", "failure",
                   "other") for n in range(5)],
            ],
        )  # not a failure
        out = likely_need(
            CATALOG,
            context(event="phone_lost", tags={"data_low", "arrears"}, holdings=("plan_4g", "sim")),
            EVENTS,
            store,
            now,
        )
    kinds = [s["kind"] for s in out["signals"]]
    assert kinds == ["event", "failed_order", "arrears", "data_low"]  # one failure: the hour's
    assert out["likely_need"] == "手机丢了"
    assert out["signals"][1] == {
        "kind": "failed_order",
        "product": "upgrade",
        "ts": now - 600,
        "detail": "10分钟前办理5G升级包失败：5G升级包办理未成功",
    }


def test_with_nothing_known_there_is_no_likely_need(tmp_path) -> None:
    with Store(tmp_path / "store.sqlite") as store:
        out = likely_need(CATALOG, context("en"), Events({}), store, 1_800_000_000)
    assert out == {"likely_need": None, "signals": []}
    assert likely_need(CATALOG, context("en"), Events({}), None, 0)["signals"] == []


def test_a_suspended_line_is_a_signal() -> None:
    catalog = Catalog([*CATALOG, Product("suspend_service", "停机保号", "service", kind="service")])
    out = likely_need(catalog, context("en", holdings=("suspend_service",)), Events({}), None, 0)
    assert out["likely_need"] == "The line is suspended: the caller may want it resumed"


BASE = {"id": "phone", "name": "手机", "category": "device"}


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"terminal": {"network": "6G"}}, "terminal.network", "must be one of 2G, 3G, 4G, 5G"),
        (
            {"terminal": {"network": "5G", "smartphone": "yes"}},
            "terminal.smartphone",
            "true or false",
        ),
        ({"terminal": {"network": "5G", "os": "symbian"}}, "terminal.os", "must be one of"),
        ({"terminal": {"network": "5G", "colour": "red"}}, "terminal.colour", "unknown field"),
        ({"terminal": "5G"}, "terminal", "must be a table"),
        ({"talking_point": "{name} for {cost}"}, "talking_point", "unknown placeholder {cost}"),
        ({"talking_point_en": "{name"}, "talking_point_en", "not a valid template"),
        ({"talking_point": "{name.__class__}"}, "talking_point", "unknown placeholder"),
        ({"talking_point": ""}, "talking_point", "non-empty string"),
    ],
)
def test_a_device_terminal_and_a_talking_point_are_checked_on_load(changes, field, fragment):
    with pytest.raises(CatalogError) as info:
        Catalog.from_dict({"product": [{**BASE, **changes}]}, source="catalog.toml")
    assert info.value.field == field and info.value.entry == "phone", str(info.value)
    assert fragment in str(info.value), str(info.value)


def test_a_device_terminal_and_talking_points_round_trip() -> None:
    entry = {
        **BASE,
        "terminal": {"network": "5G", "smartphone": True, "os": "ios"},
        "talking_point": "{name}，{price}元",
        "talking_point_en": "{name}: {price} yuan",
    }
    catalog = Catalog.from_dict({"product": [entry]})
    again = Catalog.from_dict({"product": [product_to_dict(catalog["phone"])]})
    p = again["phone"]
    assert (p.terminal.network, p.terminal.smartphone, p.terminal.os) == (Network.G5, True, OS.IOS)
    assert (p.talking_point, p.talking_point_en) == ("{name}，{price}元", "{name}: {price} yuan")
