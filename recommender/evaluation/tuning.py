"""Strategy settings chosen by validation inside the training data, for public data.

A public file comes with no configuration, and a strategy's defaults are set for an operator's
catalog (``cf``: 8 factors, light regularisation), not for thousands of movies or products.
So each setting the run does not fix (``--param``) is chosen from a small grid, the strategy's
defaults included: the same split is applied once more, to the training data only (seed + 1),
every candidate is fitted on the inner training part and asked, as a strategy, for its top k
for the inner held-out customers; the best precision@k wins (on a tie, the earlier candidate:
the defaults first). The test split is never seen. The choice and the validation scores are
printed as a note, and the fitted settings are in the report.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..strategy import Strategy
from ..training import TrainingData
from . import metrics as m
from .holdout import context_for
from .splits import Split

#: Customers asked per candidate, a seeded sample when there are more: bounds the time.
VALIDATION_CUSTOMERS = 1000
#: The cut-off the candidates are compared at.
VALIDATION_K = 10
#: Fewer validation customers than this choose nothing: the defaults are kept, and said so.
MIN_VALIDATION_CUSTOMERS = 30


def cf_grid(fixed: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Candidates for ``cf``, its defaults first: for ALS, the factors and the regularisation
    (whose best value moves with the confidence scale and the data's size); for BPR, the
    factors and the SGD step."""
    if fixed.get("model", "als") == "bpr":
        return [{"factors": f, "learning_rate": lr}
                for f, lr in itertools.product((8, 64), (0.05, 0.01))]
    return [{"factors": 8, "regularization": 0.1}] + [
        {"factors": 64, "regularization": r} for r in (1.0, 3.0, 10.0, 20.0, 40.0, 80.0)]


#: Strategies tuned, with the grid of each given the settings the run fixes.
GRIDS: dict[str, Callable[[Mapping[str, Any]], list[dict[str, Any]]]] = {"cf": cf_grid}


@dataclass(frozen=True)
class Tuned:
    """The settings chosen for one strategy and how every candidate scored in validation."""

    strategy: str
    chosen: dict[str, Any]
    tried: list[tuple[dict[str, Any], float]]
    customers: int
    #: Why nothing was chosen (the defaults kept), or None.
    skipped: str | None = None

    def note(self) -> str:
        """One line for the report: what was chosen, against what, on how many customers."""
        if self.skipped:
            return f"{self.strategy}: settings not tuned, defaults kept: {self.skipped}"
        best = max(score for _, score in self.tried)
        scores = "; ".join(f"{_settings(s)}: {score:.4f}" for s, score in self.tried)
        return (f"{self.strategy}: {_settings(self.chosen)} chosen by validation inside the "
                f"training data (precision@{VALIDATION_K} {best:.4f}, {self.customers} "
                f"customers; tried {scores}); --param {self.strategy}.KEY=VALUE fixes a "
                f"setting")


def tune(strategy_class: type[Strategy], name: str, fixed: Mapping[str, Any], split: Split,
         inner_split: Callable[[TrainingData], Split], *, seed: int = 0,
         grid: Sequence[Mapping[str, Any]] | None = None) -> Tuned | None:
    """Choose ``name``'s unfixed settings on a validation split of ``split.train``.

    :param fixed: the settings the run sets (configuration and ``--param``): kept as they are,
        and grid keys among them are not tuned.
    :param inner_split: the evaluation's split, to apply to the training data.
    :param grid: the candidates; default ``GRIDS[name](fixed)``.
    :returns: None when the run fixes every setting the grid would try.
    """
    grid = GRIDS[name](fixed) if grid is None else grid
    candidates = _unique([{k: v for k, v in c.items() if k not in fixed} for c in grid])
    if len(candidates) < 2:
        return None
    inner = inner_split(split.train)
    users, relevant = inner.users, inner.relevant
    if len(users) < MIN_VALIDATION_CUSTOMERS:
        return Tuned(name, {}, [], int(len(users)), skipped=(
            f"the same split applied to the training data leaves {len(users)} customers to "
            f"validate on, fewer than {MIN_VALIDATION_CUSTOMERS}"))
    if len(users) > VALIDATION_CUSTOMERS:
        pick = np.sort(np.random.default_rng(seed).choice(len(users), VALIDATION_CUSTOMERS,
                                                          replace=False))
        users, relevant = users[pick], relevant[pick]
    n_relevant = np.diff(relevant.indptr)
    tried = []
    for candidate in candidates:
        strategy = strategy_class(inner.train.catalog, **{**fixed, **candidate})
        strategy.fit(inner.train)
        recommended = _top(strategy, inner.train, users, VALIDATION_K)
        hits = m.hit_matrix(recommended, relevant)
        precision = m.per_user(hits, n_relevant, VALIDATION_K)["precision"]
        tried.append((candidate, float(precision.mean()) if len(precision) else 0.0))
    chosen = max(tried, key=lambda t: t[1])[0]  # the first of equal scores
    return Tuned(name, chosen, tried, int(len(users)))


def _top(strategy: Strategy, data: TrainingData, users: np.ndarray, k: int) -> np.ndarray:
    """Each customer's top ``k`` from the strategy itself, -1 padding short lists."""
    index = data.catalog.index
    out = np.full((len(users), k), -1, dtype=np.int64)
    for row, user in enumerate(users.tolist()):
        shown = strategy.candidates(context_for(data, user), k)[:k]
        out[row, :len(shown)] = [index[c.product] for c in shown]
    return out


def _unique(candidates: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for c in candidates:
        if c not in seen:
            seen.append(c)
    return seen


def _settings(settings: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"


__all__ = ["GRIDS", "MIN_VALIDATION_CUSTOMERS", "VALIDATION_CUSTOMERS", "VALIDATION_K", "Tuned",
           "cf_grid", "tune"]
