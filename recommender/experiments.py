"""Experiments: traffic split between blend configurations by a stable hash of the customer.

An experiment in ``config.toml`` names its arms, each a share of the customers and a blend (the
``[blend]`` weights it serves with), and optionally where and when it applies::

    [experiments.adaptive_ab]
    channels = ["app", "web"]      # default: every channel
    moments = ["query", "success"] # default: every moment
    start = 2026-01-05             # default: already running (a date is its midnight UTC)
    end = 2026-02-02               # default: never ends (exclusive: stops at this instant)

    [experiments.adaptive_ab.arms.control]
    share = 0.45                   # no blend: the configured [blend] weights

    [experiments.adaptive_ab.arms.adaptive]
    share = 0.45
    [experiments.adaptive_ab.arms.adaptive.blend.query]
    popularity = 1.0
    adaptive = 2.0

    [experiments.adaptive_ab.arms.holdout]
    share = 0.10
    marketing = false              # service businesses only: the no-marketing baseline

A customer's arm is a pure function of the experiment's name and the customer id: the first
8 bytes of SHA-256(``name`` NUL ``customer id``) as a fraction of 2**64, placed on the arms'
cumulative shares in the order they are written. It is the same in every process, worker and
run (never Python's salted ``hash()``), and the name salts it, so two experiments split the
customers independently. Changing an experiment's shares or arm order moves customers between
arms: start a new experiment (a new name) rather than editing a running one. Requests without
a customer id (the API's ``anonymous``) are not enrolled.

An arm's blend table for a moment replaces the configured weights at that moment on every
channel, unless the arm has a sub-table for the channel; moments the arm does not list keep the
configured weights (channel overrides included). An arm with ``marketing = false`` is served
only businesses of ``kind = "service"``; the rest are excluded with the code
``experiment_holdout``.

Everything is checked when an engine is built (so ``recommender serve`` and a reload refuse a
bad file, with the file and the key): names (letters, digits, ``_ . -``, at most 64), shares
in (0, 1] summing to 1, known channels and moments, a blend only at moments and channels the
experiment covers, ``start`` before ``end``, and no two experiments covering the same channel
and moment at overlapping times (a request belongs to at most one experiment). Strategy names
in arm blends are checked by the engine like those of ``[blend]``.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from .context import CHANNEL_IDS, Moment
from .errors import ConfigError

#: The customer id the API gives a request without one; such requests are not enrolled.
ANONYMOUS = "anonymous"
#: Exclusion code of a marketing business withheld from a ``marketing = false`` arm.
HOLDOUT = "experiment_holdout"
#: Experiment and arm names: they appear in responses, the feedback log and metric labels.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: How far the shares of an experiment's arms may sum from 1 (floating-point slack).
SHARE_TOLERANCE = 1e-9
EXPERIMENT_KEYS = ("arms", "channels", "moments", "start", "end")
ARM_KEYS = ("share", "blend", "marketing")
MOMENTS = tuple(m.value for m in Moment)


def bucket(experiment: str, customer_id: str) -> float:
    """The customer's position in [0, 1) for ``experiment``: stable across processes and runs
    (SHA-256 of the experiment name, a NUL and the customer id), salted by the name."""
    digest = hashlib.sha256(f"{experiment}\0{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Arm:
    """One arm: its share of the customers, its blend, whether it gets marketing."""

    name: str
    share: float
    blend: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    channel_blend: Mapping[tuple[str, str], Mapping[str, float]] = field(default_factory=dict)
    marketing: bool = True

    def weights(self, base: Any, moment: Moment | str, channel: str) -> Mapping[str, float]:
        """Strategy weights for a moment on a channel: the arm's channel table, else its
        moment table, else ``base.weights`` (the configuration's :meth:`Config.weights`)."""
        moment = str(moment)
        return (self.channel_blend.get((moment, channel)) or self.blend.get(moment)
                or base.weights(moment, channel))


@dataclass(frozen=True)
class Experiment:
    """One validated ``[experiments.<name>]`` table."""

    name: str
    arms: tuple[Arm, ...]
    channels: frozenset[str] = frozenset(CHANNEL_IDS)
    moments: frozenset[str] = frozenset(MOMENTS)
    start: float | None = None
    end: float | None = None

    def active(self, now: float) -> bool:
        return (self.start is None or now >= self.start) and (self.end is None or now < self.end)

    def covers(self, channel: str, moment: str, now: float) -> bool:
        return channel in self.channels and moment in self.moments and self.active(now)

    def arm_for(self, customer_id: str) -> Arm:
        """The customer's arm (see the module documentation)."""
        point = bucket(self.name, customer_id)
        edge = 0.0
        for arm in self.arms:
            edge += arm.share
            if point < edge:
                return arm
        return self.arms[-1]  # the shares' sum fell a rounding error short of 1


@dataclass(frozen=True)
class Assignment:
    """The experiment a request belongs to and the customer's arm in it."""

    experiment: str
    arm: Arm

    @property
    def marketing(self) -> bool:
        return self.arm.marketing

    def weights(self, base: Any, moment: Moment | str, channel: str) -> Mapping[str, float]:
        return self.arm.weights(base, moment, channel)

    def holdout(self, products: Iterable[str], catalog: Any, *, explain: bool = True
                ) -> list[tuple[str, str, str]]:
        """(product, code, detail) for each of ``products`` the arm may not be offered: every
        business that is not a service when the arm has ``marketing = false``, else none."""
        if self.arm.marketing:
            return []
        from .catalog import ProductKind

        detail = (f"arm {self.arm.name!r} of experiment {self.experiment!r} gets no marketing "
                  f"(experiments.{self.experiment}.arms.{self.arm.name}.marketing = false)"
                  if explain else "")
        return [(p, HOLDOUT, detail) for p in products
                if catalog[p].kind is not ProductKind.SERVICE]


@dataclass(frozen=True)
class Experiments:
    """The configured experiments; empty when ``config.toml`` has none."""

    experiments: tuple[Experiment, ...] = ()
    source: str = "<defaults>"

    def __bool__(self) -> bool:
        return bool(self.experiments)

    def assign(self, customer_id: str, channel: str, moment: Moment | str, now: float
               ) -> Assignment | None:
        """The request's experiment and arm, or None when no experiment applies (none covers
        the channel and moment now, or the customer is anonymous)."""
        if not self.experiments or not customer_id or customer_id == ANONYMOUS:
            return None
        moment = str(moment)
        for experiment in self.experiments:
            if experiment.covers(channel, moment, now):
                return Assignment(experiment.name, experiment.arm_for(customer_id))
        return None

    def attribute(self, customer_id: str | None, channel: str | None, moment: str | None,
                  ts: float) -> tuple[str, str] | None:
        """(experiment, arm) of a feedback event that does not say, recomputed from this
        configuration: the one experiment that covered the event's channel and moment at its
        time, and the customer's arm in it. None when that cannot be known for certain (no
        customer, or a channel or moment left out that would decide between experiments)."""
        if not customer_id or customer_id == ANONYMOUS:
            return None
        found = [e for e in self.experiments if e.active(ts)
                 and (e.channels >= set(CHANNEL_IDS) if channel is None else channel in e.channels)
                 and (e.moments >= set(MOMENTS) if moment is None else moment in e.moments)]
        if len(found) != 1:
            return None
        return found[0].name, found[0].arm_for(customer_id).name

    def knows(self, experiment: str | None, arm: str | None) -> bool:
        """Whether ``experiment`` is configured and has ``arm`` (bounded metric labels)."""
        return any(e.name == experiment and any(a.name == arm for a in e.arms)
                   for e in self.experiments)

    def arms(self) -> dict[str, list[str]]:
        """Each experiment's arm names, in configured order (the first is the baseline)."""
        return {e.name: [a.name for a in e.arms] for e in self.experiments}

    def strategy_keys(self) -> list[tuple[str, str]]:
        """Every strategy an arm blend names, as ``(key, name)``, for the engine to check."""
        keys = []
        for e in self.experiments:
            for arm in e.arms:
                prefix = f"experiments.{e.name}.arms.{arm.name}.blend"
                keys += [(f"{prefix}.{moment}.{name}", name)
                         for moment, weights in arm.blend.items() for name in weights]
                keys += [(f"{prefix}.{moment}.{channel}.{name}", name)
                         for (moment, channel), weights in arm.channel_blend.items()
                         for name in weights]
        return keys

    def enabled_strategies(self) -> frozenset[str]:
        """Strategies some arm gives a weight above zero (they need training too)."""
        return frozenset(name for e in self.experiments for arm in e.arms
                         for weights in (*arm.blend.values(), *arm.channel_blend.values())
                         for name, w in weights.items() if w > 0)

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: Any) -> Experiments:
        """The experiments of a :class:`~recommender.config.Config` (its ``raw`` data).

        :raises ConfigError: naming the file, the key and the reason.
        """
        return cls.from_raw(config.raw, config.source)

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any], source: str) -> Experiments:
        table = raw.get("experiments", {})
        if not isinstance(table, Mapping):
            raise ConfigError(source, "experiments", "must be a table")
        experiments = tuple(_experiment(source, name, values) for name, values in table.items())
        _check_overlaps(source, experiments)
        return cls(experiments, source)


