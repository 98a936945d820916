"""Strategy settings chosen by validation inside the training data, for public data.

A public file comes with no configuration, and a strategy's defaults are set for an operator's
catalog (``cf``: 8 factors, light regularisation), not for thousands of movies or products.
So each setting the run does not fix (``--param``) is chosen by a small search, the strategy's
defaults first: the same split is applied once more, to the training data only (seed + 1),
every candidate is fitted on the inner training part and asked, as a strategy, for its top k
for the inner held-out customers; the best precision@k wins (on a tie, the earlier candidate:
the defaults first). The test split is never seen. The choice and the validation scores are
printed as a note, and the fitted settings are in the report.

The search for ALS is a walk, not a fixed grid, because the best regularisation moves with the
data (its size, the interaction weights, the weighting) and a grid with fixed ends misses it on
data larger or weighted otherwise: the regularisation is climbed by factors of two from
``LADDER_START`` while it improves (``ladder``), then the factors, the BM25 weighting and the
confidence scale ``alpha`` are each tried from the best so far, each with its own ladder where
it moves the best regularisation. Each of these later steps replaces the best only when it
beats it by more than the noise of the validation sample (``Validation.beats``): the more
candidates are tried, the likelier one of them wins on that sample by chance alone.
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
#: The regularisation a ladder starts from, and its step.
LADDER_START = 10.0
LADDER_STEP = 2.0
#: A ladder stops after this many rungs in a row that do not beat the best, or this many in all.
LADDER_PATIENCE = 2
LADDER_RUNGS = 12



@dataclass(frozen=True)
class Validation:
    """A candidate's precision@k for each validation customer."""

    precision: np.ndarray

    @property
    def mean(self) -> float:
        return float(self.precision.mean()) if len(self.precision) else 0.0

    def beats(self, other: Validation) -> bool:
        """Better than ``other`` by more than one standard error of the paired difference
        over the same customers: a lead the sample's noise does not explain."""
        diff = self.precision - other.precision
        if len(diff) < 2:
            return False
        return bool(diff.mean() > diff.std(ddof=1) / np.sqrt(len(diff)))


#: A candidate's validation (the run's fixed settings are applied by ``tune``).
Score = Callable[[dict[str, Any]], Validation]
#: A search: given the settings the run fixes, scores the candidates it chooses to try and
#: returns its choice (None: the best scored, the earliest of equals).
Search = Callable[[Mapping[str, Any], Score], dict[str, Any] | None]


def ladder(score: Score, base: Mapping[str, Any], key: str, start: float
           ) -> tuple[float, Validation]:
    """The best ``key`` for ``base`` on a ladder of factors of ``LADDER_STEP`` from ``start``:
    upwards while it improves, downwards if up never did; (best value, its validation)."""
    best, best_score = start, score({**base, key: start})
    for step in (LADDER_STEP, 1 / LADDER_STEP):
        value, misses = start, 0
        for _ in range(LADDER_RUNGS):
            value *= step
            value_score = score({**base, key: value})
            if value_score.mean > best_score.mean:
                best, best_score, misses = value, value_score, 0
            else:
                misses += 1
                if misses >= LADDER_PATIENCE:
                    break
        if best != start:
            break
    return best, best_score


