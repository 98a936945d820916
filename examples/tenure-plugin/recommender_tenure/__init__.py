"""Tenure favourites: the businesses most held by customers who joined about as long ago."""

from __future__ import annotations

from pathlib import Path
from typing import Self

import numpy as np
from marshmallow import Schema, fields, validate

from recommender import (
    Candidate,
    Catalog,
    Config,
    ModelError,
    RequestContext,
    Strategy,
    TrainingData,
    hookimpl,
)
from recommender.strategy import top_n

#: The reason in each language the engine answers in (``context.locale``); the project's own
#: catalogs do not know a plugin's sentences, so a plugin brings its own.
REASON = {"en": "{share:.0%} of customers with a similar tenure hold it",
          "zh-CN": "入网时长相近的客户中{share:.0%}办理了此业务"}


class Settings(Schema):
    """``[strategies.tenure]`` of config.toml, checked when the engine is built."""

    bands = fields.List(fields.Integer(validate=validate.Range(min=1)),
                        load_default=[6, 24, 60], validate=validate.Length(min=1),
                        metadata={"description": "Tenure band limits in months."})


class TenureStrategy(Strategy):
    """Share of customers holding each business, per tenure band (months)."""

    name = "tenure"
    settings_schema = Settings  # an unknown key or a bad value is refused, naming it
    blocks = False  # candidates() computes on the loaded shares only: no network, no lock

    def __init__(self, catalog: Catalog, bands: list[int] = (6, 24, 60)):
        self.catalog = catalog
        self.bands = np.asarray(sorted(bands), dtype=np.int32)
        self.shares: np.ndarray | None = None  # bands + 1 rows x businesses

    def fit(self, data: TrainingData) -> Self:
        band = np.searchsorted(self.bands, data.tenure, side="right")
        held = data.holdings.tocsr()
        shares = np.zeros((len(self.bands) + 1, data.n_products))
        for b in range(len(shares)):
            rows = held[band == b]
            if rows.shape[0]:
                shares[b] = np.asarray(rows.mean(axis=0)).ravel()
        self.shares = shares
        return self

    @property
    def is_fitted(self) -> bool:
        return self.shares is not None

    def save(self, directory: Path) -> None:
        np.save(directory / "shares.npy", self.shares)

    def load(self, directory: Path) -> Self:
        shares = np.load(directory / "shares.npy")
        if shares.shape != (len(self.bands) + 1, len(self.catalog)):
            raise ModelError(f"tenure: shares.npy has shape {shares.shape}, expected "
                             f"{(len(self.bands) + 1, len(self.catalog))}")
        self.shares = shares
        return self

    def candidates(self, context: RequestContext, n: int) -> list[Candidate]:
        months = context.customer.tenure_months or 0
        band = int(np.searchsorted(self.bands, months, side="right"))
        scores = self.shares[band]
        held = self.catalog.indices(context.customer.holdings)
        picks = top_n(scores, n, exclude=held)
        sentence = REASON.get(context.locale, REASON["en"])
        return [Candidate(self.catalog.ids[i], float(scores[i]),
                          sentence.format(share=float(scores[i])))
                for i in picks.tolist()]


@hookimpl
def register_strategies(config: Config, catalog: Catalog) -> list[Strategy]:
    settings = config.strategy_settings("tenure", Settings)  # loaded: defaults filled in
    return [TenureStrategy(catalog, **settings)]
