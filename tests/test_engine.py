"""The engine's path: context, isolation of strategies, merging, eligibility and the response."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from recommender import (
    CHANNEL_IDS,
    Candidate,
    Config,
    ContextError,
    Customer,
    Engine,
    Exclusion,
    Ineligible,
    Moment,
    RecommendationRequest,
    Strategy,
    UnknownCustomerError,
    UnknownProductError,
    does_not_block,
    hookimpl,
)
from recommender.plugin_manager import make_plugin_manager
from recommender.workspace import Workspace

# --------------------------------------------------------------------------------------------
# The eligibility invariant, over thousands of generated requests
# --------------------------------------------------------------------------------------------


def violations(catalog, customer: Customer, terminal, channel: str, moment: str,
               product: str | None, suggested: str, handoff: str | None = None) -> list[str]:
    """Everything wrong with suggesting ``suggested``, checked product by product in Python.

    While ordering and after a success, the business being ordered counts as held. A business
    the calling channel cannot transact is right only on a channel that allows hand-offs
    (the hotline and SMS by default), handed off to a channel that can (``handoff``).
    """
    p = catalog[suggested]
    held = customer.holdings
    if moment in ("transaction", "success") and product is not None:
        held = held | {product}
    e = p.eligibility
    wrong = []
    if not p.orderable:
        wrong.append("query service suggested")
    if suggested == product:
        wrong.append("the current business suggested")
    if suggested in held:
        wrong.append("already held")
    if any((suggested in catalog[h].conflicts or h in p.conflicts) and h not in p.upgrades
           for h in held):
        wrong.append("conflicts with a holding")
    if not p.requires <= held or (p.requires_any and not p.requires_any & held):
        wrong.append("missing prerequisite")
    if any(suggested in catalog[h].upgrades for h in held):
        wrong.append("customer holds its upgrade")
    if e.min_network is not None and int(terminal.network.value[0]) < int(e.min_network[0]):
        wrong.append("terminal network too old")
    if e.smartphone and not terminal.smartphone:
        wrong.append("needs a smartphone")
    if e.os and terminal.os not in e.os:
        wrong.append("wrong OS")
    if channel not in p.channels and (channel not in ("hotline", "sms") or handoff is None):
        wrong.append("not transactable on the channel")
    if handoff is not None and (channel in p.channels or handoff not in p.channels):
        wrong.append("hand-off to a channel that cannot transact it")
    if e.value_tiers and customer.value_tier not in e.value_tiers:
        wrong.append("value tier")
    if e.personas and customer.persona not in e.personas:
        wrong.append("persona")
    if e.lifecycles and customer.lifecycle not in e.lifecycles:
        wrong.append("lifecycle")
    if customer.tenure_months < e.min_tenure_months:
        wrong.append("tenure")
    return wrong


def generated_requests(engine: Engine, n: int, seed: int) -> Iterator[RecommendationRequest]:
    rng = np.random.default_rng(seed)
    customers = engine.store.customer_ids()
    businesses = [p.id for p in engine.catalog if p.orderable]
    queries = [p.id for p in engine.catalog if not p.orderable]
    for _ in range(n):
        moment = rng.choice([m.value for m in Moment])
        product = None
        if moment == "query":
            product = str(rng.choice(queries)) if rng.random() < 0.8 else None
        elif moment in ("transaction", "failure", "success"):
            product = str(rng.choice(businesses))
        yield RecommendationRequest(
            customer_id=str(rng.choice(customers)), channel=str(rng.choice(CHANNEL_IDS)),
            moment=str(moment), product=product,
            k=None if rng.random() < 0.5 else int(rng.integers(1, 15)))


def test_no_suggestion_is_one_the_customer_cannot_take(engine: Engine) -> None:
    checked = timeouts = 0
    for request in generated_requests(engine, 4000, seed=11):
        result = engine.recommend(request)
        customer = engine.store.customer(request.customer_id)
        terminal = engine.store.terminal(request.customer_id)
        limit = engine.config.slots[request.channel]
        if request.k is not None:
            limit = min(limit, request.k)
        assert len(result.suggestions) <= limit, request
        products = [s.product for s in result.suggestions]
        assert len(set(products)) == len(products), request
        # An order the pre-order check says will fail is answered as after the failure.
        moment = "failure" if result.check is not None and not result.check.will_succeed \
            else request.moment
        for s in result.suggestions:
            wrong = violations(engine.catalog, customer, terminal, request.channel, moment,
                               request.product, s.product,
                               None if s.handoff is None else s.handoff.channel)
            assert not wrong, (request, s.product, wrong)
            assert s.order_channels == tuple(c for c in CHANNEL_IDS
                                             if c in engine.catalog[s.product].channels)
            checked += 1
        # Every strategy answered (a rare timeout is the machine's load, not a fault).
        assert all(e["stage"] == "timeout" for e in result.errors), result.errors
        timeouts += len(result.errors)
    assert checked > 5000  # the invariant was exercised, not vacuously true
    assert timeouts < 40


def test_feature_phone_and_4g_customers_get_nothing_they_cannot_use(engine: Engine) -> None:
    db = engine.store.db
    feature = [r[0] for r in db.execute(
        "SELECT customer_id FROM terminals WHERE smartphone = 0 LIMIT 50")]
    four_g = [r[0] for r in db.execute(
        "SELECT customer_id FROM terminals WHERE network = '4G' LIMIT 50")]
    assert feature and four_g
    suggested = 0
    for customer_id in feature + four_g:
        for channel in CHANNEL_IDS:
            result = engine.recommend(RecommendationRequest(customer_id, channel, "query"))
            for s in result.suggestions:
                e = engine.catalog[s.product].eligibility
                assert e.min_network is None or customer_id not in four_g or \
                    e.min_network.value != "5G"
                assert not (e.smartphone and customer_id in feature)
                suggested += 1
    assert suggested > 0


def test_debug_lists_exclusions_with_reasons_and_timings(engine: Engine) -> None:
    customer_id = engine.store.db.execute(
        "SELECT customer_id FROM terminals WHERE network = '4G' AND smartphone = 1 LIMIT 1"
    ).fetchone()[0]
    request = RecommendationRequest(customer_id, "app", "query", debug=True)
    body = engine.recommend(request).to_dict()
    assert set(body) >= {"request_id", "model_version", "moment", "channel", "suggestions",
                         "excluded", "timings", "errors"}
    assert body["model_version"] != "untrained"
    assert {"context", "eligibility", "total", "popularity"} <= set(body["timings"])
    for item in body["excluded"]:
        assert set(item) == {"product", "reason", "detail"} and item["detail"]
    codes = {e.code for e in Exclusion} | {"eligibility_check_failed"}
    assert body["excluded"] and {item["reason"] for item in body["excluded"]} <= codes
    plain = engine.recommend(RecommendationRequest(customer_id, "app", "query")).to_dict()
    assert "excluded" not in plain and "timings" not in plain
    for s in plain["suggestions"]:
        assert set(s) == {"product", "name", "kind", "score", "strategies", "reasons",
                          "order_channels", "handoff"}
        assert s["handoff"] is None  # the app transacts what it shows
        assert len(s["strategies"]) == len(s["reasons"]) >= 1


def test_inline_customer_attributes_override_the_store(engine: Engine) -> None:
    customer_id = engine.store.customer_ids(limit=1)[0]
    request = RecommendationRequest(
        customer_id, "app", "success", product="intl_roaming",
        customer={"holdings": ["plan_4g", "intl_roaming"], "value_tier": "high"},
        terminal={"network": "5G", "smartphone": True}, debug=True)
    context, _ = engine.build_context(request)
    assert context.customer.holdings == {"plan_4g", "intl_roaming"}
    assert context.customer.value_tier == "high"
    assert context.terminal.network == "5G"
    result = engine.recommend(request)
    assert all(s.product not in {"plan_4g", "intl_roaming"} for s in result.suggestions)


def test_unknown_customer_with_inline_attributes_is_served(engine: Engine) -> None:
    request = RecommendationRequest(
        "walk-in-1", "store", "query",
        customer={"value_tier": "mid", "holdings": ["plan_4g"]},
        terminal={"network": "4G", "smartphone": True, "os": "android"})
    result = engine.recommend(request)
    assert result.suggestions


@pytest.mark.parametrize(
    ("request_kwargs", "error", "field"),
    [
        (dict(channel="fax"), ContextError, "channel"),
        (dict(moment="lunch"), ContextError, "moment"),
        (dict(customer_id="no-such-customer"), UnknownCustomerError, None),
        (dict(customer_id=""), ContextError, "customer.id"),
        (dict(moment="transaction", product="no_such_business"), UnknownProductError, "product"),
        (dict(moment="transaction"), ContextError, "product"),
        (dict(moment="query", failure_reason="conflict"), ContextError, "failure_reason"),
        (dict(moment="failure", product="plan_5g", failure_reason="bad luck"), ContextError,
         "failure_reason"),
        (dict(k=0), ContextError, "k"),
        (dict(customer={"holdings": ["no_such_business"]}), UnknownProductError,
         "customer.holdings"),
        (dict(customer={"value_tier": "platinum"}), ContextError, "customer.value_tier"),
        (dict(customer={"shoe_size": 42}), ContextError, "customer.shoe_size"),
        (dict(terminal={"network": "6G"}), ContextError, "terminal.network"),
        (dict(terminal={"smartphone": "yes"}), ContextError, "terminal.smartphone"),
    ],
)
def test_bad_requests_name_the_field(engine: Engine, request_kwargs, error, field) -> None:
    base = dict(customer_id=engine.store.customer_ids(limit=1)[0], channel="app",
                moment="query")
    base.update(request_kwargs)
    with pytest.raises(error) as info:
        engine.recommend(RecommendationRequest(**base))
    if field is not None:
        assert getattr(info.value, "field", None) == field, str(info.value)


# --------------------------------------------------------------------------------------------
# Isolation: faulty strategies and plugins never take the request down
# --------------------------------------------------------------------------------------------


class FixedStrategy(Strategy):
    """Proposes a fixed list of (product, score) pairs."""

    def __init__(self, name: str, picks: list[tuple[str, float]], reason: str = "fixed"):
        self.name = name  # type: ignore[misc]
        self.picks = picks
        self.reason = reason

    def candidates(self, context, n):
        return [Candidate(p, s, self.reason) for p, s in self.picks][:n]


class RaisingStrategy(Strategy):
    name = "raising"

    def candidates(self, context, n):
        raise RuntimeError("model file vanished")


class SleepingStrategy(Strategy):
    name = "sleeping"

    def candidates(self, context, n):
        time.sleep(1.0)
        return [Candidate("data_1gb", 1.0, "late")]


class GarbageStrategy(Strategy):
    name = "garbage"

    def candidates(self, context, n):
        nan = Candidate.__new__(Candidate)
        object.__setattr__(nan, "product", "data_5gb")
        object.__setattr__(nan, "score", math.nan)
        object.__setattr__(nan, "_reason", "nan")
        return ["data_20gb", ("cloud_storage", 1.0), nan,
                Candidate("no_such_business", 1.0, "unknown"),
                Candidate("music_membership", 0.5, "dup low"),
                Candidate("music_membership", 0.9, "dup high")]


class StrategyPlugin:
    def __init__(self, *strategies: Strategy):
        self.strategies = strategies

    @hookimpl
    def register_strategies(self):
        return list(self.strategies)


def engine_with(ws: Workspace, plugins: list[tuple[str, object]], blend: dict,
                **engine_settings) -> Engine:
    config = Config.from_dict({"blend": blend, "engine": engine_settings},
                              root=ws.root)
    pm = make_plugin_manager(extra_plugins=plugins, load_entry_points=False)
    return ws.engine(plugin_manager=pm, config=config, require_models=True)


def a_smartphone_customer(engine: Engine) -> str:
    return engine.store.db.execute(
        "SELECT t.customer_id FROM terminals t JOIN customers c ON c.id = t.customer_id "
        "WHERE t.network = '5G' AND t.smartphone = 1 AND c.value_tier != 'low' "
        "ORDER BY t.customer_id LIMIT 1").fetchone()[0]


def test_raising_slow_and_garbage_strategies_leave_the_response_intact(
        sample_workspace: Workspace) -> None:
    good = FixedStrategy("good", [("music_membership", 1.0), ("cloud_storage", 0.5)])
    plugin = StrategyPlugin(good, RaisingStrategy(), SleepingStrategy(), GarbageStrategy())
    blend = {"success": {"good": 1.0, "raising": 1.0, "sleeping": 1.0, "garbage": 1.0}}
    with engine_with(sample_workspace, [("faulty", plugin)], blend,
                     strategy_timeout_ms=100) as engine:
        customer_id = a_smartphone_customer(engine)
        started = time.perf_counter()
        result = engine.recommend(RecommendationRequest(
            customer_id, "app", "success", product="data_1gb", debug=True))
        elapsed = time.perf_counter() - started
        assert elapsed < 0.9  # returned without waiting for the 1 s sleeper
        errors = {e["strategy"]: e for e in result.errors}
        assert errors["raising"]["stage"] == "strategy"
        assert "model file vanished" in errors["raising"]["error"]
        assert errors["sleeping"]["stage"] == "timeout"
        assert errors["garbage"]["stage"] == "garbage"
        assert "4 invalid" in errors["garbage"]["error"]  # str, tuple, NaN, unknown id
        products = [s.product for s in result.suggestions]
        assert "music_membership" in products
        assert "no_such_business" not in products and "data_5gb" not in products
        merged = next(s for s in result.suggestions if s.product == "music_membership")
        # Proposed by both "good" and "garbage": both reasons kept, the duplicate merged once.
        assert set(merged.strategies) == {"good", "garbage"}
        assert "dup high" in merged.reasons
        assert engine.fault_counts[("raising", "strategy")] == 1
        assert engine.fault_counts[("sleeping", "timeout")] == 1


def test_a_strategy_still_stuck_is_skipped_not_queued(sample_workspace: Workspace) -> None:
    plugin = StrategyPlugin(SleepingStrategy(), FixedStrategy("good", [("cloud_storage", 1)]))
    with engine_with(sample_workspace, [("slow", plugin)],
                     {"query": {"sleeping": 1.0, "good": 1.0}},
                     strategy_timeout_ms=20) as engine:
        customer_id = a_smartphone_customer(engine)
        stages = []
        for _ in range(4):
            result = engine.recommend(RecommendationRequest(customer_id, "app", "query",
                                                            debug=True))
            stages.append(result.errors[0]["error"])
            assert [s.product for s in result.suggestions] == ["cloud_storage"]
        assert stages[-1].startswith("skipped: 2 earlier calls still running")


def test_ineligible_candidates_from_a_strategy_are_removed(sample_workspace: Workspace) -> None:
    with engine_with(sample_workspace, [], {"query": {"popularity": 1.0}}) as engine:
        customer_id = a_smartphone_customer(engine)
        held = sorted(engine.store.holdings(customer_id))
    pushy = FixedStrategy("pushy", [(held[0], 9.0), ("bill_query", 8.0), ("cloud_storage", 1.0)])
    with engine_with(sample_workspace, [("pushy", StrategyPlugin(pushy))],
                     {"query": {"pushy": 1.0}}) as engine:
        result = engine.recommend(RecommendationRequest(customer_id, "app", "query",
                                                        debug=True))
        assert [s.product for s in result.suggestions] == ["cloud_storage"]
        reasons = {e.product: e.code for e in result.excluded}
        assert reasons == {held[0]: "held", "bill_query": "not_orderable"}


def test_weights_follow_moment_and_channel_override(sample_workspace: Workspace) -> None:
    a = FixedStrategy("a", [("music_membership", 1.0)], "from a")
    b = FixedStrategy("b", [("cloud_storage", 1.0)], "from b")
    blend = {"query": {"a": 2.0, "b": 1.0, "web": {"a": 1.0, "b": 3.0}}}
    with engine_with(sample_workspace, [("ab", StrategyPlugin(a, b))], blend) as engine:
        customer_id = a_smartphone_customer(engine)
        app = engine.recommend(RecommendationRequest(customer_id, "app", "query"))
        web = engine.recommend(RecommendationRequest(customer_id, "web", "query"))
        assert [s.product for s in app.suggestions] == ["music_membership", "cloud_storage"]
        assert [s.product for s in web.suggestions] == ["cloud_storage", "music_membership"]
        # The blended 3.0, times the business's value factor under the default arbitration.
        value = engine.arbiter.value_factor[engine.catalog.index["cloud_storage"]]
        assert web.suggestions[0].score == pytest.approx(
            3.0 * value ** engine.arbiter.settings.value)
        # A strategy given no weight for a moment does not run.
        success = engine.recommend(RecommendationRequest(customer_id, "app", "success",
                                                         product="data_1gb", debug=True))
        assert "a" not in success.timings and "b" not in success.timings
        assert all("a" not in s.strategies for s in success.suggestions)


class FailingProviders:
    @hookimpl
    def load_customer(self, customer_id):
        raise ConnectionError("CRM down")

    @hookimpl
    def extra_context(self, context):
        raise KeyError("campaign flag")


def test_a_failing_context_provider_degrades_with_a_warning(sample_workspace: Workspace) -> None:
    with engine_with(sample_workspace, [("crm", FailingProviders())],
                     {"query": {"popularity": 1.0}}) as engine:
        customer_id = a_smartphone_customer(engine)
        result = engine.recommend(RecommendationRequest(customer_id, "app", "query"))
        assert result.suggestions  # the store provider still answered
        assert any("'crm' failed" in w for w in result.warnings)
        assert engine.fault_counts[("crm", "context")] == 2


class HangingProvider:
    def __init__(self, seconds: float):
        self.seconds = seconds

    @hookimpl(tryfirst=True)
    def load_customer(self, customer_id):
        time.sleep(self.seconds)


def test_a_hanging_context_provider_is_cut_off_and_named(sample_workspace: Workspace) -> None:
    with engine_with(sample_workspace, [("slow-crm", HangingProvider(0.5))],
                     {"query": {"popularity": 1.0}}, context_timeout_ms=50) as engine:
        started = time.perf_counter()
        result = engine.recommend(RecommendationRequest(
            "C0000001", "app", "query", customer={"holdings": ["plan_4g"]}, debug=True))
        assert time.perf_counter() - started < 0.4  # did not wait for the 0.5 s provider
        assert "context provider 'slow-crm' timed out" in result.warnings[0]
        assert result.suggestions and "plan_4g" not in [s.product for s in result.suggestions]
        assert engine.fault_counts[("slow-crm", "context_timeout")] == 1
        # Without inline attributes the customer is served with defaults, not refused.
        bare = engine.recommend(RecommendationRequest("C0000001", "app", "query"))
        assert bare.suggestions
        assert any("profile unavailable" in w or "skipped" in w for w in bare.warnings)


class BrokenEligibility:
    @hookimpl
    def check_eligibility(self, products):
        raise RuntimeError("credit service timeout")


def test_a_failing_eligibility_plugin_fails_closed(sample_workspace: Workspace) -> None:
    with engine_with(sample_workspace, [("credit", BrokenEligibility())],
                     {"query": {"popularity": 1.0}}) as engine:
        customer_id = a_smartphone_customer(engine)
        result = engine.recommend(RecommendationRequest(customer_id, "app", "query",
                                                        debug=True))
        assert result.suggestions == ()
        assert {e.code for e in result.excluded} == {"eligibility_check_failed"}
        assert any(e["strategy"] == "credit" for e in result.errors)


class Blacklist:
    @hookimpl
    def check_eligibility(self, context, products):
        return [Ineligible(p, "blacklisted", "marketing opt-out") for p in products
                if p == "cloud_storage"]


def test_a_plugin_eligibility_check_applies(sample_workspace: Workspace) -> None:
    pick = FixedStrategy("pick", [("cloud_storage", 1.0), ("music_membership", 0.5)])
    with engine_with(sample_workspace, [("bl", Blacklist()), ("pick", StrategyPlugin(pick))],
                     {"query": {"pick": 1.0}}) as engine:
        customer_id = a_smartphone_customer(engine)
        result = engine.recommend(RecommendationRequest(customer_id, "app", "query",
                                                        debug=True))
        assert [s.product for s in result.suggestions] == ["music_membership"]
        assert ("cloud_storage", "blacklisted") in {(e.product, e.code) for e in result.excluded}


def test_explain_failure_names_the_missing_condition(engine: Engine) -> None:
    customer_id = engine.store.db.execute(
        "SELECT customer_id FROM terminals WHERE network = '4G' LIMIT 1").fetchone()[0]
    context, _ = engine.build_context(RecommendationRequest(
        customer_id, "app", "failure", product="upgrade_5g", failure_reason="not_eligible"))
    why = engine.explain_failure(context)
    assert why is not None and why.code == "terminal_network" and "5G" in why.detail


@pytest.mark.parametrize(("moment", "expected"), [
    ("transaction", ["broadband_speedup"]),   # ordered with the line it needs
    ("success", ["broadband_speedup"]),       # the line is now held
    ("failure", []),                          # the line was not installed after all
])
def test_the_business_being_ordered_counts_as_held(sample_workspace: Workspace, moment: str,
                                                   expected: list[str]) -> None:
    pick = FixedStrategy("pick", [("broadband_speedup", 1.0)])
    with engine_with(sample_workspace, [("pick", StrategyPlugin(pick))],
                     {moment: {"pick": 1.0}}) as engine:
        customer_id = engine.store.db.execute(
            "SELECT id FROM customers c WHERE NOT EXISTS (SELECT 1 FROM holdings h WHERE "
            "h.customer_id = c.id AND h.product_id LIKE 'broadband%') LIMIT 1").fetchone()[0]
        result = engine.recommend(RecommendationRequest(
            customer_id, "web", moment, product="broadband", debug=True,
            failure_reason="other" if moment == "failure" else None))
        assert [s.product for s in result.suggestions] == expected
        if not expected:
            assert [(e.product, e.code) for e in result.excluded] == \
                [("broadband_speedup", "missing_prerequisite")]


def test_a_failure_response_says_why_the_order_failed(engine: Engine) -> None:
    customer_id = engine.store.db.execute(
        "SELECT t.customer_id FROM terminals t JOIN holdings h ON h.customer_id = t.customer_id "
        "WHERE t.network = '4G' AND h.product_id = 'plan_4g' LIMIT 1").fetchone()[0]
    body = engine.recommend(RecommendationRequest(
        customer_id, "web", "failure", product="plan_5g", failure_reason="not_eligible")
    ).to_dict()
    assert body["explanation"]["product"] == "plan_5g"
    # plan_5g upgrades (replaces) the held 4G plan, so the phone is what stops it.
    assert body["explanation"]["reason"] == "terminal_network"
    assert "5G" in body["explanation"]["detail"]
    ok = engine.recommend(RecommendationRequest(customer_id, "web", "success",
                                                product="data_1gb")).to_dict()
    assert "explanation" not in ok


# --------------------------------------------------------------------------------------------
# The shared task: fast strategies run together; one that turns slow is cut off and isolated
# --------------------------------------------------------------------------------------------


class TurningStrategy(Strategy):
    """Fast until ``hang`` is set, then sleeps ``seconds`` per call."""

    def __init__(self, name: str, product: str, seconds: float = 1.0):
        self.name = name  # type: ignore[misc]
        self.product, self.seconds = product, seconds
        self.hang = False

    def candidates(self, context, n):
        if self.hang:
            time.sleep(self.seconds)
        return [Candidate(self.product, 1.0, f"{self.name} says so")]


def warm(engine: Engine, request: RecommendationRequest, calls: int) -> None:
    for _ in range(calls):
        assert not engine.recommend(request).errors


@contextmanager
def computing(ws: Workspace, strategy: object, *, timeout_ms: int, debug: bool = True
              ) -> Iterator[tuple[Engine, RecommendationRequest]]:
    """An engine blending the one query strategy ``computes`` (fast_strategy_ms 50), and a
    smartphone customer's query for it."""
    with engine_with(ws, [("threads", StrategyPlugin(strategy))], {"query": {"computes": 1.0}},
                     strategy_timeout_ms=timeout_ms, fast_strategy_ms=50) as engine:
        yield engine, RecommendationRequest(a_smartphone_customer(engine), "app", "query",
                                            debug=debug)


