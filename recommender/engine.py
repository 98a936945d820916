"""The engine: request -> context -> candidates -> eligibility -> blend -> response.

The HTTP API, the CLI and the evaluator all call :meth:`Engine.recommend`, so what is measured
offline is what is served. Each strategy runs isolated with a time budget: one that raises,
overruns or returns garbage is skipped and reported by name, and the request still succeeds.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pluggy

from .arbitration import COMPONENTS, EXPLORED, RANKED, Arbiter
from .assist import ASSIST_CHANNELS, agent_line, likely_need
from .blend import Blend, Proposal, propose
from .catalog import Catalog, Exclusion, ProductKind
from .config import Config
from .contact_policy import UNAVAILABLE
from .context import (
    Channel,
    Customer,
    Moment,
    RequestContext,
    Terminal,
    customer_from_mapping,
    parse_enum,
    terminal_from_mapping,
)
from .errors import (
    ConfigError,
    ContextError,
    PluginError,
    RecommenderError,
    UnknownCustomerError,
    UnknownProductError,
    did_you_mean,
)
from .events import Events
from .experiments import Experiments
from .handoff import Handoff
from .hookspecs import blocks
from .i18n import DEFAULT_LOCALE
from .plugin_manager import call_each, first_result, make_plugin_manager
from .store import FeedbackEvent, Store
from .strategy import Candidate, Candidates, Strategy
from .workers import DaemonPool

log = logging.getLogger("recommender")

#: Seconds a capped request waits for the contact log's write lock before failing closed.
CONTACT_LOG_BUSY_S = 0.5

#: The name under which overrunning context-provider calls are tracked.
CONTEXT_PROVIDERS = "context providers"
#: The hooks that gather a request's context (each implementation a context provider).
PROVIDER_HOOKS = ("channel_settings", "load_customer", "load_terminal", "extra_context")


def _configured_channel(channel_id: str, config: Config) -> Channel | None:
    """The channel as configuration alone describes it (when the providers cannot answer)."""
    slots = config.slots.get(channel_id)
    return None if slots is None else Channel(channel_id, slots)


@dataclass(frozen=True, slots=True)
class Ineligible:
    """A product the customer cannot take: its id, a machine code and a plain sentence."""

    product: str
    code: str
    detail: str


@dataclass(frozen=True)
class RecommendationRequest:
    """What a channel sends: ids and whatever context it already knows, as plain data.

    ``customer`` may carry inline attributes (``value_tier``, ``holdings``...) that override
    what the context providers know; ``terminal`` likewise.
    """

    customer_id: str
    channel: str
    moment: str
    product: str | None = None
    failure_reason: str | None = None
    k: int | None = None
    customer: Mapping[str, Any] = field(default_factory=dict)
    terminal: Mapping[str, Any] = field(default_factory=dict)
    debug: bool = False
    request_id: str | None = None
    #: ``zh-CN`` or ``en``; None: the channel's default (``[locale]`` of ``config.toml``).
    locale: str | None = None
    #: A service event of the events table (``phone_lost``, ``data_low``...).
    event: str | None = None


@dataclass(frozen=True, slots=True)
class Suggestion:
    product: str
    name: str
    score: float
    strategies: tuple[str, ...]
    reasons: tuple[str, ...]
    #: Debug: the arbitration factors behind ``score`` (``recommender.arbitration``) and
    #: whether the suggestion holds a ranked or an exploration slot.
    components: Mapping[str, float] | None = None
    slot: str | None = None
    #: ``business``: an orderable business; ``service``: guidance (``text`` and ``link``).
    kind: str = "business"
    #: The channels that can transact it; ``handoff`` says how to get to one when the calling
    #: channel cannot (``recommender.handoff``).
    order_channels: tuple[str, ...] = ()
    handoff: Handoff | None = None
    #: Hotline agent assist: the agent's one line about it.
    talking_point: str | None = None
    text: str | None = None
    link: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "product": self.product, "name": self.name, "kind": self.kind, "score": self.score,
            "strategies": list(self.strategies), "reasons": list(self.reasons),
            "order_channels": list(self.order_channels),
            "handoff": None if self.handoff is None else self.handoff.to_dict()}
        if self.kind == SERVICE_KIND:
            out["text"] = self.text
            out["link"] = self.link
        if self.talking_point is not None:
            out["talking_point"] = self.talking_point
        if self.components is not None:
            out["components"] = dict(self.components)
            out["slot"] = self.slot
        return out


#: The ``kind`` of a guidance suggestion (service events).
SERVICE_KIND = "service"


@dataclass(frozen=True)
class Check:
    """Whether ordering ``product`` will succeed for this customer, terminal and channel, and
    if not why (an exclusion code and sentence) and what works instead."""

    product: str
    name: str
    will_succeed: bool
    reason: str | None = None
    detail: str | None = None
    order_channels: tuple[str, ...] = ()
    handoff: Handoff | None = None
    alternatives: tuple[Suggestion, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"product": self.product, "name": self.name, "will_succeed": self.will_succeed,
                "reason": self.reason, "detail": self.detail,
                "order_channels": list(self.order_channels),
                "handoff": None if self.handoff is None else self.handoff.to_dict(),
                "alternatives": [a.to_dict() for a in self.alternatives]}


@dataclass(frozen=True)
class Recommendation:
    """The engine's answer; ``to_dict`` is the JSON contract shared by the CLI and the API."""

    request_id: str
    model_version: str
    moment: str
    channel: str
    suggestions: tuple[Suggestion, ...]
    warnings: tuple[str, ...] = ()
    excluded: tuple[Ineligible, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)
    errors: tuple[Mapping[str, str], ...] = ()
    debug: bool = False
    explanation: Ineligible | None = None
    #: The experiment the request belongs to and the customer's arm (``recommender.experiments``).
    experiment: str | None = None
    arm: str | None = None
    locale: str = DEFAULT_LOCALE
    #: Transaction moment: the pre-order check of the business being ordered.
    check: Check | None = None
    #: Hotline agent assist: the caller's likely need and the signals behind it.
    assist: Mapping[str, Any] | None = None
    event: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "request_id": self.request_id,
            "model_version": self.model_version,
            "moment": self.moment,
            "channel": self.channel,
            "locale": self.locale,
        }
        if self.event is not None:
            out["event"] = self.event
        if self.assist is not None:
            out["assist"] = dict(self.assist)
        if self.check is not None:
            out["check"] = self.check.to_dict()
        if self.experiment is not None:
            out["experiment"] = self.experiment
            out["arm"] = self.arm
        out["suggestions"] = [s.to_dict() for s in self.suggestions]
        if self.explanation is not None:
            e = self.explanation
            out["explanation"] = {"product": e.product, "reason": e.code, "detail": e.detail}
        if self.warnings:
            out["warnings"] = list(self.warnings)
        if self.debug:
            out["excluded"] = [{"product": e.product, "reason": e.code, "detail": e.detail}
                               for e in self.excluded]
            out["timings"] = dict(self.timings)
            out["errors"] = [dict(e) for e in self.errors]
        return out


