"""Building the plugin manager: built-in plugins first, then the ``recommender`` entry points.

Built-in plugins are ordinary plugins registered through the same manager, so a third party can
override any of them (the built-in context providers are ``trylast``). ``RECOMMENDER_PLUGINS``
(a comma-separated allow-list of plugin names) restricts what is loaded.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError, did_you_mean

#: Built-in plugins, registered under these names.
DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("eligibility", "plugins.eligibility"),
    ("store_provider", "plugins.store_provider"),
    ("channels", "plugins.channels"),
    ("popularity", "plugins.popularity"),
    ("cross_sell", "plugins.cross_sell"),
    ("alternatives", "plugins.alternatives"),
    ("association", "plugins.association"),
    ("cf", "plugins.cf"),
    ("adaptive", "plugins.adaptive"),
    ("propensity", "plugins.propensity"),
)

ENTRY_POINT_GROUP = "recommender"
ALLOW_LIST_ENV = "RECOMMENDER_PLUGINS"


def make_plugin_manager(
    *,
    extra_plugins: Iterable[tuple[str, Any]] = (),
    load_entry_points: bool = True,
    allow: Iterable[str] | None = None,
) -> pluggy.PluginManager:
    """A fresh manager with the built-in plugins, entry-point plugins and ``extra_plugins``.

    :param extra_plugins: ``(name, plugin)`` pairs registered after the others (tests, embedding).
    :param load_entry_points: also load third-party plugins from the ``recommender`` group.
    :param allow: plugin names to load; default from ``RECOMMENDER_PLUGINS``, else all.
    :raises PluginError: a plugin failed to import or declares a hook the specs do not have,
        or the allow-list names a plugin that is neither built in, installed nor given.
    """
    if allow is None and os.environ.get(ALLOW_LIST_ENV):
        allow = [n.strip() for n in os.environ[ALLOW_LIST_ENV].split(",") if n.strip()]
    allowed = None if allow is None else set(allow)

    pm = pluggy.PluginManager("recommender")
    pm.add_hookspecs(hookspecs)

    def register(name: str, plugin: Any) -> None:
        if allowed is not None and name not in allowed:
            return
        if pm.has_plugin(name):
            raise PluginError(f"plugin {name!r}: a plugin of that name is already registered")
        try:
            pm.register(plugin, name=name)
        except pluggy.PluginValidationError as e:
            raise PluginError(f"plugin {name!r}: {e}") from e

    extra_plugins = list(extra_plugins)
    installed = list(entry_points(group=ENTRY_POINT_GROUP)) if load_entry_points else []
    if allowed is not None:
        _check_allow_list(allowed, [n for n, _ in DEFAULT_PLUGINS] + [ep.name for ep in installed]
                          + [n for n, _ in extra_plugins])
    for name, module in DEFAULT_PLUGINS:
        if allowed is None or name in allowed:
            register(name, importlib.import_module(module))
    if load_entry_points:
        for ep in installed:
            if allowed is not None and ep.name not in allowed:
                continue
            try:
                plugin = ep.load()
            except Exception as e:  # a broken third-party package must name itself
                raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to load: {e}") from e
            register(ep.name, plugin)
    for name, plugin in extra_plugins:
        register(name, plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as e:
        raise PluginError(str(e)) from e
    return pm


def _check_allow_list(allowed: set[str], known: list[str]) -> None:
    unknown = sorted(allowed - set(known))
    if not unknown:
        return
    raise PluginError(f"{ALLOW_LIST_ENV}: unknown plugin {unknown[0]!r}; "
                      f"{did_you_mean(unknown[0], known)}"
                      f"known plugins: {', '.join(known)}")


def call_each(hook: Any, *, before: Callable[[str], None] | None = None, **kwargs: Any
              ) -> list[tuple[str, Any, BaseException | None]]:
    """Call every implementation of ``hook`` on its own, so one failure cannot hide the others.

    Implementations run in pluggy's order (last registered first, ``tryfirst``/``trylast``
    honoured). Returns ``(plugin_name, result, error)`` per implementation; ``None`` results
    are kept so callers can tell "nothing to say" from "failed". ``before`` is told each
    plugin's name as it is called (so a caller can name the one that hangs).
    """
    out: list[tuple[str, Any, BaseException | None]] = []
    for impl in reversed(hook.get_hookimpls()):
        args = [kwargs[name] for name in impl.argnames]
        if before is not None:
            before(impl.plugin_name)
        try:
            out.append((impl.plugin_name, impl.function(*args), None))
        except Exception as e:
            out.append((impl.plugin_name, None, e))
    return out


def first_result(hook: Any, on_error: Callable[[str, BaseException], None], *,
                 before: Callable[[str], None] | None = None, **kwargs: Any) -> Any:
    """Like a ``firstresult`` hook call, but a failing implementation is reported and skipped."""
    for impl in reversed(hook.get_hookimpls()):
        args = [kwargs[name] for name in impl.argnames]
        if before is not None:
            before(impl.plugin_name)
        try:
            result = impl.function(*args)
        except Exception as e:
            on_error(impl.plugin_name, e)
            continue
        if result is not None:
            return result
    return None
