"""The customer view: the TCPC context of one customer, what every channel would offer at
every moment and why (the debug answer, exclusions included), and a what-if panel that asks
the engine again with another terminal, business, failure reason or service event."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, g, redirect, render_template, request, url_for

from recommender.catalog import ProductKind
from recommender.context import CHANNEL_IDS, OS, FailureReason, Moment, Network
from recommender.engine import Engine, RecommendationRequest
from recommender.errors import RecommenderError, UnknownCustomerError
from recommender.store import CustomerEvent

from ..state import service
from .preview import Ask, ask, preview_engine

blp = Blueprint("customers", __name__, url_prefix="/customers")

MOMENTS = tuple(m.value for m in Moment)
#: Moments at which a request must name the business acted on.
NEEDS_PRODUCT = frozenset({Moment.TRANSACTION.value, Moment.FAILURE.value})
PAGE_SIZE = 50


@dataclass(frozen=True)
class WhatIf:
    """The what-if panel's settings, read from the query string; empty means "as stored"."""

    network: str = ""
    smartphone: str = ""
    os: str = ""
    product: str = ""
    query_product: str = ""
    failure_reason: str = FailureReason.NOT_ELIGIBLE.value
    event: str = ""
    channel: str = CHANNEL_IDS[0]
    moment: str = ""
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def terminal(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.network:
            out["network"] = self.network
        if self.smartphone:
            out["smartphone"] = self.smartphone == "yes"
        if self.os:
            out["os"] = self.os
        return out

    def question(self, channel: str, moment: str) -> Ask | None:
        """What to ask for one cell of the grid; None when the moment needs a business and
        none is chosen."""
        if moment == Moment.QUERY.value:
            return Ask(channel, moment, self.query_product or None, event=self.event or None)
        if moment in NEEDS_PRODUCT and not self.product:
            return None
        return Ask(channel, moment, self.product or None,
                   self.failure_reason if moment == Moment.FAILURE.value else None,
                   self.event or None)


def read_what_if(args: Mapping[str, str], engine: Engine, default_product: str,
                 default_reason: str | None) -> WhatIf:
    """The panel's settings from ``args``; a value outside its choices is dropped and named
    in ``problems`` (so a hand-edited address cannot make a page fail)."""
    problems: dict[str, str] = {}
    catalog = engine.catalog

    def choice(name: str, allowed: Any, default: str = "") -> str:
        value = args.get(name, default)
        if value == "" or value in allowed:
            return value
        problems[name] = value
        return default if default in allowed else ""

    businesses = {p.id for p in catalog if p.kind is not ProductKind.QUERY}
    query_services = {p.id for p in catalog if p.kind is ProductKind.QUERY}
    product = choice("product", businesses, default_product)
    moment = choice("moment", MOMENTS, "")
    return WhatIf(
        network=choice("network", {n.value for n in Network}),
        smartphone=choice("smartphone", {"yes", "no"}),
        os=choice("os", {o.value for o in OS}),
        product=product,
        query_product=choice("query_product", query_services),
        failure_reason=choice("failure_reason", {r.value for r in FailureReason},
                              default_reason or FailureReason.NOT_ELIGIBLE.value)
        or FailureReason.NOT_ELIGIBLE.value,
        event=choice("event", set(engine.events.events)),
        channel=choice("channel", CHANNEL_IDS, CHANNEL_IDS[0]) or CHANNEL_IDS[0],
        moment=moment or (Moment.SUCCESS.value if product else Moment.QUERY.value),
        problems=problems)


def default_business(engine: Engine, events: list[CustomerEvent]) -> tuple[str, str | None]:
    """The business the customer acted on last (and why it failed, if it did): what the grid
    asks about at the moments that need one, until the what-if panel says otherwise."""
    for event in events:
        product = engine.catalog.get(event.product)
        if product is not None and product.kind is not ProductKind.QUERY:
            reason = event.failure_reason if event.kind == "failure" else None
            return product.id, reason
    return "", None


@dataclass(frozen=True)
class Grid:
    """Every channel x moment answer for one customer."""

    cells: dict[tuple[str, str], dict[str, Any] | None]
    what_if: WhatIf


def grid(engine: Engine, customer_id: str, what_if: WhatIf, locale: str) -> Grid:
    cells: dict[tuple[str, str], dict[str, Any] | None] = {}
    for channel in CHANNEL_IDS:
        for moment in MOMENTS:
            question = what_if.question(channel, moment)
            cells[channel, moment] = None if question is None else ask(
                engine, customer_id, question, locale=locale, terminal=what_if.terminal,
                request_id=f"console:{customer_id}:{channel}:{moment}")
    return Grid(cells, what_if)


@blp.route("/")
def search() -> Any:
    """Find a customer by id: an exact id opens them, otherwise the ids that start so."""
    state = service()
    query = request.args.get("q", "").strip()
    after = request.args.get("after") or None
    store = state.slot.engine.store
    if store is None:
        return render_template("customers.html", query=query, ids=[], more=None,
                               no_store=True)
    if query and not after and store.customer(query) is not None:
        return redirect(url_for("customers.view", customer_id=query), 303)
    ids = store.customer_ids(PAGE_SIZE + 1, prefix=query, after=after)
    more = ids[PAGE_SIZE - 1] if len(ids) > PAGE_SIZE else None
    return render_template("customers.html", query=query, ids=ids[:PAGE_SIZE], more=more,
                           no_store=False)


@blp.route("/<customer_id>")
def view(customer_id: str) -> Any:
    return _page(customer_id, "customer.html")


@blp.route("/<customer_id>/results")
def results(customer_id: str) -> Any:
    """The grid and the what-if answer alone, for the panel to replace in place."""
    return _page(customer_id, "customer_results.html")


def _page(customer_id: str, template: str) -> Any:
    state = service()
    locale = g.locale
    with state.slot.lease() as served:
        engine = preview_engine(served)
        store = engine.store
        history = store.recent_events(customer_id, limit=10) if store is not None else []
        responses = store.feedback_of(customer_id, limit=10) if store is not None else []
        product, reason = default_business(engine, history)
        what_if = read_what_if(request.args, engine, product, reason)
        try:
            context, warnings = engine.build_context(RecommendationRequest(
                customer_id=customer_id, channel=what_if.channel, moment=Moment.QUERY.value,
                locale=locale))
        except UnknownCustomerError:
            return render_template("customer_unknown.html", customer_id=customer_id), 404
        except RecommenderError as e:
            return render_template("customer_unknown.html", customer_id=customer_id,
                                   problem=str(e)), 400
        answers = grid(engine, customer_id, what_if, locale)
        detail_question = what_if.question(what_if.channel, what_if.moment)
        detail = answers.cells.get((what_if.channel, what_if.moment))
        return render_template(
            template, customer=context.customer, terminal=context.terminal,
            extra=context.attributes, warnings=warnings, history=history,
            responses=responses, grid=answers, what_if=what_if, detail=detail,
            detail_needs_product=detail_question is None, catalog=engine.catalog,
            events=sorted(engine.events.events), channels=CHANNEL_IDS, moments=MOMENTS,
            networks=[n.value for n in Network], systems=[o.value for o in OS],
            reasons=[r.value for r in FailureReason],
            businesses=[p for p in engine.catalog if p.kind is not ProductKind.QUERY],
            query_services=[p for p in engine.catalog if p.kind is ProductKind.QUERY],
            caps=served.config.contact_policy.caps,
            model_version=engine.model_version)