@dataclass
class _Run:
    """One strategy's outcome for one request."""

    name: str
    output: Sequence[Candidate] = ()
    proposal: Proposal | None = None
    ms: float = 0.0
    error: tuple[str, str] | None = None  # (stage, message)


@dataclass(frozen=True)
class _Plan:
    """Which strategies serve a request and how (from its moment, channel and customer), so
    the fast ones can start in the context's pool task as soon as the context is gathered."""

    moment: Moment
    weights: Mapping[str, float]
    untrained: tuple[str, ...]
    explorer: str | None
    share: float
    alone: bool
    assignment: Any

    @property
    def names(self) -> list[str]:
        """The strategies to run: the blend's trained ones, and the explorer if alone."""
        return [*self.weights, self.explorer] if self.alone else list(self.weights)


@dataclass
class _Started:
    """Strategies started right after the context, in its pool task (``Engine._context``)."""

    plan: _Plan
    skipped: dict[str, int]
    task: _SharedTask | None
    future: Future[Any] | None
    #: When the context was gathered (``time.perf_counter``): the request's context step.
    ready_at: float = 0.0
    #: Strategies to run on the request's thread (``Strategy.blocks`` False, fast record).
    inline: tuple[str, ...] = ()


#: Calls in a row under ``fast_strategy_ms`` after which a strategy joins the shared task.
FAST_RECORD = 20


class _SharedTask:
    """The fast strategies of one request, run one after another in a single pool task.

    The request thread reads ``current`` at its deadline to name the strategy that held the
    task, and sets ``cancelled`` so that none after it starts."""

    __slots__ = ("names", "current", "cancelled", "outcomes", "lock")

    def __init__(self, names: list[str]):
        self.names = names
        self.current: str | None = None
        self.cancelled = False
        #: name -> (candidates, ms), or the failed call
        self.outcomes: dict[str, tuple[Sequence[Candidate], float] | _CallFailed] = {}
        self.lock = threading.Lock()

    def cancel(self) -> None:
        """Start no further strategy (the one running, if any, finishes unobserved)."""
        with self.lock:
            self.cancelled = True


class _CallFailed(Exception):
    """A strategy call raised ``error`` after ``ms`` milliseconds (its speed counts too)."""

    def __init__(self, error: Exception, ms: float):
        super().__init__(str(error))
        self.error, self.ms = error, ms


