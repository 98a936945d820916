"""Rule-based cross-sell: if-then rules marketing staff write by hand in ``rules.toml``.

A rule has conditions on the TCPC context and the moment, and recommends businesses with a
priority and a reason in the customer's language (``reason``; ``reason_en`` is said instead to
a request in English, ``locale = "en"``)::

    [[rule]]
    id = "roaming-abroad-kit"
    moments = ["transaction", "success"]
    priority = 90
    reason = "出国必备：开通国际漫游的客户常办理"
    recommend = ["intl_data_daypass", "intl_sms", { product = "intl_ld_pack", reason = "..." }]
    [rule.when]
    product = ["intl_roaming"]

Conditions (all optional, all must hold): ``product`` (the current business is one of),
``category`` (its category is one of), ``channel``, ``network``, ``smartphone``, ``os``,
``value_tier``, ``persona``, ``lifecycle``, ``min_tenure_months``, ``max_tenure_months``,
``tags_any``, ``holds_all``, ``holds_any``, ``lacks`` (holds none of), ``failure_reason``,
``event`` (the request's service event is one of). Each event of the events table
(``recommender.events``) is a rule too: its businesses at every moment, on that event.
Every error on load names the file, the rule and the field; a rule naming an unknown business
is rejected. ``priority`` is a finite number in (0, 100]; tenure bounds are whole months from 0
to the longest tenure a customer can have (1200); ``description`` is text.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from recommender import (
    CHANNEL_IDS,
    OS,
    Candidate,
    Catalog,
    Config,
    ConfigError,
    FailureReason,
    Lifecycle,
    Moment,
    Network,
    Persona,
    RequestContext,
    Strategy,
    ValueTier,
    hookimpl,
)
from recommender.catalog import MAX_TENURE_MONTHS
from recommender.events import Events

_ENUM_CONDITIONS: dict[str, Any] = {
    "network": Network, "os": OS, "value_tier": ValueTier, "persona": Persona,
    "lifecycle": Lifecycle, "failure_reason": FailureReason,
}
_PRODUCT_CONDITIONS = ("product", "holds_all", "holds_any", "lacks")
_LIST_CONDITIONS = ("category", "channel", "tags_any", "event")
_CONDITIONS = set(_ENUM_CONDITIONS) | set(_PRODUCT_CONDITIONS) | set(_LIST_CONDITIONS) | {
    "smartphone", "min_tenure_months", "max_tenure_months"}
_RULE_KEYS = {"id", "description", "moments", "priority", "reason", "reason_en", "recommend",
              "when", "enabled"}


class RulesError(ConfigError):
    """A cross-sell rules file is malformed; names the file, rule and field."""

    def __init__(self, source: str, rule: str, field: str, message: str):
        self.rule = rule
        super().__init__(source, f"rule {rule!r}, field {field!r}", message)


@dataclass(frozen=True)
class Rule:
    id: str
    moments: frozenset[Moment]
    priority: float
    when: Mapping[str, Any]
    recommend: tuple[tuple[str, str, str | None], ...]  # (product, reason, reason_en)
    description: str = ""

    def matches(self, context: RequestContext, category: str | None) -> bool:
        """Whether every condition holds for ``context`` (``category`` of its product)."""
        return all(_CHECKS[key](value, context, category) for key, value in self.when.items())


#: Each condition of a rule's ``when``: (its value, the request context, the category of the
#: business acted on) -> whether it holds.
_CHECKS: dict[str, Callable[[Any, RequestContext, str | None], bool]] = {
    "product": lambda v, c, _: c.product in v,
    "category": lambda v, _, category: category in v,
    "channel": lambda v, c, _: c.channel.id in v,
    "network": lambda v, c, _: c.terminal.network in v,
    "smartphone": lambda v, c, _: c.terminal.smartphone is v,
    "os": lambda v, c, _: c.terminal.os in v,
    "value_tier": lambda v, c, _: c.customer.value_tier in v,
    "persona": lambda v, c, _: c.customer.persona in v,
    "lifecycle": lambda v, c, _: c.customer.lifecycle in v,
    "min_tenure_months": lambda v, c, _: c.customer.tenure_months >= v,
    "max_tenure_months": lambda v, c, _: c.customer.tenure_months <= v,
    "tags_any": lambda v, c, _: bool(c.customer.tags & v),
    "holds_all": lambda v, c, _: v <= c.customer.holdings,
    "holds_any": lambda v, c, _: bool(v & c.customer.holdings),
    "lacks": lambda v, c, _: not v & c.customer.holdings,
    "failure_reason": lambda v, c, _: c.failure_reason in v,
    "event": lambda v, c, _: c.event in v,
}


def load_rules(path: str | Path, catalog: Catalog) -> list[Rule]:
    """Read and validate a rules file against the catalog."""
    path = Path(path)
    source = str(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(source, "(file)", "rules file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(source, "(file)", f"not valid TOML: {e}") from None
    return parse_rules(data, catalog, source=source)


def parse_rules(data: Mapping[str, Any], catalog: Catalog, *, source: str = "<rules>"
                ) -> list[Rule]:
    unknown = set(data) - {"rule"}
    if unknown:
        raise ConfigError(source, sorted(unknown)[0], "unknown top-level key")
    entries = data.get("rule", [])
    if not isinstance(entries, list):
        raise ConfigError(source, "rule", "must be an array of [[rule]] tables")
    rules, seen = [], set()
    for position, entry in enumerate(entries, 1):
        rule = _parse_rule(entry, position, catalog, source)
        if rule is None:
            continue
        if rule.id in seen:
            raise RulesError(source, rule.id, "id", "duplicate rule id")
        seen.add(rule.id)
        rules.append(rule)
    return rules


def _parse_rule(entry: Any, position: int, catalog: Catalog, source: str) -> Rule | None:
    if not isinstance(entry, dict):
        raise RulesError(source, f"#{position}", "(rule)", "must be a table")
    rule_id = entry.get("id", f"#{position}")
    if not isinstance(rule_id, str) or not rule_id.strip():
        raise RulesError(source, f"#{position}", "id", f"must be a non-empty string, "
                                                       f"got {rule_id!r}")

    def err(field: str, message: str) -> RulesError:
        return RulesError(source, rule_id, field, message)

    unknown = set(entry) - _RULE_KEYS
    if unknown:
        raise err(sorted(unknown)[0], "unknown field")
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise err("enabled", f"must be true or false, got {enabled!r}")

    moments_raw = entry.get("moments", [m.value for m in Moment])
    if not isinstance(moments_raw, list) or not moments_raw:
        raise err("moments", f"must be a non-empty list, got {moments_raw!r}")
    try:
        moments = frozenset(Moment(m) for m in moments_raw)
    except ValueError:
        raise err("moments", f"values must be among {', '.join(m.value for m in Moment)}, "
                             f"got {moments_raw!r}") from None

    priority = entry.get("priority", 50)
    if isinstance(priority, bool) or not isinstance(priority, int | float) or \
            not 0 < priority <= 100 or not math.isfinite(priority):
        raise err("priority", f"must be a finite number in (0, 100], got {priority!r}")
    description = entry.get("description", "")
    if not isinstance(description, str):
        raise err("description", f"must be a string, got {description!r}")

    default_reason, default_en = entry.get("reason"), entry.get("reason_en")
    for key, value in (("reason", default_reason), ("reason_en", default_en)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise err(key, f"must be a non-empty string, got {value!r}")
    raw_recommend = entry.get("recommend")
    if not isinstance(raw_recommend, list) or not raw_recommend:
        raise err("recommend", "must be a non-empty list of business ids or "
                               "{ product, reason } tables")
    recommend = []
    for item in raw_recommend:
        if isinstance(item, str):
            product, reason, reason_en = item, default_reason, default_en
        elif isinstance(item, dict) and set(item) <= {"product", "reason", "reason_en"}:
            product, reason = item.get("product"), item.get("reason", default_reason)
            reason_en = item.get("reason_en", default_en)
        else:
            raise err("recommend", f"entries must be an id or {{ product, reason, reason_en }},"
                                   f" got {item!r}")
        if product not in catalog:
            raise err("recommend", f"unknown business {product!r}")
        if not catalog[product].orderable:
            raise err("recommend", f"{product!r} is a query service, not an orderable business")
        if not isinstance(reason, str) or not reason.strip():
            raise err("recommend", f"{product!r} has no reason text (set reason)")
        if reason_en is not None and (not isinstance(reason_en, str) or not reason_en.strip()):
            raise err("recommend", f"{product!r}: reason_en must be a non-empty string, got "
                                   f"{reason_en!r}")
        recommend.append((product, reason, reason_en))

    when_raw = entry.get("when", {})
    if not isinstance(when_raw, dict):
        raise err("when", "must be a table")
    when = _parse_conditions(when_raw, catalog, err)
    if not enabled:
        return None
    return Rule(id=rule_id, moments=moments, priority=float(priority), when=when,
                recommend=tuple(recommend), description=description)


def _parse_conditions(raw: Mapping[str, Any], catalog: Catalog, err: Any) -> dict[str, Any]:
    when: dict[str, Any] = {}
    categories = {p.category for p in catalog}
    for key, value in raw.items():
        field = f"when.{key}"
        if key not in _CONDITIONS:
            raise err(field, "unknown condition; known: " + ", ".join(sorted(_CONDITIONS)))
        if key == "smartphone":
            if not isinstance(value, bool):
                raise err(field, f"must be true or false, got {value!r}")
            when[key] = value
            continue
        if key in ("min_tenure_months", "max_tenure_months"):
            if isinstance(value, bool) or not isinstance(value, int) or \
                    not 0 <= value <= MAX_TENURE_MONTHS:
                raise err(field, f"must be a non-negative integer, at most "
                                 f"{MAX_TENURE_MONTHS}, got {value!r}")
            when[key] = value
            continue
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or \
                not all(isinstance(v, str) for v in value):
            raise err(field, f"must be a string or a non-empty list of strings, got {value!r}")
        if key in _ENUM_CONDITIONS:
            enum = _ENUM_CONDITIONS[key]
            try:
                when[key] = frozenset(enum(v) for v in value)
            except ValueError:
                raise err(field, f"values must be among {', '.join(m.value for m in enum)}, "
                                 f"got {value!r}") from None
        elif key in _PRODUCT_CONDITIONS:
            unknown = [v for v in value if v not in catalog]
            if unknown:
                raise err(field, f"unknown business {unknown[0]!r}")
            when[key] = frozenset(value)
        elif key == "channel":
            bad = [v for v in value if v not in CHANNEL_IDS]
            if bad:
                raise err(field, f"unknown channel {bad[0]!r}; known: {', '.join(CHANNEL_IDS)}")
            when[key] = frozenset(value)
        elif key == "category":
            bad = [v for v in value if v not in categories]
            if bad:
                raise err(field, f"no business has category {bad[0]!r}")
            when[key] = frozenset(value)
        else:
            when[key] = frozenset(value)
    if "min_tenure_months" in when and "max_tenure_months" in when and \
            when["min_tenure_months"] > when["max_tenure_months"]:
        raise err("when.max_tenure_months", "is below min_tenure_months")
    return when


class CrossSellStrategy(Strategy):
    """Serves the matching rules' businesses, scored by priority (earlier listed first)."""

    name = "cross_sell"
    blocks = False  # computes on its rules and the catalog only

    def __init__(self, catalog: Catalog, rules: list[Rule], *, source: str = ""):
        self.catalog = catalog
        self.rules = rules
        self.source = source
        self._by_moment = {m: [r for r in rules if m in r.moments] for m in Moment}

    def candidates(self, context: RequestContext, n: int) -> list[Candidate]:
        product = self.catalog.get(context.product) if context.product else None
        category = product.category if product else None
        best: dict[str, Candidate] = {}
        english = context.locale == "en"
        for rule in self._by_moment[context.moment]:
            if not rule.matches(context, category):
                continue
            for position, (offer, reason, reason_en) in enumerate(rule.recommend):
                score = rule.priority / 100 * (1 - 0.01 * position)
                if offer not in best or score > best[offer].score:
                    best[offer] = Candidate(offer, score,
                                            reason_en if english and reason_en else reason)
        return sorted(best.values(), key=lambda c: (-c.score, c.product))[:n]

    def describe(self) -> dict[str, Any]:
        return {"rules": len(self.rules), "source": self.source}

    def fit(self, data: Any) -> Self:
        return self


@hookimpl
def register_strategies(config: Config, catalog: Catalog) -> list[Strategy]:
    settings = config.strategy_settings("cross_sell")
    unknown = set(settings) - {"rules"}
    if unknown:
        raise ConfigError(config.source, f"strategies.cross_sell.{sorted(unknown)[0]}",
                          "unknown key")
    rules = settings.get("rules", "rules.toml")
    if not isinstance(rules, str) or not rules.strip():
        raise ConfigError(config.source, "strategies.cross_sell.rules",
                          f"must be the path of a rules file, got {rules!r}")
    path = config.resolve(rules)
    events = [Rule(id=f"event:{e.id}", moments=frozenset(Moment), priority=e.priority,
                   when={"event": frozenset({e.id})}, recommend=e.recommend,
                   description=f"service event {e.id}")
              for e in Events.from_config(config, catalog).events.values() if e.recommend]
    if not path.exists() and "rules" not in settings:
        return [CrossSellStrategy(catalog, events, source="(no rules.toml)")]
    return [CrossSellStrategy(catalog, load_rules(path, catalog) + events, source=str(path))]