# -- validation -------------------------------------------------------------------------------


def _name(source: str, key: str, name: Any, what: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ConfigError(source, key, f"{what} name {name!r}: use 1 to 64 letters, digits, "
                                       f"'_', '.' or '-', starting with a letter or digit")
    return name


def _choices(source: str, key: str, value: Any, known: Sequence[str]) -> frozenset[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(source, key, f"must be a non-empty list of names, got {value!r}")
    for v in value:
        if v not in known:
            raise ConfigError(source, key, f"unknown value {v!r}; known: {', '.join(known)}")
    if len(set(value)) != len(value):
        raise ConfigError(source, key, f"lists a value twice: {value!r}")
    return frozenset(value)


def _instant(source: str, key: str, value: Any) -> float:
    """Unix seconds of a TOML date or date-time, or an ISO 8601 string; naive means UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ConfigError(source, key, f"not an ISO 8601 date or date-time: {value!r}"
                              ) from None
    if isinstance(value, datetime):
        return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    raise ConfigError(source, key, f"must be a date or date-time (2026-01-05, "
                                   f"2026-01-05T09:00:00+08:00), got {value!r}")


def _experiment(source: str, name: Any, values: Any) -> Experiment:
    key = f"experiments.{name}"
    _name(source, key, name, "experiment")
    if not isinstance(values, Mapping):
        raise ConfigError(source, key, "must be a table")
    for k in values:
        if k not in EXPERIMENT_KEYS:
            raise ConfigError(source, f"{key}.{k}",
                              f"unknown key; known: {', '.join(EXPERIMENT_KEYS)}")
    channels = _choices(source, f"{key}.channels", values["channels"], CHANNEL_IDS) \
        if "channels" in values else frozenset(CHANNEL_IDS)
    moments = _choices(source, f"{key}.moments", values["moments"], MOMENTS) \
        if "moments" in values else frozenset(MOMENTS)
    start = _instant(source, f"{key}.start", values["start"]) if "start" in values else None
    end = _instant(source, f"{key}.end", values["end"]) if "end" in values else None
    if start is not None and end is not None and end <= start:
        raise ConfigError(source, f"{key}.end", "must be after start")
    arms_table = values.get("arms")
    if not isinstance(arms_table, Mapping) or not arms_table:
        raise ConfigError(source, f"{key}.arms",
                          "an experiment needs an [arms] table with at least one arm")
    arms = tuple(_arm(source, name, arm_name, arm_values, channels, moments)
                 for arm_name, arm_values in arms_table.items())
    total = math.fsum(a.share for a in arms)
    if abs(total - 1.0) > SHARE_TOLERANCE:
        raise ConfigError(source, f"{key}.arms",
                          f"the arms' shares sum to {total:g}; they must sum to 1")
    return Experiment(name, arms, channels, moments, start, end)


def _arm(source: str, experiment: str, name: Any, values: Any, channels: frozenset[str],
         moments: frozenset[str]) -> Arm:
    from .config import _blend

    key = f"experiments.{experiment}.arms.{name}"
    _name(source, key, name, "arm")
    if not isinstance(values, Mapping):
        raise ConfigError(source, key, "must be a table with a share")
    for k in values:
        if k not in ARM_KEYS:
            raise ConfigError(source, f"{key}.{k}", f"unknown key; known: {', '.join(ARM_KEYS)}")
    if "share" not in values:
        raise ConfigError(source, f"{key}.share", "missing: the arm's share of the customers")
    share = values["share"]
    if isinstance(share, bool) or not isinstance(share, int | float) or \
            not math.isfinite(share) or not 0 < share <= 1:
        raise ConfigError(source, f"{key}.share",
                          f"must be a number above 0 and at most 1, got {share!r}")
    marketing = values.get("marketing", True)
    if not isinstance(marketing, bool):
        raise ConfigError(source, f"{key}.marketing", f"must be true or false, got {marketing!r}")
    table = values.get("blend", {})
    if not isinstance(table, Mapping):
        raise ConfigError(source, f"{key}.blend", "must be a table of moments")
    try:
        blend, channel_blend = _blend(table, source)
    except ConfigError as e:  # the same rules as [blend]; name the arm's key
        reason = str(e)[len(f"{e.source}, {e.key}: "):]
        raise ConfigError(source, f"{key}.{e.key}", reason) from None
    for moment in blend:
        if moment not in moments:
            raise ConfigError(source, f"{key}.blend.{moment}",
                              f"the experiment does not apply at moment {moment!r} (moments = "
                              f"{sorted(moments)})")
    for moment, channel in channel_blend:
        if channel not in channels:
            raise ConfigError(source, f"{key}.blend.{moment}.{channel}",
                              f"the experiment does not apply on channel {channel!r} "
                              f"(channels = {sorted(channels)})")
    return Arm(name, float(share), blend, channel_blend, marketing)


def _check_overlaps(source: str, experiments: Sequence[Experiment]) -> None:
    """Refuse two experiments covering one channel and moment at overlapping times."""
    for i, later in enumerate(experiments):
        for earlier in experiments[:i]:
            channels = sorted(later.channels & earlier.channels)
            moments = sorted(later.moments & earlier.moments)
            if not channels or not moments:
                continue
            lo = max(later.start if later.start is not None else -math.inf,
                     earlier.start if earlier.start is not None else -math.inf)
            hi = min(later.end if later.end is not None else math.inf,
                     earlier.end if earlier.end is not None else math.inf)
            if lo < hi:
                raise ConfigError(
                    source, f"experiments.{later.name}",
                    f"overlaps experiment {earlier.name!r}: both cover channel "
                    f"{channels[0]!r} at moment {moments[0]!r} at the same time; a request "
                    f"belongs to at most one experiment (narrow channels, moments or "
                    f"start/end)")


__all__ = ["ANONYMOUS", "HOLDOUT", "Arm", "Assignment", "Experiment", "Experiments", "bucket"]