class Engine:
    """Runs the registered strategies for a request and returns explained, eligible suggestions.

    Build one per process (it owns a thread pool) and share it across requests; it is
    thread-safe. ``strategies`` come from the ``register_strategies`` hook.
    """

    def __init__(
        self,
        catalog: Catalog,
        config: Config | None = None,
        *,
        store: Store | None = None,
        plugin_manager: pluggy.PluginManager | None = None,
        model_version: str = "untrained",
    ):
        self.catalog = catalog
        self.config = config or Config.from_dict({})
        self.store = store
        self.pm = plugin_manager or make_plugin_manager()
        self.model_version = model_version
        #: Strategies the loaded model version holds, and what loading it warned of (a
        #: strategy trained by another plugin version); set by whoever loads the models.
        self.trained_strategies: frozenset[str] = frozenset()
        self.load_warnings: tuple[str, ...] = ()
        #: The time requests are answered at (unix seconds); a simulation may replace it.
        self.clock: Callable[[], float] = time.time
        self.strategies: dict[str, Strategy] = {}
        self.sources: dict[str, str] = {}
        for plugin_name, result, error in call_each(
                self.pm.hook.register_strategies, config=self.config, catalog=catalog,
                store=store):
            if isinstance(error, ConfigError):  # the plugin's settings: the user's to fix
                raise error
            if error is not None:
                raise PluginError(f"plugin {plugin_name!r}: register_strategies failed: "
                                  f"{type(error).__name__}: {error}") from error
            for strategy in result or ():
                if not isinstance(strategy, Strategy):
                    raise PluginError(f"plugin {plugin_name!r}: register_strategies returned "
                                      f"{strategy!r}, not a recommender.Strategy")
                if not strategy.name:
                    raise PluginError(f"plugin {plugin_name!r}: a strategy has no name")
                if strategy.name in self.strategies:
                    raise PluginError(
                        f"plugin {plugin_name!r}: strategy {strategy.name!r} is already "
                        f"registered by plugin {self.sources[strategy.name]!r}")
                self.strategies[strategy.name] = strategy
                self.sources[strategy.name] = plugin_name
        self._check_strategy_names()
        for name, strategy in self.strategies.items():
            if strategy.settings_schema is not None:  # [strategies.<name>] checked here
                self.config.strategy_settings(name, strategy.settings_schema)
        #: The service events table (``recommender.events``), checked against the catalog.
        self.events = Events.from_config(self.config, catalog)
        self._experiments: tuple[Config, Experiments] | None = None
        self.experiments  # noqa: B018 -- [experiments] validated here
        self._arbiter: tuple[Config, Arbiter] | None = None
        self.arbiter  # noqa: B018 -- [arbitration] and [exploration] validated here
        settings = self.config.engine
        self._pool = DaemonPool(settings.workers, "recommender-strategy")
        self._overrunning: dict[str, int] = {}
        #: Each strategy's calls in a row under ``fast_strategy_ms`` (``FAST_RECORD`` of them
        #: and it runs in the shared task).
        self._fast_calls: dict[str, int] = {}
        #: Calls running on request threads: name -> {call number: start time}.
        self._inline_calls: dict[str, dict[int, float]] = {}
        self._call_numbers = itertools.count()
        self._lock = threading.Lock()
        self.fault_counts: dict[tuple[str, str], int] = {}

    def _check_strategy_names(self, keys: Iterable[tuple[str, str]] | None = None) -> None:
        """Refuse a blend weight or ``[strategies.<name>]`` table naming no known strategy
        (or, given ``keys``, any of those ``(key, strategy name)``: experiments' arm blends).

        A misspelt name would otherwise do nothing, silently. Names of strategies that a
        built-in or installed plugin provides but this plugin manager did not load (the
        ``RECOMMENDER_PLUGINS`` allow-list, a manager built with fewer plugins) are accepted:
        the configuration stays valid whichever plugins run. Built-in plugins are scanned for
        their Strategy classes; an installed entry-point plugin that is not loaded is not
        imported, so its entry-point name stands for its strategy.

        :raises ConfigError: naming the file and key, a close match and the known strategies.
        """
        import importlib
        from importlib.metadata import entry_points

        from .plugin_manager import DEFAULT_PLUGINS, ENTRY_POINT_GROUP

        unknown = [(key, name) for key, name in
                   (self.config.strategy_keys() if keys is None else keys)
                   if name not in self.strategies]
        if not unknown:
            return
        not_loaded: set[str] = set()
        for plugin_name, module_name in DEFAULT_PLUGINS:
            try:
                module = importlib.import_module(module_name)
            except ImportError:  # cannot even be imported here: its name must do
                not_loaded.add(plugin_name)
                continue
            if not self.pm.is_registered(module):
                not_loaded.update(
                    obj.name for obj in vars(module).values()
                    if isinstance(obj, type) and issubclass(obj, Strategy)
                    and obj.__module__ == module.__name__ and obj.name)
        not_loaded.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)
                          if not self.pm.has_plugin(ep.name))
        not_loaded -= set(self.strategies)
        for key, name in unknown:
            if name in not_loaded:
                continue
            hint = did_you_mean(name, sorted({*self.strategies, *not_loaded}))
            known = ", ".join(sorted(self.strategies)) or "(none)"
            also = f" (provided by plugins not loaded: {', '.join(sorted(not_loaded))})" \
                if not_loaded else ""
            raise ConfigError(self.config.source, key,
                              f"unknown strategy {name!r}; {hint}known strategies: "
                              f"{known}{also}")

    @property
    def arbiter(self) -> Arbiter:
        """The ``[arbitration]`` formula and ``[exploration]`` of ``self.config`` over the
        catalog (``recommender.arbitration``), built and checked once per configuration.

        :raises ConfigError: for a bad setting, or an explorer naming no known strategy.
        """
        cached = self._arbiter
        if cached is None or cached[0] is not self.config:
            config = self.config
            arbiter = Arbiter(self.catalog, config)
            self._check_strategy_names(arbiter.strategy_keys())
            self._arbiter = cached = (config, arbiter)
        return cached[1]

    @property
    def experiments(self) -> Experiments:
        """The ``[experiments]`` of ``self.config`` (``recommender.experiments``): which arm's
        blend a request is served with; built and checked once per configuration.

        :raises ConfigError: for a bad setting, or an arm blend naming no known strategy.
        """
        cached = self._experiments
        if cached is None or cached[0] is not self.config:
            config = self.config
            experiments = Experiments.from_config(config)
            self._check_strategy_names(experiments.strategy_keys())
            self._experiments = cached = (config, experiments)
        return cached[1]

    def close(self) -> None:
        """Stop the pool; a plugin call still running is not waited for."""
        self._pool.shutdown()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- context ------------------------------------------------------------------------------

    def build_context(self, request: RecommendationRequest) -> tuple[RequestContext, list[str]]:
        """Gather the TCPC context through the provider hooks; returns it and any warnings.

        A provider that fails is reported and skipped; if the providers together overrun
        ``context_timeout_ms``, the one still running is reported and the request is served
        from what it carries itself, with a warning. Raises ContextError,
        UnknownCustomerError or UnknownProductError for bad input.
        """
        context, warnings, _, _ = self._context(request, speculate=False)
        return context, warnings

    def _context(self, request: RecommendationRequest, *, speculate: bool
                 ) -> tuple[RequestContext, list[str], Check | None, _Started | None]:
        """:meth:`build_context` in one pool task, which (``speculate``) also makes the
        pre-order check of a transaction and starts the fast strategies of the moment it
        will be served as: a request hands work to the pool once, not twice.

        :returns: the context, warnings, the check (None: not made) and what was started.
        """
        if self._context_inline():
            return self._context_here(request, speculate)
        budget_s = self.config.engine.context_timeout_ms / 1000
        with self._lock:
            stuck = self._overrunning.get(CONTEXT_PROVIDERS, 0)
        if stuck >= 2:
            message = f"skipped: {stuck} earlier calls still running"
            self._report(CONTEXT_PROVIDERS, "skipped", TimeoutError(message))
            context, warnings = self._gather_context(request, use_providers=False)
            warnings.insert(0, f"context providers skipped: {stuck} earlier calls still "
                               f"running; served from the request alone")
            return context, warnings, None, None
        running = [CONTEXT_PROVIDERS]
        ready: Future[tuple[RequestContext, list[str], Check | None, _Started | None]] = \
            Future()
        future = self._pool.submit(self._context_then_shared, request, running, ready,
                                   speculate)
        with contextlib.suppress(FutureTimeout):  # the whole task: one wake-up if it ends
            future.result(timeout=budget_s)
        if ready.cancel():  # still gathering: the task sees it and starts no strategy
            plugin = running[0]
            self._watch_overrun(CONTEXT_PROVIDERS, future)
            self._record_speed(CONTEXT_PROVIDERS, math.inf)
            self._report(plugin, "context_timeout", TimeoutError(
                f"context provider exceeded the {budget_s * 1000:g} ms budget"))
            context, warnings = self._gather_context(request, use_providers=False)
            warnings.insert(0, f"context provider {plugin!r} timed out after "
                               f"{budget_s * 1000:g} ms; served from the request alone")
            return context, warnings, None, None
        context, warnings, check, early = ready.result()
        if early is not None:
            early.future = future
        return context, warnings, check, early

    def _context_then_shared(self, request: RecommendationRequest, running: list[str],
                             ready: Future[Any], speculate: bool) -> None:
        """In a pool thread: gather the context (and check the order), hand them over, then
        run the shared task of the plan."""
        try:
            context, warnings = self._gather_timed(request, running)
            check, early, serving = None, None, context
            if speculate:
                if context.moment is Moment.TRANSACTION:
                    running[0] = "eligibility (pre-order check)"
                check, serving, early = self._start(context)
        except BaseException as e:
            if ready.set_running_or_notify_cancel():
                ready.set_exception(e)
            return
        if not ready.set_running_or_notify_cancel():
            return  # the request stopped waiting: it serves without these strategies
        if early is not None:
            early.ready_at = time.perf_counter()
        ready.set_result((context, warnings, check, early))
        if early is not None and early.task is not None:
            self._run_shared(early.task, serving, self._pool_size(serving))

    def _context_inline(self) -> bool:
        """Whether to gather the context on the request's thread: every context provider
        loaded is marked ``does_not_block`` and their calls have a record of speed."""
        if self.config.engine.fast_strategy_ms <= 0:
            return False
        with self._lock:
            if self._overrunning.get(CONTEXT_PROVIDERS, 0) or not self._is_fast(
                    CONTEXT_PROVIDERS):
                return False
        hook = self.pm.hook
        return not any(blocks(impl.function) for name in PROVIDER_HOOKS
                       for impl in getattr(hook, name).get_hookimpls())

    def _context_here(self, request: RecommendationRequest, speculate: bool
                      ) -> tuple[RequestContext, list[str], Check | None, _Started | None]:
        """:meth:`_context` on the request's thread (providers that wait on nothing): the
        strategies that may wait start in the pool's shared task as soon as it is gathered."""
        number = self._inline_started(CONTEXT_PROVIDERS)
        try:
            context, warnings = self._gather_timed(request)
        finally:
            self._inline_ended(CONTEXT_PROVIDERS, number)
        if not speculate:
            return context, warnings, None, None
        check, serving, early = self._start(context)
        if early.task is not None:
            early.future = self._pool.submit(self._run_shared, early.task, serving,
                                             self._pool_size(serving))
        early.ready_at = time.perf_counter()
        return context, warnings, check, early

    def _gather_timed(self, request: RecommendationRequest, running: list[str] | None = None
                      ) -> tuple[RequestContext, list[str]]:
        """:meth:`_gather_context`, its time counted towards the providers' record of fast
        calls (a request refused for bad input says nothing about them)."""
        started = time.perf_counter()
        bad_input = False
        try:
            return self._gather_context(request, running=running)
        except ContextError:
            bad_input = True
            raise
        finally:
            if not bad_input:
                self._record_speed(CONTEXT_PROVIDERS, (time.perf_counter() - started) * 1000)

    def _start(self, context: RequestContext
               ) -> tuple[Check | None, RequestContext, _Started]:
        """Right after the context: the pre-order check, the context the request is served
        as, and the plan's strategies split by where they run (the shared task not started)."""
        check, serving = self._precheck(context)
        plan = self._plan(serving.moment, context.channel.id, context.customer.id)
        skipped, shared, _, inline = self._partition(plan.names)
        return check, serving, _Started(plan, skipped, _SharedTask(shared) if shared else None,
                                        None, inline=tuple(inline))

    def _precheck(self, context: RequestContext) -> tuple[Check | None, RequestContext]:
        """A transaction's pre-order check, and the context it is served as (the failure
        moment when the order will fail)."""
        if context.moment is not Moment.TRANSACTION:
            return None, context
        check = self._verdict(context)
        return check, context if check.will_succeed else context.evolve(moment=Moment.FAILURE)

    def _gather_context(self, request: RecommendationRequest, *, use_providers: bool = True,
                        running: list[str] | None = None
                        ) -> tuple[RequestContext, list[str]]:
        warnings: list[str] = []
        hook = self.pm.hook

        def provider_failed(plugin: str, error: BaseException) -> None:
            warnings.append(f"context provider {plugin!r} failed: {type(error).__name__}")
            self._report(plugin, "context", error)

        def before(plugin: str) -> None:
            if running is not None:
                running[0] = plugin

        if not isinstance(request.customer_id, str) or not request.customer_id.strip():
            raise ContextError("customer.id", request.customer_id, "must be a non-empty string")
        moment = parse_enum(Moment, "moment", request.moment)
        if use_providers:
            channel = first_result(hook.channel_settings, provider_failed, before=before,
                                   channel_id=request.channel, config=self.config)
        else:
            channel = _configured_channel(request.channel, self.config)
        if channel is None:
            if use_providers and not hook.channel_settings.get_hookimpls():
                raise PluginError("no loaded plugin provides channel settings (the built-in "
                                  "'channels' plugin is left out by RECOMMENDER_PLUGINS?)")
            raise ContextError("channel", request.channel, "unknown channel")

        inline = dict(request.customer)
        inline.pop("id", None)
        stored = None
        if use_providers:
            stored = first_result(hook.load_customer, provider_failed, before=before,
                                  customer_id=request.customer_id, store=self.store)
            if stored is None and not inline:
                raise UnknownCustomerError(request.customer_id)
        elif not inline:
            warnings.append("customer profile unavailable: served with default attributes")
        customer = customer_from_mapping({"id": request.customer_id, **inline},
                                         base=stored if isinstance(stored, Customer) else None)
        if len(customer.holdings) > self.config.engine.max_holdings:
            raise ContextError("customer.holdings", f"{len(customer.holdings)} items",
                               f"at most {self.config.engine.max_holdings} holdings")
        for held in sorted(customer.holdings):
            if held not in self.catalog:
                raise UnknownProductError(held, "customer.holdings")

        stored_terminal = None
        if use_providers:
            stored_terminal = first_result(hook.load_terminal, provider_failed, before=before,
                                           customer_id=request.customer_id, store=self.store)
        if stored_terminal is None and not request.terminal:
            warnings.append("terminal unknown: assumed a 4G smartphone")
        terminal = terminal_from_mapping(
            request.terminal,
            base=stored_terminal if isinstance(stored_terminal, Terminal) else None)

        if request.event is not None and request.event not in self.events:
            known = ", ".join(sorted(self.events.events)) or "(none configured)"
            raise ContextError("event", request.event, f"is not a known event; known: {known}")
        if request.product is not None and request.product not in self.catalog:
            raise UnknownProductError(request.product)
        context = RequestContext(
            customer=customer, terminal=terminal, channel=channel, moment=moment,
            product=request.product, failure_reason=request.failure_reason, k=request.k,
            request_id=request.request_id or uuid.uuid4().hex,
            locale=request.locale or self.config.locale(channel.id),
            event=request.event,
        )
        if not use_providers:
            return context, warnings
        extra: dict[str, Any] = {}
        for plugin, result, error in call_each(hook.extra_context, before=before,
                                               context=context, store=self.store):
            if error is not None:
                provider_failed(plugin, error)
            elif isinstance(result, Mapping):
                extra.update(result)
        if extra:
            context = context.evolve(attributes=extra)
        return context, warnings

    # -- recommending -------------------------------------------------------------------------

    def recommend(self, request: RecommendationRequest | RequestContext, *,
                  debug: bool | None = None) -> Recommendation:
        """Answer one request: the front door shared by the API, the CLI and the evaluator."""
        started = time.perf_counter()
        warnings: list[str] = []
        early: _Started | None = None
        check: Check | None = None
        if isinstance(request, RequestContext):
            context = request
            debug = bool(debug)
        else:
            context, warnings, check, early = self._context(request, speculate=True)
            debug = request.debug if debug is None else debug
        context_ms = ((early.ready_at if early is not None else time.perf_counter())
                      - started) * 1000
        if check is None and context.moment is Moment.TRANSACTION:
            check = self._verdict(context)
        if check is not None and not check.will_succeed:
            # The order will fail: serve what works instead, as after the failure.
            result = self._serve(context.evolve(moment=Moment.FAILURE), warnings, debug,
                                 started, context_ms, early)
            result = replace(result, moment=context.moment.value, explanation=None,
                             check=replace(check, alternatives=result.suggestions))
        else:
            result = self._serve(context, warnings, debug, started, context_ms, early)
            if check is not None:
                result = replace(result, check=check)
        for plugin, _, error in call_each(self.pm.hook.recommendation_served, context=context,
                                          recommendation=result):
            if error is not None:
                self._report(plugin, "observer", error)
        return result

    def check(self, request: RecommendationRequest | RequestContext) -> Check:
        """The pre-order check alone: will ordering ``request.product`` on this channel
        succeed for this customer and terminal, why not, and the alternatives."""
        if isinstance(request, RequestContext):
            context = request
        else:
            if request.product is None:
                raise ContextError("product", None, "is required for a check")
            context, _ = self.build_context(replace(request, moment=Moment.TRANSACTION.value,
                                                    failure_reason=None))
        context = context.evolve(moment=Moment.TRANSACTION, failure_reason=None)
        check = self._verdict(context)
        if check.will_succeed:
            return check
        started = time.perf_counter()
        alternatives = self._serve(context.evolve(moment=Moment.FAILURE), [], False, started,
                                   0.0)
        return replace(check, alternatives=alternatives.suggestions)

    def _verdict(self, context: RequestContext) -> Check:
        """Every eligibility check on the business being ordered, as if the customer were
        looking at it, then the calling channel."""
        product = self.catalog[context.product]
        look = context.evolve(moment=Moment.QUERY, product=None, failure_reason=None)
        order_channels = self.catalog.order_channels(product.id)
        name = product.display_name(context.locale)
        failed = self._exclusions(look, [product.id], [], explain=True)
        if failed:
            return Check(product.id, name, False, failed[0].code, failed[0].detail,
                         order_channels)
        if context.channel.id in product.channels:
            return Check(product.id, name, True, order_channels=order_channels)
        handoff = self._handoff(product.id, context) \
            if self.config.handoff.allowed(context.channel.id) else None
        return Check(product.id, name, False, Exclusion.CHANNEL.code,
                     self.catalog.explain(product.id, Exclusion.CHANNEL, look),
                     order_channels, handoff)

    def _handoff(self, product: str, context: RequestContext) -> Handoff | None:
        p = self.catalog[product]
        return self.config.handoff.handoff(
            product, p.display_name(context.locale), p.channels, customer=context.customer.id,
            calling=context.channel.id, smartphone=context.terminal.smartphone,
            locale=context.locale)

    def _plan(self, moment: Moment, channel: str, customer_id: str) -> _Plan:
        """The strategies that serve ``moment`` on ``channel`` for this customer's
        experiment arm, the untrained ones left out, and the explorer."""
        assignment = self.experiments.assign(customer_id, channel, moment, self.clock())
        blend = (self.config.weights(moment, channel) if assignment is None
                 else assignment.weights(self.config, moment, channel))
        weights = {name: w for name, w in blend.items()
                   if w > 0 and name in self.strategies and self.strategies[name].serves(moment)}
        untrained = tuple(name for name in weights if not self.strategies[name].is_fitted)
        for name in untrained:
            del weights[name]
        explorer, share = self.arbiter.exploration.for_channel(channel)
        if share <= 0:
            explorer, share = None, 0.0  # no exploration here
        strategy = self.strategies.get(explorer) if explorer is not None else None
        alone = (strategy is not None and explorer not in weights and strategy.serves(moment)
                 and strategy.is_fitted)
        return _Plan(moment, weights, untrained, explorer, share, alone, assignment)

    def _serve(self, context: RequestContext, warnings: list[str], debug: bool,
               started: float, context_ms: float, early: _Started | None = None
               ) -> Recommendation:
        """Strategies, eligibility, arbitration and the contact policy for one context."""
        if early is not None and early.plan.moment is not context.moment:
            early = None
        plan = early.plan if early is not None else \
            self._plan(context.moment, context.channel.id, context.customer.id)
        assignment, weights = plan.assignment, plan.weights
        explorer, share, untrained = plan.explorer, plan.share, plan.untrained
        arbiter = self.arbiter
        runs = self._run_strategies(context, plan.names, early)
        runs += [_Run(name, error=("untrained", "no trained model loaded")) for name in untrained]
        self._propose(runs)
        blend = Blend(self.catalog, [run.proposal for run in runs
                                     if run.name in weights and run.proposal is not None],
                      weights)
        picks = self._explorer_picks(runs, explorer)
        considered = [*blend.products(), *(p for p in picks if p not in blend)]

        t0 = time.perf_counter()
        excluded = self._exclusions(context, considered, runs, explain=debug)
        if assignment is not None and not assignment.marketing:  # a no-marketing holdout arm
            seen = {e.product for e in excluded}
            excluded += [Ineligible(*held) for held in assignment.holdout(
                (p for p in considered if p not in seen), self.catalog, explain=debug)]
        eligibility_ms = (time.perf_counter() - t0) * 1000
        dropped = {e.product for e in excluded}
        ranked, arbitrated, explored = arbiter.arbitrate(
            context, blend.scores(exclude=dropped),
            [p for p in picks if p not in dropped], share, now=self.clock())
        event = self.events.get(context.event) if context.event is not None else None
        if event is not None:  # what the event calls for comes first, in ranked order
            wanted = {p for p, _, _ in event.recommend}
            ranked = [p for p in ranked if p in wanted] + [p for p in ranked if p not in wanted]
        t0 = time.perf_counter()
        ranked, held = self._contact_policy(context, ranked, warnings, explain=debug)
        excluded.extend(held)
        policy_ms = (time.perf_counter() - t0) * 1000
        suggestions = tuple(
            self._suggestion(context, p, blend.proposers(p),
                             arbitrated[p] if debug else arbitrated.score(p),
                             picks[p]() if p in explored else None, explorer, debug=debug)
            for p in ranked)
        assist = None
        if context.channel.id in ASSIST_CHANNELS:
            suggestions = tuple(replace(s, talking_point=agent_line(self.catalog, context, s))
                                for s in suggestions)
            assist = likely_need(self.catalog, context, self.events, self.store, self.clock())
        suggestions = self._guidance(context) + suggestions

        errors = []
        for run in runs:
            if run.error is not None:
                errors.append({"strategy": run.name, "stage": run.error[0],
                               "error": run.error[1]})
        timings = {run.name: round(run.ms, 3) for run in runs}
        timings.update(context=round(context_ms, 3), eligibility=round(eligibility_ms, 3),
                       contact_policy=round(policy_ms, 3),
                       total=round((time.perf_counter() - started) * 1000, 3))
        result = Recommendation(
            request_id=context.request_id, model_version=self.model_version,
            moment=context.moment.value, channel=context.channel.id, suggestions=suggestions,
            warnings=tuple(warnings), excluded=tuple(excluded), timings=timings,
            errors=tuple(errors), debug=debug,
            explanation=self.explain_failure(context) if context.moment is Moment.FAILURE
            else None,
            experiment=None if assignment is None else assignment.experiment,
            arm=None if assignment is None else assignment.arm.name,
            locale=context.locale, event=context.event, assist=assist,
        )
        return result

    def _guidance(self, context: RequestContext) -> tuple[Suggestion, ...]:
        """The service guidance of the request's event: shown first, never sold, and not
        counted against the channel's slots."""
        event = self.events.get(context.event) if context.event is not None else None
        if event is None:
            return ()
        reason = event.localized_need(context.locale)
        out = []
        for g in event.guidance:
            name, text = g.localized(context.locale)
            out.append(Suggestion(product=g.id, name=name, score=1.0, strategies=("events",),
                                  reasons=(reason,), kind=SERVICE_KIND, text=text, link=g.link))
        return tuple(out)

    def _explorer_picks(self, runs: list[_Run], explorer: str | None
                        ) -> dict[str, Callable[[], str]]:
        """The explorer's businesses, best first, each with a way to write its reason."""
        run = next((r for r in runs if r.name == explorer), None) if explorer else None
        if run is None or run.proposal is None or not len(run.proposal.rows):
            return {}
        proposal, index = run.proposal, self.catalog.index
        return {p: (lambda row=index[p]: proposal.reason_of(row))
                for p in proposal.order(self.catalog)}

    def _suggestion(self, context: RequestContext, product: str,
                    proposers: list[tuple[str, str, float]],
                    arbitrated: Mapping[str, float] | float, explorer_reason: str | None,
                    explorer: str | None, *, debug: bool) -> Suggestion:
        """One suggestion: its arbitration score and proposers' reasons; an exploration
        slot's names the explorer first; where it can be ordered and, when not on the calling
        channel, the hand-off. With ``debug``, the score's components."""
        if explorer_reason is not None:
            proposers = [(str(explorer), explorer_reason, 0.0),
                         *(x for x in proposers if x[0] != explorer)]
        p = self.catalog[product]
        return Suggestion(
            product=product, name=p.display_name(context.locale),
            score=round(arbitrated if isinstance(arbitrated, float) else arbitrated["score"], 6),
            strategies=tuple(s for s, _, _ in proposers),
            reasons=tuple(r for _, r, _ in proposers),
            components=None if isinstance(arbitrated, float)
            else {k: round(arbitrated[k], 6) for k in COMPONENTS},
            slot=(RANKED if explorer_reason is None else EXPLORED) if debug else None,
            order_channels=self.catalog.order_channels(product),
            handoff=self._handoff(product, context))

    def _contact_policy(self, context: RequestContext, ranked: list[str], warnings: list[str],
                        *, explain: bool) -> tuple[list[str], list[Ineligible]]:
        """The top ``context.limit`` of ``ranked`` the contact policy lets through, and what it
        held back, each with the rule that fired (see ``recommender.contact_policy``)."""
        policy = self.config.contact_policy
        limit = context.limit
        if (self.store is None or not policy.active or not ranked
                or context.moment.value in policy.exempt_moments):
            return ranked[:limit], []
        now = self.clock()
        catalog = self.catalog
        service = {p: catalog[p].kind is ProductKind.SERVICE for p in ranked}
        dismissals = self.store.recent_dismissals(
            context.customer.id, int(now) - policy.lookback_seconds) if policy.dismissals else []
        held = [Ineligible(p, rule, detail) for p, rule, detail in policy.holds(
            context, ranked, dismissals, now=now,
            category={p: catalog[p].category for p in ranked}, service=service,
            explain=explain)]
        if held:
            gone = {h.product for h in held}
            ranked = [p for p in ranked if p not in gone]
        ranked = ranked[:limit]
        marketing = [p for p in ranked if not service[p]]
        if not policy.caps or not marketing:
            return ranked, held
        refused: list[tuple[str, str, str]] = []

        def choose(contacts: list[Any]) -> list[str]:
            kept, out = policy.allowed(context.channel.id, marketing, contacts, now=now)
            refused[:] = out
            return kept

        try:
            with self.store.busy_timeout(CONTACT_LOG_BUSY_S):
                kept = set(self.store.record_contacts(
                    context.customer.id, context.channel.id, int(now), context.request_id,
                    choose))
        except RecommenderError as e:  # fail closed: no marketing rather than over a cap
            warnings.append(f"contact log unavailable ({type(e).__name__}): marketing "
                            f"suggestions withheld")
            kept, refused = set(), [(p, UNAVAILABLE, "") for p in marketing]
        held += [Ineligible(p, rule, detail if explain else "") for p, rule, detail in refused]
        return [p for p in ranked if service[p] or p in kept], held

    def _run_strategies(self, context: RequestContext, names: Sequence[str],
                        early: _Started | None = None) -> list[_Run]:
        """Every strategy of ``names`` for ``context``, within ``strategy_timeout_ms``.

        Strategies with a record of fast calls run on the request's thread if they wait on
        nothing (``Strategy.blocks`` False), else one after another in one shared pool task
        (``early``: already started after the context); the others (new ones, and any that
        was slow or overran) each in a task of their own. The request never waits past the
        budget for the pool: a call still running then is reported as a timeout, and a
        strategy with two calls still running is skipped (and reported) until one returns.
        """
        n = self._pool_size(context)
        budget_s = self.config.engine.strategy_timeout_ms / 1000
        deadline = time.perf_counter() + budget_s
        runs = {name: _Run(name) for name in names}
        if early is not None:
            skipped, task, future, inline = early.skipped, early.task, early.future, early.inline
            shared = set(task.names) if task is not None else set()
            own = [name for name in names
                   if name not in shared and name not in skipped and name not in inline]
        else:
            skipped, shared_names, own, inline = self._partition(names)
            task = _SharedTask(shared_names) if shared_names else None
            future = self._pool.submit(self._run_shared, task, context, n) if task else None
        for name, stuck in skipped.items():
            message = f"skipped: {stuck} earlier calls still running"
            runs[name].error = ("skipped", message)
            self._report(name, "skipped", TimeoutError(message))
        calls = [(runs[name], self._pool.submit(self._timed, name, context, n)) for name in own]
        for name in inline:  # while the pool runs the others
            run = runs[name]
            number = self._inline_started(name)
            try:
                run.output, run.ms = self._timed(name, context, n)
            except _CallFailed as e:
                self._failed(run, e)
            finally:
                self._inline_ended(name, number)
            self._record_speed(run.name, run.ms)
        for run, call in calls:
            try:
                run.output, run.ms = call.result(
                    timeout=max(0.0, deadline - time.perf_counter()))
            except FutureTimeout:
                self._overran(run, call, budget_s)
                continue
            except _CallFailed as e:
                self._failed(run, e)
            self._record_speed(run.name, run.ms)
        if task is not None and future is not None:
            self._collect_shared(task, future, runs, deadline, budget_s)
        return list(runs.values())

    def _pool_size(self, context: RequestContext) -> int:
        """How many candidates each strategy is asked for."""
        return self.config.engine.candidate_pool + len(context.customer.holdings)

    def _partition(self, names: Sequence[str]
                   ) -> tuple[dict[str, int], list[str], list[str], list[str]]:
        """``names`` split into those skipped (two calls still running: how many), those
        for the shared task, those for a task of their own, and those for the request's
        thread (fast, and waiting on nothing)."""
        skipped: dict[str, int] = {}
        shared: list[str] = []
        own: list[str] = []
        inline: list[str] = []
        with self._lock:
            for name in names:
                stuck = self._overrunning.get(name, 0)
                if stuck >= 2:
                    skipped[name] = stuck
                elif self._is_fast(name):
                    waits = self.strategies[name].blocks or stuck  # stuck: a call overran
                    (shared if waits else inline).append(name)
                else:
                    own.append(name)
        return skipped, shared, own, inline

    def _collect_shared(self, task: _SharedTask, future: Future[None], runs: dict[str, _Run],
                        deadline: float, budget_s: float) -> None:
        """The shared task's outcomes; at the deadline, the strategy holding it is reported
        and isolated, and those it kept from starting are marked skipped (no fault of theirs:
        not reported)."""
        try:
            future.result(timeout=max(0.0, deadline - time.perf_counter()))
            holder = None
        except FutureTimeout:
            with task.lock:
                task.cancelled = True
                holder = task.current
        for name in task.names:
            run, outcome = runs[name], task.outcomes.get(name)
            if name == holder:
                self._overran(run, future, budget_s)
            elif outcome is None:
                run.error = ("skipped", f"not run: {holder!r} held the shared task past the "
                                        f"{budget_s * 1000:g} ms budget")
            elif isinstance(outcome, _CallFailed):
                self._failed(run, outcome)
                self._record_speed(name, run.ms)
            else:
                run.output, run.ms = outcome
                self._record_speed(name, run.ms)

    def _run_shared(self, task: _SharedTask, context: RequestContext, n: int) -> None:
        """In a pool thread: the shared task's strategies in turn, until all ran or the
        request gave up waiting."""
        for name in task.names:
            with task.lock:
                if task.cancelled:
                    return
                task.current = name
            try:
                outcome: Any = self._timed(name, context, n)
            except _CallFailed as e:
                outcome = e
            with task.lock:
                if task.cancelled:
                    return
                task.outcomes[name] = outcome

    def _overran(self, run: _Run, future: Future[Any], budget_s: float) -> None:
        """``run`` is past the budget: report it, track its call until it returns, and give
        its next calls their own task."""
        run.ms = budget_s * 1000
        run.error = ("timeout", f"exceeded its {budget_s * 1000:g} ms budget")
        self._watch_overrun(run.name, future)
        self._record_speed(run.name, math.inf)
        self._report(run.name, "timeout", TimeoutError(run.error[1]))

    def _is_fast(self, name: str) -> bool:
        """Whether ``name`` has a record of fast calls (hold ``self._lock``). A call of it
        still running on a request thread past ``fast_strategy_ms`` ends the record at once:
        the next requests do not join a call that may be hanging."""
        fast_ms = self.config.engine.fast_strategy_ms
        if fast_ms <= 0:
            return False
        running = self._inline_calls.get(name)
        if running and self._fast_calls.get(name, 0) and \
                time.perf_counter() - min(running.values()) > fast_ms / 1000:
            if self._fast_calls[name] >= FAST_RECORD:
                log.warning("plugin %s: a call on a request thread is still running after "
                            "fast_strategy_ms %g: other requests run it in the pool", name,
                            fast_ms)
            self._fast_calls[name] = 0
        return self._fast_calls.get(name, 0) >= FAST_RECORD

    def _record_speed(self, name: str, ms: float) -> None:
        """Count a call under ``fast_strategy_ms`` towards the shared task (or the request's
        thread); a slower one starts the record again (its next calls run on their own), and
        losing a record is logged: a plugin that keeps losing it is one to look at."""
        fast_ms = self.config.engine.fast_strategy_ms
        with self._lock:
            before = self._fast_calls.get(name, 0)
            self._fast_calls[name] = before + 1 if ms < fast_ms else 0
        if before >= FAST_RECORD and ms >= fast_ms:
            took = "overran its budget" if math.isinf(ms) else f"took {ms:.1f} ms"
            log.warning("plugin %s: a call %s (fast_strategy_ms %g): it runs on its own in "
                        "the pool until %d fast calls in a row", name, took, fast_ms,
                        FAST_RECORD)

    def _timed(self, name: str, context: RequestContext, n: int
               ) -> tuple[Sequence[Candidate], float]:
        t0 = time.perf_counter()
        try:
            result = self.strategies[name].candidates(context, n)
            if result is None:
                result = []
            elif not isinstance(result, Candidates):
                if not isinstance(result, Iterable):
                    raise TypeError(f"candidates() returned {type(result).__name__}, not a "
                                    f"list")
                result = list(result)
        except Exception as e:
            raise _CallFailed(e, (time.perf_counter() - t0) * 1000) from e
        return result, (time.perf_counter() - t0) * 1000

    def _failed(self, run: _Run, failure: _CallFailed) -> None:
        """``run``'s call raised: report it, with the time it took."""
        run.error = ("strategy", f"{type(failure.error).__name__}: {failure.error}")
        run.ms = failure.ms
        self._report(run.name, "strategy", failure.error)

    def _inline_started(self, name: str) -> int:
        """Note a call of ``name`` starting on a request thread (see :meth:`_is_fast`)."""
        number = next(self._call_numbers)
        with self._lock:
            self._inline_calls.setdefault(name, {})[number] = time.perf_counter()
        return number

    def _inline_ended(self, name: str, number: int) -> None:
        with self._lock:
            del self._inline_calls[name][number]

    def _watch_overrun(self, name: str, future: Future[Any]) -> None:
        with self._lock:
            self._overrunning[name] = self._overrunning.get(name, 0) + 1

        def done(_: Future[Any]) -> None:
            with self._lock:
                self._overrunning[name] -= 1

        future.add_done_callback(done)

    def _propose(self, runs: list[_Run]) -> None:
        """Each run's output as a checked proposal; garbage is dropped and reported."""
        for run in runs:
            if run.error is not None and not run.output:
                continue
            run.proposal, garbage = propose(run.name, run.output, self.catalog)
            if garbage:
                message = f"{garbage} invalid candidates dropped (wrong type or unknown product)"
                if run.error is None:
                    run.error = ("garbage", message)
                self._report(run.name, "garbage", ValueError(message))

    def _exclusions(self, context: RequestContext, products: list[str], runs: list[_Run],
                    *, explain: bool = True) -> list[Ineligible]:
        if not products:
            return []
        excluded: dict[str, Ineligible] = {}
        for plugin, result, error in call_each(self.pm.hook.check_eligibility, context=context,
                                               catalog=self.catalog, products=products,
                                               explain=explain, store=self.store,
                                               config=self.config, now=self.clock()):
            if error is not None:
                self._report(plugin, "eligibility", error)
                runs.append(_Run(plugin, error=("eligibility",
                                                f"{type(error).__name__}: {error}")))
                for p in products:
                    excluded.setdefault(p, Ineligible(
                        p, "eligibility_check_failed",
                        f"eligibility plugin {plugin!r} failed; excluded to be safe"))
                continue
            for item in result or ():
                if isinstance(item, Ineligible) and item.product not in excluded:
                    excluded[item.product] = item
        return list(excluded.values())

    def record_feedback(self, event: FeedbackEvent) -> bool:
        """Store a feedback event durably, then tell the observers; False if a duplicate."""
        if self.store is None:
            raise RuntimeError("this engine has no store to record feedback in")
        stored = self.store.add_feedback(event)
        if stored:
            for plugin, _, error in call_each(self.pm.hook.feedback_received, event=event):
                if error is not None:
                    self._report(plugin, "observer", error)
        return stored

    def eligibility(self, context: RequestContext) -> np.ndarray:
        """Exclusion codes for every catalog product for this context (0 = can take it)."""
        return self.catalog.exclusions(context)

    def explain_failure(self, context: RequestContext) -> Ineligible | None:
        """Why the customer cannot take ``context.product`` (for the failure moment), if known."""
        if context.product is None:
            return None
        code = Exclusion(int(self.catalog.exclusions(
            context.evolve(product=None, failure_reason=None, moment=Moment.QUERY)
        )[self.catalog.index[context.product]]))
        if code is Exclusion.OK:
            return None
        return Ineligible(context.product, code.code,
                          self.catalog.explain(context.product, code, context))

    def _report(self, plugin: str, stage: str, error: BaseException) -> None:
        with self._lock:
            key = (plugin, stage)
            self.fault_counts[key] = self.fault_counts.get(key, 0) + 1
        log.warning("plugin %s failed at %s: %s: %s", plugin, stage, type(error).__name__,
                    error)
        if stage != "observer":
            for name, _, err in call_each(self.pm.hook.plugin_error, plugin_name=plugin,
                                          stage=stage, error=error):
                if err is not None:
                    log.warning("plugin %s failed at observer: %s", name, err)