@pytest.mark.parametrize("fast_ms", [5.0, 0.0])
def test_a_fast_strategy_that_starts_hanging_is_cut_off_then_isolated(
        sample_workspace: Workspace, fast_ms: float) -> None:
    from recommender.engine import FAST_RECORD

    first = TurningStrategy("first", "cloud_storage")
    second = TurningStrategy("second", "music_membership")
    blend = {"query": {"first": 1.0, "second": 1.0}}
    with engine_with(sample_workspace, [("turning", StrategyPlugin(first, second))], blend,
                     strategy_timeout_ms=100, fast_strategy_ms=fast_ms) as engine:
        request = RecommendationRequest(a_smartphone_customer(engine), "app", "query",
                                        debug=True)
        warm(engine, request, FAST_RECORD + 1)
        first.hang = True
        started = time.perf_counter()
        cut = engine.recommend(request)
        assert time.perf_counter() - started < 0.9  # the budget, not the 1 s sleep
        errors = {e["strategy"]: (e["stage"], e["error"]) for e in cut.errors}
        assert errors["first"][0] == "timeout"
        if fast_ms:  # both were in the shared task: the second never started, blameless
            assert errors["second"] == ("skipped", "not run: 'first' held the shared task "
                                                   "past the 100 ms budget")
            assert ("second", "skipped") not in engine.fault_counts
        else:  # every call in a task of its own: the second is untouched
            assert "second" not in errors
            assert [s.product for s in cut.suggestions] == ["music_membership"]
        # The next request runs the first on its own: the second answers again.
        after = engine.recommend(request)
        assert [e["strategy"] for e in after.errors] == ["first"]
        assert [s.product for s in after.suggestions] == ["music_membership"]
        # Two calls still hanging: the third is skipped, and that is reported too.
        skipped = engine.recommend(request)
        assert skipped.errors[0]["stage"] == "skipped"
        assert skipped.errors[0]["error"].startswith("skipped: 2 earlier calls still running")
        assert engine.fault_counts[("first", "skipped")] == 1
        assert engine.fault_counts[("first", "timeout")] == 2


