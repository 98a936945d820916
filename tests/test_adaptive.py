"""The adaptive strategy: Beta-Bernoulli acceptance per cell, Thompson sampling, followed from
the store's feedback log in every process, in bounded memory."""

from __future__ import annotations

import itertools
import time
import tomllib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from api_support import copy_workspace

from plugins.adaptive import (
    SEGMENTS,
    AdaptiveStrategy,
    register_strategies,
    settings_from_config,
)
from recommender import (
    CHANNEL_IDS,
    Catalog,
    Channel,
    Config,
    ConfigError,
    Customer,
    FeedbackEvent,
    Moment,
    RecommendationRequest,
    RequestContext,
    Store,
    Terminal,
)
from recommender.store import StoreError
from recommender.workspace import Workspace

MOMENTS = [m.value for m in Moment]
TS = 1_790_000_000
_ids = itertools.count()


def context(tier: str = "mid", channel: str = "app", moment: str = "query",
            holdings: tuple[str, ...] = (), persona: str | None = None) -> RequestContext:
    return RequestContext(
        customer=Customer(id="c", value_tier=tier, persona=persona, holdings=frozenset(holdings)),
        terminal=Terminal(network="5G"), channel=Channel(id=channel, slots=9), moment=moment,
        product="balance_query" if moment in ("query", "transaction", "failure") else None,
        failure_reason=None)


def row(product: str, action: str, customer: str | None, *, request: str | None = None,
        channel: str | None = "app", moment: str | None = "query", ts: int = TS) -> tuple:
    """A feedback table row."""
    n = next(_ids)
    return (f"e{n}", ts, request or f"r{n}", product, action, customer, channel, moment, "")


def offers(product: str, customer: str, shown: int, accepted: int, **where) -> list[tuple]:
    """``shown`` impressions of ``product`` to ``customer``, ``accepted`` of them accepted."""
    rows = []
    for i in range(shown):
        request = f"q{next(_ids)}"
        rows.append(row(product, "impression", customer, request=request, **where))
        if i < accepted:
            rows.append(row(product, "accept", customer, request=request, ts=TS + 30, **where))
    return rows


def cell(strategy: AdaptiveStrategy, product: str, tier: str = "mid", channel: str = "app",
         moment: str = "query") -> tuple[float, float]:
    """(successes, trials) of ``product`` in a value-tier cell."""
    where = (strategy.catalog.index[product], SEGMENTS["value_tier"].index(tier),
             CHANNEL_IDS.index(channel), MOMENTS.index(moment))
    return float(strategy.successes[where]), float(strategy.trials[where])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """An empty store with one customer per value tier (``high``, ``mid``, ``low``)."""
    store = Store(tmp_path / "store.sqlite")
    store.add_customers([Customer(id=t, value_tier=t, persona="data") for t in
                         ("high", "mid", "low")])
    yield store
    store.close()


def strategy_on(store: Store, catalog: Catalog, **settings) -> AdaptiveStrategy:
    strategy = AdaptiveStrategy(catalog, seed=settings.pop("seed", 1), **settings)
    strategy.attach(store)
    strategy.catch_up()
    return strategy


