"""Arbitration: the final ranking, and exploration within a share of the slots.

The blend (``[blend]`` in ``config.toml``) says how likely the customer is to take each
business: the **propensity**. What the channel shows is decided by a documented formula over
four factors, in the spirit of Pega's P x C x V x L (propensity, context, value, levers)::

    score = propensity^a x value^b x priority^c x relevance^d

=============== ==========================================================================
factor          what
=============== ==========================================================================
``propensity``  the blended score: each strategy's score divided by its best in the
                request, times its weight, summed per business (``recommender.blend``)
``value``       ``1 + ln(1 + v / v_ref)``, where ``v`` is the business's catalog ``value``
                (a margin, a lifetime value) or else its ``price``, and ``v_ref`` the
                reference value (default: the median positive value of the orderable
                catalog). Log-scaled and at least 1: a free business keeps factor 1, one at
                the reference value 1.69; on the sample catalog (reference 20) a 5 yuan
                pack 1.22 and a 2,999 yuan phone 6.02, so with ``b = 0.2`` the phone
                weighs 1.38 times the pack, not 600 times
``priority``    marketing's business weight: the catalog's ``priority`` (default 1) while
                today is within ``priority_start`` .. ``priority_end`` (either optional;
                dates are whole days in ``timezone``), else 1
``relevance``   context weight: ``[arbitration.categories.<moment or channel>]`` gives a
                category a weight at a moment or on a channel (both multiply), and
                ``related`` multiplies a business related to the one being acted on (same
                category, it needs that business, or it upgrades it); all 1 by default
=============== ==========================================================================

Settings (``[arbitration]``; every key optional, others refused; errors name file and key)::

    [arbitration]
    propensity = 1.0          # a, above 0 and at most 10
    value = 0.2               # b, 0 (value ignored) to 10
    priority = 1.0            # c, 0 (priority ignored) to 10
    relevance = 1.0           # d, 0 (relevance ignored) to 10
    value_reference = "median"  # or a number above 0: the value that gets factor 1 + ln 2
    related = 1.0             # relevance of a business related to the one acted on, (0, 1000]
    timezone = "UTC"          # the IANA zone priority dates are days of ("Asia/Shanghai")

    [arbitration.categories.query]   # a moment's or a channel's category weights, (0, 1000]
    data = 1.2

The default ``value = 0.2`` was chosen on measurements (``docs/arbitration.md``): on the sample
operator and on the UCI Online Retail log it keeps ndcg and precision within their bootstrap
intervals of the blend alone while raising the value of what customers take from the list.
``value = 0`` with the other defaults reproduces the blended ranking exactly.

Exploration (``[exploration]``) reserves a share of a request's ``k`` slots for an explorer
strategy's own best picks (by default the ``adaptive`` Thompson sampler)::

    [exploration]
    strategy = "adaptive"     # a registered strategy (did-you-mean if unknown)
    share = 0.2               # 0 to 1; 0 (the default) switches exploration off

    [exploration.hotline]     # a channel's own share (and optionally strategy)
    share = 0.0

For ``k`` slots the engine reserves ``floor(share x k)`` slots, plus one more with probability
the fractional remainder, drawn from a hash of the request id (the same request id always
gets the same number). The first ``k - r`` slots are the arbitrated ranking; the next ``r`` are
the explorer's best eligible picks not already among them, in the explorer's order; the rest of
the arbitrated ranking follows, so a suggestion the contact policy holds back is replaced by
the next one. The explorer runs in the request when exploration is on for its channel, even if
the blend gives it no weight: then only for these slots, its scores do not enter the blend.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .context import CHANNEL_IDS, Moment, RequestContext
from .errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from .catalog import Catalog
    from .config import Config
    from .evaluation import EvalData, Split

#: The default exponent of the value factor (see ``docs/arbitration.md`` for the measurements).
DEFAULT_VALUE_EXPONENT = 0.2
#: Range of each exponent: ``(minimum, maximum, whether the minimum itself is allowed)``.
EXPONENTS: dict[str, tuple[float, float, bool]] = {
    "propensity": (0.0, 10.0, False),  # above 0: the customer's likelihood always counts
    "value": (0.0, 10.0, True),
    "priority": (0.0, 10.0, True),
    "relevance": (0.0, 10.0, True),
}
#: Largest weight a category or ``related`` may have (as a blend weight).
MAX_WEIGHT = 1000.0
#: The factor names, in the order the debug components list them.
COMPONENTS = ("propensity", "value", "priority", "relevance")
#: Why a suggestion is in the list (debug ``slot``): the ranking, or an exploration slot.
RANKED, EXPLORED = "ranked", "explore"


def _scopes() -> tuple[str, ...]:
    """Each name a ``[arbitration.categories.<scope>]`` table may have: moment or channel."""
    return (*(m.value for m in Moment), *CHANNEL_IDS)


@dataclass(frozen=True)
class ArbitrationSettings:
    """Validated ``[arbitration]`` settings (see the module documentation)."""

    propensity: float = 1.0
    value: float = DEFAULT_VALUE_EXPONENT
    priority: float = 1.0
    relevance: float = 1.0
    value_reference: float | None = None  # None: the catalog's median positive value
    related: float = 1.0
    timezone: str = "UTC"
    categories: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, raw: Mapping[str, Any], source: str) -> ArbitrationSettings:
        table = raw.get("arbitration", {})
        if not isinstance(table, Mapping):
            raise ConfigError(source, "arbitration", "must be a table")
        known = set(cls.__dataclass_fields__)
        for key in table:
            if key not in known:
                raise ConfigError(source, f"arbitration.{key}",
                                  f"unknown key; known: {', '.join(sorted(known))}")
        exponents = {}
        for key, (low, high, closed) in EXPONENTS.items():
            value = table.get(key, getattr(cls, key))
            if not _is_number(value) or not (low <= value if closed else low < value) or \
                    value > high:
                bound = "from" if closed else "above"
                raise ConfigError(source, f"arbitration.{key}",
                                  f"must be a number {bound} {low:g} to {high:g} (the exponent "
                                  f"of the {key} factor), got {value!r}")
            exponents[key] = float(value)
        reference = table.get("value_reference", "median")
        if reference == "median":
            reference = None
        elif not _is_number(reference) or reference <= 0:
            raise ConfigError(source, "arbitration.value_reference",
                              f'must be "median" or a number above 0, got {reference!r}')
        related = _weight(source, "arbitration.related", table.get("related", 1.0))
        zone = table.get("timezone", "UTC")
        if not isinstance(zone, str) or not zone:
            raise ConfigError(source, "arbitration.timezone",
                              f"must be an IANA time zone name, got {zone!r}")
        try:
            _zone(zone)
        except (ValueError, OSError):
            raise ConfigError(source, "arbitration.timezone",
                              f"unknown time zone {zone!r} (an IANA name such as "
                              f"'Asia/Shanghai' or 'UTC')") from None
        categories = table.get("categories", {})
        if not isinstance(categories, Mapping):
            raise ConfigError(source, "arbitration.categories", "must be a table")
        scopes = _scopes()
        parsed: dict[str, dict[str, float]] = {}
        for scope, weights in categories.items():
            key = f"arbitration.categories.{scope}"
            if scope not in scopes:
                raise ConfigError(source, key, f"must be named after a moment or a channel; "
                                               f"known: {', '.join(scopes)}")
            if not isinstance(weights, Mapping):
                raise ConfigError(source, key, "must be a table of category = weight")
            parsed[scope] = {category: _weight(source, f"{key}.{category}", w)
                             for category, w in weights.items()}
        return cls(value_reference=None if reference is None else float(reference),
                   related=related, timezone=zone, categories=parsed, **exponents)


@dataclass(frozen=True)
class ExplorationSettings:
    """Validated ``[exploration]`` settings: the explorer and its share, per channel."""

    strategy: str = "adaptive"
    share: float = 0.0
    channels: Mapping[str, tuple[str, float]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, raw: Mapping[str, Any], source: str) -> ExplorationSettings:
        table = raw.get("exploration", {})
        if not isinstance(table, Mapping):
            raise ConfigError(source, "exploration", "must be a table")

        def read(values: Mapping[str, Any], prefix: str, strategy: str, share: float
                 ) -> tuple[str, float]:
            name = values.get("strategy", strategy)
            if not isinstance(name, str) or not name.strip():
                raise ConfigError(source, f"{prefix}.strategy",
                                  f"must be a strategy name, got {name!r}")
            value = values.get("share", share)
            if not _is_number(value) or not 0 <= value <= 1:
                raise ConfigError(source, f"{prefix}.share",
                                  f"must be a number from 0 to 1 (the share of a request's "
                                  f"slots explored), got {value!r}")
            return name, float(value)

        for key, value in table.items():
            if key in ("strategy", "share"):
                continue
            if key not in CHANNEL_IDS:
                raise ConfigError(source, f"exploration.{key}",
                                  f"unknown key; known: share, strategy and a channel's table "
                                  f"({', '.join(CHANNEL_IDS)})")
            if not isinstance(value, Mapping):
                raise ConfigError(source, f"exploration.{key}",
                                  "a channel's exploration must be a table (share, strategy)")
            for inner in value:
                if inner not in ("strategy", "share"):
                    raise ConfigError(source, f"exploration.{key}.{inner}",
                                      "unknown key; known: share, strategy")
        strategy, share = read(table, "exploration", cls.strategy, cls.share)
        channels = {channel: read(table[channel], f"exploration.{channel}", strategy, share)
                    for channel in CHANNEL_IDS if channel in table}
        return cls(strategy, share, channels)

    def for_channel(self, channel: str) -> tuple[str, float]:
        """The explorer and its share of slots on ``channel``."""
        return self.channels.get(channel, (self.strategy, self.share))

    def strategy_keys(self) -> list[tuple[str, str]]:
        """The strategy names the settings name, as ``(key, name)``, for the engine to check."""
        keys = [("exploration.strategy", self.strategy)] if self.share > 0 or \
            any(share > 0 for _, share in self.channels.values()) else []
        keys += [(f"exploration.{channel}.strategy", name)
                 for channel, (name, share) in self.channels.items()
                 if share > 0 and name != self.strategy]
        return keys


class ComponentTable(Mapping[str, dict[str, float]]):
    """Each ranked business's components and score, written out when asked for (a request
    reads those it shows, and only for debug)."""

    def __init__(self, products: Sequence[str], factors: Mapping[str, np.ndarray]):
        self._parts: list[tuple[dict[str, int], Mapping[str, np.ndarray]]] = []
        if products:
            self._parts.append(({p: i for i, p in enumerate(products)}, factors))

    def __getitem__(self, product: str) -> dict[str, float]:
        for at, factors in reversed(self._parts):  # a later update wins
            i = at.get(product)
            if i is not None:
                return {name: float(factors[name][i]) for name in (*COMPONENTS, "score")}
        raise KeyError(product)

    def score(self, product: str) -> float:
        """``self[product]["score"]`` without writing out the components."""
        for at, factors in reversed(self._parts):
            i = at.get(product)
            if i is not None:
                return float(factors["score"][i])
        raise KeyError(product)

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for at, _ in self._parts:
            for product in at:
                if product not in seen:
                    seen.add(product)
                    yield product

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, product: object) -> bool:
        return any(product in at for at, _ in self._parts)

    def update(self, other: ComponentTable) -> None:
        """Add ``other``'s businesses (its values win)."""
        self._parts.extend(other._parts)


