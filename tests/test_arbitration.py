"""Arbitration (the final ranking over propensity, value, priority and relevance) and
exploration within a share of the slots."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime

import numpy as np
import pytest
from test_engine import FixedStrategy, StrategyPlugin, generated_requests, violations

from recommender import (
    Catalog,
    CatalogError,
    Config,
    ConfigError,
    Customer,
    Engine,
    RecommendationRequest,
    RequestContext,
)
from recommender.arbitration import (
    COMPONENTS,
    DEFAULT_VALUE_EXPONENT,
    Arbiter,
    ArbitrationSettings,
    ExplorationSettings,
    reserved_slots,
    uniform,
)
from recommender.catalog import product_to_dict
from recommender.context import Channel, Moment, Terminal
from recommender.plugin_manager import make_plugin_manager
from recommender.workspace import Workspace


def context(channel: str = "app", moment: str = "query", product: str | None = None,
            k: int | None = None, request_id: str = "r1", holdings=()) -> RequestContext:
    return RequestContext(
        customer=Customer(id="C1", holdings=frozenset(holdings)),
        terminal=Terminal(network="5G"), channel=Channel(channel, 9),
        moment=Moment(moment), product=product, k=k, request_id=request_id)


def arbiter(catalog: Catalog, arbitration: dict | None = None,
            exploration: dict | None = None) -> Arbiter:
    raw = {}
    if arbitration is not None:
        raw["arbitration"] = arbitration
    if exploration is not None:
        raw["exploration"] = exploration
    return Arbiter(catalog, Config.from_dict(raw, source="config.toml"))


# --------------------------------------------------------------------------------------------
# Settings: every bad value refused, naming the file and the key
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("table", "key", "words"), [
    ({"propensity": 0}, "arbitration.propensity", "above 0"),
    ({"propensity": 11}, "arbitration.propensity", "to 10"),
    ({"value": -0.1}, "arbitration.value", "from 0"),
    ({"value": "high"}, "arbitration.value", "got 'high'"),
    ({"value": True}, "arbitration.value", "got True"),
    ({"priority": math.inf}, "arbitration.priority", "inf"),
    ({"relevance": 10.5}, "arbitration.relevance", "to 10"),
    ({"value_reference": 0}, "arbitration.value_reference", "above 0"),
    ({"value_reference": "mean"}, "arbitration.value_reference", '"median"'),
    ({"related": 0}, "arbitration.related", "above 0"),
    ({"related": 1001}, "arbitration.related", "at most 1000"),
    ({"timezone": "Mars/Olympus"}, "arbitration.timezone", "unknown time zone"),
    ({"timezone": 8}, "arbitration.timezone", "IANA"),
    ({"categories": {"lunch": {"data": 1.2}}}, "arbitration.categories.lunch",
     "moment or a channel"),
    ({"categories": {"query": 1.2}}, "arbitration.categories.query", "table"),
    ({"categories": {"query": {"data": -1}}}, "arbitration.categories.query.data", "above 0"),
    ({"valeu": 0.3}, "arbitration.valeu", "unknown key"),
])
def test_bad_arbitration_settings_name_file_and_key(table, key, words) -> None:
    with pytest.raises(ConfigError) as raised:
        ArbitrationSettings.from_config({"arbitration": table}, "ws/config.toml")
    assert raised.value.source == "ws/config.toml"
    assert raised.value.key == key
    assert words in str(raised.value)


@pytest.mark.parametrize(("table", "key", "words"), [
    ({"share": 1.5}, "exploration.share", "from 0 to 1"),
    ({"share": -0.1}, "exploration.share", "from 0 to 1"),
    ({"share": "20%"}, "exploration.share", "from 0 to 1"),
    ({"share": math.nan}, "exploration.share", "nan"),
    ({"strategy": ""}, "exploration.strategy", "strategy name"),
    ({"strategy": 3}, "exploration.strategy", "strategy name"),
    ({"hotline": {"share": 2}}, "exploration.hotline.share", "from 0 to 1"),
    ({"hotline": 0.1}, "exploration.hotline", "must be a table"),
    ({"hotline": {"shares": 0.1}}, "exploration.hotline.shares", "unknown key"),
    ({"fax": {"share": 0.1}}, "exploration.fax", "unknown key"),
])
def test_bad_exploration_settings_name_file_and_key(table, key, words) -> None:
    with pytest.raises(ConfigError) as raised:
        ExplorationSettings.from_config({"exploration": table}, "ws/config.toml")
    assert raised.value.key == key
    assert words in str(raised.value)


def test_defaults_and_channel_overrides() -> None:
    settings = ArbitrationSettings.from_config({}, "<defaults>")
    assert (settings.propensity, settings.value, settings.priority, settings.relevance) == \
        (1.0, DEFAULT_VALUE_EXPONENT, 1.0, 1.0)
    off = ExplorationSettings.from_config({}, "<defaults>")
    assert off.for_channel("app") == ("adaptive", 0.0)
    assert off.strategy_keys() == []  # nothing to check when exploration is off
    on = ExplorationSettings.from_config({"exploration": {
        "share": 0.2, "hotline": {"share": 0}, "sms": {"strategy": "popularity"}}}, "c")
    assert on.for_channel("app") == ("adaptive", 0.2)
    assert on.for_channel("hotline") == ("adaptive", 0.0)
    assert on.for_channel("sms") == ("popularity", 0.2)
    assert set(on.strategy_keys()) == {("exploration.strategy", "adaptive"),
                                       ("exploration.sms.strategy", "popularity")}


def test_an_unknown_category_gets_a_did_you_mean(catalog: Catalog) -> None:
    with pytest.raises(ConfigError) as raised:
        arbiter(catalog, {"categories": {"hotline": {"dta": 1.2}}})
    assert raised.value.key == "arbitration.categories.hotline.dta"
    assert "did you mean 'data'?" in str(raised.value)


def test_the_engine_refuses_an_unknown_explorer_with_did_you_mean(
        sample_workspace: Workspace) -> None:
    config = Config.from_dict({"exploration": {"strategy": "adaptiv", "share": 0.2}},
                              source="ws/config.toml", root=sample_workspace.root)
    with pytest.raises(ConfigError) as raised:
        sample_workspace.engine(config=config)
    assert raised.value.key == "exploration.strategy"
    assert "did you mean 'adaptive'?" in str(raised.value)
    # A channel's own explorer is checked too; an explorer with no share is not.
    config = Config.from_dict({"exploration": {"share": 0.2, "web": {"strategy": "popularty"}}},
                              source="ws/config.toml", root=sample_workspace.root)
    with pytest.raises(ConfigError, match="exploration.web.strategy.*did you mean 'popularity'"):
        sample_workspace.engine(config=config)
    fine = Config.from_dict({"exploration": {"strategy": "nobody"}}, root=sample_workspace.root)
    sample_workspace.engine(config=fine).close()


def test_a_bad_arbitration_table_stops_the_engine(sample_workspace: Workspace) -> None:
    config = Config.from_dict({"arbitration": {"value": -1}}, source="ws/config.toml",
                              root=sample_workspace.root)
    with pytest.raises(ConfigError, match=r"ws/config.toml, arbitration.value"):
        sample_workspace.engine(config=config)


# --------------------------------------------------------------------------------------------
# Catalog fields: value, priority and its window
# --------------------------------------------------------------------------------------------

def product(**fields) -> dict:
    return {"id": "p1", "name": "P1", "category": "data", "price": 10, **fields}


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"value": -1}, "value", "non-negative"),
    ({"value": math.inf}, "value", "non-negative"),
    ({"value": "cheap"}, "value", "non-negative"),
    ({"priority": 0}, "priority", "above 0"),
    ({"priority": 1001}, "priority", "at most 1000"),
    ({"priority": True}, "priority", "above 0"),
    ({"priority": 2, "priority_start": "next week"}, "priority_start", "must be a date"),
    ({"priority": 2, "priority_end": 20261201}, "priority_end", "must be a date"),
    ({"priority_start": date(2026, 12, 1)}, "priority_start", "needs a priority"),
    ({"priority": 2, "priority_start": date(2026, 12, 2), "priority_end": date(2026, 12, 1)},
     "priority_end", "before priority_start"),
])
def test_bad_product_arbitration_fields_name_product_and_field(fields, field, words) -> None:
    with pytest.raises(CatalogError) as raised:
        Catalog.from_dict({"product": [product(**fields)]}, source="catalog.toml")
    assert raised.value.entry == "p1" and raised.value.field == field
    assert words in str(raised.value)


def test_product_arbitration_fields_round_trip() -> None:
    catalog = Catalog.from_dict({"product": [
        product(value=3.5, priority=2, priority_start=date(2026, 12, 1),
                priority_end="2026-12-31"),
        product(id="p2", priority=1.5, priority_start=datetime(2026, 12, 1, 8, 0)),
        product(id="p3", priority_start="2026-12-01", priority=1,
                priority_end="2026-12-01T18:00:00+08:00"),
        product(id="p4")]})
    p1, p2, p3, p4 = catalog.products
    assert p1.value == 3.5 and p1.priority == 2.0
    assert p1.priority_end == date(2026, 12, 31)
    assert product_to_dict(p1)["priority_start"] == "2026-12-01"
    assert product_to_dict(p2)["priority_start"] == "2026-12-01T08:00:00"
    assert "priority" in product_to_dict(p3)  # a window keeps its priority, even 1
    assert not {"value", "priority", "priority_start"} & set(product_to_dict(p4))
    assert Catalog.from_dict(catalog.to_dict()).products == catalog.products


# --------------------------------------------------------------------------------------------
# The formula
# --------------------------------------------------------------------------------------------

def test_value_factor_is_log_scaled_from_the_catalog_median(catalog: Catalog) -> None:
    a = arbiter(catalog)
    assert a.value_reference == 20.0  # the median positive price of orderable businesses
    factor = dict(zip(catalog.ids, a.value_factor, strict=True))
    assert factor["top_up"] == 1.0  # free: factor 1, never 0
    assert factor["video_membership"] == pytest.approx(1 + math.log(2))
    assert factor["data_daypass"] == pytest.approx(1 + math.log1p(5 / 20))
    assert factor["phone_purchase"] == pytest.approx(1 + math.log1p(2999 / 20))
    # 600 times the price is under 5 times the factor, and 1.4 times at the default exponent.
    ratio = factor["phone_purchase"] / factor["data_daypass"]
    assert 4 < ratio < 5
    assert ratio ** DEFAULT_VALUE_EXPONENT < 1.4
    assert np.all(np.diff(a.value_factor[np.argsort(a.values)]) >= 0)  # monotone in value
    fixed = arbiter(catalog, {"value_reference": 5})
    assert dict(zip(catalog.ids, fixed.value_factor, strict=True))["data_daypass"] == \
        pytest.approx(1 + math.log(2))


def test_a_value_field_overrides_the_price() -> None:
    catalog = Catalog.from_dict({"product": [
        product(id="cheap", price=1), product(id="margin", price=1, value=100),
        product(id="free", price=0)]})
    a = arbiter(catalog, {"value_reference": 1})
    assert list(a.values) == [1.0, 100.0, 0.0]
    assert a.value_factor[1] == pytest.approx(1 + math.log(101))


def test_components_multiply_with_their_exponents(catalog: Catalog) -> None:
    a = arbiter(catalog, {"propensity": 2, "value": 0.5, "relevance": 3,
                                 "categories": {"query": {"data": 1.5}, "app": {"data": 2}}})
    propensity = {"data_5gb": 0.8, "cloud_storage": 1.2}
    ranked, table = a.rank(context(), propensity, now=0)
    data = table["data_5gb"]
    assert data["propensity"] == 0.8
    assert data["value"] == pytest.approx(1 + math.log1p(30 / 20))
    assert data["priority"] == 1.0
    assert data["relevance"] == pytest.approx(3.0)  # moment x channel weights
    assert data["score"] == pytest.approx(0.8 ** 2 * data["value"] ** 0.5 * 3.0 ** 3)
    cloud = table["cloud_storage"]
    assert cloud["relevance"] == 1.0
    assert cloud["score"] == pytest.approx(1.2 ** 2 * cloud["value"] ** 0.5)
    assert ranked == ["data_5gb", "cloud_storage"]
    assert [table.score(p) for p in ranked] == [table[p]["score"] for p in ranked]
    with pytest.raises(KeyError):
        table.score("phone_purchase")  # not proposed: no score, as table[...] says
    # On another channel only the moment's weight applies.
    assert a.rank(context("web"), propensity, now=0)[1]["data_5gb"]["relevance"] == 1.5


def test_exponent_zero_switches_a_factor_off_and_value_zero_is_the_blend(
        catalog: Catalog) -> None:
    propensity = {"phone_purchase": 1.0, "data_daypass": 1.05, "top_up": 1.05, "caller_id": 0.2}
    plain = arbiter(catalog, {"value": 0})
    ranked, table = plain.rank(context(), propensity, now=0)
    assert ranked == ["data_daypass", "top_up", "phone_purchase", "caller_id"]  # ties by id
    assert all(table[p]["score"] == propensity[p] for p in propensity)
    valued = arbiter(catalog, {"value": 1})
    assert valued.rank(context(), propensity, now=0)[0][0] == "phone_purchase"


def test_a_priority_counts_only_within_its_window() -> None:
    catalog = Catalog.from_dict({"product": [
        product(id="campaign", priority=3, priority_start=date(2026, 12, 1),
                priority_end=date(2026, 12, 31)),
        product(id="steady")]})
    a = arbiter(catalog, {"value": 0})
    propensity = {"campaign": 0.5, "steady": 1.0}

    def order(when: datetime) -> list[str]:
        return a.rank(context(), propensity, now=when.timestamp())[0]

    assert order(datetime(2026, 11, 30, 23, 59, tzinfo=UTC)) == ["steady", "campaign"]
    assert order(datetime(2026, 12, 1, 0, 0, tzinfo=UTC)) == ["campaign", "steady"]
    assert order(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == ["campaign", "steady"]
    assert order(datetime(2027, 1, 1, 0, 0, tzinfo=UTC)) == ["steady", "campaign"]
    # Dates are days of the configured time zone: Shanghai's 1 December starts 8 h earlier.
    shanghai = arbiter(catalog, {"value": 0, "timezone": "Asia/Shanghai"})
    early = datetime(2026, 11, 30, 17, 0, tzinfo=UTC).timestamp()
    assert shanghai.rank(context(), propensity, now=early)[0] == ["campaign", "steady"]
    assert a.rank(context(), propensity, now=early)[0] == ["steady", "campaign"]
    # priority = 0 as an exponent ignores marketing's weights altogether.
    off = arbiter(catalog, {"value": 0, "priority": 0})
    inside = datetime(2026, 12, 15, tzinfo=UTC).timestamp()
    assert off.rank(context(), propensity, now=inside)[0] == ["steady", "campaign"]


def test_related_businesses_get_the_related_weight(catalog: Catalog) -> None:
    a = arbiter(catalog, {"value": 0, "related": 2})
    propensity = {"intl_data_daypass": 0.5, "intl_sms": 0.6, "data_5gb": 0.9,
                  "cloud_storage": 0.7}
    ranked, table = a.rank(context(moment="transaction", product="intl_roaming"), propensity,
                           now=0)
    # intl_data_daypass needs intl_roaming, intl_sms shares its category: both doubled.
    assert {p: table[p]["relevance"] for p in propensity} == {
        "intl_data_daypass": 2.0, "intl_sms": 2.0, "data_5gb": 1.0, "cloud_storage": 1.0}
    assert ranked == ["intl_sms", "intl_data_daypass", "data_5gb", "cloud_storage"]
    upgrade = a.rank(context(moment="transaction", product="data_1gb"),
                     {"data_20gb": 0.5, "cloud_storage": 0.7}, now=0)[1]
    assert upgrade["data_20gb"]["relevance"] == 2.0  # it upgrades the business acted on
    assert a.rank(context(), propensity, now=0)[1]["intl_sms"]["relevance"] == 1.0


# --------------------------------------------------------------------------------------------
# Through the engine: default ranking, debug components
# --------------------------------------------------------------------------------------------

def engine_with(ws: Workspace, raw: dict, plugins=()) -> Engine:
    """An engine over the sample workspace with ``raw`` as its configuration, and budgets a
    loaded test machine cannot overrun (these tests check rankings, not time)."""
    pm = make_plugin_manager(extra_plugins=list(plugins), load_entry_points=False)
    raw = {"engine": {"strategy_timeout_ms": 30_000, "context_timeout_ms": 30_000}, **raw}
    return ws.engine(plugin_manager=pm, config=Config.from_dict(raw, root=ws.root),
                     require_models=True)


def test_debug_components_are_present_and_consistent(engine: Engine) -> None:
    settings = engine.arbiter.settings
    checked = 0
    for request in generated_requests(engine, 300, seed=5):
        body = engine.recommend(replace(request, debug=True)
                                ).to_dict()
        scores = [s["score"] for s in body["suggestions"]]
        assert scores == sorted(scores, reverse=True)
        for s in body["suggestions"]:
            c = s["components"]
            assert set(c) == set(COMPONENTS) and s["slot"] == "ranked"
            assert c["value"] >= 1 and c["priority"] == 1 and c["relevance"] == 1
            expected = (c["propensity"] ** settings.propensity * c["value"] ** settings.value
                        * c["priority"] ** settings.priority
                        * c["relevance"] ** settings.relevance)
            assert s["score"] == pytest.approx(expected, rel=1e-5, abs=1e-6)
            checked += 1
        plain = engine.recommend(request).to_dict()
        assert all("components" not in s and "slot" not in s for s in plain["suggestions"])
    assert checked > 300


def test_value_zero_reproduces_the_blended_ranking(sample_workspace: Workspace) -> None:
    with engine_with(sample_workspace, {"arbitration": {"value": 0}}) as engine:
        for request in generated_requests(engine, 300, seed=9):
            result = engine.recommend(replace(request, debug=True))
            blended = [(-s.components["propensity"], s.product) for s in result.suggestions]
            assert blended == sorted(blended)
            assert all(s.score == s.components["propensity"] for s in result.suggestions)


def test_the_api_shows_components_in_debug(client) -> None:
    body = {"customer": {"id": "C0000744"}, "channel": "app", "moment": "query", "k": 3,
            "debug": True}
    response = client.post("/v1/recommendations", json=body)
    assert response.status_code == 200, response.get_json()
    for s in response.get_json()["suggestions"]:
        assert set(s["components"]) == set(COMPONENTS) and s["slot"] == "ranked"
    plain = client.post("/v1/recommendations", json={**body, "debug": False}).get_json()
    assert all("components" not in s for s in plain["suggestions"])
    spec = client.get("/openapi.json").get_json()["components"]["schemas"]
    assert {"components", "slot"} <= set(spec["Suggestion"]["properties"])
    assert {"value", "priority", "priority_start", "priority_end"} <= set(
        spec["Product"]["properties"])


# --------------------------------------------------------------------------------------------
# Exploration
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("share", "k"), [(0.2, 9), (0.2, 2), (0.5, 1), (0.25, 4), (1.0, 3),
                                          (0.33, 12)])
def test_reserved_slots_average_share_times_k(share: float, k: int) -> None:
    n = 20000
    counts = np.array([reserved_slots(share, k, f"req-{i}") for i in range(n)])
    low = math.floor(round(share * k, 9))
    assert set(counts.tolist()) <= {low, low + 1}
    # mean = share x k within 4.5 standard errors of a Bernoulli remainder
    remainder = share * k - low
    error = math.sqrt(remainder * (1 - remainder) / n) * 4.5 + 1e-9
    assert abs(counts.mean() - share * k) <= error
    again = [reserved_slots(share, k, f"req-{i}") for i in range(200)]
    assert again == counts[:200].tolist()  # reproducible per request id


def test_reserved_slots_edges() -> None:
    assert reserved_slots(0, 9, "x") == 0
    assert reserved_slots(1, 9, "x") == 9
    assert reserved_slots(0.2, 0, "x") == 0
    assert reserved_slots(0.2, 5, "x") == 1  # exactly 1: no draw
    assert 0 <= uniform("a") < 1 and uniform("a") == uniform("a") != uniform("b")


def exploring_engine(ws: Workspace, share: float, explorer_picks, *, weight: float = 0.0,
                     extra: dict | None = None) -> Engine:
    ranked = FixedStrategy("ranked", [(p, 1.0 - i / 20) for i, p in enumerate(
        ["music_membership", "cloud_storage", "video_membership", "data_1gb", "caller_id",
         "ringback_tone", "intl_sms", "one_card_two_numbers", "top_up"])], "blend")
    explorer = FixedStrategy("explorer", explorer_picks, "being tried out")
    blend = {"ranked": 1.0, **({"explorer": weight} if weight else {})}
    raw = {"blend": {"query": blend}, "arbitration": {"value": 0},
           "exploration": {"strategy": "explorer", "share": share, **(extra or {})}}
    return engine_with(ws, raw, [("fixed", StrategyPlugin(ranked, explorer))])


def a_customer(engine: Engine) -> str:
    return engine.store.db.execute(
        "SELECT t.customer_id FROM terminals t JOIN customers c ON c.id = t.customer_id "
        "WHERE t.network = '5G' AND t.smartphone = 1 AND t.os IS NOT NULL "
        "AND c.value_tier != 'low' ORDER BY t.customer_id LIMIT 1").fetchone()[0]


def test_exploration_slots_follow_the_ranked_ones(sample_workspace: Workspace) -> None:
    picks = [("music_membership", 0.9), ("family_share", 0.8), ("data_5gb", 0.7),
             ("intl_roaming", 0.6), ("plan_5g_newsim", 0.5), ("intl_ld", 0.4)]
    with exploring_engine(sample_workspace, 0.3, picks) as engine:
        customer = a_customer(engine)
        reserved = explored = 0
        for i in range(40):
            request = RecommendationRequest(customer, "wechat", "query", debug=True,
                                            request_id=f"req-{i}")
            codes = engine.eligibility(engine.build_context(request)[0])
            eligible = {p for p, _ in picks if codes[engine.catalog.index[p]] == 0}
            result = engine.recommend(request)
            r = reserved_slots(0.3, 4, f"req-{i}")  # 1.2: 1 or 2
            reserved += r
            head = [s.product for s in result.suggestions[:4 - r]]
            # The explorer's best eligible picks, in its order, skipping what the ranking
            # already has; slots it cannot fill go back to the ranking.
            expected = [p for p, _ in picks if p not in head and p in eligible][:r]
            slots = [s.slot for s in result.suggestions]
            assert slots == ["ranked"] * (4 - r) + ["explore"] * len(expected) + \
                ["ranked"] * (r - len(expected))
            assert [s.product for s in result.suggestions if s.slot == "explore"] == expected
            for s in result.suggestions:
                if s.slot == "explore":
                    assert s.strategies[0] == "explorer"
                    assert s.reasons[0] == "being tried out"
            # Weight 0 in the blend: it ran, but for these slots only, adding no propensity.
            assert "explorer" in result.timings
            for s in result.suggestions:
                if s.slot == "explore" and s.product not in ("music_membership", "caller_id"):
                    assert s.components["propensity"] == 0 and s.score == 0
            explored += len(expected)
        assert 40 < reserved < 80 and explored > 10


def test_exploration_never_offers_what_the_customer_cannot_take(
        sample_workspace: Workspace) -> None:
    with engine_with(sample_workspace, {}) as probe:
        customer = a_customer(probe)
        held = sorted(probe.store.holdings(customer))
    pushy = [(held[0], 5.0), ("bill_query", 4.0), ("no_such_business", 3.0),
             ("plan_5g_newsim", 2.0), ("broadband_speedup", 1.0), ("cloud_storage", 0.5)]
    with exploring_engine(sample_workspace, 1.0, pushy) as engine:
        result = engine.recommend(RecommendationRequest(customer, "hotline", "query",
                                                        debug=True, request_id="x"))
        shown = [s.product for s in result.suggestions]
        assert held[0] not in shown and "bill_query" not in shown
        assert "broadband_speedup" not in shown  # needs broadband
        reasons = {e.product: e.code for e in result.excluded}
        assert reasons[held[0]] == "held" and reasons["bill_query"] == "not_orderable"
        assert any(e["strategy"] == "explorer" and e["stage"] == "garbage"
                   for e in result.to_dict()["errors"])


def test_exploration_with_adaptive_keeps_the_eligibility_invariant(
        sample_workspace: Workspace) -> None:
    raw = {"exploration": {"share": 0.4}}
    with engine_with(sample_workspace, raw) as engine:
        explored = checked = 0
        for request in generated_requests(engine, 1500, seed=23):
            result = engine.recommend(replace(request, debug=True))
            customer = engine.store.customer(request.customer_id)
            terminal = engine.store.terminal(request.customer_id)
            products = [s.product for s in result.suggestions]
            assert len(set(products)) == len(products)
            moment = "failure" if result.check is not None and not result.check.will_succeed \
                else request.moment  # an order that will fail is answered as after it
            for s in result.suggestions:
                assert not violations(engine.catalog, customer, terminal, request.channel,
                                      moment, request.product, s.product,
                                      None if s.handoff is None else s.handoff.channel)
                explored += s.slot == "explore"
                checked += 1
            assert not result.errors
        assert explored > 300 and checked > explored


def test_exploration_share_over_many_requests(sample_workspace: Workspace) -> None:
    raw = {"exploration": {"share": 0.2, "hotline": {"share": 0}}}
    with engine_with(sample_workspace, raw) as engine:
        customers = engine.store.customer_ids()[:400]
        explored = slots = 0
        for i, customer in enumerate(customers):
            result = engine.recommend(RecommendationRequest(
                customer, "app", "success", product="data_1gb", debug=True,
                request_id=f"share-{i}"))
            explored += sum(s.slot == "explore" for s in result.suggestions)
            slots += 9
            hotline = engine.recommend(RecommendationRequest(
                customer, "hotline", "success", product="data_1gb", debug=True,
                request_id=f"share-{i}"))
            assert all(s.slot == "ranked" for s in hotline.suggestions)
            assert "adaptive" not in hotline.timings  # off on the hotline: not even run
        # floor(0.2 x 9) = 1 slot, plus one with probability 0.8: 2.8 of 9 on average.
        assert explored / len(customers) == pytest.approx(1.8, abs=0.15)
        assert 0.17 < explored / slots < 0.23


def test_exploration_off_leaves_the_explorer_out(sample_workspace: Workspace) -> None:
    with engine_with(sample_workspace, {}) as engine:
        customer = a_customer(engine)
        result = engine.recommend(RecommendationRequest(customer, "app", "query", debug=True))
        assert "adaptive" not in result.timings
        assert all(s.slot == "ranked" for s in result.suggestions)


def test_an_explorer_in_the_blend_also_fills_its_slots(sample_workspace: Workspace) -> None:
    picks = [("family_share", 0.9), ("data_5gb", 0.8), ("data_daypass", 0.7)]
    with exploring_engine(sample_workspace, 1.0, picks, weight=0.1) as engine:
        customer = a_customer(engine)
        request = RecommendationRequest(customer, "sms", "query", debug=True, request_id="y")
        codes = engine.eligibility(engine.build_context(request)[0])
        first = next(p for p, _ in picks if codes[engine.catalog.index[p]] == 0)
        [only] = engine.recommend(request).suggestions  # one slot, explored
        assert only.product == first and only.slot == "explore"
        assert only.components["propensity"] > 0  # it is in the blend too
        assert only.strategies == ("explorer",)


def test_contexts_without_request_id_are_seeded_by_their_content() -> None:
    from recommender.arbitration import seed_of

    a = context(request_id="")
    assert seed_of(a) == "C1|app|query|"
    assert seed_of(context(request_id="abc")) == "abc"
