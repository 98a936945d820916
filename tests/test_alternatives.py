"""Failure alternatives derived from the catalog: the obstacle, then what removes it, the same
kind of business, the rest; each one a business the customer can take."""

from __future__ import annotations

import numpy as np
import pytest

from recommender import (
    Catalog,
    Customer,
    Eligibility,
    Exclusion,
    FailureReason,
    Moment,
    Network,
    Product,
    RequestContext,
    Terminal,
)
from recommender.alternatives import REMOVES, REST, SAME_CATEGORY, _closest, alternatives, obstacle
from recommender.catalog import TerminalSpec
from recommender.context import CHANNEL_IDS, Channel

CATALOG = Catalog(
    [
        Product("base", "Base", "plan", name_en="Base plan"),
        Product("rival", "Rival", "plan", conflicts=frozenset({"base"})),
        Product("base_plus", "Base+", "plan", upgrades=frozenset({"base"})),
        Product(
            "plan_5g",
            "5G plan",
            "plan",
            upgrades=frozenset({"base", "base_plus"}),
            eligibility=Eligibility(min_network=Network.G5),
        ),
        Product(
            "phone_5g",
            "5G phone",
            "device",
            price=3000,
            terminal=TerminalSpec(Network.G5, smartphone=True),
        ),
        Product(
            "phone_4g",
            "4G phone",
            "device",
            price=1000,
            terminal=TerminalSpec(Network.G4, smartphone=True),
        ),
        Product(
            "feature",
            "Feature phone",
            "device",
            price=200,
            terminal=TerminalSpec(Network.G3, smartphone=False),
        ),
        Product("ld", "Long distance", "intl"),
        Product("ld_pack", "LD pack", "intl", requires=frozenset({"ld"})),
        Product("gift", "Gift", "intl", requires=frozenset({"ld_pack"})),
        Product("video", "Video", "vip", eligibility=Eligibility(smartphone=True)),
        Product("music", "Music", "vip"),
        Product("old_vip", "Old VIP", "vip", eligibility=Eligibility(min_tenure_months=600)),
        Product("bill", "Bill", "query", kind="query"),
        Product(
            "store_vip",
            "Store VIP",
            "vip",
            channels=frozenset({"store"}),
            eligibility=Eligibility(min_tenure_months=600),
        ),
        Product("store_only", "Store only", "vip", channels=frozenset({"store"})),
    ]
)


def failed(
    product: str, holdings=(), *, network="4G", smartphone=True, reason=None, tenure=24, locale="en"
) -> RequestContext:
    return RequestContext(
        customer=Customer("c", holdings=frozenset(holdings), tenure_months=tenure),
        terminal=Terminal(network=network, smartphone=smartphone),
        channel=Channel("app", 9),
        moment=Moment.FAILURE,
        product=product,
        failure_reason=reason,
        locale=locale,
    )


def scores(context: RequestContext) -> dict[str, float]:
    return {a.product: a.score for a in alternatives(CATALOG, context)}


def test_a_network_obstacle_is_removed_by_the_phones_that_meet_it_and_the_upgrade_path():
    context = failed("plan_5g", ["base"])
    assert obstacle(CATALOG, context) is Exclusion.TERMINAL_NETWORK
    out = alternatives(CATALOG, context)
    assert [a.product for a in out[:2]] == ["phone_5g", "base_plus"]
    assert out[0].reason == (
        "5G plan needs a 5G terminal, the customer's is 4G: with 5G phone you can order it"
    )
    assert "Base+ upgrades your Base plan and works on your 4G phone" in out[1].reason
    assert "phone_4g" not in {a.product for a in out if a.score >= REMOVES * 0.9}


def test_a_smartphone_obstacle_is_removed_by_any_smartphone_not_a_feature_phone():
    s = scores(failed("video", network="3G", smartphone=False))
    assert s["phone_5g"] == s["phone_4g"] == REMOVES
    assert s.get("feature", 0) < REMOVES
    assert s["music"] == SAME_CATEGORY  # the same kind of business, takeable on this phone


def test_a_missing_prerequisite_chain_offers_its_first_step_only():
    out = alternatives(CATALOG, failed("gift"))
    assert out[0].product == "ld"
    assert out[0].reason == "Gift needs LD pack: order Long distance first"
    # ld_pack is the next step but needs ld: not yet something the customer can take
    assert "ld_pack" not in {a.product for a in out}
    assert alternatives(CATALOG, failed("gift", ["ld"]))[0].product == "ld_pack"


def test_a_conflict_is_resolved_by_upgrading_the_conflicting_holding():
    out = alternatives(CATALOG, failed("rival", ["base"], reason=FailureReason.CONFLICT))
    assert out[0].product == "base_plus"
    assert (
        out[0].reason == "Rival conflicts with held Base plan: Base+ upgrades your Base "
        "plan instead"
    )