class Arbiter:
    """The arbitration formula over one catalog, and the exploration of one configuration.

    Built once per engine configuration (``Engine.arbiter``): the value factors and the
    priority windows are arrays over the catalog, so ranking a request's candidates is a few
    vector operations.

    :raises ConfigError: for bad ``[arbitration]`` or ``[exploration]`` settings, or a
        category weight naming a category the catalog does not have.
    """

    def __init__(self, catalog: Catalog, config: Config):
        self.catalog = catalog
        self.settings = ArbitrationSettings.from_config(config.raw, config.source)
        self.exploration = ExplorationSettings.from_config(config.raw, config.source)
        settings = self.settings
        known = sorted({p.category for p in catalog})
        for scope, weights in settings.categories.items():
            for category in weights:
                if category not in known:
                    hint = did_you_mean(category, known)
                    raise ConfigError(config.source,
                                      f"arbitration.categories.{scope}.{category}",
                                      f"unknown category {category!r}; {hint}catalog "
                                      f"categories: {', '.join(known)}")
        products = catalog.products
        #: Each business's value: its ``value`` if the catalog sets one, else its price.
        self.values = np.array([p.price if p.value is None else p.value for p in products],
                               dtype=np.float64)
        positive = self.values[catalog.orderable & (self.values > 0)]
        if settings.value_reference is not None:
            reference = settings.value_reference
        else:
            reference = float(np.median(positive)) if len(positive) else 1.0
        #: The value that gets factor 1 + ln 2.
        self.value_reference = reference
        #: ``1 + ln(1 + value / reference)``: 1 for a free business, growing slowly.
        self.value_factor = 1.0 + np.log1p(self.values / reference)
        zone = _zone(settings.timezone)
        priority = np.ones(len(products))
        start = np.full(len(products), -np.inf)
        end = np.full(len(products), np.inf)
        for i, p in enumerate(products):
            if p.priority == 1.0:
                continue
            priority[i] = p.priority
            if p.priority_start is not None:
                start[i] = _instant(p.priority_start, zone, end_of_day=False)
            if p.priority_end is not None:
                end[i] = _instant(p.priority_end, zone, end_of_day=True)
        self._priority, self._start, self._end = priority, start, end
        self._has_priority = bool((priority != 1.0).any())
        codes = {c: i for i, c in enumerate(known)}
        self._category = np.array([codes[p.category] for p in products], dtype=np.int64)
        related: dict[str, list[int]] = {}
        for i, p in enumerate(products):
            for other in (*p.requires, *p.requires_any, *p.upgrades):
                related.setdefault(other, []).append(i)
        #: Businesses that need or upgrade each business (its "related" ones, with its
        #: category).
        self._related_to = {k: np.array(v, dtype=np.int64) for k, v in related.items()}
        self._context_weights: dict[tuple[str, str], np.ndarray] = {}
        #: Each business's place in id order (ties in the ranking go by id).
        self._id_rank = np.argsort(np.argsort(np.array(catalog.ids), kind="stable"),
                                   kind="stable")
        for moment in Moment:
            for channel in CHANNEL_IDS:
                weights = np.ones(len(known))
                for scope in (moment.value, channel):
                    for category, w in settings.categories.get(scope, {}).items():
                        weights[codes[category]] *= w
                self._context_weights[(moment.value, channel)] = weights[self._category]

    # -- the formula --------------------------------------------------------------------------

    def strategy_keys(self) -> list[tuple[str, str]]:
        """Strategy names the settings name (the explorers), for the engine to check."""
        return self.exploration.strategy_keys()

    def priority_at(self, now: float) -> np.ndarray:
        """Each business's priority factor at unix time ``now`` (1 outside its window)."""
        if not self._has_priority:
            return self._priority
        active = (self._start <= now) & (now < self._end)
        return np.where(active, self._priority, 1.0)

    def relevance(self, context: RequestContext) -> np.ndarray:
        """Each business's context relevance for this request."""
        weights = self._context_weights[(context.moment.value, context.channel.id)]
        current = context.product
        if self.settings.related == 1.0 or current is None or current not in self.catalog:
            return weights
        related = self._category == self._category[self.catalog.index[current]]
        related[self._related_to.get(current, [])] = True
        return np.where(related, weights * self.settings.related, weights)

    def components(self, context: RequestContext, propensity: Mapping[str, float], *,
                   now: float) -> dict[str, np.ndarray]:
        """The four factors and the score of each of ``propensity``'s businesses (in its
        order), as arrays."""
        index = self.catalog.index
        rows = np.fromiter((index[p] for p in propensity), dtype=np.int64,
                           count=len(propensity))
        factors = {
            "propensity": np.fromiter(propensity.values(), dtype=np.float64,
                                      count=len(propensity)),
            "value": self.value_factor[rows],
            "priority": self.priority_at(now)[rows],
            "relevance": self.relevance(context)[rows],
        }
        s = self.settings
        score = np.maximum(factors["propensity"], 0.0) ** s.propensity
        for name in ("value", "priority", "relevance"):
            exponent = getattr(s, name)
            if exponent:
                score = score * factors[name] ** exponent
        factors["score"] = score
        return factors

    def rank(self, context: RequestContext, propensity: Mapping[str, float], *, now: float
             ) -> tuple[list[str], ComponentTable]:
        """The businesses of ``propensity`` (eligible ones, with their blended score) best
        first, ties by id; and each one's components and score (for debug)."""
        if not propensity:
            return [], ComponentTable([], {})
        factors = self.components(context, propensity, now=now)
        products = list(propensity)
        rows = np.fromiter((self.catalog.index[p] for p in products), dtype=np.int64,
                           count=len(products))
        order = np.lexsort((self._id_rank[rows], -factors["score"]))
        return [products[i] for i in order.tolist()], ComponentTable(products, factors)

    def arbitrate(self, context: RequestContext, propensity: Mapping[str, float],
                  picks: Sequence[str], share: float, *, now: float
                  ) -> tuple[list[str], ComponentTable, set[str]]:
        """The final order for a request: the eligible blended businesses ranked by the
        formula, with the exploration slots given to ``picks`` (the explorer's eligible
        businesses, best first). Returns the order, every listed business's components and
        score, and the businesses in exploration slots."""
        ranked, table = self.rank(context, propensity, now=now)
        if share <= 0 or not picks:
            return ranked, table, set()
        ranked, explored = self.explore(context, ranked, picks, share)
        outside = {p: 0.0 for p in explored if p not in table}  # only the explorer had it
        if outside:
            table.update(self.rank(context, outside, now=now)[1])
        return ranked, table, set(explored)

    # -- exploration --------------------------------------------------------------------------

    def explorer(self, context: RequestContext) -> tuple[str | None, float]:
        """The explorer strategy and its share for this request's channel (None: off)."""
        name, share = self.exploration.for_channel(context.channel.id)
        return (name, share) if share > 0 else (None, 0.0)

    def explore(self, context: RequestContext, ranked: Sequence[str], picks: Iterable[str],
                share: float) -> tuple[list[str], list[str]]:
        """``ranked`` with ``reserved_slots`` of its first ``context.limit`` given to
        ``picks`` (the explorer's eligible businesses, best first) not already above them;
        returns the new order and the businesses placed in exploration slots."""
        k = context.limit
        r = reserved_slots(share, k, seed_of(context))
        if r == 0:
            return list(ranked), []
        head = list(ranked[:k - r])
        taken = set(head)
        chosen: list[str] = []
        for p in picks:
            if len(chosen) == r:
                break
            if p not in taken:
                chosen.append(p)
                taken.add(p)
        return head + chosen + [p for p in ranked[k - r:] if p not in taken], chosen


