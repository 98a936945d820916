"""Blending strategies' candidates on per-request arrays.

Each strategy's output becomes a :class:`Proposal` (catalog rows, scores, and a way to write a
reason), checked for garbage once. The :class:`Blend` sums the weighted, max-normalised scores
over the catalog's rows, and writes the proposers' reasons only for the businesses shown.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .catalog import Catalog
from .strategy import Candidate, Candidates


@dataclass(slots=True)
class Proposal:
    """One strategy's valid candidates for one request: unique catalog rows, best first."""

    name: str
    rows: np.ndarray
    scores: np.ndarray
    reason_of: Callable[[int], str]

    def order(self, catalog: Catalog) -> list[str]:
        """The proposed businesses by score, best first, ties by id."""
        ids = catalog.ids
        ranked = sorted(zip((-self.scores).tolist(), self.rows.tolist(), strict=True),
                        key=lambda x: (x[0], ids[x[1]]))
        return [ids[row] for _, row in ranked]


def propose(name: str, output: Iterable[object], catalog: Catalog) -> tuple[Proposal, int]:
    """``output`` of strategy ``name`` as a :class:`Proposal`, and how many of its items were
    garbage (not a Candidate, a score that is not finite, a business not in the catalog). A
    business proposed twice keeps its best score and that candidate's reason."""
    if isinstance(output, Candidates) and output.catalog is catalog:
        return Proposal(name, output.rows, output.scores, output.reason_of), 0
    index = catalog.index
    best: dict[int, Candidate] = {}
    garbage = 0
    for c in output:
        if not isinstance(c, Candidate) or not math.isfinite(c.score):
            garbage += 1
            continue
        row = index.get(c.product)
        if row is None:
            garbage += 1
            continue
        kept = best.get(row)
        if kept is None or c.score > kept.score:
            best[row] = c
    rows = np.fromiter(best, dtype=np.int64, count=len(best))
    scores = np.fromiter((c.score for c in best.values()), dtype=np.float64, count=len(best))
    return Proposal(name, rows, scores, lambda row: best[row].reason), garbage


class Blend:
    """The weighted sum of the proposals' max-normalised scores, per business.

    A strategy's scores are divided by its best; scores on another scale (its best is not
    positive, or a score is) fall back to ``1 / (rank + 2)`` by rank.
    """

    def __init__(self, catalog: Catalog, proposals: Sequence[Proposal],
                 weights: Mapping[str, float]):
        self.catalog = catalog
        n = len(catalog)
        total = np.zeros(n)
        proposed = np.zeros(n, dtype=bool)
        self._parts: list[tuple[Proposal, np.ndarray]] = []
        for p in proposals:
            if not len(p.rows):
                continue
            scores = p.scores
            top = scores.max()
            if top > 0 and scores.min() > 0:
                norm = scores / top
            else:  # another scale: by rank where a score is not positive
                order = np.argsort(-scores, kind="stable")
                rank = np.empty(len(order), dtype=np.float64)
                rank[order] = np.arange(len(order))
                norm = np.where(scores > 0, scores / top, 1.0 / (rank + 2)) if top > 0 \
                    else 1.0 / (rank + 2)
            contribution = weights[p.name] * norm
            total[p.rows] += contribution
            proposed[p.rows] = True
            self._parts.append((p, contribution))
        self.rows = np.flatnonzero(proposed)
        self._total = total
        self._proposed = proposed
        #: Per proposal, each catalog row's position in it (-1: not proposed).
        self._positions: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, product: object) -> bool:
        row = self.catalog.index.get(product)  # type: ignore[arg-type]
        return row is not None and bool(self._proposed[row])

    def products(self) -> list[str]:
        """The blended businesses, in catalog order."""
        ids = self.catalog.ids
        return [ids[row] for row in self.rows.tolist()]

    def scores(self, exclude: Iterable[str] = ()) -> dict[str, float]:
        """Each blended business's total, leaving out ``exclude``."""
        ids = self.catalog.ids
        out = dict(zip((ids[row] for row in self.rows.tolist()),
                       self._total[self.rows].tolist(), strict=True))
        for product in exclude:
            out.pop(product, None)
        return out

    def proposers(self, product: str) -> list[tuple[str, str, float]]:
        """``(strategy, reason, contribution)`` of each strategy that proposed ``product``,
        largest contribution first; the reasons are written here, for shown businesses only."""
        row = self.catalog.index.get(product)
        if row is None or not self._proposed[row]:
            return []
        if self._positions is None:  # built on the first call: only shown ones get here
            n = len(self.catalog)
            self._positions = []
            for p, _ in self._parts:
                at = np.full(n, -1, dtype=np.int32)
                at[p.rows] = np.arange(len(p.rows), dtype=np.int32)
                self._positions.append(at)
        out = []
        for (proposal, contribution), position in zip(self._parts, self._positions,
                                                      strict=True):
            at = int(position[row])
            if at >= 0:
                out.append((proposal.name, proposal.reason_of(row), float(contribution[at])))
        out.sort(key=lambda x: -x[2])
        return out
