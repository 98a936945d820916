"""Workspace configuration: engine limits, channel slots, blend weights, strategy settings.

Read from ``config.toml`` in the workspace folder, over built-in defaults, so an empty file is
a working configuration. Every key is validated on load and errors name the file and key.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .context import CHANNEL_IDS, Moment
from .errors import ConfigError

DEFAULT_SLOTS = {"app": 9, "web": 12, "hotline": 2, "sms": 1, "wechat": 4, "store": 6}

#: Blend weights per moment: which strategies run, and how much each counts.
DEFAULT_BLEND: dict[str, dict[str, Any]] = {
    "query": {"popularity": 1.0, "cross_sell": 1.0, "item_similarity": 0.5},
    "transaction": {"association": 1.0, "item_similarity": 0.8, "cross_sell": 1.0,
                    "popularity": 0.2},
    "success": {"cf": 1.0, "cross_sell": 1.0, "association": 0.6, "popularity": 0.2},
    "failure": {"cross_sell": 1.5, "association": 0.4, "popularity": 0.1},
}

DEFAULTS: dict[str, Any] = {
    "engine": {
        "candidate_pool": 50,
        "strategy_timeout_ms": 100.0,
        "context_timeout_ms": 100.0,
        "workers": 8,
        "max_holdings": 500,
    },
    "channels": DEFAULT_SLOTS,
    "blend": DEFAULT_BLEND,
    "strategies": {},
}


@dataclass(frozen=True)
class EngineSettings:
    candidate_pool: int
    strategy_timeout_ms: float
    context_timeout_ms: float
    workers: int
    max_holdings: int


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

    def resolve(self, relative: str | Path) -> Path:
        """A path named in the configuration, relative to the workspace folder."""
        path = Path(relative)
        return path if path.is_absolute() or self.root is None else self.root / path

    def weights(self, moment: Moment | str, channel: str) -> Mapping[str, float]:
        """Strategy weights for a moment on a channel (channel override, else the moment's)."""
        moment = str(moment)
        return self.channel_blend.get((moment, channel)) or self.blend.get(moment, {})

    def enabled_strategies(self) -> frozenset[str]:
        """Strategies with a weight above zero at some moment or channel: the ones to train."""
        tables = [*self.blend.values(), *self.channel_blend.values()]
        return frozenset(name for weights in tables for name, w in weights.items() if w > 0)

    def strategy_settings(self, name: str) -> dict[str, Any]:
        """The ``[strategies.<name>]`` table (a copy; empty if absent)."""
        return copy.deepcopy(dict(self.raw.get("strategies", {}).get(name, {})))

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
        unknown = set(data) - set(DEFAULTS) - {"server", "rules", "training"}
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
        return cls(
            engine=_engine(merged["engine"], source),
            slots=_slots(merged["channels"], source),
            blend=_blend(merged["blend"], source)[0],
            channel_blend=_blend(merged["blend"], source)[1],
            raw=merged,
            source=source,
            root=root,
        )


def _number(source: str, key: str, value: Any, *, minimum: float, integer: bool = False
            ) -> Any:
    ok = not isinstance(value, bool) and isinstance(value, int if integer else int | float)
    if not ok or value < minimum or value != value:
        kind = "an integer" if integer else "a number"
        raise ConfigError(source, key, f"must be {kind} >= {minimum}, got {value!r}")
    return value


def _engine(values: Mapping[str, Any], source: str) -> EngineSettings:
    known = set(DEFAULTS["engine"])
    unknown = set(values) - known
    if unknown:
        raise ConfigError(source, f"engine.{sorted(unknown)[0]}", "unknown key")
    return EngineSettings(
        candidate_pool=_number(source, "engine.candidate_pool", values["candidate_pool"],
                               minimum=1, integer=True),
        strategy_timeout_ms=float(_number(source, "engine.strategy_timeout_ms",
                                          values["strategy_timeout_ms"], minimum=1)),
        context_timeout_ms=float(_number(source, "engine.context_timeout_ms",
                                         values["context_timeout_ms"], minimum=1)),
        workers=_number(source, "engine.workers", values["workers"], minimum=1, integer=True),
        max_holdings=_number(source, "engine.max_holdings", values["max_holdings"], minimum=1,
                             integer=True),
    )


def _slots(values: Mapping[str, Any], source: str) -> dict[str, int]:
    for channel, slots in values.items():
        if channel not in CHANNEL_IDS:
            raise ConfigError(source, f"channels.{channel}",
                              f"unknown channel; known: {', '.join(CHANNEL_IDS)}")
        _number(source, f"channels.{channel}", slots, minimum=1, integer=True)
    return dict(values)


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
                    s: float(_number(source, f"blend.{moment}.{name}.{s}", w, minimum=0))
                    for s, w in weight.items()}
            else:
                blend[moment][name] = float(
                    _number(source, f"blend.{moment}.{name}", weight, minimum=0))
    return blend, per_channel
