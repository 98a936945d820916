"""Failure alternatives derived from the catalog: why an order fails, and what works instead.

When business X fails, the obstacle is read from the catalog check of X for this customer and
terminal (or, when the catalog sees none, from the channel's ``failure_reason``). The
alternatives come in three tiers, each reason naming the obstacle:

1. what removes it: a device whose terminal meets X's network, smartphone or OS condition, and
   the upgrade of a held business that works on the current terminal; the missing
   prerequisite; for a conflict, the business that upgrades the conflicting one;
2. the businesses of X's category the customer can take now;
3. the rest of what the customer can take now.

Every alternative is a business the customer can take (the catalog check, calling channel
aside: the engine's eligibility step and hand-offs decide the channel).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .catalog import Catalog, Exclusion, ProductKind
from .context import FailureReason, Moment, RequestContext
from .i18n import N_, join, tr

#: Scores of the three tiers (a strategy's scores are scaled to its best, so only the order
#: and the gaps matter).
REMOVES, SAME_CATEGORY, REST = 1.0, 0.5, 0.2
#: How many of the rest are proposed (ordered by price closeness to the failed business).
REST_LIMIT = 10

_FROM_REASON = {
    FailureReason.CONFLICT: Exclusion.CONFLICT,
    FailureReason.MISSING_PREREQUISITE: Exclusion.MISSING_PREREQUISITE,
}
_TERMINAL = (Exclusion.TERMINAL_NETWORK, Exclusion.TERMINAL_SMARTPHONE, Exclusion.TERMINAL_OS)


@dataclass(frozen=True, slots=True)
class Alternative:
    """A business to offer instead of the failed one: its id, tier score and reason."""

    product: str
    score: float
    reason: str


def obstacle(catalog: Catalog, context: RequestContext,
             codes: np.ndarray | None = None) -> Exclusion:
    """Why ``context.product`` cannot be taken: the catalog check of the business itself (as
    if the customer were only looking at it), else what ``failure_reason`` says. What keeps
    the customer from it on every channel comes before the calling channel: that is the
    obstacle the alternatives must get round."""
    look = context.evolve(moment=Moment.QUERY, product=None, failure_reason=None)
    i = catalog.index[context.product]
    if codes is None:  # the catalog check of every business, calling channel aside
        codes = catalog.exclusions(look, channels=False)
    code = Exclusion(int(codes[i])) or Exclusion(int(catalog.exclusions(look)[i]))
    if code is Exclusion.OK and context.failure_reason is not None:
        return _FROM_REASON.get(context.failure_reason, Exclusion.OK)
    return code


def alternatives(catalog: Catalog, context: RequestContext) -> list[Alternative]:
    """The alternatives to ``context.product`` for this customer, best tier first."""
    rows, scores, reason = ranked_alternatives(catalog, context)
    ids = catalog.ids
    return [Alternative(ids[row], score, reason(row))
            for row, score in zip(rows, scores, strict=True)]


def ranked_alternatives(catalog: Catalog, context: RequestContext, limit: int | None = None
                        ) -> tuple[list[int], list[float], Callable[[int], str]]:
    """The first ``limit`` (all: None) alternatives as catalog rows and tier scores, best
    tier first, and a function writing the reason of a row (called for those shown only)."""
    failed = catalog[context.product]
    fi = catalog.index[failed.id]
    look = context.evolve(moment=Moment.QUERY, product=None, failure_reason=None)
    codes = catalog.exclusions(look, channels=False)
    code = obstacle(catalog, context, codes)
    lo = context.locale
    can = codes == Exclusion.OK
    can[fi] = False
    held = context.customer.holdings
    layout = _layout(catalog)
    rows: list[int] = []
    scores: list[float] = []
    writers: dict[int, Callable[[], str]] = {}
    why_cache: list[str] = []

    def why() -> str:
        if not why_cache:
            why_cache.append(catalog.explain(failed.id, code, look) if code is not Exclusion.OK
                             else tr(lo, "{name} could not be ordered",
                                     name=failed.display_name(lo)))
        return why_cache[0]

    def label(row: int) -> str:
        return catalog.products[row].display_name(lo)

    def add(row: int, score: float, write: Callable[[], str]) -> None:
        if can[row] and row not in writers:
            can[row] = False  # taken: a business is offered once, in its best tier
            rows.append(row)
            scores.append(score)
            writers[row] = write

    index = catalog.index
    if code in _TERMINAL:
        for row in layout.devices:
            if catalog.products[row].terminal.meets(failed.eligibility):  # type: ignore[union-attr]
                add(row, REMOVES, lambda row=row: tr(
                    lo, "{why}: with {device} you can order it", why=why(), device=label(row)))
        network = context.terminal.network
        for upgrade in _upgrades_of(catalog, held, failed.category):
            add(index[upgrade], REMOVES * 0.95, lambda upgrade=upgrade: tr(
                lo, "{why}: {upgrade} upgrades your {held} and works on your {network} phone",
                why=why(), upgrade=label(index[upgrade]), network=network,
                held=join(lo, [label(index[h]) for h in sorted(catalog[upgrade].upgrades & held)])))
    elif code is Exclusion.MISSING_PREREQUISITE:
        for missing in _missing(catalog, failed.id, held):
            add(index[missing], REMOVES, lambda missing=missing: tr(
                lo, "{why}: order {missing} first", why=why(), missing=label(index[missing])))
    elif code is Exclusion.CONFLICT:
        clash = (catalog.conflicts_of(failed.id) & held) - failed.upgrades
        for c in sorted(clash):
            for upgrade in catalog.upgrade_paths(c):
                add(index[upgrade], REMOVES, lambda upgrade=upgrade, c=c: tr(
                    lo, "{why}: {upgrade} upgrades your {held} instead", why=why(),
                    upgrade=label(index[upgrade]), held=label(index[c])))

    pool = can & ~layout.query
    same = layout.category == layout.category[fi]
    for mask, score, most, message in (
            (pool & same, SAME_CATEGORY, None,
             N_("{why}: {name} is the same kind of business and you can take it now")),
            (pool & ~same & layout.business, REST, REST_LIMIT,
             N_("{why}: you can take {name} now"))):
        left = None if limit is None else limit - len(rows)
        if left is not None and left <= 0:
            break
        found = np.flatnonzero(mask)
        keep = min(x for x in (most, left, len(found)) if x is not None)
        found = _closest(found, np.abs(layout.price[found] - failed.price), layout.id_rank,
                         keep)
        for rank, row in enumerate(found.tolist()):
            add(row, score * (1 - 0.01 * rank), lambda row=row, message=message: tr(
                lo, message, why=why(), name=label(row)))
    if limit is not None:
        rows, scores = rows[:limit], scores[:limit]
    return rows, scores, lambda row: writers[row]()


def _closest(rows: np.ndarray, distance: np.ndarray, id_rank: np.ndarray, keep: int
             ) -> np.ndarray:
    """The ``keep`` of ``rows`` nearest by ``distance`` (ties by ``id_rank``), in that order.

    Only the rows as near as the ``keep``-th are sorted: a failed order has a handful of
    alternatives shown among thousands of businesses."""
    if keep <= 0:
        return rows[:0]
    if len(rows) > 4 * keep:
        near = distance <= np.partition(distance, keep - 1)[keep - 1]
        rows, distance = rows[near], distance[near]
    return rows[np.lexsort((id_rank[rows], distance))][:keep]


@dataclass(frozen=True, slots=True)
class _Layout:
    """A catalog's arrays for alternatives, built once per catalog."""

    category: np.ndarray
    query: np.ndarray
    business: np.ndarray
    price: np.ndarray
    id_rank: np.ndarray
    devices: tuple[int, ...]


