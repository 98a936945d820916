"""Association ("related business") rules: customers who take X also take Y.

Rules X => y are mined with support, confidence and lift from customer baskets (holdings plus
successful orders) or from transaction sessions, then served by matching antecedents against
the customer's holdings plus the business being acted on. Matching is one sparse
matrix-vector product over all rules.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from recommender import (
    Candidate,
    Candidates,
    Catalog,
    Config,
    ModelError,
    Moment,
    RequestContext,
    Strategy,
    TrainingData,
    hookimpl,
)
from recommender.artifacts import load_arrays, save_arrays
from recommender.i18n import percent, tr
from recommender.mining import (
    BasketMatrix,
    MiningLimitError,
    Rule,
    mine_rules,
    mine_rules_bounded,
)
from recommender.strategy_settings import build_strategy
from recommender.training import MOMENTS

HOUR = 3600
ON_LIMIT = ("raise_support", "error")
log = logging.getLogger(__name__)


def customer_baskets(data: TrainingData) -> BasketMatrix:
    """One basket per customer: current holdings plus every business ordered successfully."""
    held = data.holdings.tocoo()
    success = data.events.kind == MOMENTS.index(Moment.SUCCESS)
    rows = np.concatenate([held.row, data.events.customer[success]])
    cols = np.concatenate([held.col, data.events.product[success]])
    return BasketMatrix.from_pairs(rows, np.asarray(data.catalog.ids, dtype=object)[cols])


def session_baskets(data: TrainingData, gap_hours: float) -> BasketMatrix:
    """One basket per session: a customer's transactions and orders with no gap over
    ``gap_hours`` between consecutive events."""
    ev = data.events
    keep = np.isin(ev.kind, [MOMENTS.index(Moment.TRANSACTION), MOMENTS.index(Moment.SUCCESS)])
    customer, product, ts = ev.customer[keep], ev.product[keep], ev.ts[keep]
    order = np.lexsort((ts, customer))
    customer, product, ts = customer[order], product[order], ts[order]
    new_session = np.ones(len(ts), dtype=bool)
    new_session[1:] = (customer[1:] != customer[:-1]) | (np.diff(ts) > gap_hours * HOUR)
    session = np.cumsum(new_session) - 1
    return BasketMatrix.from_pairs(session, np.asarray(data.catalog.ids, dtype=object)[product])


class AssociationStrategy(Strategy):
    """Serves the best-confidence matching rule per consequent, quoting it as the reason.

    Antecedents are matched against what the customer holds, plus the business being ordered
    during a transaction or after a success.

    :param min_support: share of baskets an itemset must appear in (raised automatically when
        a limit is reached, see ``on_limit``).
    :param min_confidence: share of the antecedents' baskets that also hold the consequent.
    :param min_lift: confidence over the consequent's base rate.
    :param max_len: most items in a rule, antecedents and consequent together; unset: any.
    :param baskets: ``"customers"`` (holdings plus successful orders) or ``"sessions"``.
    :param session_gap_hours: with ``baskets = "sessions"``, the gap that starts a new one.
    :param max_itemsets: most frequent itemsets mined (each becomes up to its length in rules);
        unset: no cap but the memory budget.
    :param memory_budget_mb: memory mining may use for itemsets and rules; unset: a quarter of
        the memory available when training starts, at most 2048.
    :param on_limit: when a limit is reached at ``min_support``: ``"raise_support"`` (to the
        lowest support that fits, said in the log and the model manifest) or ``"error"``.
    """

    name = "association"
    blocks = False  # computes on the loaded model only

    def __init__(self, catalog: Catalog, *, min_support: float = 0.005,
                 min_confidence: float = 0.1, min_lift: float = 1.2, max_len: int | None = 3,
                 baskets: str = "customers", session_gap_hours: float = 24.0,
                 max_itemsets: int | None = 200_000, memory_budget_mb: float | None = None,
                 on_limit: str = "raise_support"):
        if on_limit not in ON_LIMIT:
            raise ValueError(f"on_limit must be one of {', '.join(ON_LIMIT)}, got {on_limit!r}")
        if max_itemsets is not None and (isinstance(max_itemsets, bool) or
                                         not isinstance(max_itemsets, int) or max_itemsets < 1):
            raise ValueError(f"max_itemsets must be a positive integer or unset, got "
                             f"{max_itemsets!r}")
        if memory_budget_mb is not None and (isinstance(memory_budget_mb, bool) or
                                             not isinstance(memory_budget_mb, int | float) or
                                             not memory_budget_mb > 0):
            raise ValueError(f"memory_budget_mb must be a positive number or unset (a quarter "
                             f"of the available memory, at most 2048), got {memory_budget_mb!r}")
        if baskets not in ("customers", "sessions"):
            raise ValueError(f"baskets must be 'customers' or 'sessions', got {baskets!r}")
        if not 0 < min_support <= 1:
            raise ValueError(f"min_support must be in (0, 1], got {min_support!r}")
        if not 0 <= min_confidence <= 1:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence!r}")
        if min_lift < 0:
            raise ValueError(f"min_lift must be >= 0, got {min_lift!r}")
        if max_len is not None and max_len < 2:
            raise ValueError(f"max_len must be >= 2 or unset, got {max_len!r}")
        self.catalog = catalog
        self.min_support = min_support
        self.min_confidence = min_confidence
        self.min_lift = min_lift
        self.max_len = max_len
        self.baskets = baskets
        self.session_gap_hours = session_gap_hours
        self.max_itemsets = max_itemsets
        self.memory_budget_mb = memory_budget_mb
        self.on_limit = on_limit
        self.mined_min_support: float | None = None  # the support used, once fitted
        self.notice: str | None = None  # why it differs from min_support
        self._arrays: dict[str, np.ndarray] | None = None

    @property
    def is_fitted(self) -> bool:
        return self._arrays is not None

    def fit(self, data: TrainingData) -> Self:
        matrix = customer_baskets(data) if self.baskets == "customers" else \
            session_baskets(data, self.session_gap_hours)
        budget = None if self.memory_budget_mb is None else int(self.memory_budget_mb * 2**20)
        settings = {"min_support": self.min_support, "min_confidence": self.min_confidence,
                    "max_len": self.max_len, "min_lift": self.min_lift,
                    "memory_budget": budget, "max_itemsets": self.max_itemsets}
        try:
            if self.on_limit == "error":
                rules, used, notice = mine_rules(matrix, **settings), self.min_support, None
            else:
                mined = mine_rules_bounded(matrix, **settings)
                rules, used, notice = mined.rules, mined.min_support, mined.notice()
        except MiningLimitError as e:
            key = "strategies.association."
            raise e.named(min_support=key + "min_support", max_len=key + "max_len",
                          max_itemsets=key + "max_itemsets",
                          memory_budget=key + "memory_budget_mb") from None
        self.mined_min_support, self.notice = used, notice
        if notice:
            log.warning("association: %s", notice)
        self._set_rules(rules)
        return self

    def _set_rules(self, rules: list[Rule]) -> None:
        index = self.catalog.index
        rules = [r for r in rules if self.catalog.orderable[index[r.consequent]]]
        indptr = np.zeros(len(rules) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(r.antecedents) for r in rules])
        self._arrays = {
            "indptr": indptr,
            "indices": np.array([index[a] for r in rules for a in r.antecedents],
                                dtype=np.int64),
            "consequent": np.array([index[r.consequent] for r in rules], dtype=np.int64),
            "support": np.array([r.support for r in rules], dtype=np.float64),
            "confidence": np.array([r.confidence for r in rules], dtype=np.float64),
            "lift": np.array([r.lift for r in rules], dtype=np.float64),
            "count": np.array([r.count for r in rules], dtype=np.int64),
        }
        self._prepare()

    def _prepare(self) -> None:
        a = self._arrays
        n_rules = len(a["consequent"])
        self._antecedents = sp.csr_matrix(
            (np.ones(len(a["indices"]), dtype=np.float32), a["indices"], a["indptr"]),
            shape=(n_rules, len(self.catalog)))
        self._lengths = np.diff(a["indptr"]).astype(np.float32)
        # Rules sorted best first, so the first match per consequent is its best rule.
        self._order = np.lexsort((-a["lift"], -a["confidence"]))

    @property
    def n_rules(self) -> int:
        return 0 if self._arrays is None else len(self._arrays["consequent"])

    def candidates(self, context: RequestContext, n: int) -> Sequence[Candidate]:
        if self._arrays is None or self.n_rules == 0:
            return []
        # The business being ordered counts; one that just failed does not.
        basket = context.holdings_after
        present = np.zeros(len(self.catalog), dtype=np.float32)
        present[self.catalog.indices(basket)] = 1.0
        matched = (self._antecedents @ present) == self._lengths
        a = self._arrays
        order = self._order[matched[self._order]]
        order = order[present[a["consequent"][order]] == 0]
        _, first = np.unique(a["consequent"][order], return_index=True)
        best = order[np.sort(first)][:n]
        rule_of = dict(zip(a["consequent"][best].tolist(), best.tolist(), strict=True))
        return Candidates(self.catalog, a["consequent"][best], a["confidence"][best],
                          lambda row: self._reason(rule_of[row], context.locale))

    def _reason(self, r: int, locale: str) -> str:
        a = self._arrays
        products = self.catalog.products
        names = [products[i].display_name(locale)
                 for i in a["indices"][a["indptr"][r]:a["indptr"][r + 1]]]
        return tr(locale, "{share} of customers with {held} also take {name}, {lift} times the "
                          "base rate", share=percent(locale, a["confidence"][r]),
                  held=tr(locale, " and ").join(names),
                  name=products[a["consequent"][r]].display_name(locale),
                  lift=f"{a['lift'][r]:.1f}")

    def save(self, directory: Path) -> None:
        if self._arrays is None:
            raise ModelError("association: cannot save an unfitted model")
        save_arrays(directory, "rules.npz", self._arrays, self.describe())

    def load(self, directory: Path) -> Self:
        arrays, saved = load_arrays(directory, "rules.npz", "association",
                                ("indptr", "indices", "consequent", "support", "confidence",
                                 "lift", "count"))
        n = len(self.catalog)
        if len(arrays["indices"]) and (arrays["indices"].max() >= n or
                                       arrays["consequent"].max() >= n):
            raise ModelError("association: rules name products outside the catalog")
        self._arrays = arrays
        self.mined_min_support = saved.get("mined_min_support", self.min_support)
        self.notice = saved.get("notice")
        self._prepare()
        return self

    def describe(self) -> dict[str, Any]:
        return {"min_support": self.min_support, "min_confidence": self.min_confidence,
                "min_lift": self.min_lift, "max_len": self.max_len, "baskets": self.baskets,
                "session_gap_hours": self.session_gap_hours, "max_itemsets": self.max_itemsets,
                "memory_budget_mb": self.memory_budget_mb, "on_limit": self.on_limit,
                "mined_min_support": self.mined_min_support, "rules": self.n_rules,
                **({"notice": self.notice} if self.notice else {})}


@hookimpl
def register_strategies(config: Config, catalog: Catalog) -> list[Strategy]:
    return [build_strategy(AssociationStrategy, config, catalog)]
