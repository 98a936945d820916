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

from dataclasses import dataclass

from .catalog import Catalog, Exclusion, ProductKind
from .context import FailureReason, Moment, RequestContext
from .i18n import join, tr

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


def obstacle(catalog: Catalog, context: RequestContext) -> Exclusion:
    """Why ``context.product`` cannot be taken: the catalog check of the business itself (as
    if the customer were only looking at it), else what ``failure_reason`` says. What keeps
    the customer from it on every channel comes before the calling channel: that is the
    obstacle the alternatives must get round."""
    look = context.evolve(moment=Moment.QUERY, product=None, failure_reason=None)
    i = catalog.index[context.product]
    code = Exclusion(int(catalog.exclusions(look, channels=False)[i])) or Exclusion(
        int(catalog.exclusions(look)[i])
    )
    if code is Exclusion.OK and context.failure_reason is not None:
        return _FROM_REASON.get(context.failure_reason, Exclusion.OK)
    return code


def alternatives(catalog: Catalog, context: RequestContext) -> list[Alternative]:
    """The alternatives to ``context.product`` for this customer, best tier first."""
    failed = catalog[context.product]
    code = obstacle(catalog, context)
    lo = context.locale
    look = context.evolve(moment=Moment.QUERY, product=None, failure_reason=None)
    can = catalog.exclusions(look, channels=False) == Exclusion.OK
    can[catalog.index[failed.id]] = False
    held = context.customer.holdings
    name = failed.display_name(lo)
    why = (
        catalog.explain(failed.id, code, look)
        if code is not Exclusion.OK
        else tr(lo, "{name} could not be ordered", name=name)
    )
    out: dict[str, Alternative] = {}

    def add(product: str, score: float, reason: str) -> None:
        if product not in out and can[catalog.index[product]]:
            out[product] = Alternative(product, score, reason)

    def label(product: str) -> str:
        return catalog[product].display_name(lo)

    if code in _TERMINAL:
        for p in catalog:
            if p.terminal is not None and p.terminal.meets(failed.eligibility):
                add(
                    p.id,
                    REMOVES,
                    tr(lo, "{why}: with {device} you can order it", why=why, device=label(p.id)),
                )
        network = context.terminal.network
        for upgrade in _upgrades_of(catalog, held, failed.category):
            add(
                upgrade,
                REMOVES * 0.95,
                tr(
                    lo,
                    "{why}: {upgrade} upgrades your {held} and works on your {network} phone",
                    why=why,
                    upgrade=label(upgrade),
                    network=network,
                    held=join(lo, [label(h) for h in sorted(catalog[upgrade].upgrades & held)]),
                ),
            )
    elif code is Exclusion.MISSING_PREREQUISITE:
        for missing in _missing(catalog, failed.id, held):
            add(
                missing,
                REMOVES,
                tr(lo, "{why}: order {missing} first", why=why, missing=label(missing)),
            )
    elif code is Exclusion.CONFLICT:
        clash = (catalog.conflicts_of(failed.id) & held) - failed.upgrades
        for c in sorted(clash):
            for upgrade in catalog.upgrade_paths(c):
                add(
                    upgrade,
                    REMOVES,
                    tr(
                        lo,
                        "{why}: {upgrade} upgrades your {held} instead",
                        why=why,
                        upgrade=label(upgrade),
                        held=label(c),
                    ),
                )

    candidates = [
        p
        for p in catalog
        if p.kind is not ProductKind.QUERY and p.id not in out and can[catalog.index[p.id]]
    ]
    closeness = {p.id: abs(p.price - failed.price) for p in candidates}
    same = sorted(
        (p.id for p in candidates if p.category == failed.category), key=lambda p: (closeness[p], p)
    )
    for rank, p in enumerate(same):
        add(
            p,
            SAME_CATEGORY * (1 - 0.01 * rank),
            tr(
                lo,
                "{why}: {name} is the same kind of business and you can take it now",
                why=why,
                name=label(p),
            ),
        )
    rest = sorted(
        (
            p.id
            for p in candidates
            if p.category != failed.category and catalog[p.id].kind is ProductKind.BUSINESS
        ),
        key=lambda p: (closeness[p], p),
    )[:REST_LIMIT]
    for rank, p in enumerate(rest):
        add(
            p,
            REST * (1 - 0.01 * rank),
            tr(lo, "{why}: you can take {name} now", why=why, name=label(p)),
        )
    return list(out.values())


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


__all__ = ["Alternative", "alternatives", "obstacle"]
