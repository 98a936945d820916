"""Adaptive: acceptance learned from feedback as it arrives, explored with Thompson sampling.

Popularity and the trained models only learn at the next ``recommender train``, and they learn
from what was ordered, which is largely what was shown: a business they never rank high is never
shown, never ordered and never ranked high (the popularity collapse). This strategy closes the
loop. It keeps Beta-Bernoulli statistics of acceptance per business x segment x channel x
moment, updated from the feedback log (``POST /v1/feedback``) without retraining, and ranks by a
Thompson sample: a draw from each business's Beta posterior in the request's cell. A business
that is often accepted in a cell rises there; one with little data is sometimes drawn high and
so gets shown and measured; one shown often and never taken sinks.

Counting, per shown suggestion (one request's business):

- a **trial** for each impression; a click, accept or dismiss counts the trial itself when no
  report of the same suggestion was stored before it (a dismiss with no impression recorded);
- a **success** of 1 for an accept, or ``click_weight`` for a click (0 by default: clicks do not
  count), at most 1 per suggestion;
- posterior ``Beta(m * prior_trials + successes, (1 - m) * prior_trials + trials - successes)``:
  the prior is worth ``prior_trials`` offers accepted at a rate ``m``.

With ``pooling`` (the default), ``m`` is what the cell's neighbours have learnt, shrunk level by
level: the business's rate over every cell, ``(prior_accepts + successes) / (prior_trials +
trials)``, is the prior of its rate for the segment over every channel and moment, which is the
prior ``m`` of each of the segment's cells. A cell seen a few times is thus drawn near what the
business does for customers like these elsewhere (a channel or a moment seldom changes what a
customer wants), and moves away from it as its own evidence grows: the cells of a business are
not each explored from scratch. Without pooling, ``m = prior_accepts / prior_trials`` (default 1
in 20, a 5% acceptance rate) for every cell: a business never shown in this cell is drawn
around 5%, however it does elsewhere.

Settings (``[strategies.adaptive]`` in ``config.toml``; every key optional, others refused):

======================== ============== ====================================================
key                      default        what
======================== ============== ====================================================
``segment``              "value_tier"   the customer attribute cells are kept by:
                                        "value_tier", "persona", "lifecycle" or "none"
``prior_accepts``        1.0            accepts the prior is worth (> 0)
``prior_trials``         20.0           offers the prior is worth (> prior_accepts)
``click_weight``         0.0            a click's worth as a success, 0 to 1
``pooling``              true           a cell's prior is the business's rate for the segment,
                                        itself shrunk to the business's overall rate
``refresh_seconds``      1.0            how often a process reads new feedback from the store
``refresh_budget_ms``    20.0           about the longest one catch-up takes in a request
``max_rows_per_refresh`` 100000         most feedback rows one catch-up reads
``seed``                 0              seed of the strategy's random generator
======================== ============== ====================================================

Every server process follows the store's feedback log: the ``feedback_received`` hook only
fires in the process that stored an event, so at most every ``refresh_seconds`` a
``candidates()`` call reads the rows stored since the last one it read (one bounded query,
:meth:`recommender.Store.feedback_since`), and the process that stored an event reads it on its
next call. The first reads rebuild the statistics from the whole log, chunk by chunk: each
catch-up reads as many rows as the speed measured so far fits in ``refresh_budget_ms`` (capped
at a quarter of the engine's ``strategy_timeout_ms``), is done by one request thread at a time
while the others serve from the statistics as they are, and continues at the next call until
the log is read. Nothing is saved with the model: the state is the log. Memory is two float
arrays of businesses x segments x channels x moments, whatever the number of customers or
events. An event whose customer is not in the store (or has no id), or that names no channel
or moment, fits no cell and is only counted as ``unattributed`` (with ``segment = "none"``
the customer is not needed).

The strategy gets the engine's store when it is registered (``register_strategies`` receives
it; an offline engine has none and samples from the prior), so one process may run engines on
different stores; ``feedback_received`` tells every strategy of the process to read the log at
its next call.

The random generator is seeded (``seed``, 0 by default), so a run can be repeated: the
evaluator's, or an engine and the one loaded to replace it, draw alike for the same requests.
Workers of one server draw the same sequence, but for different requests.

**Exploration share.** The strategy runs only where a ``[blend]`` table gives it a weight (the
built-in blend does not). The engine divides each strategy's scores by its best and multiplies
them by its weight, then sums per business, so the adaptive strategy's first pick adds its
weight, and its others their draw's share of it. Its weight against the sum of the others'
sets how much exploration moves the list: small (``adaptive = 0.2`` beside weights of 1.0) and
it mostly reorders what the others propose and fills empty slots; about the sum of the others
and its picks take most of the first slots; alone (``[blend.query] adaptive = 1.0``) it fills
every slot by Thompson sampling. A weight is not a share of slots: it sets a tendency, not a
count. For a share of slots, set ``[exploration] strategy = "adaptive"`` and ``share``
(``recommender/arbitration.py``): that many slots go to its own best eligible picks.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections.abc import Sequence
from itertools import repeat
from typing import Any, Self

import numpy as np

from recommender import (
    CHANNEL_IDS,
    Candidate,
    Candidates,
    Catalog,
    Config,
    ConfigError,
    Customer,
    FeedbackEvent,
    Lifecycle,
    Moment,
    Persona,
    RecommenderError,
    RequestContext,
    Store,
    Strategy,
    ValueTier,
    hookimpl,
)
from recommender.i18n import N_, ptr, tr
from recommender.strategy import top_n

log = logging.getLogger("recommender.adaptive")

NAME = "adaptive"

#: The segment attribute a setting may name, and its values (``""`` for a customer without
#: a persona; the one value of "none").
SEGMENTS: dict[str, tuple[str, ...]] = {
    "value_tier": tuple(v.value for v in ValueTier),
    "persona": (*(p.value for p in Persona), ""),
    "lifecycle": tuple(v.value for v in Lifecycle),
    "none": ("",),
}
MOMENTS: tuple[str, ...] = tuple(m.value for m in Moment)

#: Action bits of :meth:`recommender.Store.feedback_since`'s ``earlier`` mask.
IMPRESSION, CLICK, ACCEPT, DISMISS = 1, 2, 4, 8
ACTION_BITS = {"impression": IMPRESSION, "click": CLICK, "accept": ACCEPT, "dismiss": DISMISS}

#: A response is matched with earlier reports of its suggestion stored within this window (s).
RESPONSE_WINDOW_S = 86400
#: Rows the first catch-up reads, before the reading speed is known.
FIRST_CHUNK = 2_000
#: Fewest rows a catch-up reads, however slow the last one was.
MIN_CHUNK = 200

#: ``(minimum, maximum, integer)`` of each numeric setting.
NUMBERS: dict[str, tuple[float, float, bool]] = {
    "prior_accepts": (1e-6, 1e6, False),
    "prior_trials": (1e-6, 1e9, False),
    "click_weight": (0.0, 1.0, False),
    "refresh_seconds": (0.0, 86400.0, False),
    "refresh_budget_ms": (1.0, 60_000.0, False),
    "max_rows_per_refresh": (1, 10_000_000, True),
    "seed": (0, 2**63 - 1, True),
}
DEFAULTS: dict[str, Any] = {
    "segment": "value_tier", "prior_accepts": 1.0, "prior_trials": 20.0, "click_weight": 0.0,
    "refresh_seconds": 1.0, "refresh_budget_ms": 20.0, "max_rows_per_refresh": 100_000,
    "seed": 0, "pooling": True,
}

#: English words for a channel in a sentence ("on the web hall"); other locales use the
#: catalogs' channel names (``ptr(locale, "channel", id)``).
CHANNEL_WORDS = {"app": "app", "web": "web hall", "hotline": "hotline", "sms": "SMS hall",
                 "wechat": "WeChat hall", "store": "store"}
MOMENT_WORDS = {"query": N_("during a query"), "transaction": N_("during an order"),
                "success": N_("after an order"), "failure": N_("after a failed order")}
PERSONA_WHO = {"data": N_("data-oriented customers"), "voice": N_("voice-oriented customers"),
               "product": N_("product-oriented customers"),
               "network": N_("network-oriented customers"),
               "price": N_("price-conscious customers"),
               "service": N_("service-oriented customers"),
               "": N_("customers without a persona")}
LIFECYCLE_WHO = {"new": N_("newly joined customers"), "steady": N_("long-standing customers"),
                 "open_request": N_("customers with an open service request"),
                 "resolved": N_("customers whose service request was just resolved")}


def segment_words(segment: str, value: str, locale: str = "en") -> str:
    """Who the customers of a segment are, in ``locale``: "mid-value customers"."""
    if segment == "value_tier":
        return tr(locale, "{tier}-value customers", tier=ptr(locale, "tier", value))
    if segment == "persona":
        return tr(locale, PERSONA_WHO[value])
    if segment == "lifecycle":
        return tr(locale, LIFECYCLE_WHO[value])
    return tr(locale, "customers")


def channel_words(channel: str, locale: str) -> str:
    """The channel as a sentence names it."""
    if locale == "en":
        return CHANNEL_WORDS.get(channel, channel)
    return ptr(locale, "channel", channel)


class AdaptiveStrategy(Strategy):
    """Beta-Bernoulli acceptance per business x segment x channel x moment, explored with
    Thompson sampling and followed from the feedback log (see the module documentation)."""

    name = NAME

    def __init__(self, catalog: Catalog, *, config: Config | None = None,
                 segment: str = "value_tier", prior_accepts: float = 1.0,
                 prior_trials: float = 20.0, click_weight: float = 0.0,
                 refresh_seconds: float = 1.0, refresh_budget_ms: float = 20.0,
                 max_rows_per_refresh: int = 100_000, seed: int | None = 0,
                 pooling: bool = True):
        if segment not in SEGMENTS:
            raise ValueError(f"segment must be one of {', '.join(SEGMENTS)}, got {segment!r}")
        if not 0 < prior_accepts < prior_trials:
            raise ValueError(f"prior_accepts and prior_trials must satisfy 0 < prior_accepts "
                             f"< prior_trials, got {prior_accepts!r} and {prior_trials!r}")
        if not 0 <= click_weight <= 1:
            raise ValueError(f"click_weight must be from 0 to 1, got {click_weight!r}")
        if refresh_seconds < 0:
            raise ValueError(f"refresh_seconds must be >= 0, got {refresh_seconds!r}")
        if refresh_budget_ms <= 0:
            raise ValueError(f"refresh_budget_ms must be > 0, got {refresh_budget_ms!r}")
        if max_rows_per_refresh < 1:
            raise ValueError(f"max_rows_per_refresh must be >= 1, got {max_rows_per_refresh!r}")
        self.catalog = catalog
        self.config = config
        self.segment = segment
        self.prior_accepts = float(prior_accepts)
        self.prior_trials = float(prior_trials)
        self.click_weight = float(click_weight)
        self.refresh_seconds = float(refresh_seconds)
        timeout_ms = config.engine.strategy_timeout_ms if config is not None else math.inf
        self.refresh_budget_ms = float(refresh_budget_ms)
        self._budget_s = min(self.refresh_budget_ms, timeout_ms / 4) / 1000
        self.max_rows_per_refresh = int(max_rows_per_refresh)
        self.seed = seed
        self.pooling = bool(pooling)
        self._rng = np.random.default_rng(seed)

        values = SEGMENTS[segment]
        self._segment_index = {v: i for i, v in enumerate(values)}
        self._channel_index = {c: i for i, c in enumerate(CHANNEL_IDS)}
        self._moment_index = {m: i for i, m in enumerate(MOMENTS)}
        shape = (len(catalog), len(values), len(CHANNEL_IDS), len(MOMENTS))
        #: Successes and trials per business x segment x channel x moment.
        self.successes = np.zeros(shape, dtype=np.float64)
        self.trials = np.zeros(shape, dtype=np.float64)
        #: Prior acceptance rate of each business x segment's cells (see ``pooling``).
        self.prior_rate = np.full(shape[:2], self.prior_accepts / self.prior_trials)
        # Worth of a suggestion as a success, by the mask of the actions reported for it.
        masks = np.arange(16)
        self._worth = np.maximum(np.where(masks & ACCEPT, 1.0, 0.0),
                                 np.where(masks & CLICK, self.click_weight, 0.0))
        self._orderable = np.flatnonzero(catalog.orderable)
        self._slot = np.full(len(catalog), -1, dtype=np.int64)  # catalog -> orderable position
        self._slot[self._orderable] = np.arange(len(self._orderable))

        #: Position in the store's feedback log (the last rowid read), rows read, rows that
        #: could not be put in a cell (no stored customer, channel or moment; unknown business).
        self.position = 0
        self.events = 0
        self.unattributed = 0
        #: Whether the last catch-up stopped before the end of the log.
        self.behind = True
        self.store: Store | None = None
        self._lock = threading.Lock()
        self._due = 0.0
        self._pokes = 0  # poke() calls, so one during a read is not lost
        self._rate: float | None = None  # rows read per second, measured

    # -- the store ----------------------------------------------------------------------------

    def attach(self, store: Store) -> bool:
        """Follow ``store``'s feedback log from its start; False if already following one."""
        with self._lock:
            if self.store is not None:
                return False
            self.store = store
            self._due = 0.0
            return True

    def poke(self) -> None:
        """Read the log at the next call, whatever ``refresh_seconds`` says (new feedback)."""
        self._pokes += 1
        self._due = 0.0

    def refresh(self, *, wait: bool = False, limit: int | None = None) -> int:
        """Read and count the feedback stored since the last read, once; returns the rows read.

        Reads at most ``limit`` rows (default: as many as fit in the refresh budget at the
        speed measured so far). Without ``wait``, returns 0 at once if another thread is
        reading. A store that fails is logged and tried again after ``refresh_seconds``.
        """
        store = self.store
        if store is None or not self._lock.acquire(blocking=wait):
            return 0
        try:
            started, pokes = time.monotonic(), self._pokes
            if limit is None:
                limit = FIRST_CHUNK if self._rate is None else int(self._rate * self._budget_s)
                limit = max(MIN_CHUNK, min(self.max_rows_per_refresh, limit))
            try:
                rows = store.feedback_since(self.position, limit, window_s=RESPONSE_WINDOW_S)
            except RecommenderError as e:
                log.warning("adaptive: cannot read the feedback log (%s: %s); serving the "
                            "statistics as they are", type(e).__name__, e)
                self._due = started + max(self.refresh_seconds, 1.0)
                return 0
            self._count(rows)
            elapsed = time.monotonic() - started
            if len(rows) >= MIN_CHUNK:
                rate = len(rows) / max(elapsed, 1e-6)
                self._rate = rate if self._rate is None else 0.5 * (self._rate + rate)
            self.behind = len(rows) >= limit
            again = self.behind or pokes != self._pokes
            self._due = started if again else started + self.refresh_seconds
            return len(rows)
        finally:
            self._lock.release()

    def catch_up(self, *, chunk: int | None = None) -> int:
        """Read the whole log from the current position, in chunks; returns the rows read.

        Blocks until done: for tests, tools and a warm start, never on a request.
        """
        total = 0
        while True:
            size = chunk or self.max_rows_per_refresh
            read = self.refresh(wait=True, limit=size)
            total += read
            if read < size:
                return total

    def _count(self, rows: list[tuple[Any, ...]]) -> None:
        """Add feedback rows (``Store.feedback_since``'s tuples) to the statistics."""
        n = len(rows)
        if n == 0:
            return
        (_, _, products, actions, _, channels, moments, tiers, personas, lifecycles,
         earlier) = zip(*rows, strict=True)

        def codes(mapping: dict[Any, int], values: tuple[Any, ...]) -> np.ndarray:
            return np.fromiter(map(mapping.get, values, repeat(-1)), dtype=np.int64, count=n)

        product = codes(self.catalog.index, products)
        bit = np.fromiter(map(ACTION_BITS.get, actions, repeat(0)), dtype=np.int64, count=n)
        channel = codes(self._channel_index, channels)
        moment = codes(self._moment_index, moments)
        known = np.fromiter((t is not None for t in tiers), dtype=bool, count=n)
        if self.segment == "value_tier":
            segment = codes(self._segment_index, tiers)
        elif self.segment == "persona":
            segment = codes(self._segment_index, (p or "" for p in personas))
            segment[~known] = -1
        elif self.segment == "lifecycle":
            segment = codes(self._segment_index, lifecycles)
        else:
            segment = np.zeros(n, dtype=np.int64)
        before = np.fromiter(earlier, dtype=np.int64, count=n) & 15
        valid = (bit > 0) & (product >= 0) & (segment >= 0) & (channel >= 0) & (moment >= 0)
        trial = valid & ((bit == IMPRESSION) | (before == 0))
        gain = np.where(valid, self._worth[before | bit] - self._worth[before], 0.0)
        _, n_segments, n_channels, n_moments = self.trials.shape
        cell = ((product * n_segments + segment) * n_channels + channel) * n_moments + moment
        # Trials first, so a request reading meanwhile never sees more successes than trials.
        np.add.at(self.trials.reshape(-1), cell[trial], 1.0)
        success = valid & (gain != 0)
        np.add.at(self.successes.reshape(-1), cell[success], gain[success])
        if self.pooling:
            self.prior_rate = self._pooled_rate()
        self.position = int(rows[-1][0])
        self.events += n
        self.unattributed += int(((bit > 0) & ~valid).sum())

    def _pooled_rate(self) -> np.ndarray:
        """Each business x segment's rate over every channel and moment, shrunk to the
        business's rate over every cell, itself shrunk to the prior (``prior_trials`` each)."""
        strength = self.prior_trials
        trials = self.trials.sum(axis=(2, 3))
        successes = np.minimum(self.successes.sum(axis=(2, 3)), trials)
        business = (self.prior_accepts + successes.sum(axis=1)) / (strength + trials.sum(axis=1))
        return (strength * business[:, None] + successes) / (strength + trials)

    # -- serving ------------------------------------------------------------------------------

    def segment_of(self, customer: Customer) -> int:
        """The customer's segment position in the statistics."""
        if self.segment == "value_tier":
            return self._segment_index[customer.value_tier.value]
        if self.segment == "persona":
            return self._segment_index[customer.persona.value if customer.persona else ""]
        if self.segment == "lifecycle":
            return self._segment_index[customer.lifecycle.value]
        return 0

    def candidates(self, context: RequestContext, n: int) -> Sequence[Candidate]:
        if self.store is not None and time.monotonic() >= self._due:
            self.refresh()
        segment = self.segment_of(context.customer)
        channel = self._channel_index[context.channel.id]
        moment = self._moment_index[context.moment.value]
        rows = self._orderable
        successes = self.successes[rows, segment, channel, moment]
        trials = self.trials[rows, segment, channel, moment]
        failures = np.maximum(trials - successes, 0.0)
        prior = self.prior_trials * self.prior_rate[rows, segment]
        draws = self._rng.beta(prior + successes, self.prior_trials - prior + failures)
        held = self._slot[self.catalog.indices(context.holdings_after)]
        picks = top_n(draws, n, exclude=held[held >= 0])
        if not len(picks):
            return []
        shown = trials.sum()
        average = successes.sum() / shown if shown else 0.0
        locale = context.locale
        who = segment_words(self.segment, SEGMENTS[self.segment][segment], locale)
        where = channel_words(context.channel.id, locale)
        when = tr(locale, MOMENT_WORDS[context.moment.value])
        at = {int(rows[i]): i for i in picks.tolist()}

        def reason(row: int) -> str:
            i = at[row]
            return self._reason(successes[i], trials[i], average, who, where, when, locale)

        return Candidates(self.catalog, rows[picks], draws[picks], reason)

    def _reason(self, accepted: float, shown: float, average: float, who: str, where: str,
                when: str, locale: str) -> str:
        if shown == 0:
            return tr(locale, "new for {who} on the {where}: being tried out", who=who,
                      where=where)
        counts = {"accepted": f"{accepted:.0f}", "shown": f"{shown:.0f}"}
        if shown < self.prior_trials:
            return tr(locale, "being tried out with {who} on the {where} ({accepted} of "
                      "{shown} accepted so far)", who=who, where=where, **counts)
        if accepted / shown >= average and accepted > 0:
            return tr(locale, "often accepted on the {where} by {who} {when} ({accepted} of "
                      "{shown})", who=who, where=where, when=when, **counts)
        return tr(locale, "accepted on the {where} by {who} {when} ({accepted} of {shown})",
                  who=who, where=where, when=when, **counts)

    # -- the Strategy contract ----------------------------------------------------------------

    def fit(self, data: Any) -> Self:
        """Nothing to learn offline: the statistics are the feedback log's."""
        return self

    @property
    def is_fitted(self) -> bool:
        return True

    @property
    def nbytes(self) -> int:
        """Memory the statistics take (fixed by the catalog and the segment attribute)."""
        return int(self.successes.nbytes + self.trials.nbytes + self.prior_rate.nbytes)

    def describe(self) -> dict[str, Any]:
        return {"segment": self.segment, "prior_accepts": self.prior_accepts,
                "prior_trials": self.prior_trials, "click_weight": self.click_weight,
                "refresh_seconds": self.refresh_seconds,
                "refresh_budget_ms": self.refresh_budget_ms,
                "max_rows_per_refresh": self.max_rows_per_refresh,
                "pooling": self.pooling, "feedback_read": self.events,
                "unattributed": self.unattributed,
                "trials": float(self.trials.sum()), "accepts": float(self.successes.sum()),
                "state_bytes": self.nbytes}