def test_a_strategy_that_recovers_rejoins_the_shared_task(sample_workspace: Workspace) -> None:
    from recommender.engine import FAST_RECORD

    slow = TurningStrategy("slow", "cloud_storage", seconds=0.03)
    blend = {"query": {"slow": 1.0}}
    with engine_with(sample_workspace, [("turning", StrategyPlugin(slow))], blend,
                     strategy_timeout_ms=500) as engine:
        request = RecommendationRequest(a_smartphone_customer(engine), "app", "query")
        warm(engine, request, FAST_RECORD)
        assert engine._partition(["slow"])[1] == ["slow"]
        slow.hang = True  # 30 ms: within the budget, but over fast_strategy_ms
        assert not engine.recommend(request).errors
        assert engine._partition(["slow"])[2] == ["slow"]  # its own task from now on
        slow.hang = False
        warm(engine, request, FAST_RECORD - 1)
        assert engine._partition(["slow"])[2] == ["slow"]
        warm(engine, request, 1)
        assert engine._partition(["slow"])[1] == ["slow"]


def test_a_failing_context_provider_stops_the_strategies_it_would_have_run(
        sample_workspace: Workspace) -> None:
    """Gathering the context and the shared task are one pool task: when the providers
    fail, no strategy of that request runs."""
    from recommender.engine import FAST_RECORD

    calls = TurningStrategy("counted", "cloud_storage")
    seen = []
    original = calls.candidates
    calls.candidates = lambda context, n: seen.append(1) or original(context, n)  # type: ignore[method-assign]
    with engine_with(sample_workspace, [("turning", StrategyPlugin(calls))],
                     {"query": {"counted": 1.0}}) as engine:
        request = RecommendationRequest(a_smartphone_customer(engine), "app", "query")
        warm(engine, request, FAST_RECORD + 1)
        before = len(seen)
        with pytest.raises(UnknownCustomerError):
            engine.recommend(RecommendationRequest("no-such-customer", "app", "query"))
        time.sleep(0.05)
        assert len(seen) == before