# -- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("settings", "key", "fragment"), [
    ({"segment": "age"}, "segment", "must be one of value_tier, persona, lifecycle, none"),
    ({"segment": 3}, "segment", "must be one of"),
    ({"prior_accepts": 0}, "prior_accepts", "must be a number from"),
    ({"prior_accepts": "1"}, "prior_accepts", "must be a number from"),
    ({"prior_trials": -1}, "prior_trials", "must be a number from"),
    ({"prior_accepts": 5, "prior_trials": 5}, "prior_trials", "must be more than prior_accepts"),
    ({"prior_accepts": 30}, "prior_accepts", "must be more than prior_accepts"),
    ({"click_weight": 1.5}, "click_weight", "from 0 to 1"),
    ({"click_weight": True}, "click_weight", "must be a number"),
    ({"refresh_seconds": -1}, "refresh_seconds", "must be a number from 0"),
    ({"refresh_budget_ms": 0}, "refresh_budget_ms", "must be a number from 1"),
    ({"max_rows_per_refresh": 0}, "max_rows_per_refresh", "must be an integer"),
    ({"max_rows_per_refresh": 1000.5}, "max_rows_per_refresh", "must be an integer"),
    ({"seed": -1}, "seed", "must be an integer"),
    ({"seed": "lucky"}, "seed", "must be an integer"),
    ({"segmnet": "persona"}, "segmnet", "unknown key; known: segment,"),
])
def test_bad_settings_name_the_file_and_key(catalog: Catalog, settings, key, fragment) -> None:
    config = Config.from_dict({"strategies": {"adaptive": settings}}, source="config.toml")
    with pytest.raises(ConfigError) as info:
        register_strategies(config=config, catalog=catalog, store=None)
    message = str(info.value)
    assert message.startswith(f"config.toml, strategies.adaptive.{key}: "), message
    assert fragment in message, message


def test_settings_have_defaults_and_are_applied(catalog: Catalog) -> None:
    default = settings_from_config(Config.from_dict({}))
    assert default == {"segment": "value_tier", "prior_accepts": 1.0, "prior_trials": 20.0,
                       "click_weight": 0.0, "refresh_seconds": 1.0, "refresh_budget_ms": 20.0,
                       "max_rows_per_refresh": 100_000, "seed": 0, "pooling": True}
    config = Config.from_dict({"strategies": {"adaptive": {
        "segment": "persona", "prior_accepts": 2, "prior_trials": 50, "click_weight": 0.5,
        "refresh_seconds": 0, "seed": 3}}})
    [strategy] = register_strategies(config=config, catalog=catalog, store=None)
    assert (strategy.segment, strategy.prior_accepts, strategy.prior_trials,
            strategy.click_weight, strategy.refresh_seconds, strategy.seed) == \
        ("persona", 2.0, 50.0, 0.5, 0.0, 3)
    assert strategy.trials.shape == (len(catalog), 7, len(CHANNEL_IDS), len(MOMENTS))
    assert strategy.is_fitted and strategy.fit(None) is strategy


# -- counting ----------------------------------------------------------------------------------


def reference(store: Store, segment: str, click_weight: float) -> tuple[dict, dict]:
    """The counting rules, written plainly, over the whole log: (successes, trials) by cell."""
    people = {cid: (tier, persona or "", lifecycle) for cid, tier, persona, lifecycle in
              store.db.execute("SELECT id, value_tier, persona, lifecycle FROM customers")}
    bits = {"impression": 1, "click": 2, "accept": 4, "dismiss": 8}

    def worth(mask: int) -> float:
        return 1.0 if mask & 4 else click_weight if mask & 2 else 0.0

    seen: dict[tuple, int] = {}
    successes: Counter = Counter()
    trials: Counter = Counter()
    for request, product, action, cid, channel, moment in store.db.execute(
            "SELECT request_id, product_id, action, customer_id, channel, moment FROM feedback "
            "ORDER BY rowid"):
        key = (cid, request, product)
        before = seen.get(key, 0) if cid is not None else 0
        if cid is not None:
            seen[key] = before | bits[action]
        if (cid not in people and segment != "none") or channel is None or moment is None:
            continue
        tier, persona, lifecycle = people.get(cid, ("", "", ""))
        value = {"value_tier": tier, "persona": persona, "lifecycle": lifecycle,
                 "none": ""}[segment]
        where = (product, value, channel, moment)
        if action == "impression" or before == 0:
            trials[where] += 1
        successes[where] += worth(before | bits[action]) - worth(before)
    return successes, trials


def as_counters(strategy: AdaptiveStrategy) -> tuple[Counter, Counter]:
    values = SEGMENTS[strategy.segment]
    out: tuple[Counter, Counter] = (Counter(), Counter())
    for array, counter in zip((strategy.successes, strategy.trials), out, strict=True):
        for p, s, c, m in zip(*np.nonzero(array), strict=True):
            counter[(strategy.catalog.ids[p], values[s], CHANNEL_IDS[c], MOMENTS[m])] = \
                float(array[p, s, c, m])
    return out


