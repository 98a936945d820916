"""``recommender train --engine spark``: fit on the cluster, write the usual model version.

The version is written by ``recommender.models.train_models``, as a local training writes it
(one folder per strategy, a manifest with checksums, ``CURRENT``, the training lock, the
``failed`` list, ``--strategies`` reuse), so ``recommender serve`` cannot tell the two apart
but by the manifest's ``data.fingerprint`` (``spark:...``). Each strategy is fitted as
``recommender.spark.fits.training_kind`` says: on the cluster, on empty data (it learns
nothing from customers), or on a sample of customers collected to the driver
(``--sample N``); without a sample, a strategy with no Spark fit stops the training before
anything is fitted, naming it and the ways out.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pluggy
import scipy.sparse as sp

from ..attributes import declared_kinds
from ..catalog import Catalog
from ..engine import Engine
from ..errors import ModelError
from ..models import train_models
from ..plugin_manager import make_plugin_manager
from ..strategy import Strategy
from ..training import EventLog, TrainingData
from ..workspace import Workspace
from . import fits
from .tables import SparkData, TableSource, load


@dataclass(frozen=True)
class _Counted:
    """A sized stand-in for an event log held on the cluster: only its length is read."""

    n: int

    def __len__(self) -> int:
        return self.n


@dataclass(frozen=True)
class DataSummary:
    """What ``train_models`` records of the training data (the manifest's ``data``), for
    tables that stay on the cluster."""

    catalog: Catalog
    n_customers: int
    events: _Counted

    @property
    def n_products(self) -> int:
        return len(self.catalog)


def empty_data(catalog: Catalog) -> TrainingData:
    """Training data without customers: what a strategy that learns nothing from them gets."""
    none = np.zeros(0, np.int32)
    return TrainingData(catalog=catalog, customers=np.zeros(0, dtype=object),
                        holdings=sp.csr_matrix((0, len(catalog)), dtype=np.float32),
                        events=EventLog(none, none, none.astype(np.int8), none.astype(np.int8),
                                        none.astype(np.int64)))


def plan(strategies: Mapping[str, Strategy], sample: int | None) -> dict[str, str]:
    """How each strategy will be fitted: ``spark``, ``no_data`` or ``sample``.

    :raises ModelError: a strategy can only be fitted locally and no sample is allowed.
    """
    out, refused = {}, []
    for name, strategy in strategies.items():
        kind, why = fits.training_kind(strategy)
        if kind == fits.LOCAL:
            if sample is None:
                refused.append(f"{name} ({why})")
            out[name] = "sample"
        else:
            out[name] = kind
    if refused:
        raise ModelError(
            f"cannot train on Spark: {'; '.join(refused)}. Give --sample N to fit "
            f"{'it' if len(refused) == 1 else 'them'} locally on N customers drawn at random, "
            f"train only the others (--strategies), or leave "
            f"{'it' if len(refused) == 1 else 'them'} out of the blend")
    return out


@contextmanager
def _fits_routed(strategies: Mapping[str, Strategy], how: Mapping[str, str], data: SparkData,
                 sample: Callable[[], TrainingData]) -> Iterator[None]:
    """Within the block, each strategy's ``fit`` (which ``train_models`` calls) runs as
    ``how`` says. The routing is set on the instances and removed on the way out."""
    empty = empty_data(data.catalog)

    def routed(strategy: Strategy, kind: str) -> Callable[[Any], Strategy]:
        def fit(_: Any) -> Strategy:
            if kind == fits.SPARK:
                fits.spark_fit(strategy, data)
                return strategy
            return type(strategy).fit(strategy, empty if kind == fits.NO_DATA else sample())
        return fit

    for name, kind in how.items():
        strategies[name].fit = routed(strategies[name], kind)  # type: ignore[method-assign]
    try:
        yield
    finally:
        for name in how:
            del strategies[name].fit


def train_on_spark(ws: Workspace, spark: Any, sources: Mapping[str, TableSource], *,
                   plugin_manager: pluggy.PluginManager | None = None,
                   progress: Callable[[str], None] = lambda message: None,
                   only: Collection[str] | None = None, sample: int | None = None,
                   seed: int = 0) -> Path:
    """Fit the enabled strategies (or ``only`` these) on ``spark`` from the ``sources``
    tables and write a new current model version of workspace ``ws``.

    :param sample: customers to draw for strategies without a Spark fit; None refuses them.
    :raises ModelError: a strategy cannot be fitted on Spark and no sample was allowed.
    :raises InputError: the tables cannot be read as the import schema says.
    """
    catalog = ws.catalog()
    config = ws.config()
    engine = Engine(catalog, config, store=None,
                    plugin_manager=plugin_manager or make_plugin_manager())
    try:
        enabled = config.enabled_strategies()
        strategies = {n: s for n, s in engine.strategies.items() if n in enabled}
        fitted = strategies if only is None else \
            {n: s for n, s in strategies.items() if n in set(only)}
        how = plan(fitted, sample)
        for name, kind in how.items():
            progress(f"{name}: " + ("Spark fit" if kind == fits.SPARK else
                                    "learns nothing from customers" if kind == fits.NO_DATA
                                    else f"fitted locally on {sample:,} customers drawn at "
                                         f"random"))
        data = load(spark, sources, catalog, progress=progress,
                    declared=declared_kinds(config.raw, config.source))
        drawn: list[TrainingData] = []

        def sampled() -> TrainingData:
            if not drawn:
                drawn.append(data.sample(sample or 0, seed))
                progress(f"drew {drawn[0].n_customers:,} customers for the local fits")
            return drawn[0]

        try:
            with _fits_routed(fitted, how, data, sampled):
                return train_models(strategies, DataSummary(catalog, data.n_customers,
                                                            _Counted(data.n_events)),
                                    ws.models_path, fingerprint=data.fingerprint,
                                    progress=progress, sources=engine.sources, only=only)
        finally:
            data.release()
    finally:
        engine.close()