def test_reasons_are_written_only_for_what_is_shown(sample_workspace: Workspace) -> None:
    from recommender import Candidates

    written: list[int] = []

    class Vectorised(Strategy):
        name = "vectorised"

        def __init__(self, catalog):
            self.catalog = catalog

        def candidates(self, context, n):
            rows = np.flatnonzero(self.catalog.orderable)[:n]
            return Candidates(self.catalog, rows, np.linspace(1.0, 0.1, len(rows)),
                              lambda row: written.append(row) or f"row {row}")

    catalog = sample_workspace.catalog()
    with engine_with(sample_workspace, [("vec", StrategyPlugin(Vectorised(catalog)))],
                     {"query": {"vectorised": 1.0}}) as engine:
        result = engine.recommend(RecommendationRequest(a_smartphone_customer(engine), "app",
                                                        "query"))
        shown = [s for s in result.suggestions if s.kind == "business"]
        assert shown and len(written) == len(shown) < engine.config.engine.candidate_pool
        assert [s.reasons for s in shown] == [(f"row {engine.catalog.index[s.product]}",)
                                              for s in shown]


def test_extra_context_reads_recent_events_from_the_store(sample_workspace: Workspace) -> None:
    """The plugin read API: an extra_context hook gets the store and reads the customer's
    latest events; a strategy sees what it added."""
    seen: dict[str, object] = {}

    class Recent:
        @hookimpl
        def extra_context(self, context, store):
            events = store.recent_events(context.customer.id, limit=3)
            return {"recent_last_product": events[0].product if events else None}

    class Reader(Strategy):
        name = "reader"

        def candidates(self, context, n):
            seen["last"] = context.attributes.get("recent_last_product")
            return []

    with engine_with(sample_workspace, [("recent", Recent()),
                                        ("reader", StrategyPlugin(Reader()))],
                     {"query": {"reader": 1.0, "popularity": 1.0}}) as engine:
        customer = engine.store.db.execute(
            "SELECT customer_id FROM events GROUP BY customer_id ORDER BY customer_id "
            "LIMIT 1").fetchone()[0]
        latest = engine.store.db.execute(
            "SELECT product_id FROM events WHERE customer_id = ? ORDER BY ts DESC, id DESC "
            "LIMIT 1", (customer,)).fetchone()[0]
        result = engine.recommend(RecommendationRequest(customer, "app", "query", debug=True))
        assert not result.errors
        assert seen["last"] == latest


