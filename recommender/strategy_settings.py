"""Every setting each strategy takes, read from its constructor and docstring.

The single source for ``[strategies.NAME]`` in config.toml, ``recommender evaluate --param
NAME.KEY=VALUE`` and the table in docs/evaluation.md (``recommender settings --markdown``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .strategy import Strategy

if TYPE_CHECKING:
    from .config import Config

S = TypeVar("S", bound=Strategy)

_PARAM = re.compile(r"^\s*:param (\w+):\s*(.*)$")
_SETTING = re.compile(r"^\s+(\w+) = [^#]*#\s*(.*)$")
#: A row of a reStructuredText table of settings: ````key``  default  what``.
_TABLE_ROW = re.compile(r"^``(\w+)``\s+\S+\s+(.*)$")
_CONTINUED = re.compile(r"^\s{20,}(\S.*)$")
#: Constructor keywords the plugin fills in (the engine's objects, the file rules came
#: from), not settings of config.toml.
_NOT_SETTINGS = frozenset({"config", "store", "catalog", "source"})


@dataclass(frozen=True)
class Setting:
    """One keyword a strategy's constructor takes, with its default and description."""

    strategy: str
    key: str
    type: str
    default: Any
    description: str


def _descriptions(cls: type) -> dict[str, str]:
    """``:param name: text`` entries of the class and constructor docstrings, lines joined;
    else ``name = value  # text`` lines, or the rows of a ````key``  default  what`` table, of
    the module docstring."""
    found: dict[str, str] = {}
    module = inspect.getmodule(cls)
    row = None
    for line in (inspect.getdoc(module) or "").splitlines() if module else ():
        match = _SETTING.match(line) or _TABLE_ROW.match(line)
        if match:
            row = match.group(1)
            found[row] = match.group(2).strip()
        elif row and (more := _CONTINUED.match(line)):
            found[row] += " " + more.group(1).strip()
        else:
            row = None
    for doc in (inspect.getdoc(cls), inspect.getdoc(cls.__init__)):
        current = None
        for line in (doc or "").splitlines():
            match = _PARAM.match(line)
            if match:
                current = match.group(1)
                found[current] = match.group(2).strip()
            elif current and line.startswith(" ") and line.strip():
                found[current] += " " + line.strip()
            else:
                current = None
    return found


def strategy_settings(strategies: Mapping[str, Strategy]) -> list[Setting]:
    """The settings of each strategy, in registration order then constructor order."""
    out = []
    for name, strategy in strategies.items():
        cls = type(strategy)
        described = _descriptions(cls)
        for param in inspect.signature(cls.__init__).parameters.values():
            if param.kind != param.KEYWORD_ONLY or param.name in _NOT_SETTINGS:
                continue
            annotation = param.annotation
            kind = annotation if isinstance(annotation, str) else getattr(
                annotation, "__name__", str(annotation))
            out.append(Setting(name, param.name, kind.replace("'", ""),
                               None if param.default is param.empty else param.default,
                               described.get(param.name, "")))
    return out


def registered_settings(plugin_manager: Any = None) -> list[Setting]:
    """The settings of every strategy the installed plugins register."""
    from .config import Config
    from .engine import Engine
    from .evaluation.data import synthetic_catalog
    from .plugin_manager import make_plugin_manager

    engine = Engine(synthetic_catalog(["item"]), Config.from_dict({}, root=Path.cwd()),
                    store=None, plugin_manager=plugin_manager or make_plugin_manager(),
                    model_version="settings")
    try:
        return strategy_settings(engine.strategies)
    finally:
        engine.close()


def settings_markdown(settings: list[Setting]) -> str:
    """One table per strategy: key, type, default, description."""
    lines: list[str] = []
    current = None
    for s in settings:
        if s.strategy != current:
            current = s.strategy
            lines += ["", f"### `{current}`", "", "| key | type | default | description |",
                      "|---|---|---|---|"]
        default = "unset" if s.default is None else f"`{s.default!r}`"
        text = (s.description or "(not documented)").replace("|", "\\|")
        kind = s.type.replace("|", "\\|")
        lines.append(f"| `{s.key}` | `{kind}` | {default} | {text} |")
    return "\n".join(lines).lstrip("\n") + "\n"


def setting_keys(cls: type[Strategy]) -> list[str]:
    """The ``[strategies.<name>]`` keys of a strategy whose settings are its constructor's
    keyword-only parameters."""
    return [p.name for p in inspect.signature(cls.__init__).parameters.values()
            if p.kind == p.KEYWORD_ONLY and p.name not in _NOT_SETTINGS]


def build_strategy(cls: type[S], config: Config, *args: Any, **objects: Any) -> S:
    """``cls(*args, **objects, **settings)`` with its ``[strategies.<name>]`` settings, checked
    as configuration: an unknown key (with a "did you mean") or a value the constructor
    refuses is a ConfigError naming the file and ``strategies.<name>.<key>``, not a raw
    TypeError from inside a plugin.

    :param objects: what the plugin passes besides settings (the store, the configuration).
    """
    from .errors import ConfigError, did_you_mean

    name = cls.name
    settings = config.strategy_settings(name)
    known = setting_keys(cls)
    for key in settings:
        if key not in known:
            raise ConfigError(config.source, f"strategies.{name}.{key}",
                              f"unknown key; {did_you_mean(key, known)}known: "
                              f"{', '.join(known)}")
    try:
        return cls(*args, **objects, **settings)
    except (TypeError, ValueError) as e:
        words = (word.strip(":,.'\"") for word in str(e).split())  # "name: c must be"
        key = next((word for word in words if word in settings), None)
        raise ConfigError(config.source, f"strategies.{name}" + (f".{key}" if key else ""),
                          str(e)) from e


__all__ = ["Setting", "build_strategy", "registered_settings", "setting_keys",
           "settings_markdown", "strategy_settings"]