@pytest.mark.parametrize("segment", list(SEGMENTS))
def test_rebuild_from_the_log_equals_incremental_updates(
        sample_workspace: Workspace, tmp_path: Path, segment: str) -> None:
    ws = copy_workspace(sample_workspace, tmp_path / "ws")
    with ws.store() as store:
        live = AdaptiveStrategy(ws.catalog(), segment=segment, click_weight=0.5, seed=1)
        live.attach(store)
        live.catch_up()  # the sample operator's log
        customer = store.customer_ids(limit=1)[0]
        request = "tricky"
        tricky = [  # one suggestion reported many ways, and events that fit no cell
            row("intl_sms", "dismiss", customer),  # no impression: a trial
            row("intl_sms", "accept", customer),  # no impression: a trial and a success
            row("cloud_storage", "impression", customer, request=request),
            row("cloud_storage", "click", customer, request=request),  # half a success
            row("cloud_storage", "accept", customer, request=request),  # the other half
            row("cloud_storage", "accept", customer, request=request),  # sent twice: nothing
            row("cloud_storage", "dismiss", customer, request=request),  # no second trial
            row("intl_sms", "impression", None),  # anonymous: no segment
            row("intl_sms", "impression", customer, channel=None),  # no channel
            row("intl_sms", "impression", "C9999999"),  # not in the store
        ]
        rng = np.random.default_rng(5)
        customers = store.customer_ids()
        orderable = [p.id for p in ws.catalog() if p.orderable]
        more = []
        for _ in range(300):
            cid = customers[int(rng.integers(len(customers)))]
            product = orderable[int(rng.integers(len(orderable)))]
            request = f"m{next(_ids)}"
            channel, moment = CHANNEL_IDS[int(rng.integers(6))], MOMENTS[int(rng.integers(4))]
            for action in ("impression", "click", "accept", "dismiss"):
                if action == "impression" or rng.random() < 0.3:
                    more.append(row(product, action, cid, request=request, channel=channel,
                                    moment=moment))
        for i, event in enumerate(tricky + more):
            store.add_rows("feedback", [event])
            if i % 7 == 0:
                live.refresh(wait=True)
        live.catch_up()

        rebuilt = AdaptiveStrategy(ws.catalog(), segment=segment, click_weight=0.5, seed=2)
        rebuilt.attach(store)
        assert rebuilt.catch_up(chunk=97) == store.count("feedback")
        assert np.array_equal(rebuilt.trials, live.trials)
        assert np.array_equal(rebuilt.successes, live.successes)
        assert live.position == rebuilt.position and live.events == rebuilt.events

        successes, trials = reference(store, segment, 0.5)
        got_successes, got_trials = as_counters(rebuilt)
        assert got_trials == +trials
        assert got_successes == +successes
        unattributed = 1 if segment == "none" else 3  # "none" needs no customer
        assert rebuilt.unattributed == unattributed
        assert live.trials.sum() > 800 and live.successes.sum() > 20


# -- ranking -----------------------------------------------------------------------------------


def firsts(strategy: AdaptiveStrategy, ctx: RequestContext, draws: int = 200, n: int = 1
           ) -> Counter:
    """How often each business is among the first ``n`` of ``draws`` requests."""
    counts: Counter = Counter()
    for _ in range(draws):
        counts.update(c.product for c in strategy.candidates(ctx, n))
    return counts


