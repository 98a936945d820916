"""The hotline agent's assistant (来话助手): why the caller is probably calling, and one line per
suggestion for the agent to say.

The likely need comes from what the engine knows happened recently: the request's service
event, an order that failed in the last hour (from the store's event log), a suspended line,
arrears or data running low (customer tags). The talking point is the catalog's template for
the business (``talking_point``, ``talking_point_en``) with ``{name}``, ``{price}``, ``{plan}``,
``{terminal}`` and ``{network}`` filled from the context, else a sentence of the message
catalogs built from the suggestion's reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .catalog import Catalog, Exclusion
from .contact_policy import MAX_CLOCK_SKEW_S
from .context import Moment, RequestContext
from .i18n import tr

if TYPE_CHECKING:
    from .engine import Suggestion
    from .events import Events
    from .store import Store

#: Channels whose answers carry agent assist.
ASSIST_CHANNELS = frozenset({"hotline"})
#: How far back a failed order counts as the reason for a call.
RECENT_FAILURE_S = 3600
#: The category of base plans, named in talking points as ``{plan}``.
PLAN_CATEGORY = "plan"


def agent_line(catalog: Catalog, context: RequestContext, suggestion: Suggestion) -> str:
    """The agent's one line about ``suggestion``, in the context's locale."""
    lo = context.locale
    p = catalog[suggestion.product]
    template = p.talking_point_en if lo == "en" else p.talking_point
    price = f"{p.price:g}"
    values = {
        "name": p.display_name(lo),
        "price": price,
        "plan": _plan(catalog, context),
        "terminal": _terminal(context),
        "network": str(context.terminal.network),
    }
    if template:
        return template.format(**values)
    reason = suggestion.reasons[0] if suggestion.reasons else ""
    return tr(
        lo, "{name} ({price} yuan): {reason}", name=values["name"], price=price, reason=reason
    )


def likely_need(
    catalog: Catalog, context: RequestContext, events: Events, store: Store | None, now: float
) -> dict[str, Any]:
    """The caller's likely need and the signals behind it, the strongest first."""
    lo = context.locale
    signals: list[dict[str, Any]] = []
    if context.event is not None and (event := events.get(context.event)) is not None:
        signals.append(
            {"kind": "event", "product": None, "ts": None, "detail": event.localized_need(lo)}
        )
    if store is not None:
        look = context.evolve(moment=Moment.QUERY, product=None, failure_reason=None)
        codes = None
        for ts, product, _channel, _reason in store.recent_failures(
            context.customer.id, int(now) - RECENT_FAILURE_S, int(now) + MAX_CLOCK_SKEW_S
        ):  # a failure dated later (an import's typo) has not happened yet
            if product not in catalog:
                continue
            if codes is None:
                codes = catalog.exclusions(look)
            code = Exclusion(int(codes[catalog.index[product]]))
            name = catalog[product].display_name(lo)
            why = (
                catalog.explain(product, code, look)
                if code is not Exclusion.OK
                else tr(lo, "{name} could not be ordered", name=name)
            )
            minutes = max(1, round((now - ts) / 60))
            signals.append(
                {
                    "kind": "failed_order",
                    "product": product,
                    "ts": int(ts),
                    "detail": tr(
                        lo,
                        "Ordering {name} failed {minutes} minutes ago: {why}",
                        name=name,
                        minutes=minutes,
                        why=why,
                    ),
                }
            )
    holdings, tags = context.customer.holdings, context.customer.tags
    if "suspend_service" in holdings:
        signals.append(
            {
                "kind": "suspended",
                "product": "suspend_service",
                "ts": None,
                "detail": tr(lo, "The line is suspended: the caller may want it resumed"),
            }
        )
    if "arrears" in tags:
        signals.append(
            {
                "kind": "arrears",
                "product": None,
                "ts": None,
                "detail": tr(lo, "The account is in arrears: the caller may need to top up"),
            }
        )
    if "data_low" in tags:
        signals.append(
            {
                "kind": "data_low",
                "product": None,
                "ts": None,
                "detail": tr(lo, "Data is running low this month"),
            }
        )
    return {"likely_need": signals[0]["detail"] if signals else None, "signals": signals}


def _plan(catalog: Catalog, context: RequestContext) -> str:
    held = sorted(
        h
        for h in context.customer.holdings
        if h in catalog and catalog[h].category == PLAN_CATEGORY
    )
    if not held:
        return tr(context.locale, "current plan")
    return catalog[held[0]].display_name(context.locale)


def _terminal(context: RequestContext) -> str:
    t = context.terminal
    if t.model:
        return t.model
    if t.smartphone:
        return tr(context.locale, "{network} smartphone", network=t.network)
    return tr(context.locale, "{network} phone", network=t.network)


__all__ = ["ASSIST_CHANNELS", "agent_line", "likely_need"]