# --------------------------------------------------------------------------------------------
# The request's own thread: what waits on nothing runs there once it has a record of speed
# --------------------------------------------------------------------------------------------


class ThreadRecorder(Strategy):
    """Records the thread of each call; ``blocks`` as given; sleeps ``delay`` when set."""

    def __init__(self, name: str, product: str, *, blocks: bool):
        self.name = name  # type: ignore[misc]
        self.blocks = blocks  # type: ignore[misc]
        self.product = product
        self.threads: list[int] = []
        self.delay = 0.0

    def candidates(self, context, n):
        self.threads.append(threading.get_ident())
        if self.delay:
            time.sleep(self.delay)
        return [Candidate(self.product, 1.0, f"{self.name} says so")]


def test_only_strategies_that_wait_on_nothing_move_to_the_request_thread(
        sample_workspace: Workspace) -> None:
    from recommender.engine import FAST_RECORD

    computes = ThreadRecorder("computes", "cloud_storage", blocks=False)
    waits = ThreadRecorder("waits", "music_membership", blocks=True)
    blend = {"query": {"computes": 1.0, "waits": 1.0}}
    with engine_with(sample_workspace, [("threads", StrategyPlugin(computes, waits))],
                     blend, fast_strategy_ms=50) as engine:
        request = RecommendationRequest(a_smartphone_customer(engine), "app", "query")
        here = threading.get_ident()
        warm(engine, request, 2 * FAST_RECORD)
        # New strategies start in the pool; with a record of speed, the one that waits on
        # nothing runs here, the other stays in the pool however fast it is.
        assert here not in computes.threads[:FAST_RECORD]
        assert computes.threads[-FAST_RECORD + 1:] == [here] * (FAST_RECORD - 1)
        assert here not in waits.threads
        assert engine._partition(["computes", "waits"])[1:] == (["waits"], [], ["computes"])


