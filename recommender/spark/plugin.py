"""A plugin manager whose strategies are fitted on Spark wherever something calls ``fit``.

``recommender evaluate --engine spark`` uses it: the evaluation fits each strategy on its
training split (``TrainingData`` on the driver); every strategy with a Spark fit hands that
split to the cluster as DataFrames (``tables.from_training_data``) instead, so Spark-fitted
models are scored on exactly the split, customers and engine the local ones are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

from .. import hookspecs
from ..plugin_manager import make_plugin_manager
from ..strategy import Strategy
from ..training import TrainingData
from . import fits
from .tables import from_training_data


def spark_fit_on(spark: Any, strategy: Strategy) -> Callable[[TrainingData], Strategy]:
    """A ``fit`` for ``strategy`` that runs its Spark fit on the data given."""
    def fit(data: TrainingData) -> Strategy:
        spark_data = from_training_data(spark, data)
        try:
            fits.spark_fit(strategy, spark_data)
        finally:
            spark_data.release()
        return strategy
    return fit


class _Routed:
    """One plugin with its other hooks as they are and its ``register_strategies`` wrapped:
    the strategies it returns with a Spark fit get ``fit`` routed to it."""

    def __init__(self, plugin: Any, impl: Any, hooks: list[str], spark: Any):
        for hook in hooks:
            if hook != "register_strategies":
                setattr(self, hook, getattr(plugin, hook))
        self._impl, self._spark = impl, spark

    @hookspecs.hookimpl
    def register_strategies(self, config: Any, catalog: Any, store: Any) -> list[Strategy]:
        given = {"config": config, "catalog": catalog, "store": store}
        strategies = list(self._impl.function(*[given[n] for n in self._impl.argnames]) or [])
        for strategy in strategies:
            if isinstance(strategy, Strategy) and fits.training_kind(strategy)[0] == fits.SPARK:
                strategy.fit = spark_fit_on(self._spark, strategy)  # type: ignore[method-assign]
        return strategies


def spark_plugin_manager(spark: Any, source: pluggy.PluginManager | None = None
                         ) -> pluggy.PluginManager:
    """The plugins of ``source`` (default: every installed one), in the same order, with each
    strategy that has a Spark fit fitted on ``spark``."""
    source = source or make_plugin_manager()
    impls = {impl.plugin: impl for impl in source.hook.register_strategies.get_hookimpls()}
    pm = pluggy.PluginManager("recommender")
    pm.add_hookspecs(hookspecs)
    for name, plugin in source.list_name_plugin():
        if plugin is None:  # blocked
            continue
        if plugin in impls:
            hooks = [caller.name for caller in source.get_hookcallers(plugin) or ()]
            plugin = _Routed(plugin, impls[plugin], hooks, spark)
        pm.register(plugin, name=name)
    return pm
