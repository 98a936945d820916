"""Workspace configuration: engine limits, channel slots, blend weights, strategy settings.

Read from ``config.toml`` in the workspace folder, over built-in defaults, so an empty file is
a working configuration. Every key is validated on load and errors name the file and key.

Every number anywhere in the file, in every section (plugins' ``[strategies.<name>]`` tables
and ``[server]`` included), must be finite: TOML can spell ``inf``, ``-inf`` and ``nan``, and
none of them is a usable setting. The settings this module owns have these inclusive ranges:

=================================  ================  =======================================
key                                range             why the maximum
=================================  ================  =======================================
``engine.candidate_pool``          1 .. 10,000       far above any catalog a channel shows
``engine.strategy_timeout_ms``     1 .. 600,000      10 minutes: the offline evaluator's
``engine.context_timeout_ms``      1 .. 600,000      "no budget"; serving wants ~100 ms
``engine.workers``                 1 .. 256          threads per process
``engine.max_holdings``            1 .. 100,000      holdings on one request
``engine.fast_strategy_ms``        0 .. 600,000      as the timeouts (0: isolate every call)
``channels.<channel>``             1 .. 100          suggestion slots on one screen or call
``blend.<moment>[.<channel>].<s>`` 0 .. 1,000        weights are relative; 0 switches off
=================================  ================  =======================================

Strategy names (the keys of ``[blend.*]`` tables and of ``[strategies.*]``) are checked when
an :class:`~recommender.engine.Engine` is built, because only then are the plugins' strategies
registered: a name no plugin provides is a :class:`ConfigError` with a "did you mean". A name
provided by a built-in or installed plugin that is not loaded (``RECOMMENDER_PLUGINS``, or a
plugin manager built with fewer plugins) is accepted and, as before, does nothing.
"""

from __future__ import annotations

import copy
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .contact_policy import ContactPolicy
from .context import CHANNEL_IDS, Moment
from .errors import ConfigError, did_you_mean
from .handoff import HandoffSettings
from .i18n import DEFAULT_LOCALE, LOCALES

DEFAULT_SLOTS = {"app": 9, "web": 12, "hotline": 2, "sms": 1, "wechat": 4, "store": 6}

#: Blend weights per moment: which strategies run, and how much each counts.
DEFAULT_BLEND: dict[str, dict[str, Any]] = {
    "query": {"popularity": 1.0, "cross_sell": 1.0, "item_similarity": 0.5},
    "transaction": {"association": 1.0, "item_similarity": 0.8, "cross_sell": 1.0,
                    "popularity": 0.2},
    "success": {"cf": 1.0, "cross_sell": 1.0, "association": 0.6, "popularity": 0.2},
    "failure": {"alternatives": 2.0, "cross_sell": 1.5, "association": 0.4,
                "popularity": 0.1},
}

DEFAULTS: dict[str, Any] = {
    "engine": {
        "candidate_pool": 50,
        "strategy_timeout_ms": 100.0,
        "context_timeout_ms": 100.0,
        "workers": 8,
        "max_holdings": 500,
        "fast_strategy_ms": 5.0,
    },
    "channels": DEFAULT_SLOTS,
    "blend": DEFAULT_BLEND,
    "strategies": {},
}

#: Inclusive ``(minimum, maximum, integer)`` of each ``[engine]`` key.
ENGINE_LIMITS: dict[str, tuple[int, int, bool]] = {
    "candidate_pool": (1, 10_000, True),
    "strategy_timeout_ms": (1, 600_000, False),
    "context_timeout_ms": (1, 600_000, False),
    "workers": (1, 256, True),
    "max_holdings": (1, 100_000, True),
    "fast_strategy_ms": (0, 600_000, False),
}
#: Inclusive range of a channel's suggestion slots.
SLOT_LIMITS = (1, 100)
#: Inclusive range of a blend weight.
WEIGHT_LIMITS = (0, 1_000)


#: Sections read by other parts (the server, training, the contact policy, experiments,
#: arbitration, exploration), each validated where it is read.
OTHER_SECTIONS = frozenset({"server", "rules", "training", "contact_policy", "experiments",
                            "arbitration", "exploration", "handoff", "locale", "events",
                            "attributes", "targeting"})
#: Strategies trained for outbound targeting whatever the blend says (``[targeting]``).
DEFAULT_TARGETING_STRATEGIES = ("propensity",)


@dataclass(frozen=True)
class EngineSettings:
    candidate_pool: int
    strategy_timeout_ms: float
    context_timeout_ms: float
    workers: int
    max_holdings: int
    #: A strategy whose last calls each took under this runs in the request's shared task
    #: with the other fast ones, not in a task of its own; 0 gives every call its own task.
    fast_strategy_ms: float = 5.0