def reserved_slots(share: float, k: int, seed: str) -> int:
    """Slots reserved for exploration out of ``k``: ``floor(share x k)``, plus one with
    probability the fractional remainder, drawn from ``seed`` (reproducible)."""
    if share <= 0 or k <= 0:
        return 0
    expected = round(share * k, 9)
    reserved = math.floor(expected)
    remainder = expected - reserved
    if remainder > 0 and uniform(seed) < remainder:
        reserved += 1
    return min(reserved, k)


def seed_of(context: RequestContext) -> str:
    """What a request's exploration draw is seeded by: its request id, or (offline, where
    contexts have none) the customer, channel, moment and business."""
    if context.request_id:
        return context.request_id
    return f"{context.customer.id}|{context.channel.id}|{context.moment.value}|" \
           f"{context.product or ''}"


def uniform(seed: str) -> float:
    """A number in [0, 1) fixed by ``seed`` (blake2b), the same on every process."""
    digest = hashlib.blake2b(f"exploration:{seed}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0 ** 64


# -- offline comparison -----------------------------------------------------------------------

def item_values(path: Path, *, item: str, value: str, weight: str | None = None
                ) -> dict[str, float]:
    """Each item's median positive ``value`` column (a unit price) in a long-format CSV log,
    over rows with a positive ``weight`` (skips returns); for public data without a catalog."""
    from .evaluation.data import _read_csv

    rows = _read_csv(path)
    header = next(rows)
    column = {name: i for i, name in enumerate(header)}
    ii, vi = column[item], column[value]
    wi = column.get(weight) if weight else None
    seen: dict[str, list[float]] = {}
    for row in rows:
        try:
            v = float(row[vi])
            if v <= 0 or (wi is not None and float(row[wi]) <= 0):
                continue
        except (ValueError, IndexError):
            continue
        seen.setdefault(row[ii].strip(), []).append(v)
    return {k: float(np.median(v)) for k, v in seen.items()}


def with_values(source: EvalData, values: Mapping[str, float]) -> EvalData:
    """``source`` with each catalog business's ``value`` set from ``values`` (0 if absent)."""
    from dataclasses import replace

    from .catalog import Catalog

    data = source.data
    catalog = Catalog([replace(p, value=float(values.get(p.id, 0.0))) for p in data.catalog],
                      source=data.catalog.source)
    return replace(source, data=replace(data, catalog=catalog))


def compare(source: EvalData, split: Split, blend: Mapping[str, float],
            variants: Mapping[str, Mapping[str, Any]], *, ks: Sequence[int] = (5, 10),
            moment: str = "query", bootstrap_samples: int = 1000, seed: int = 0,
            max_users: int | None = None, exploration: Mapping[str, Any] | None = None,
            ) -> dict[str, dict[str, float]]:
    """Offline accuracy and value of one blend under several ``[arbitration]`` tables.

    The strategies are fitted once on ``split.train``; every variant is then served through
    ``Engine.recommend`` as ``recommender evaluate`` serves (eligibility and all). Per variant
    and k: the mean of each of ``METRICS`` per customer, ``value@k`` (the value of the
    targets found in the top k, per customer: what the accepted suggestions are worth) and
    ``list_value@k`` (mean value of the businesses shown); with 95% bootstrap intervals, and
    for ndcg, precision and value the interval of the paired difference to the first variant
    (``delta_ndcg@k_ci_low``...), from the same customer resamples.
    """
    from .config import Config
    from .engine import Engine
    from .evaluation import metrics as m
    from .evaluation.holdout import context_for
    from .evaluation.runner import offline_tables
    from .plugin_manager import make_plugin_manager

    train = split.train
    users, relevant, channels = split.users, split.relevant, split.channel
    if max_users is not None and len(users) > max_users:
        pick = np.sort(np.random.default_rng(seed).choice(len(users), max_users, replace=False))
        users, relevant, channels = users[pick], relevant[pick], channels[pick]
    top_k = max(ks)
    holdings = np.diff(train.holdings.indptr)
    raw = {"strategies": dict(source.config.raw.get("strategies", {})),
           **offline_tables(top_k, int(holdings.max(initial=0)))}
    engine = Engine(train.catalog, Config.from_dict(raw, root=source.config.root), store=None,
                    plugin_manager=make_plugin_manager(), model_version="evaluation")
    out: dict[str, dict[str, float]] = {}
    try:
        for name in blend:
            engine.strategies[name].fit(train)
        first: dict[str, np.ndarray] | None = None
        for label, table in variants.items():
            extra = {"exploration": dict(exploration)} if exploration else {}
            engine.config = Config.from_dict(
                {**raw, **extra, "blend": {moment: dict(blend)}, "arbitration": dict(table)},
                root=source.config.root)
            values = engine.arbiter.values
            recommended = np.full((len(users), top_k), -1, dtype=np.int64)
            index = train.catalog.index
            for row, (user, channel) in enumerate(zip(users.tolist(), channels.tolist(),
                                                      strict=True)):
                context = context_for(train, user, moment=Moment(moment),
                                      channel=CHANNEL_IDS[channel], slots=min(top_k, 100))
                served = [index[s.product] for s in engine.recommend(context).suggestions]
                recommended[row, :len(served[:top_k])] = served[:top_k]
            hits = m.hit_matrix(recommended, relevant)
            shown_value = np.where(recommended >= 0, values[np.maximum(recommended, 0)], 0.0)
            scores: dict[str, np.ndarray] = {}
            for k in ks:
                for metric, v in m.per_user(hits, np.diff(relevant.indptr), k).items():
                    scores[f"{metric}@{k}"] = v
                scores[f"value@{k}"] = (shown_value[:, :k] * hits[:, :k]).sum(axis=1)
                shown = (recommended[:, :k] >= 0).sum(axis=1)
                scores[f"list_value@{k}"] = np.divide(
                    shown_value[:, :k].sum(axis=1), shown, out=np.zeros(len(shown)),
                    where=shown > 0)
            if first is None:
                first = scores
            paired = {f"delta_{key}": scores[key] - first[key] for key in scores
                      if key.split("@")[0] in ("ndcg", "precision", "value")}
            row_out = {key: float(v.mean()) for key, v in {**scores, **paired}.items()}
            for key, (low, high) in m.bootstrap({**scores, **paired},
                                                samples=bootstrap_samples, seed=seed).items():
                row_out[f"{key}_ci_low"], row_out[f"{key}_ci_high"] = low, high
            row_out["customers"] = float(len(users))
            out[label] = row_out
    finally:
        engine.close()
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """``compare`` from the command line, printing one row per value exponent (see
    ``docs/arbitration.md``): ``python -c 'import recommender.arbitration as a; a.main()'
    --dir DIR``."""
    import argparse
    import json

    from .evaluation import Blend, from_long_csv, from_workspace, make_split

    parser = argparse.ArgumentParser(prog="recommender.arbitration.main",
                                     description=compare.__doc__)
    parser.add_argument("--dir", type=Path, help="a workspace (its store and catalog)")
    parser.add_argument("--input", type=Path, help="a long-format CSV log instead")
    parser.add_argument("--user-column", default="user")
    parser.add_argument("--item-column", default="item")
    parser.add_argument("--time-column", default="timestamp")
    parser.add_argument("--weight-column", default="")
    parser.add_argument("--value-column", help="with --input: each item's value is its "
                        "median positive value in this column (a unit price)")
    parser.add_argument("--split", default="temporal")
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--blend", default="cf+association",
                        help="as recommender evaluate's --strategies: cf+association, "
                             "cf:0.7+association:0.3")
    parser.add_argument("--moment", default="query")
    parser.add_argument("--k", default="5,10")
    parser.add_argument("--value-exponents", default="0,0.1,0.2,0.3,0.5,1")
    parser.add_argument("--share", type=float, default=0.0,
                        help="also explore this share of slots (adaptive)")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--max-users", type=int)
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args(argv)
    if (args.dir is None) == (args.input is None):
        parser.error("give one of --dir and --input")
    if args.dir is not None:
        source = from_workspace(args.dir)
    else:
        source = from_long_csv(args.input, user=args.user_column, item=args.item_column,
                               timestamp=args.time_column, weight=args.weight_column or None)
        if args.value_column:
            source = with_values(source, item_values(
                args.input, item=args.item_column, value=args.value_column,
                weight=args.weight_column or None))
    split = make_split(source.data, args.split, test_fraction=args.test_fraction,
                       seed=args.seed)
    ks = tuple(int(k) for k in args.k.split(","))
    variants = {f"value={b}": {"value": float(b)} for b in args.value_exponents.split(",")}
    result = compare(source, split, Blend.parse(args.blend).weights, variants, ks=ks,
                     moment=args.moment, bootstrap_samples=args.bootstrap,
                     max_users=args.max_users,
                     exploration={"share": args.share} if args.share else None)
    k = max(ks)
    print(f"{source.source}; {split.protocol}; blend {args.blend} at {args.moment}; "
          f"{int(next(iter(result.values()))['customers'])} customers")
    print(f"| arbitration | ndcg@{k} | delta ndcg@{k} 95% CI | precision@{k} | "
          f"delta precision@{k} 95% CI | value@{k} | delta value@{k} 95% CI | "
          f"list_value@{k} |")
    print("|---|---:|---|---:|---|---:|---|---:|")
    for label, r in result.items():
        cells = [label]
        for metric in ("ndcg", "precision", "value"):
            key = f"{metric}@{k}"
            cells += [f"{r[key]:.4f}", f"{r['delta_' + key]:+.4f} "
                      f"[{r['delta_' + key + '_ci_low']:+.4f}, "
                      f"{r['delta_' + key + '_ci_high']:+.4f}]"]
        cells.append(f"{r[f'list_value@{k}']:.2f}")
        print("| " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


# -- helpers ----------------------------------------------------------------------------------

def _is_number(value: Any) -> bool:
    return (not isinstance(value, bool) and isinstance(value, int | float)
            and math.isfinite(value))


def _weight(source: str, key: str, value: Any) -> float:
    if not _is_number(value) or not 0 < value <= MAX_WEIGHT:
        raise ConfigError(source, key, f"must be a number above 0, at most {MAX_WEIGHT:g}, "
                                       f"got {value!r}")
    return float(value)


def _zone(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return UTC
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError as e:
        raise ValueError(str(e)) from None


def _instant(when: date | datetime, zone: tzinfo, *, end_of_day: bool) -> float:
    """Unix time of a priority date (its first instant; with ``end_of_day``, the first
    instant of the next day, so the end date counts whole: windows end exclusive) or
    datetime (naive: in ``zone``)."""
    if isinstance(when, datetime):
        return (when if when.tzinfo is not None else when.replace(tzinfo=zone)).timestamp()
    day = when + timedelta(days=1) if end_of_day else when
    return datetime.combine(day, time(), tzinfo=zone).timestamp()


__all__ = ["COMPONENTS", "DEFAULT_VALUE_EXPONENT", "EXPLORED", "RANKED", "Arbiter",
           "ArbitrationSettings", "ExplorationSettings", "reserved_slots", "seed_of",
           "uniform"]