def test_a_business_accepted_often_rises_in_its_cell_and_not_others(
        store: Store, catalog: Catalog) -> None:
    orderable = [p.id for p in catalog if p.orderable]
    star = "cloud_storage"
    rows = []
    for product in orderable:
        rows += offers(product, "mid", 40, 12 if product == star else 1)
        rows += offers(product, "mid", 40, 1, channel="web")  # the web hall: all alike
    store.add_rows("feedback", rows)
    strategy = strategy_on(store, catalog, pooling=False)  # each cell on its own

    assert cell(strategy, star) == (12.0, 40.0)
    assert cell(strategy, star, channel="web") == (1.0, 40.0)
    home = firsts(strategy, context())
    assert home[star] >= 190, home.most_common(3)
    [top] = strategy.candidates(context(), 1)
    assert top.reason == "often accepted on the app by mid-value customers during a query " \
                        "(12 of 40)"
    for other in (context(tier="high"), context(channel="web"), context(moment="success")):
        counts = firsts(strategy, other)
        assert counts[star] < 40, (other.customer.value_tier, other.channel.id, counts)
    # Held businesses are never proposed.
    assert star not in {c.product for c in strategy.candidates(context(holdings=(star,)), 50)}
    assert all(catalog[c.product].orderable for c in strategy.candidates(context(), 100))


def test_thompson_sampling_explores_businesses_without_data(store: Store, catalog: Catalog
                                                            ) -> None:
    orderable = [p.id for p in catalog if p.orderable]
    best, untried = "cloud_storage", "video_membership"
    rows = []
    for product in orderable:
        if product == best:
            rows += offers(product, "mid", 100, 50)
        elif product != untried:
            rows += offers(product, "mid", 100, 1)
    store.add_rows("feedback", rows)
    strategy = strategy_on(store, catalog)
    assert cell(strategy, untried) == (0.0, 0.0)

    first = firsts(strategy, context(), draws=300)
    top3 = firsts(strategy, context(), draws=300, n=3)
    assert first[best] >= 290  # exploits what it knows ...
    assert 30 <= top3[untried] < 300, top3.most_common(5)  # ... and tries what it does not
    reasons = {c.product: c.reason for c in strategy.candidates(context(), 50)}
    assert reasons[untried] == "new for mid-value customers on the app: being tried out"
    # Each business shown 100 times and taken once is tried less than the untried one.
    assert max(top3[p] for p in orderable if p not in (best, untried)) < top3[untried]


def test_pooling_tries_first_in_a_new_cell_what_works_in_the_others(
        store: Store, catalog: Catalog) -> None:
    orderable = [p.id for p in catalog if p.orderable]
    star, flop = "cloud_storage", "video_membership"
    rows = []
    for product in orderable:
        if product != flop:
            rows += offers(product, "mid", 40, 20 if product == star else 1)
    rows += offers(star, "low", 200, 0, channel="web")  # never taken on the web by these
    rows += offers(flop, "mid", 100, 0)
    store.add_rows("feedback", rows)
    pooled = strategy_on(store, catalog)
    alone = strategy_on(store, catalog, pooling=False)

    # The prior of each cell, by hand: the business over every cell, then the segment.
    tiers = SEGMENTS["value_tier"]
    counts = {star: {"mid": (20, 40), "low": (0, 200)}, flop: {"mid": (0, 100)},
              "intl_sms": {"mid": (1, 40)}}
    for product, by_tier in counts.items():
        taken = sum(t for t, _ in by_tier.values())
        shown = sum(n for _, n in by_tier.values())
        business = (1 + taken) / (20 + shown)
        for tier in tiers:
            t, n = by_tier.get(tier, (0, 0))
            got = pooled.prior_rate[catalog.index[product], tiers.index(tier)]
            assert got == pytest.approx((20 * business + t) / (20 + n)), (product, tier)
    assert np.all(alone.prior_rate == 1 / 20)

    # A cell nobody was shown anything in: pooling tries first the business that works
    # elsewhere for these customers; each cell on its own knows nothing there.
    assert firsts(pooled, context(moment="success"))[star] >= 120
    assert firsts(alone, context(moment="success"))[star] < 40
    # For other customers, what works for anyone weighs less, but still counts.
    assert firsts(pooled, context(tier="high", channel="sms"))[star] > \
        2 * firsts(alone, context(tier="high", channel="sms"))[star]
    # A cell's own evidence outweighs its neighbours': never taken there, so never first.
    assert firsts(pooled, context(tier="low", channel="web"))[star] < 5
    # And a business shown a hundred times, never taken, is not tried early anywhere.
    assert firsts(pooled, context(moment="success"), n=3)[flop] < 5