def test_a_request_thread_strategy_that_gets_slow_goes_back_to_the_pool(
        sample_workspace: Workspace, caplog: pytest.LogCaptureFixture) -> None:
    from recommender.engine import FAST_RECORD

    strategy = ThreadRecorder("computes", "cloud_storage", blocks=False)
    with computing(sample_workspace, strategy, timeout_ms=500, debug=False) as (engine,
                                                                               request):
        warm(engine, request, FAST_RECORD)
        assert engine._partition(["computes"])[3] == ["computes"]
        strategy.delay = 0.1  # within the budget, over fast_strategy_ms
        assert not engine.recommend(request).errors
        assert engine._partition(["computes"])[2] == ["computes"]  # its own pool task now
        lost = [r.getMessage() for r in caplog.records
                if r.getMessage().startswith("plugin computes: a call took ")]
        assert len(lost) == 1 and "ms (fast_strategy_ms 50): it runs on its own in the pool " \
            "until 20 fast calls in a row" in lost[0]  # the operator is told, once
        strategy.delay = 0.0
        warm(engine, request, FAST_RECORD - 1)
        assert engine._partition(["computes"])[2] == ["computes"]
        warm(engine, request, 1)  # a clean record again
        assert engine._partition(["computes"])[3] == ["computes"]
        assert strategy.threads[-1] != threading.get_ident()  # that call earned it in the pool
        warm(engine, request, 1)
        assert strategy.threads[-1] == threading.get_ident()


