"""What is installed: each registered plugin's distribution, version, hooks and strategies.

``recommender plugins`` and ``GET /v1/plugins`` show it, and the model manifest records, per
strategy, the plugin that provided it, that plugin's distribution and version and the
strategy's ``state_format``, so that loading a model trained by another version of a plugin
says so (:func:`provenance_problems`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from typing import Any

import pluggy

from .plugin_manager import DEFAULT_PLUGINS

BUILTIN_NAMES = frozenset(name for name, _ in DEFAULT_PLUGINS)


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin, as a user or an operator needs to see it."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    builtin: bool
    hooks: tuple[str, ...]
    strategies: tuple[str, ...] = ()
    #: Strategy name to ``trained`` / ``not trained`` / ``needs no training`` / ``not in blend``.
    training: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "module": self.module, "distribution": self.distribution,
                "version": self.version, "builtin": self.builtin, "hooks": list(self.hooks),
                "strategies": [{"name": s, "training": self.training.get(s, "unknown")}
                               for s in self.strategies]}


@cache
def _distributions() -> Mapping[str, list[str]]:
    return packages_distributions()


def distribution_of(module: str) -> tuple[str | None, str | None]:
    """The installed distribution that ships ``module`` and its version, or ``(None, None)``
    for code that is not installed (a plugin registered from a script)."""
    top = module.partition(".")[0]
    names = _distributions().get(top) or []
    for name in names:
        try:
            return name, version(name)
        except PackageNotFoundError:
            continue
    return None, None


def describe_plugins(pm: pluggy.PluginManager, *,
                     strategy_sources: Mapping[str, str] | None = None,
                     training: Mapping[str, str] | None = None) -> list[PluginInfo]:
    """Every plugin of ``pm`` in registration order.

    :param strategy_sources: strategy name to the plugin that registered it
        (``Engine.sources``).
    :param training: strategy name to its training state in the current model.
    """
    by_plugin: dict[str, list[str]] = {}
    for strategy, plugin in (strategy_sources or {}).items():
        by_plugin.setdefault(plugin, []).append(strategy)
    out = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        module = getattr(plugin, "__name__", None) or type(plugin).__module__
        distribution, dist_version = distribution_of(module)
        hooks = tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or ()))
        strategies = tuple(sorted(by_plugin.get(name, ())))
        out.append(PluginInfo(
            name=name, module=module, distribution=distribution, version=dist_version,
            builtin=name in BUILTIN_NAMES and module.startswith("plugins."), hooks=hooks,
            strategies=strategies,
            training={s: (training or {}).get(s, "unknown") for s in strategies}))
    return out


def provenance(plugin: str, module: str, state_format: int) -> dict[str, Any]:
    """What the manifest records of a strategy's origin."""
    distribution, dist_version = distribution_of(module)
    return {"plugin": plugin, "distribution": distribution, "plugin_version": dist_version,
            "state_format": state_format}


def provenance_problems(entry: Mapping[str, Any], plugin: str, module: str,
                        state_format: int) -> tuple[str | None, str | None]:
    """``(refusal, warning)`` for loading a strategy trained as ``entry`` says.

    A different ``state_format`` is a refusal (the saved arrays do not mean what the loader
    expects); another plugin or another version of its distribution is a warning. Manifests
    written before provenance was recorded give neither.
    """
    if "state_format" not in entry:
        return None, None
    if entry["state_format"] != state_format:
        return (f"trained with state format {entry['state_format']!r} by "
                f"{entry.get('distribution')} {entry.get('plugin_version')}; the installed "
                f"plugin reads format {state_format}: retrain"), None
    distribution, dist_version = distribution_of(module)
    if entry.get("plugin") != plugin:
        return None, f"trained by plugin {entry.get('plugin')!r}, served by {plugin!r}"
    if (entry.get("distribution"), entry.get("plugin_version")) != (distribution, dist_version):
        return None, (f"trained by {entry.get('distribution')} {entry.get('plugin_version')}, "
                      f"served by {distribution} {dist_version}")
    return None, None


def engine_plugins(engine: Any) -> list[PluginInfo]:
    """The plugins of an engine, each strategy with its state in the engine's model."""
    states = training_states(engine.strategies, engine.trained_strategies,
                             engine.config.enabled_strategies(), engine.model_version)
    return describe_plugins(engine.pm, strategy_sources=engine.sources, training=states)


def training_states(strategies: Mapping[str, Any], trained: Mapping[str, Any],
                    enabled: frozenset[str], model_version: str | None) -> dict[str, str]:
    """Each strategy's state in the current model: ``trained in VERSION``, ``not trained``
    (enabled, learns, absent from the model: run ``recommender train``), ``needs no
    training`` or ``not in blend``."""
    out = {}
    for name, strategy in strategies.items():
        if name in trained:
            out[name] = f"trained in {model_version}"
        elif name not in enabled:
            out[name] = "not in blend"
        elif strategy.is_fitted:
            out[name] = "needs no training"
        else:
            out[name] = "not trained"
    return out