@pytest.mark.parametrize("segment", list(SEGMENTS))
def test_reasons_are_written_in_the_request_s_language(store, catalog, segment) -> None:
    orderable = [p.id for p in catalog if p.orderable]
    rows = offers("cloud_storage", "mid", 40, 30) + offers("intl_sms", "mid", 5, 0)
    store.add_rows("feedback", rows)
    strategy = strategy_on(store, catalog, segment=segment)
    chinese = context(persona="data").evolve(locale="zh-CN")
    reasons = {c.product: c.reason for c in strategy.candidates(chinese, len(orderable))}
    assert reasons["cloud_storage"].endswith("（推荐40次，接受30次）"), reasons["cloud_storage"]
    assert "手机营业厅" in reasons["cloud_storage"] and "查询时" in reasons["cloud_storage"]
    assert reasons["intl_sms"].startswith("正在手机营业厅向"), reasons["intl_sms"]
    untried = next(p for p in orderable if p not in ("cloud_storage", "intl_sms"))
    assert reasons[untried].startswith("首次在手机营业厅向")
    assert not any(c.isascii() and c.isalpha() for r in reasons.values() for c in r), reasons


def test_a_seeded_strategy_draws_the_same(store: Store, catalog: Catalog) -> None:
    store.add_rows("feedback", offers("cloud_storage", "mid", 30, 10))
    a, b = strategy_on(store, catalog, seed=9), strategy_on(store, catalog, seed=9)
    assert a.candidates(context(), 10) == b.candidates(context(), 10)


def test_segments_by_persona_and_none(store: Store, catalog: Catalog) -> None:
    store.add_rows("feedback", offers("cloud_storage", "mid", 60, 40))
    by_persona = strategy_on(store, catalog, segment="persona", pooling=False)
    assert firsts(by_persona, context(persona="data"))["cloud_storage"] >= 190
    assert firsts(by_persona, context(persona="voice"))["cloud_storage"] < 40
    [top] = by_persona.candidates(context(persona="data"), 1)
    assert "by data-oriented customers" in top.reason
    pooled = strategy_on(store, catalog, segment="none")
    assert firsts(pooled, context(tier="high"))["cloud_storage"] >= 190


# -- following the log -------------------------------------------------------------------------


def adaptive_config(ws: Workspace, **settings) -> Config:
    """The workspace's configuration with the adaptive strategy in every moment's blend."""
    data = tomllib.loads(ws.config_path.read_text())
    for moment, weights in data["blend"].items():
        weights["adaptive"] = 0.5
        for channel in CHANNEL_IDS:
            if isinstance(weights.get(channel), dict):
                weights[channel]["adaptive"] = 0.5
        data["blend"][moment] = weights
    data["blend"]["query"]["adaptive"] = 3.0  # leads at the query moment
    data["strategies"]["adaptive"] = settings
    return Config.from_dict(data, source=str(ws.config_path), root=ws.root)