class Tenure:
    """An extra_context provider recording its thread; ``marked``: it waits on nothing."""

    def __init__(self, marked: bool):
        self.threads: list[int] = []

        def extra_context(context, store):
            self.threads.append(threading.get_ident())
            return {"tenure_band": "long" if context.customer.tenure_months > 24 else "short"}

        self.extra_context = hookimpl(does_not_block(extra_context) if marked
                                      else extra_context)


@pytest.mark.parametrize("marked", [True, False])
def test_the_context_is_gathered_here_only_when_no_provider_may_wait(
        sample_workspace: Workspace, marked: bool) -> None:
    from recommender.engine import FAST_RECORD

    provider = Tenure(marked)
    with engine_with(sample_workspace, [("tenure", provider)],
                     {"query": {"popularity": 1.0}}, fast_strategy_ms=50) as engine:
        request = RecommendationRequest(a_smartphone_customer(engine), "app", "query")
        warm(engine, request, FAST_RECORD + 2)
        here = threading.get_ident()
        assert engine._context_inline() is marked
        assert (provider.threads[-1] == here) is marked
        assert here not in provider.threads[:FAST_RECORD]  # the record is earned in the pool


def test_fast_strategy_ms_zero_keeps_every_plugin_call_off_the_request_thread(
        sample_workspace: Workspace) -> None:
    from recommender.engine import FAST_RECORD

    computes = ThreadRecorder("computes", "cloud_storage", blocks=False)
    with engine_with(sample_workspace, [("threads", StrategyPlugin(computes))],
                     {"query": {"computes": 1.0}}, fast_strategy_ms=0) as engine:
        request = RecommendationRequest(a_smartphone_customer(engine), "app", "query")
        warm(engine, request, 2 * FAST_RECORD)
        assert threading.get_ident() not in computes.threads
        assert not engine._context_inline()


