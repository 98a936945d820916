"""Association rules as a strategy: mined from the sample operator, served by matching."""

from __future__ import annotations

import re

import numpy as np
import pytest

from plugins.association import AssociationStrategy, customer_baskets, session_baskets
from recommender import (
    Catalog,
    Channel,
    Customer,
    RequestContext,
    Terminal,
    TrainingData,
)
from recommender.mining import mine_rules


@pytest.fixture(scope="module")
def data(sample_data: TrainingData) -> TrainingData:
    return sample_data


@pytest.fixture(scope="module")
def fitted(catalog: Catalog, data: TrainingData) -> AssociationStrategy:
    return AssociationStrategy(catalog, min_support=0.005, min_confidence=0.1,
                               min_lift=1.2, max_len=3).fit(data)


def context(holdings, product=None, moment="success") -> RequestContext:
    return RequestContext(
        customer=Customer(id="c", holdings=frozenset(holdings)),
        terminal=Terminal(network="5G"), channel=Channel(id="app", slots=9),
        moment=moment, product=product)


def test_planted_roaming_pattern_is_found_and_quoted(fitted: AssociationStrategy) -> None:
    got = fitted.candidates(context({"plan_4g"}, product="intl_roaming"), 5)
    top3 = [c.product for c in got[:3]]
    assert {"intl_data_daypass", "intl_sms"} & set(top3), top3
    reason = next(c.reason for c in got if c.product in ("intl_data_daypass", "intl_sms"))
    match = re.fullmatch(r"(\d+)% of customers with (.+) also take (.+), ([\d.]+) times the "
                         r"base rate", reason)
    assert match, reason
    assert "International roaming" in match.group(2)  # a context without a locale: English
    assert float(match.group(4)) > 3  # far above the base rate: the planted pattern


def test_broadband_leads_to_speedup(fitted: AssociationStrategy) -> None:
    got = [c.product for c in fitted.candidates(context({"plan_4g", "broadband"}), 5)]
    assert "broadband_speedup" in got[:3], got


def test_matching_agrees_with_a_brute_force_scan(catalog: Catalog, data: TrainingData,
                                                 fitted: AssociationStrategy) -> None:
    """The sparse matching picks, per consequent, the best-confidence rule whose antecedents
    are all held, exactly as scanning every rule would."""
    rules = [r for r in mine_rules(customer_baskets(data), min_support=0.005,
                                   min_confidence=0.1, max_len=3, min_lift=1.2)
             if catalog[r.consequent].orderable]
    assert len(rules) == fitted.n_rules > 20
    rng = np.random.default_rng(3)
    orderable = [p.id for p in catalog if p.orderable]
    for _ in range(200):
        basket = set(rng.choice(orderable, size=rng.integers(1, 6), replace=False).tolist())
        best: dict[str, float] = {}
        for r in rules:
            if set(r.antecedents) <= basket and r.consequent not in basket:
                best[r.consequent] = max(best.get(r.consequent, 0.0), r.confidence)
        got = fitted.candidates(context(basket), 1000)
        assert {c.product: c.score for c in got} == pytest.approx(best)
        scores = [c.score for c in got]
        assert scores == sorted(scores, reverse=True)


def test_session_baskets_split_on_time_gaps(catalog: Catalog, data: TrainingData) -> None:
    sessions = session_baskets(data, gap_hours=24)
    customers = customer_baskets(data)
    assert sessions.n_baskets > customers.n_baskets / 2
    # A session never spans two customers, so it holds at most one customer's orders.
    assert sessions.matrix.sum(axis=1).max() <= customers.matrix.sum(axis=1).max()
    strategy = AssociationStrategy(catalog, baskets="sessions", min_support=0.001).fit(data)
    assert strategy.is_fitted


@pytest.mark.parametrize(("settings", "name"), [
    ({"baskets": "carts"}, "baskets"),
    ({"min_support": 0}, "min_support"),
    ({"min_support": 1.5}, "min_support"),
    ({"min_confidence": -0.1}, "min_confidence"),
    ({"min_lift": -1}, "min_lift"),
    ({"max_len": 1}, "max_len"),
])
def test_bad_settings_name_the_setting(catalog: Catalog, settings, name) -> None:
    with pytest.raises(ValueError, match=name):
        AssociationStrategy(catalog, **settings)