def test_two_processes_follow_one_store(sample_workspace: Workspace, tmp_path: Path) -> None:
    """Two engines on one store file stand for two gunicorn workers: feedback stored by either
    reaches the other's statistics within refresh_seconds, and the one that stored it at its
    next call."""
    ws = copy_workspace(sample_workspace, tmp_path / "ws")
    refresh = 0.5
    first = ws.engine(config=adaptive_config(ws, refresh_seconds=refresh, seed=1))
    second = ws.engine(config=adaptive_config(ws, refresh_seconds=refresh, seed=2))
    elsewhere = ws.store()  # a worker in another process: its feedback_received never fires here
    try:
        a, b = first.strategies["adaptive"], second.strategies["adaptive"]
        assert first.store is not second.store
        customer = first.store.customer_ids(limit=1)[0]
        tier = first.store.customer(customer).value_tier.value
        request = RecommendationRequest(customer_id=customer, channel="app", moment="query",
                                        product="balance_query")
        for engine in (first, second):
            engine.recommend(request)  # learns its store
            engine.recommend(request)  # reads the log
        assert a.store is first.store and b.store is second.store
        assert a.events == b.events == first.store.count("feedback") > 0
        count = cell(a, "intl_sms", tier)

        def accepted_offers(record, prefix: str) -> tuple[float, float]:
            for i in range(10):
                for action in ("impression", "accept"):
                    record(FeedbackEvent(
                        event_id=f"{prefix}-{i}-{action}", request_id=f"{prefix}-{i}",
                        product="intl_sms", action=action, ts=TS + i, customer_id=customer,
                        channel="app", moment="query"))
            return count[0] + 10, count[1] + 10

        # Through the first engine: it reads them at its next call.
        count = accepted_offers(first.record_feedback, "one")
        first.recommend(request)
        assert cell(a, "intl_sms", tier) == count
        # From another process: both read them within refresh_seconds, not at once.
        a.refresh(wait=True)
        b.refresh(wait=True)  # both have just read: the next reads are due in refresh_seconds
        last_read = time.monotonic()
        count = accepted_offers(elsewhere.add_feedback, "two")
        for engine in (first, second):
            engine.recommend(request)
        if time.monotonic() - last_read < refresh * 0.8:
            assert cell(a, "intl_sms", tier) != count and cell(b, "intl_sms", tier) != count
        while time.monotonic() < last_read + refresh + 0.3 and (
                count != cell(a, "intl_sms", tier) or count != cell(b, "intl_sms", tier)):
            time.sleep(0.02)
            for engine in (first, second):
                engine.recommend(request)
        waited = time.monotonic() - last_read
        assert cell(a, "intl_sms", tier) == count and cell(b, "intl_sms", tier) == count
        assert waited <= refresh + 0.3
        print(f"\nfeedback stored by another process read by both engines {waited:.2f} s "
              f"after their last read (refresh_seconds = {refresh})")
        assert np.array_equal(a.trials, b.trials) and np.array_equal(a.successes, b.successes)
    finally:
        first.close()
        second.close()
        elsewhere.close()


def test_the_catch_up_is_chunked_and_memory_does_not_grow(
        sample_workspace: Workspace, tmp_path: Path) -> None:
    ws = copy_workspace(sample_workspace, tmp_path / "ws")
    catalog = ws.catalog()
    orderable = [p.id for p in catalog if p.orderable]
    with ws.store() as store:
        customers = store.customer_ids()
        rng = np.random.default_rng(3)
        rows = []
        while len(rows) < 100_000:
            cid = customers[int(rng.integers(len(customers)))]
            request = f"big{next(_ids)}"
            product = orderable[int(rng.integers(len(orderable)))]
            channel, moment = CHANNEL_IDS[int(rng.integers(6))], MOMENTS[int(rng.integers(4))]
            rows.append(row(product, "impression", cid, request=request, channel=channel,
                            moment=moment, ts=TS + len(rows)))
            if rng.random() < 0.2:
                action = "accept" if rng.random() < 0.5 else "dismiss"
                rows.append(row(product, action, cid, request=request, channel=channel,
                                moment=moment, ts=TS + len(rows)))
        store.add_rows("feedback", rows)
        total = store.count("feedback")

        strategy = AdaptiveStrategy(catalog, seed=1)
        nbytes = strategy.nbytes
        strategy.attach(store)
        t0 = time.perf_counter()
        strategy.candidates(context(), 50)  # the first call reads one chunk, not the log
        first_ms = (time.perf_counter() - t0) * 1000
        assert 0 < strategy.events < total and strategy.behind
        calls, t0 = 1, time.perf_counter()
        while strategy.behind:
            strategy.candidates(context(), 50)
            calls += 1
        catch_up_s = time.perf_counter() - t0
        assert strategy.events == total
        assert strategy.nbytes == nbytes == strategy.describe()["state_bytes"]
        print(f"\nrebuilt from {total:,} feedback rows in {calls} requests: first "
              f"{first_ms:.1f} ms, then {catch_up_s:.2f} s in all "
              f"({total / max(catch_up_s, 1e-9):,.0f} rows/s)")

        sync = AdaptiveStrategy(catalog, seed=1)
        sync.attach(store)
        t0 = time.perf_counter()
        sync.catch_up()
        print(f"one blocking rebuild: {time.perf_counter() - t0:.2f} s")
        assert np.array_equal(sync.trials, strategy.trials)
        assert sync.nbytes == nbytes