_LAYOUTS: weakref.WeakKeyDictionary[Catalog, _Layout] = weakref.WeakKeyDictionary()


def _layout(catalog: Catalog) -> _Layout:
    layout = _LAYOUTS.get(catalog)
    if layout is None:
        products = catalog.products
        codes: dict[str, int] = {}
        layout = _LAYOUTS[catalog] = _Layout(
            category=np.array([codes.setdefault(p.category, len(codes)) for p in products],
                              dtype=np.int64),
            query=np.array([p.kind is ProductKind.QUERY for p in products], dtype=bool),
            business=np.array([p.kind is ProductKind.BUSINESS for p in products], dtype=bool),
            price=np.array([p.price for p in products], dtype=np.float64),
            id_rank=np.argsort(np.argsort(np.array(catalog.ids), kind="stable"),
                               kind="stable"),
            devices=tuple(i for i, p in enumerate(products) if p.terminal is not None))
    return layout


def _upgrades_of(catalog: Catalog, held: frozenset[str], category: str) -> list[str]:
    """Businesses of ``category`` that upgrade something the customer holds."""
    return sorted(
        {
            u
            for h in held
            if h in catalog
            for u in catalog.upgrade_paths(h)
            if catalog[u].category == category
        }
    )


def _missing(catalog: Catalog, product: str, held: frozenset[str]) -> list[str]:
    """The prerequisites ``product`` lacks, their own missing ones first (depth first)."""
    p = catalog[product]
    direct = sorted(p.requires - held)
    if not direct and p.requires_any and not p.requires_any & held:
        direct = sorted(p.requires_any)
    out: list[str] = []
    for d in direct:
        for deeper in _missing(catalog, d, held):
            if deeper not in out:
                out.append(deeper)
        if d not in out:
            out.append(d)
    return out


__all__ = ["Alternative", "alternatives", "obstacle", "ranked_alternatives"]
