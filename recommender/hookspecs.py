"""The plugin author's reference: every hook the recommender calls, in the order it calls them.

A plugin is a module or object with functions marked ``@hookimpl`` whose names match the specs
below. pluggy passes arguments by name, so an implementation may accept any subset of a spec's
parameters, e.g. ``def register_strategies(config): ...``. A parameter given a default value
is never passed (pluggy treats it as optional and leaves the default): declare every argument
you read without one. Hooks are validated when the plugin is registered: a misspelled hook
name or an argument the spec does not have is an error at start-up, naming the plugin.

Install a third-party plugin as a package with an entry point in the ``recommender`` group::

    [project.entry-points.recommender]
    my_plugin = "my_package.plugin"

Set ``RECOMMENDER_PLUGINS=name1,name2`` to load only the named plugins (built-ins included).
Errors a plugin raises while serving are reported with the plugin's name (in the response's
debug output and the ``plugin_error`` hook) and never fail the request.

Language: every request is answered in one locale, ``context.locale`` (``"zh-CN"`` or ``"en"``;
the request's ``locale``, else the channel's ``[locale]`` default of ``config.toml``). Every
sentence a plugin writes for the customer or the agent (a candidate's reason, an exclusion's
detail) should be in it: name businesses with ``product.display_name(context.locale)`` and
translate with ``recommender.i18n.tr(context.locale, "English {placeholder}", ...)`` or your own
catalogs. ``context.event`` carries the request's service event, if any.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

if TYPE_CHECKING:
    from .catalog import Catalog
    from .config import Config
    from .context import Channel, Customer, RequestContext, Terminal
    from .engine import Ineligible, Recommendation
    from .store import FeedbackEvent, Store
    from .strategy import Strategy

hookspec = pluggy.HookspecMarker("recommender")
hookimpl = pluggy.HookimplMarker("recommender")

_F = TypeVar("_F", bound=Callable[..., Any])


def does_not_block(function: _F) -> _F:
    """Mark a context provider (``channel_settings``, ``load_customer``, ``load_terminal``,
    ``extra_context``) that waits on nothing: no network, no lock, no remote database.

    Context providers run in the engine's thread pool, so one that hangs never holds a
    request past ``context_timeout_ms``. When every provider loaded is marked, and their
    calls have a record of speed, the context is gathered on the request's own thread
    instead, saving the hand-off to the pool; a slow call sends it back to the pool.
    Put it under ``@hookimpl``::

        @hookimpl
        @does_not_block
        def extra_context(context, store): ...
    """
    function.recommender_blocks = False  # type: ignore[attr-defined]
    return function


def blocks(function: Callable[..., Any]) -> bool:
    """Whether a hook implementation may wait (it is not marked :func:`does_not_block`)."""
    return getattr(function, "recommender_blocks", True) is not False


# -------------------------------------------------------------------------------------------
# Start-up: strategies
# -------------------------------------------------------------------------------------------


@hookspec
def register_strategies(config: Config, catalog: Catalog, store: Store | None
                        ) -> Iterable[Strategy] | None:
    """Return the strategies this plugin provides.

    Called once when an engine is built (serving, training and evaluation alike). Read your
    settings with ``config.strategy_settings(name)``: the ``[strategies.<name>]`` table of the
    workspace's ``config.toml``. Strategy names must be unique across all plugins.

    Each request's context reaches ``Strategy.candidates(context, n)`` with ``context.locale``
    (``"zh-CN"`` or ``"en"``): write each candidate's ``reason`` in that language, e.g.
    ``tr(context.locale, "often taken with {name}", name=p.display_name(context.locale))``
    with ``recommender.i18n.tr``. A reason in another language is served as it is.

    :param config: the workspace configuration.
    :param catalog: the product catalog the strategies will recommend from.
    :param store: the store the engine serves from, for a strategy that learns online from
        the feedback log (``None`` when training or evaluating offline).
    :returns: an iterable of :class:`recommender.Strategy` instances, or ``None`` for none.
    """


# -------------------------------------------------------------------------------------------
# Per request: context providers (the C and T of TCPC, and channel settings)
# -------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def load_customer(customer_id: str, store: Store | None) -> Customer | None:
    """Return the customer's profile and current holdings.

    Stops at the first non-``None`` result. The built-in store provider runs last, so a plugin
    reading a CRM or a profile cache takes precedence; return ``None`` to let the next one try.
    Attributes the request carries inline override what is returned here.

    :param customer_id: the subscriber id from the request.
    :param store: the workspace's embedded store, or ``None`` when the engine has none.
    :returns: a :class:`recommender.Customer`, or ``None`` if this provider does not know them.
    """


@hookspec(firstresult=True)
def load_terminal(customer_id: str, store: Store | None) -> Terminal | None:
    """Return the customer's current terminal (network, smartphone, OS, model).

    Stops at the first non-``None`` result; the built-in store provider runs last. A terminal in
    the request overrides the fields it names.

    :param customer_id: the subscriber id from the request.
    :param store: the workspace's embedded store, or ``None``.
    :returns: a :class:`recommender.Terminal`, or ``None`` if unknown to this provider.
    """


@hookspec(firstresult=True)
def channel_settings(channel_id: str, config: Config) -> Channel | None:
    """Return the settings of a channel: above all how many suggestions it can show.

    Stops at the first non-``None`` result; the built-in provider (``[channels]`` of
    ``config.toml``) runs last.

    :param channel_id: one of ``app``, ``web``, ``hotline``, ``sms``, ``wechat``, ``store``.
    :param config: the workspace configuration.
    :returns: a :class:`recommender.Channel`, or ``None``.
    """


@hookspec
def extra_context(context: RequestContext, store: Store | None) -> Mapping[str, Any] | None:
    """Return extra attributes to add to the request context before strategies run.

    Every implementation is called; the mappings are merged into ``context.attributes`` in
    registration order. Use it for signals a strategy needs that TCPC does not model (a data
    balance running low, a campaign flag). Keys should be prefixed with your plugin's name.
    The stored customer attributes are already in ``context.customer.attributes``; the
    customer's recent events are ``store.recent_events(context.customer.id, since=...,
    limit=..., kinds=...)`` (newest first, at most 1,000). Keep it fast: it runs within
    ``engine.context_timeout_ms`` on every request.

    :param context: the request context built so far.
    :param store: the workspace's store (None for an engine built without one).
    :returns: a mapping of attribute names to JSON-serialisable values, or ``None``.
    """


# -------------------------------------------------------------------------------------------
# Per request: eligibility (after strategies, before the list is trimmed)
# -------------------------------------------------------------------------------------------


@hookspec
def check_eligibility(
    context: RequestContext, catalog: Catalog, products: Sequence[str], explain: bool,
    store: Store | None, config: Config, now: float,
) -> Iterable[Ineligible] | None:
    """Say which of ``products`` this customer cannot take, and why.

    Every implementation is called and every exclusion applies. The built-in check covers
    holdings, conflicts, prerequisites, upgrades, terminal, channel and customer conditions
    from the catalog; add a plugin for rules that live elsewhere (credit checks, blacklists).
    If an implementation raises, every product it was asked about is excluded (fail closed:
    an ineligible offer is worse than none), and the error is reported with its name.

    A business the calling channel cannot transact is kept by the built-in check on channels
    that allow hand-offs (``[handoff]``); a plugin that excludes it anyway wins (every
    exclusion applies).

    :param context: the request context; write ``detail`` in ``context.locale``.
    :param catalog: the product catalog.
    :param products: the candidate product ids proposed by the strategies.
    :param explain: whether the caller will show the ``detail`` sentences (debug requests,
        pre-order checks); when False, a plugin may leave ``detail`` empty and skip the work.
    :param store: the engine's store (None when it has none), for rules that read the
        customer's history, like the built-in contact policy.
    :param config: the workspace configuration.
    :param now: the request's time, unix seconds (the engine's clock; simulations move it).
    :returns: :class:`recommender.Ineligible` records (product, code, detail), or ``None``.
    """


# -------------------------------------------------------------------------------------------
# Observing: results, feedback and faults
# -------------------------------------------------------------------------------------------


@hookspec
def recommendation_served(context: RequestContext, recommendation: Recommendation) -> None:
    """Called after each recommendation is built, before it is returned.

    For logging, metrics, A/B assignment records. Keep it fast: it runs on the request path.
    Errors are reported and ignored.

    :param context: the request context.
    :param recommendation: what is returned to the caller.
    """


@hookspec
def feedback_received(event: FeedbackEvent) -> None:
    """Called after a feedback event (impression, click, accept, dismiss) is stored durably.

    :param event: the stored event.
    """


@hookspec
def plugin_error(plugin_name: str, stage: str, error: BaseException) -> None:
    """Called when a plugin fails or overruns its budget while serving a request.

    :param plugin_name: the plugin or strategy that failed.
    :param stage: where: ``strategy``, ``timeout``, ``garbage``, ``context``,
        ``context_timeout``, ``eligibility``, ``observer``, or ``skipped`` (not called because
        two earlier calls are still running; ``plugin_name`` is ``"context providers"`` when
        the providers were skipped).
    :param error: the exception (a ``TimeoutError`` for a budget overrun or a skipped call).
    """