def test_a_failing_store_does_not_fail_the_request(store: Store, catalog: Catalog,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    strategy = AdaptiveStrategy(catalog, seed=1, refresh_seconds=0)
    strategy.attach(store)

    def broken(*args, **kwargs):
        raise StoreError(store.path, "the disk is full")

    monkeypatch.setattr(store, "feedback_since", broken)
    assert len(strategy.candidates(context(), 5)) == 5
    assert strategy.events == 0


# -- speed and serving -------------------------------------------------------------------------


def test_candidates_time_for_2000_businesses() -> None:
    catalog = Catalog.from_dict({"product": [
        {"id": f"b{i:04d}", "name": f"Business {i}", "category": "pack"} for i in range(2000)]})
    strategy = AdaptiveStrategy(catalog, seed=1)
    rng = np.random.default_rng(1)
    strategy.trials[:] = rng.integers(0, 200, strategy.trials.shape)
    strategy.successes[:] = np.floor(strategy.trials * rng.random(strategy.trials.shape) * 0.2)
    ctx = context(holdings=("b0001", "b0002"))
    for _ in range(20):
        strategy.candidates(ctx, 50)
    times = []
    for _ in range(500):
        t0 = time.perf_counter()
        out = strategy.candidates(ctx, 50)
        times.append(time.perf_counter() - t0)
    assert len(out) == 50 and {"b0001", "b0002"}.isdisjoint(c.product for c in out)
    times_us = np.array(times) * 1e6
    print(f"\ncandidates() for 2,000 businesses, n=50: median {np.median(times_us):.0f} us, "
          f"p99 {np.percentile(times_us, 99):.0f} us; statistics {strategy.nbytes:,} bytes")


def test_an_engine_blending_adaptive_serves_only_eligible_suggestions(
        sample_workspace: Workspace, tmp_path: Path) -> None:
    ws = copy_workspace(sample_workspace, tmp_path / "ws")
    engine = ws.engine(config=adaptive_config(ws, seed=4), require_models=True)
    try:
        customers = engine.store.customer_ids(limit=60)
        served = Counter()
        for i, (customer, channel) in enumerate(itertools.product(customers, CHANNEL_IDS)):
            moment = MOMENTS[i % 4]
            product = {"query": "balance_query", "transaction": "intl_roaming",
                       "failure": "plan_5g_newsim", "success": "intl_roaming"}[moment]
            request = RecommendationRequest(
                customer_id=customer, channel=channel, moment=moment, product=product,
                failure_reason="not_eligible" if moment == "failure" else None, debug=True)
            ctx, _ = engine.build_context(request)
            result = engine.recommend(request)
            assert not [e for e in result.errors if e["strategy"] == "adaptive"], result.errors
            codes = engine.eligibility(ctx)
            anywhere = engine.catalog.exclusions(ctx, channels=False)
            for s in result.suggestions:
                i = engine.catalog.index[s.product]
                # or shown with a hand-off (hotline, SMS) to a channel that can take it
                assert codes[i] == 0 or (s.handoff is not None and anywhere[i] == 0), (ctx, s)
                served.update(name for name in s.strategies if name == "adaptive")
        assert served["adaptive"] > 100
        strategy = engine.strategies["adaptive"]
        assert strategy.store is engine.store
        assert strategy.events == engine.store.count("feedback")
    finally:
        engine.close()
