"""Popularity by value tier and channel, time-decayed and shrunk towards its parents."""

from __future__ import annotations

import numpy as np
import pytest

from plugins.popularity import PopularityStrategy
from recommender import (
    CHANNEL_IDS,
    Catalog,
    Channel,
    Customer,
    Moment,
    RequestContext,
    Terminal,
    TrainingData,
)
from recommender.training import MOMENTS, TIERS


@pytest.fixture(scope="module")
def data(sample_data: TrainingData) -> TrainingData:
    return sample_data


@pytest.fixture(scope="module")
def fitted(catalog: Catalog, data: TrainingData) -> PopularityStrategy:
    return PopularityStrategy(catalog).fit(data)


def scores(strategy: PopularityStrategy, tier: str, channel: str) -> dict[str, float]:
    context = RequestContext(customer=Customer(id="c", value_tier=tier), terminal=Terminal(),
                             channel=Channel(id=channel, slots=9), moment="query")
    return {c.product: c.score for c in strategy.candidates(context, 100)}


def test_segments_differ_where_the_data_does(fitted: PopularityStrategy) -> None:
    # Family share is only open to high and mid value customers: low value never take it.
    high, low = scores(fitted, "high", "app"), scores(fitted, "low", "app")
    assert high["family_share"] > 3 * low.get("family_share", 0.0)


def test_channels_differ_where_the_data_does(fitted: PopularityStrategy) -> None:
    # The SMS hall cannot sell broadband speed-up; the app can, and does.
    app, sms = scores(fitted, "mid", "app"), scores(fitted, "mid", "sms")
    assert app["broadband_speedup"] > 1.5 * sms.get("broadband_speedup", 0.0)


def test_query_services_are_never_proposed(fitted: PopularityStrategy, catalog: Catalog
                                           ) -> None:
    for tier in TIERS:
        for channel in CHANNEL_IDS:
            assert all(catalog[p].orderable for p in scores(fitted, tier, channel))


def test_recent_orders_count_more(catalog: Catalog, data: TrainingData) -> None:
    """With a short half-life the table follows the latest orders; with a long one, all."""
    recent = PopularityStrategy(catalog, half_life_days=3, prior_strength=0,
                                holding_weight=0).fit(data)
    flat = PopularityStrategy(catalog, half_life_days=10_000, prior_strength=0,
                              holding_weight=0).fit(data)
    assert not np.allclose(recent.table, flat.table)
    success = data.events.kind == MOMENTS.index(Moment.SUCCESS)
    late = success & (data.events.ts > data.now - 7 * 86400)
    early = success & (data.events.ts < data.now - 90 * 86400)
    share = np.bincount(data.events.product[late], minlength=len(catalog)) / late.sum() - \
        np.bincount(data.events.product[early], minlength=len(catalog)) / early.sum()
    product = int(share.argmax())  # the business whose share grew most lately
    assert recent.table[:, :, product].mean() / flat.table[:, :, product].mean() > 1


@pytest.mark.parametrize(("settings", "name"), [
    ({"half_life_days": 0}, "half_life_days"),
    ({"prior_strength": -1}, "prior_strength"),
])
def test_bad_settings_name_the_setting(catalog: Catalog, settings, name) -> None:
    with pytest.raises(ValueError, match=name):
        PopularityStrategy(catalog, **settings)