@pytest.mark.parametrize("module, name, waits", [
    ("plugins.cf", "CFStrategy", False), ("plugins.cf", "ItemSimilarityStrategy", False),
    ("plugins.popularity", "PopularityStrategy", False),
    ("plugins.association", "AssociationStrategy", False),
    ("plugins.cross_sell", "CrossSellStrategy", False),
    ("plugins.alternatives", "AlternativesStrategy", False),
    ("plugins.propensity", "PropensityStrategy", False),
    ("plugins.adaptive", "AdaptiveStrategy", True),  # reads the store's feedback log
])
def test_built_in_strategies_say_whether_they_wait(module: str, name: str, waits: bool) -> None:
    import importlib

    assert getattr(importlib.import_module(module), name).blocks is waits


def test_the_built_in_context_providers_wait_on_nothing() -> None:
    from recommender.engine import PROVIDER_HOOKS
    from recommender.hookspecs import blocks

    pm = make_plugin_manager(load_entry_points=False)
    impls = [impl for hook in PROVIDER_HOOKS for impl in getattr(pm.hook, hook).get_hookimpls()]
    assert {impl.plugin_name for impl in impls} >= {"channels", "store_provider"}
    assert not [impl.plugin_name for impl in impls if blocks(impl.function)]


class SlowThenRaising(ThreadRecorder):
    """A request-thread strategy whose calls turn slow and raise when ``fail`` is set."""

    fail = False

    def candidates(self, context, n):
        result = super().candidates(context, n)
        if self.fail:
            raise RuntimeError("model lost")
        return result


def test_a_slow_call_that_raises_counts_as_slow(sample_workspace: Workspace) -> None:
    from recommender.engine import FAST_RECORD

    strategy = SlowThenRaising("computes", "cloud_storage", blocks=False)
    with computing(sample_workspace, strategy, timeout_ms=500) as (engine, request):
        warm(engine, request, FAST_RECORD)
        assert engine._partition(["computes"])[3] == ["computes"]
        strategy.delay, strategy.fail = 0.1, True
        failed = engine.recommend(request)
        assert failed.errors[0]["stage"] == "strategy"
        assert failed.timings["computes"] >= 100  # the time it took, not 0
        assert engine._partition(["computes"])[2] == ["computes"]  # back to the pool


def test_requests_do_not_join_a_request_thread_call_that_hangs(
        sample_workspace: Workspace, caplog: pytest.LogCaptureFixture) -> None:
    """A call on a request thread cannot be cut off; once it runs past fast_strategy_ms the
    next requests run the strategy in the pool again, under the budget."""
    from recommender.engine import FAST_RECORD

    strategy = ThreadRecorder("computes", "cloud_storage", blocks=False)
    with computing(sample_workspace, strategy, timeout_ms=100) as (engine, request):
        warm(engine, request, FAST_RECORD + 1)
        strategy.delay = 0.6
        calls = len(strategy.threads)
        stuck = threading.Thread(target=engine.recommend, args=(request,))
        stuck.start()
        waited = time.perf_counter()
        while len(strategy.threads) == calls and time.perf_counter() - waited < 5:
            time.sleep(0.001)
        time.sleep(0.08)  # the first request is inside the hanging call, past 50 ms
        started = time.perf_counter()
        second = engine.recommend(request)
        assert time.perf_counter() - started < 0.45  # the budget, not the 0.6 s call
        assert second.errors[0]["stage"] == "timeout"
        assert "plugin computes: a call on a request thread is still running" in caplog.text
        stuck.join()
        # Its pool call is still running: the strategy is not run on a request thread.
        assert engine._partition(["computes"])[3] == []