def test_the_channel_reason_is_used_only_when_the_catalog_sees_no_obstacle():
    context = failed("music", reason=FailureReason.CONFLICT)
    assert obstacle(CATALOG, context) is Exclusion.CONFLICT
    assert obstacle(CATALOG, failed("music", reason=FailureReason.OTHER)) is Exclusion.OK
    out = alternatives(CATALOG, failed("music", reason=FailureReason.OTHER))
    assert out and out[0].reason.startswith("Music could not be ordered: ")


def test_tiers_come_in_order_and_no_alternative_is_one_the_customer_cannot_take():
    context = failed("video", ["base"], network="3G", smartphone=False)
    out = alternatives(CATALOG, context)
    tiers = [
        0 if a.score >= REMOVES * 0.9 else 1 if a.score >= SAME_CATEGORY * 0.8 else 2 for a in out
    ]
    assert tiers == sorted(tiers) and set(tiers) == {0, 1, 2}
    assert all(a.score <= REST for a, t in zip(out, tiers, strict=True) if t == 2)
    look = context.evolve(moment=Moment.QUERY, product=None, failure_reason=None)
    codes = CATALOG.exclusions(look, channels=False)
    for a in out:
        assert codes[CATALOG.index[a.product]] == Exclusion.OK, a
    assert {"video", "plan_5g", "old_vip", "bill", "base", "rival", "store_vip"}.isdisjoint(
        a.product for a in out
    )


def test_chinese_reasons_name_the_obstacle_in_chinese():
    out = alternatives(CATALOG, failed("plan_5g", ["base"], locale="zh-CN"))
    assert out[0].reason == "5G plan需要5G手机，您的手机是4G：换用5G phone即可办理"


def test_every_alternative_on_the_sample_operator_can_be_taken(engine):
    """Over stored customers and every business failed on every channel: the alternatives
    pass the catalog's check (channel aside) for that customer and terminal."""
    catalog, store = engine.catalog, engine.store
    rng = np.random.default_rng(3)
    businesses = [p.id for p in catalog if p.orderable]
    checked = 0
    for cid in rng.choice(store.customer_ids(), 60, replace=False):
        customer, terminal = store.customer(str(cid)), store.terminal(str(cid)) or Terminal()
        for product in rng.choice(businesses, 6, replace=False):
            context = RequestContext(
                customer=customer,
                terminal=terminal,
                channel=Channel(str(rng.choice(CHANNEL_IDS)), 5),
                moment=Moment.FAILURE,
                product=str(product),
            )
            look = context.evolve(moment=Moment.QUERY, product=None)
            codes = catalog.exclusions(look, channels=False)
            for a in alternatives(catalog, context):
                assert a.product != product and codes[catalog.index[a.product]] == 0, a
                checked += 1
    assert checked > 1000


@pytest.mark.parametrize("product", ["plan_5g", "upgrade_5g", "plan_5g_newsim"])
def test_the_sample_4g_phone_is_offered_the_5g_phone_first(engine, product):
    context = RequestContext(
        customer=Customer("c", holdings=frozenset({"plan_4g"}), tenure_months=24),
        terminal=Terminal(network="4G"),
        channel=Channel("app", 9),
        moment=Moment.FAILURE,
        product=product,
    )
    assert alternatives(engine.catalog, context)[0].product == "phone_5g"


def test_what_keeps_the_customer_from_it_everywhere_comes_before_the_channel():
    assert obstacle(CATALOG, failed("store_vip")) is Exclusion.CUSTOMER_TENURE
    assert obstacle(CATALOG, failed("store_only")) is Exclusion.CHANNEL
    out = alternatives(CATALOG, failed("store_vip"))
    assert out[0].reason.startswith("Store VIP needs 600 months of tenure, the customer has 24")


@pytest.mark.parametrize("seed", range(10))
def test_the_nearest_alternatives_are_those_a_full_sort_puts_first(seed: int) -> None:
    """Only businesses as near as the k-th are sorted; the order is a full sort's, ties
    (many businesses at one price) by id."""
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 400))
    rows = np.sort(rng.choice(1000, size=size, replace=False))
    id_rank = rng.permutation(1000)
    distance = rng.choice([0.0, 5.0, 10.0, 30.0], size=size) if seed % 2 else \
        rng.random(size)
    for keep in (0, 1, 3, 10, size, size + 5):
        full = rows[np.lexsort((id_rank[rows], distance))][:keep]
        assert _closest(rows, distance, id_rank, keep).tolist() == full.tolist()
