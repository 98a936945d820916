"""Popularity by customer segment and channel, time-decayed: the cold-start fallback.

Counts successful orders (and, lightly, current holdings), each weighted by
``0.5 ** (age / half_life_days)`` (1 when ``half_life_days`` is unset: plain counts), then
shrinks the segment-and-channel rate towards the
segment rate and that towards the global rate, so a thin cell borrows from its parents instead
of collapsing to noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from recommender import (
    CHANNEL_IDS,
    Candidate,
    Candidates,
    Catalog,
    Config,
    ModelError,
    Moment,
    RequestContext,
    Strategy,
    TrainingData,
    ValueTier,
    hookimpl,
)
from recommender.artifacts import load_arrays, save_arrays
from recommender.i18n import ptr, tr
from recommender.strategy import first_n, ranking
from recommender.strategy_settings import build_strategy
from recommender.training import MOMENTS, TIERS

DAY = 86400


class PopularityStrategy(Strategy):
    """Time-decayed popularity per value tier and channel, shrunk towards its parents.

    :param half_life_days: age at which an order counts half; unset: plain counts (the
        ``popularity_count`` baseline of ``recommender evaluate``).
    :param prior_strength: pseudo-orders a segment-and-channel cell borrows from its segment,
        and a segment from the whole.
    :param holding_weight: weight of a current holding against one successful order.
    """

    name = "popularity"
    blocks = False  # computes on the loaded model only

    def __init__(self, catalog: Catalog, *, half_life_days: float | None = 30.0,
                 prior_strength: float = 20.0, holding_weight: float = 0.02):
        if half_life_days is not None and not half_life_days > 0:
            raise ValueError(f"half_life_days must be > 0 (or unset for plain counts), got "
                             f"{half_life_days!r}")
        if prior_strength < 0:
            raise ValueError(f"prior_strength must be >= 0, got {prior_strength!r}")
        self.catalog = catalog
        self.half_life_days = None if half_life_days is None else float(half_life_days)
        self.prior_strength = float(prior_strength)
        self.holding_weight = float(holding_weight)
        self.table: np.ndarray | None = None  # tiers x channels x products
        #: Each (tier, channel) cell's businesses, best first (``ranking``), built on first use.
        self._rankings: dict[tuple[int, int], np.ndarray] = {}

    @property
    def is_fitted(self) -> bool:
        return self.table is not None

    def fit(self, data: TrainingData) -> Self:
        n_tiers, n_channels, n_products = len(TIERS), len(CHANNEL_IDS), data.n_products
        ev = data.events
        success = ev.kind == MOMENTS.index(Moment.SUCCESS)
        age_days = (data.now - ev.ts[success]) / DAY
        w = np.ones(len(age_days)) if self.half_life_days is None else \
            np.power(0.5, age_days / self.half_life_days)
        tier = data.value_tier[ev.customer[success]].astype(np.int64)
        cell = (tier * n_channels + ev.channel[success]) * n_products + ev.product[success]
        counts = np.bincount(cell, weights=w, minlength=n_tiers * n_channels * n_products)
        counts = counts.reshape(n_tiers, n_channels, n_products)

        # Holdings count once per customer and segment, on every channel alike.
        held = data.holdings.tocoo()
        holding_counts = np.bincount(
            data.value_tier[held.row].astype(np.int64) * n_products + held.col,
            minlength=n_tiers * n_products).reshape(n_tiers, 1, n_products)
        return self.set_counts(counts + self.holding_weight * holding_counts)

    def set_counts(self, counts: np.ndarray) -> Self:
        """The table from weighted counts (tiers x channels x businesses), each cell shrunk
        towards its tier's shares and those towards the global ones (``prior_strength``);
        what every fit ends with, local or on Spark."""
        m = self.prior_strength
        total = counts.sum(axis=(0, 1))
        p_global = total / max(total.sum(), 1e-12)
        seg = counts.sum(axis=1)
        p_seg = (seg + m * p_global) / (seg.sum(axis=1, keepdims=True) + m)
        cell_total = counts.sum(axis=2, keepdims=True)
        p_cell = (counts + m * p_seg[:, None, :]) / (cell_total + m)
        self.table = np.where(self.catalog.orderable, p_cell, 0.0).astype(np.float32)
        self._rankings = {}
        return self

    def candidates(self, context: RequestContext, n: int) -> Sequence[Candidate]:
        if self.table is None:
            return []
        tier = TIERS.index(ValueTier(context.customer.value_tier))
        channel = CHANNEL_IDS.index(context.channel.id)
        scores = self.table[tier, channel]
        order = self._rankings.get((tier, channel))
        if order is None:
            order = self._rankings[tier, channel] = ranking(scores)
        exclude = self.catalog.indices(context.customer.holdings)
        lo = context.locale
        reason = tr(lo, "popular with {tier}-value customers on the {channel} channel",
                    tier=ptr(lo, "tier", context.customer.value_tier),
                    channel=ptr(lo, "channel", context.channel.id))
        best = first_n(order, n, exclude)
        return Candidates(self.catalog, best, scores[best], reason)

    def save(self, directory: Path) -> None:
        if self.table is None:
            raise ModelError("popularity: cannot save an unfitted model")
        save_arrays(directory, "popularity.npz", {"table": self.table}, self.describe())

    def load(self, directory: Path) -> Self:
        arrays, _ = load_arrays(directory, "popularity.npz", "popularity", ("table",))
        table = arrays["table"]
        expected = (len(TIERS), len(CHANNEL_IDS), len(self.catalog))
        if table.shape != expected:
            raise ModelError(f"popularity: table shape {table.shape} does not match the "
                             f"catalog {expected}")
        self.table = table
        self._rankings = {}
        return self

    def describe(self) -> dict[str, Any]:
        return {"half_life_days": self.half_life_days, "prior_strength": self.prior_strength,
                "holding_weight": self.holding_weight}


@hookimpl
def register_strategies(config: Config, catalog: Catalog) -> list[Strategy]:
    return [build_strategy(PopularityStrategy, config, catalog)]