@dataclass(frozen=True)
class Config:
    """Validated configuration. ``raw`` keeps the merged TOML data for plugins' own keys."""

    engine: EngineSettings
    slots: Mapping[str, int]
    blend: Mapping[str, Mapping[str, float]]
    channel_blend: Mapping[tuple[str, str], Mapping[str, float]]
    raw: Mapping[str, Any] = field(repr=False)
    source: str = "<defaults>"
    root: Path | None = None
    contact_policy: ContactPolicy = field(default_factory=ContactPolicy)
    #: ``[handoff]``: which channels may show what they cannot transact, and where to send.
    handoff: HandoffSettings = field(default_factory=HandoffSettings)
    #: ``[locale]``: the language of each channel's answers (``default`` for the others).
    locales: Mapping[str, str] = field(default_factory=lambda: {"default": DEFAULT_LOCALE})

    def locale(self, channel: str) -> str:
        """The locale a channel's answers are written in when the request names none."""
        return self.locales.get(channel) or self.locales.get("default", DEFAULT_LOCALE)

    def resolve(self, relative: str | Path) -> Path:
        """A path named in the configuration, relative to the workspace folder."""
        path = Path(relative)
        return path if path.is_absolute() or self.root is None else self.root / path

    def weights(self, moment: Moment | str, channel: str) -> Mapping[str, float]:
        """Strategy weights for a moment on a channel (channel override, else the moment's)."""
        moment = str(moment)
        return self.channel_blend.get((moment, channel)) or self.blend.get(moment, {})

    def enabled_strategies(self) -> frozenset[str]:
        """Strategies with a weight above zero at some moment or channel, in the blend or an
        experiment's arm: the ones to train."""
        from .experiments import Experiments

        tables = [*self.blend.values(), *self.channel_blend.values()]
        named = frozenset(name for weights in tables for name, w in weights.items() if w > 0)
        return named | Experiments.from_raw(self.raw, self.source).enabled_strategies() | \
            self.targeting_strategies()

    def targeting_strategies(self) -> frozenset[str]:
        """``[targeting] strategies``: trained for ``recommender target`` and ``batch`` even
        with no weight in the blend (default: propensity)."""
        names = self.raw.get("targeting", {}).get("strategies", DEFAULT_TARGETING_STRATEGIES)
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            raise ConfigError(self.source, "targeting.strategies",
                              f"must be a list of strategy names, got {names!r}")
        return frozenset(names)

    def strategy_keys(self) -> list[tuple[str, str]]:
        """Every strategy the configuration names, as ``(key, strategy name)``.

        The blend's weights (per moment and per channel override) and the ``[strategies.<name>]``
        tables. Only the engine knows which strategies exist, so it checks these names.
        """
        keys = [(f"blend.{moment}.{name}", name)
                for moment, weights in self.blend.items() for name in weights]
        keys += [(f"blend.{moment}.{channel}.{name}", name)
                 for (moment, channel), weights in self.channel_blend.items()
                 for name in weights]
        keys += [(f"strategies.{name}", name) for name in self.raw.get("strategies", {})]
        return keys

    def strategy_settings(self, name: str, schema: Any = None) -> dict[str, Any]:
        """The ``[strategies.<name>]`` table (a copy; empty if absent).

        With ``schema`` (a marshmallow ``Schema`` class, as a strategy's ``settings_schema``),
        the table loaded through it: defaults filled in, values converted and checked.

        :raises ConfigError: naming the file and ``strategies.<name>.<key>``: an unknown key
            (with a "did you mean"), or a value the schema refuses.
        """
        table = copy.deepcopy(dict(self.raw.get("strategies", {}).get(name, {})))
        if schema is None:
            return table
        from marshmallow import RAISE, ValidationError

        try:
            return schema(unknown=RAISE).load(table)
        except ValidationError as e:
            key, problems = sorted(e.normalized_messages().items())[0]
            message = "; ".join(map(str, problems if isinstance(problems, list) else [problems]))
            if message == "Unknown field.":
                known = sorted(schema().fields)
                message = f"unknown key; {did_you_mean(key, known)}known: {', '.join(known)}"
            raise ConfigError(self.source, f"strategies.{name}.{key}", message) from None

    @classmethod
    def load(cls, path: str | Path | None) -> Config:
        """Read ``path`` over the defaults; a missing ``path`` (None) gives the defaults."""
        if path is None:
            return cls.from_dict({})
        path = Path(path)
        if not path.exists():
            return cls.from_dict({}, source=str(path), root=path.parent)
        try:
            with path.open("rb") as f:
                data = tomllib.load(f)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(str(path), "(file)", f"not valid TOML: {e}") from None
        return cls.from_dict(data, source=str(path), root=path.parent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>",
                  root: Path | None = None) -> Config:
        unknown = set(data) - set(DEFAULTS) - OTHER_SECTIONS
        if unknown:
            raise ConfigError(source, sorted(unknown)[0], "unknown section")
        merged = copy.deepcopy(DEFAULTS)
        for section, values in data.items():
            if not isinstance(values, dict):
                raise ConfigError(source, section, "must be a table")
            if section == "blend":
                # A configured moment replaces the default weights for it, so a strategy can
                # be switched off by leaving it out.
                merged["blend"].update(copy.deepcopy(values))
            else:
                merged.setdefault(section, {}).update(copy.deepcopy(values))
        engine = _engine(merged["engine"], source)
        slots = _slots(merged["channels"], source)
        blend, channel_blend = _blend(merged["blend"], source)
        _strategy_tables(merged["strategies"], source)
        _check_finite(data, source)  # the sections above say their range; this covers the rest
        return cls(engine=engine, slots=slots, blend=blend, channel_blend=channel_blend,
                   raw=merged, source=source, root=root,
                   contact_policy=ContactPolicy.from_config(merged, source),
                   handoff=HandoffSettings.from_config(merged, source),
                   locales=_locales(merged.get("locale", {}), source))


