"""Failure alternatives from the catalog: the ``alternatives`` strategy of the failure moment.

For any failed business, not only those marketing wrote rules for: what removes the obstacle
(a phone that meets the terminal condition, the missing prerequisite, the upgrade path), then
the same kind of business, then the rest; each reason names the obstacle
(``recommender.alternatives``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np

from recommender import Candidate, Candidates, Catalog, Moment, RequestContext, Strategy, hookimpl
from recommender.alternatives import ranked_alternatives


class AlternativesStrategy(Strategy):
    """Serves the failure moment with the catalog's alternatives to the failed business."""

    name = "alternatives"
    blocks = False  # computes on the catalog only
    moments: ClassVar[frozenset[Moment]] = frozenset({Moment.FAILURE})

    def __init__(self, catalog: Catalog):
        self.catalog = catalog

    def candidates(self, context: RequestContext, n: int) -> Sequence[Candidate]:
        if context.product is None or context.product not in self.catalog:
            return []
        rows, scores, reason = ranked_alternatives(self.catalog, context, n)
        return Candidates(self.catalog, np.array(rows, dtype=np.int64), scores, reason)

    def fit(self, data: Any) -> Self:
        return self

    def describe(self) -> dict[str, Any]:
        return {"source": "catalog"}


@hookimpl
def register_strategies(catalog: Catalog) -> list[Strategy]:
    return [AlternativesStrategy(catalog)]
