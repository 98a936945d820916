"""The contact policy: what a customer is not offered again, and how often they are contacted.

Operators are bound by rules against marketing harassment, and a customer who has refused a
business twice should not hear of it a third time. The policy reads the customer's recent
responses (the ``feedback`` log: impressions and dismissals, in one indexed query) on every
request, so it takes effect as soon as a response is acknowledged, on every worker, with no
retraining. Set in ``config.toml``::

    [contact_policy]
    dismissals = 2               # refusals of a business within the window ...
    dismissal_window_days = 30   # ... that suppress it
    cool_off_days = 30           # for this long after the last of them
    suppress_category = false    # also suppress the rest of its category
    across_channels = true       # a refusal on one channel counts on every channel
    max_per_channel_day = 0      # suggestions shown per customer per channel per 24 h (0: none)
    max_per_channel_week = 0     # ... per 7 days
    max_per_business_week = 0    # times one business is shown to a customer per 7 days
    do_not_disturb_tags = ["dnd"]  # customers with one of these tags get no marketing
    exempt_moments = ["failure"]   # moments the policy leaves alone (the customer asked)

Windows are rolling (the last 24 hours, the last 7 days), not calendar days. Service businesses
(catalog ``kind = "service"``) are never capped or silenced by do-not-disturb, but a refused
service is suppressed like any business.

Caps count what is served, a superset of what the customer saw: when a cap is set, the engine
records each marketing suggestion it answers with in the store's contact log, in the same
write transaction that counts the customer's earlier ones. Requests for one customer on any
worker are therefore serialised at that point and a cap is never exceeded (no slack), at the
cost of one small write per capped request. If the store cannot take the write within its busy
budget, the answer carries service suggestions only (fail closed) and a warning.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .context import Moment, RequestContext
from .errors import ConfigError

DAY = 86400
WEEK = 7 * DAY
#: How far ahead of this server's clock an event may be dated (another machine's clock, a
#: client's): a response dated later has not happened yet and counts for nothing.
MAX_CLOCK_SKEW_S = 300

#: Exclusion codes the policy gives, by rule.
SUPPRESSED = "policy_suppressed"
CATEGORY_SUPPRESSED = "policy_category_suppressed"
CHANNEL_DAY_CAP = "policy_channel_day_cap"
CHANNEL_WEEK_CAP = "policy_channel_week_cap"
BUSINESS_WEEK_CAP = "policy_business_week_cap"
DO_NOT_DISTURB = "policy_do_not_disturb"
#: The contact log could not be written in time: marketing withheld (fail closed).
UNAVAILABLE = "policy_unavailable"
RULES = (SUPPRESSED, CATEGORY_SUPPRESSED, CHANNEL_DAY_CAP, CHANNEL_WEEK_CAP, BUSINESS_WEEK_CAP,
         DO_NOT_DISTURB, UNAVAILABLE)


@dataclass(frozen=True, slots=True)
class Response:
    """One recorded response of a customer: when, to what, what they did, where."""

    ts: int
    product: str
    action: str
    channel: str | None


@dataclass(frozen=True)
class ContactPolicy:
    """Validated ``[contact_policy]`` settings (see the module docstring for each)."""

    dismissals: int = 2
    dismissal_window_days: float = 30.0
    cool_off_days: float = 30.0
    suppress_category: bool = False
    across_channels: bool = True
    max_per_channel_day: int = 0
    max_per_channel_week: int = 0
    max_per_business_week: int = 0
    do_not_disturb_tags: frozenset[str] = frozenset({"dnd"})
    exempt_moments: frozenset[str] = frozenset({Moment.FAILURE.value})

    @property
    def lookback_seconds(self) -> int:
        """How far back the refusals that can still suppress a business go."""
        if not self.dismissals:
            return 0
        return int(math.ceil((self.dismissal_window_days + self.cool_off_days) * DAY))

    @property
    def active(self) -> bool:
        return bool(self.dismissals or self.caps or self.do_not_disturb_tags)

    @classmethod
    def from_config(cls, raw: Mapping[str, Any], source: str) -> ContactPolicy:
        """The policy from a config's ``[contact_policy]`` table; errors name file and key."""
        table = raw.get("contact_policy", {})
        if not isinstance(table, Mapping):
            raise ConfigError(source, "contact_policy", "must be a table")
        defaults = cls()
        known = set(cls.__dataclass_fields__)
        for key in table:
            if key not in known:
                raise ConfigError(source, f"contact_policy.{key}",
                                  f"unknown key; known: {', '.join(sorted(known))}")

        def count(key: str, maximum: int) -> int:
            value = table.get(key, getattr(defaults, key))
            if isinstance(value, bool) or not isinstance(value, int) or \
                    not 0 <= value <= maximum:
                raise ConfigError(source, f"contact_policy.{key}",
                                  f"must be an integer from 0 to {maximum}, got {value!r}")
            return value

        def days(key: str) -> float:
            value = table.get(key, getattr(defaults, key))
            if isinstance(value, bool) or not isinstance(value, int | float) or \
                    not math.isfinite(value) or not 0 < value <= 3650:
                raise ConfigError(source, f"contact_policy.{key}",
                                  f"must be a number of days above 0 and at most 3650, "
                                  f"got {value!r}")
            return float(value)

        def flag(key: str) -> bool:
            value = table.get(key, getattr(defaults, key))
            if not isinstance(value, bool):
                raise ConfigError(source, f"contact_policy.{key}",
                                  f"must be true or false, got {value!r}")
            return value

        def strings(key: str, allowed: Iterable[str] | None = None) -> frozenset[str]:
            value = table.get(key, sorted(getattr(defaults, key)))
            if not isinstance(value, list) or not all(isinstance(v, str) and v
                                                      for v in value):
                raise ConfigError(source, f"contact_policy.{key}",
                                  f"must be a list of non-empty strings, got {value!r}")
            if allowed is not None:
                allowed = set(allowed)
                for v in value:
                    if v not in allowed:
                        raise ConfigError(source, f"contact_policy.{key}",
                                          f"unknown value {v!r}; known: "
                                          f"{', '.join(sorted(allowed))}")
            return frozenset(value)

        return cls(
            dismissals=count("dismissals", 1000),
            dismissal_window_days=days("dismissal_window_days"),
            cool_off_days=days("cool_off_days"),
            suppress_category=flag("suppress_category"),
            across_channels=flag("across_channels"),
            max_per_channel_day=count("max_per_channel_day", 10_000),
            max_per_channel_week=count("max_per_channel_week", 10_000),
            max_per_business_week=count("max_per_business_week", 10_000),
            do_not_disturb_tags=strings("do_not_disturb_tags"),
            exempt_moments=strings("exempt_moments", (m.value for m in Moment)),
        )

    @property
    def caps(self) -> bool:
        """Whether any contact cap is set (the engine then records what it serves)."""
        return bool(self.max_per_channel_day or self.max_per_channel_week
                    or self.max_per_business_week)

    # -- deciding -----------------------------------------------------------------------------

    def holds(self, context: RequestContext, products: Sequence[str],
              dismissals: Sequence[Response], *, now: float, category: Mapping[str, str],
              service: Mapping[str, bool], explain: bool = True) -> list[tuple[str, str, str]]:
        """(product, rule, detail) for each of ``products`` suppressed by the customer's
        refusals or silenced by do-not-disturb. Caps are :meth:`allowed`'s business.

        :param dismissals: the customer's dismissals since ``now - lookback_seconds``.
        :param category: category of each product; ``service``: whether it is a service.
        """
        if context.moment.value in self.exempt_moments or not products:
            return []
        held: dict[str, tuple[str, str]] = {}

        def hold(product: str, rule: str, detail: str) -> None:
            held.setdefault(product, (rule, detail if explain else ""))

        if self.dismissals:
            for product, until in self._suppressed(dismissals, context.channel.id, now).items():
                when = datetime.fromtimestamp(until, UTC).date().isoformat()
                hold(product, SUPPRESSED,
                     f"refused {self.dismissals} times within {self.dismissal_window_days:g} "
                     f"days; not offered again until {when} (contact_policy.dismissals)")
                if self.suppress_category and product in category:
                    for other in products:
                        if other != product and category.get(other) == category[product]:
                            hold(other, CATEGORY_SUPPRESSED,
                                 f"a business of its category ({category[product]}) was "
                                 f"refused {self.dismissals} times; not offered until {when} "
                                 f"(contact_policy.suppress_category)")
        quiet = self.do_not_disturb_tags & context.customer.tags
        if quiet:
            tag = sorted(quiet)[0]
            for p in products:
                if not service.get(p, False):
                    hold(p, DO_NOT_DISTURB, f"the customer is tagged {tag!r}: no marketing "
                                            f"(contact_policy.do_not_disturb_tags)")
        wanted = set(products)
        return [(p, rule, detail) for p, (rule, detail) in held.items() if p in wanted]

    def allowed(self, channel: str, ranked: Sequence[str], contacts: Sequence[Response], *,
                now: float) -> tuple[list[str], list[tuple[str, str, str]]]:
        """Which of the ranked marketing suggestions the caps let through, in order, given
        the customer's contacts of the last 7 days; and (product, rule, detail) for the rest.
        """
        day = week = 0
        per_business: dict[str, int] = {}
        for c in contacts:
            age = now - c.ts
            if age >= WEEK or age < -MAX_CLOCK_SKEW_S:
                continue
            per_business[c.product] = per_business.get(c.product, 0) + 1
            if c.channel == channel:
                week += 1
                day += age < DAY
        budget, cap = len(ranked), 0
        rule = span = key = ""
        for limit, seen, name, period, setting in (
                (self.max_per_channel_day, day, CHANNEL_DAY_CAP, "24 hours",
                 "max_per_channel_day"),
                (self.max_per_channel_week, week, CHANNEL_WEEK_CAP, "7 days",
                 "max_per_channel_week")):
            if limit and limit - seen < budget:
                budget, rule, span, key = max(0, limit - seen), name, period, setting
                cap = limit
        kept: list[str] = []
        refused: list[tuple[str, str, str]] = []
        for product in ranked:
            shown = per_business.get(product, 0)
            if self.max_per_business_week and shown >= self.max_per_business_week:
                refused.append((product, BUSINESS_WEEK_CAP,
                                f"shown {shown} times in the last 7 days; the cap is "
                                f"{self.max_per_business_week} "
                                f"(contact_policy.max_per_business_week)"))
            elif len(kept) >= budget:
                refused.append((product, rule, f"{cap} suggestions shown on {channel} in the "
                                               f"last {span} reach the cap "
                                               f"(contact_policy.{key})"))
            else:
                kept.append(product)
        return kept, refused

    def _suppressed(self, responses: Sequence[Response], channel: str, now: float
                    ) -> dict[str, float]:
        """Products refused ``dismissals`` times within the window, with the end of their
        cool-off, for those still cooling off."""
        window = self.dismissal_window_days * DAY
        cool_off = self.cool_off_days * DAY
        times: dict[str, list[int]] = {}
        for r in responses:
            if r.ts > now + MAX_CLOCK_SKEW_S:
                continue  # not happened yet: a clock far ahead, or an import dated later
            if r.action == "dismiss" and (self.across_channels or r.channel == channel):
                times.setdefault(r.product, []).append(r.ts)
        out: dict[str, float] = {}
        n = self.dismissals
        for product, ts in times.items():
            if len(ts) < n:
                continue
            ts.sort()
            for i in range(n - 1, len(ts)):
                if ts[i] - ts[i - n + 1] <= window and now - ts[i] < cool_off:
                    out[product] = max(out.get(product, 0.0), ts[i] + cool_off)
        return out