def settings_from_config(config: Config) -> dict[str, Any]:
    """The validated ``[strategies.adaptive]`` settings, defaults filled in.

    :raises ConfigError: naming the file and the key, for an unknown key or a bad value.
    """
    raw = config.strategy_settings(NAME)

    def err(key: str, message: str) -> ConfigError:
        return ConfigError(config.source, f"strategies.{NAME}.{key}", message)

    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise err(unknown[0], f"unknown key; known: {', '.join(DEFAULTS)}")
    settings = dict(DEFAULTS)
    for key, value in raw.items():
        if key == "segment":
            if value not in SEGMENTS:
                raise err(key, f"must be one of {', '.join(SEGMENTS)}, got {value!r}")
        elif key == "pooling":
            if not isinstance(value, bool):
                raise err(key, f"must be true or false, got {value!r}")
        else:
            minimum, maximum, integer = NUMBERS[key]
            ok = not isinstance(value, bool) and isinstance(value, int if integer
                                                            else int | float)
            if not ok or not math.isfinite(value) or not minimum <= value <= maximum:
                kind = "an integer" if integer else "a number"
                raise err(key, f"must be {kind} from {minimum:g} to {maximum:g}, "
                               f"got {value!r}")
        settings[key] = value
    if settings["prior_accepts"] >= settings["prior_trials"]:
        key = "prior_trials" if "prior_trials" in raw else "prior_accepts"
        raise err(key, f"prior_trials ({settings['prior_trials']:g}) must be more than "
                       f"prior_accepts ({settings['prior_accepts']:g})")
    return settings


# -- hooks --------------------------------------------------------------------------------------

_strategies: weakref.WeakSet[AdaptiveStrategy] = weakref.WeakSet()
_strategies_lock = threading.Lock()


def _live() -> list[AdaptiveStrategy]:
    with _strategies_lock:
        return list(_strategies)


@hookimpl
def register_strategies(config: Config, catalog: Catalog, store: Store | None
                        ) -> list[Strategy]:
    strategy = AdaptiveStrategy(catalog, config=config, **settings_from_config(config))
    if store is not None:
        strategy.attach(store)
    with _strategies_lock:
        _strategies.add(strategy)
    return [strategy]


@hookimpl
def feedback_received(event: FeedbackEvent) -> None:
    """The event is in the store: the strategies of this process read it at their next call."""
    for strategy in _live():
        strategy.poke()