def cf_search(fixed: Mapping[str, Any], score: Score) -> dict[str, Any] | None:
    """Search ``cf``'s settings, its defaults first. BPR: factors 8 or 64 x SGD step 0.05 or
    0.01. ALS: the regularisation at 64 factors on a ladder; then 32 and 128 factors; then BM25
    weighting and alpha 0.25 and 4, each with a ladder of the regularisation from where its
    best is expected (alpha scales the confidences, so the best regularisation with them);
    last, the regularisation halfway (geometrically) to the rungs either side of the best.
    After the first ladder, a candidate replaces the best only if it ``beats`` it."""
    if fixed.get("model", "als") == "bpr":
        for factors, rate in itertools.product((8, 64), (0.05, 0.01)):
            score({"factors": factors, "learning_rate": rate})
        return None
    best: dict[str, Any] = {"factors": 8, "regularization": 0.1}
    best_score = score(best)
    first = True

    def consider(candidate: dict[str, Any], candidate_score: Validation) -> None:
        nonlocal best, best_score
        if (candidate_score.mean > best_score.mean if first
                else candidate_score.beats(best_score)):
            best, best_score = candidate, candidate_score

    def walk(base: dict[str, Any], start: float) -> None:
        if "regularization" in fixed:
            consider(base, score(base))
        else:
            reg, reg_score = ladder(score, base, "regularization", start)
            consider({**base, "regularization": reg}, reg_score)

    walk({"factors": 64}, LADDER_START)
    first = False
    for factors in (32, 128):
        candidate = {**best, "factors": factors}
        consider(candidate, score(candidate))
    if "weighting" not in fixed:
        walk({"factors": best["factors"], "weighting": "bm25"},
             best.get("regularization", LADDER_START))
    reg = best.get("regularization", LADDER_START)
    for alpha in (0.25, 4.0):
        if "alpha" not in fixed:
            walk({**best, "alpha": alpha}, reg * alpha ** 0.5)
    if "regularization" in best and "regularization" not in fixed:  # between two rungs
        for step in (LADDER_STEP ** 0.5, LADDER_STEP ** -0.5):
            candidate = {**best, "regularization": round(best["regularization"] * step, 6)}
            consider(candidate, score(candidate))
    return best


#: Strategies tuned, with the search of each.
SEARCHES: dict[str, Search] = {"cf": cf_search}


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
        best = next(score for settings, score in self.tried if settings == self.chosen)
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
        and keys among them are not tuned.
    :param inner_split: the evaluation's split, to apply to the training data.
    :param grid: the candidates, all tried in order; default: ``SEARCHES[name]``.
    :returns: None when the run fixes every setting the search would try.
    """
    search = SEARCHES[name] if grid is None else _grid_search(grid)
    if len(_candidates(search, fixed)) < 2:
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
    tried: list[tuple[dict[str, Any], Validation]] = []

    def score(candidate: dict[str, Any]) -> Validation:
        candidate = _unfixed(candidate, fixed)
        for seen, seen_score in tried:
            if seen == candidate:
                return seen_score
        strategy = strategy_class(inner.train.catalog, **{**fixed, **candidate})
        strategy.fit(inner.train)
        recommended = _top(strategy, inner.train, users, VALIDATION_K)
        hits = m.hit_matrix(recommended, relevant)
        tried.append((candidate, Validation(
            m.per_user(hits, n_relevant, VALIDATION_K)["precision"])))
        return tried[-1][1]

    chosen = search(fixed, score)
    if chosen is None:
        chosen = max(tried, key=lambda t: t[1].mean)[0]  # the first of equal scores
    return Tuned(name, _unfixed(chosen, fixed), [(c, v.mean) for c, v in tried],
                 int(len(users)))


def _grid_search(grid: Sequence[Mapping[str, Any]]) -> Search:
    """A search trying every candidate of ``grid`` in order."""
    def search(_fixed: Mapping[str, Any], score: Score) -> None:
        for candidate in grid:
            score(dict(candidate))
    return search


def _candidates(search: Search, fixed: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The distinct candidates ``search`` tries when every score ties (fitting nothing)."""
    seen: list[dict[str, Any]] = []

    def score(candidate: dict[str, Any]) -> Validation:
        candidate = _unfixed(candidate, fixed)
        if candidate not in seen:
            seen.append(candidate)
        return Validation(np.zeros(1))

    search(fixed, score)
    return seen


def _unfixed(candidate: Mapping[str, Any], fixed: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in candidate.items() if k not in fixed}


def _top(strategy: Strategy, data: TrainingData, users: np.ndarray, k: int) -> np.ndarray:
    """Each customer's top ``k`` from the strategy itself, -1 padding short lists."""
    index = data.catalog.index
    out = np.full((len(users), k), -1, dtype=np.int64)
    for row, user in enumerate(users.tolist()):
        shown = strategy.candidates(context_for(data, user), k)[:k]
        out[row, :len(shown)] = [index[c.product] for c in shown]
    return out


def _settings(settings: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"


__all__ = ["MIN_VALIDATION_CUSTOMERS", "SEARCHES", "VALIDATION_CUSTOMERS", "VALIDATION_K",
           "Tuned", "Validation", "cf_search", "ladder", "tune"]