def _locales(values: Any, source: str) -> dict[str, str]:
    """``[locale]``: ``default`` and per-channel locales, each one of ``i18n.LOCALES``."""
    if not isinstance(values, Mapping):
        raise ConfigError(source, "locale", "must be a table")
    out = {"default": DEFAULT_LOCALE}
    for key, value in values.items():
        if key != "default" and key not in CHANNEL_IDS:
            raise ConfigError(source, f"locale.{key}",
                              f"unknown key; known: default, {', '.join(CHANNEL_IDS)}")
        if not isinstance(value, str) or value not in LOCALES:
            raise ConfigError(source, f"locale.{key}",
                              f"must be one of {', '.join(LOCALES)}, got {value!r}")
        out[key] = value
    return out


def _check_finite(value: Any, source: str, key: str = "") -> None:
    """Refuse ``inf``, ``-inf`` and ``nan`` anywhere in the data (TOML can spell all three)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(source, key or "(file)", f"must be a finite number, got {value!r}")
    if isinstance(value, Mapping):
        for name, item in value.items():
            _check_finite(item, source, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_finite(item, source, f"{key}[{i}]")


def _number(source: str, key: str, value: Any, *, minimum: float, maximum: float,
            integer: bool = False) -> Any:
    """``value`` if it is a finite number (an integer if ``integer``) in [minimum, maximum]."""
    ok = not isinstance(value, bool) and isinstance(value, int if integer else int | float)
    if ok and isinstance(value, float):
        ok = math.isfinite(value)
    if not ok or not minimum <= value <= maximum:
        kind = "an integer" if integer else "a number"
        raise ConfigError(source, key,
                          f"must be {kind} from {minimum:,} to {maximum:,}, got {value!r}")
    return value


def _engine(values: Mapping[str, Any], source: str) -> EngineSettings:
    unknown = set(values) - set(ENGINE_LIMITS)
    if unknown:
        raise ConfigError(source, f"engine.{sorted(unknown)[0]}", "unknown key")
    settings: dict[str, Any] = {}
    for key, (minimum, maximum, integer) in ENGINE_LIMITS.items():
        value = _number(source, f"engine.{key}", values[key], minimum=minimum,
                        maximum=maximum, integer=integer)
        settings[key] = value if integer else float(value)
    return EngineSettings(**settings)


def _slots(values: Mapping[str, Any], source: str) -> dict[str, int]:
    for channel, slots in values.items():
        if channel not in CHANNEL_IDS:
            raise ConfigError(source, f"channels.{channel}",
                              f"unknown channel; known: {', '.join(CHANNEL_IDS)}")
        _number(source, f"channels.{channel}", slots, minimum=SLOT_LIMITS[0],
                maximum=SLOT_LIMITS[1], integer=True)
    return dict(values)


def _weight(source: str, key: str, value: Any) -> float:
    return float(_number(source, key, value, minimum=WEIGHT_LIMITS[0],
                         maximum=WEIGHT_LIMITS[1]))


def _strategy_tables(values: Mapping[str, Any], source: str) -> None:
    """Each ``[strategies.<name>]`` is a table (its keys are the plugin's to check)."""
    for name, settings in values.items():
        if not isinstance(settings, dict):
            raise ConfigError(source, f"strategies.{name}", "must be a table")


def _blend(values: Mapping[str, Any], source: str
           ) -> tuple[dict[str, dict[str, float]], dict[tuple[str, str], dict[str, float]]]:
    moments = {m.value for m in Moment}
    blend: dict[str, dict[str, float]] = {}
    per_channel: dict[tuple[str, str], dict[str, float]] = {}
    for moment, weights in values.items():
        if moment not in moments:
            raise ConfigError(source, f"blend.{moment}",
                              f"unknown moment; known: {', '.join(sorted(moments))}")
        if not isinstance(weights, dict):
            raise ConfigError(source, f"blend.{moment}", "must be a table")
        blend[moment] = {}
        for name, weight in weights.items():
            if isinstance(weight, dict):
                if name not in CHANNEL_IDS:
                    raise ConfigError(source, f"blend.{moment}.{name}",
                                      "a sub-table must be named after a channel")
                per_channel[(moment, name)] = {
                    s: _weight(source, f"blend.{moment}.{name}.{s}", w)
                    for s, w in weight.items()}
            else:
                blend[moment][name] = _weight(source, f"blend.{moment}.{name}", weight)
    return blend, per_channel

