"""The workspace folder the CLI commands share: catalog, rules, configuration, store, models.

::

    recommender-data/
        catalog.toml   products and their eligibility, prerequisites, conflicts, upgrades
        rules.toml     marketing's cross-sell rules
        events.toml    service events: guidance, businesses, the agent's likely need
        config.toml    engine limits, channel slots, blend weights, strategy settings
        store.sqlite   customers, terminals, holdings, events, feedback
        models/        one folder per trained version, CURRENT names the one served
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import pluggy

from .catalog import Catalog
from .config import Config
from .engine import Engine
from .errors import ModelError
from .models import current_model_dir, load_models, train_models
from .plugin_manager import make_plugin_manager
from .store import Store
from .training import TrainingData

DEFAULT_DIR = "recommender-data"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def catalog_path(self) -> Path:
        return self.root / "catalog.toml"

    @property
    def config_path(self) -> Path:
        return self.root / "config.toml"

    @property
    def rules_path(self) -> Path:
        return self.root / "rules.toml"

    @property
    def store_path(self) -> Path:
        return self.root / "store.sqlite"

    @property
    def models_path(self) -> Path:
        return self.root / "models"

    def catalog(self) -> Catalog:
        return Catalog.from_toml(self.catalog_path)

    def config(self) -> Config:
        return Config.load(self.config_path)

    def store(self) -> Store:
        return Store(self.store_path)

    def exists(self) -> bool:
        return self.catalog_path.exists()

    def engine(self, *, plugin_manager: pluggy.PluginManager | None = None,
               model_dir: Path | None = None, require_models: bool = False,
               config: Config | None = None, store: Store | None = None) -> Engine:
        """An engine over this workspace with the current (or given) models loaded.

        :param config: use this configuration instead of the workspace's ``config.toml``.
        :param store: share this open store instead of opening the workspace's own.
        :raises ModelError: the models cannot be loaded, or none exist and ``require_models``.
        """
        catalog = self.catalog()
        config = config or self.config()
        pm = plugin_manager or make_plugin_manager()
        engine = Engine(catalog, config, store=store or self.store(), plugin_manager=pm)
        try:
            model_dir = model_dir or current_model_dir(self.models_path)
            if model_dir is None:
                if require_models:
                    raise ModelError(f"{self.models_path}: no trained models; run "
                                     f"'recommender train --dir {self.root}'")
                return engine
            manifest = load_models(engine.strategies, model_dir, list(catalog.ids),
                                   sources=engine.sources)
        except BaseException:
            engine.close()
            raise
        engine.model_version = manifest["version"]
        engine.trained_strategies = frozenset(manifest["strategies"])
        engine.load_warnings = tuple(manifest["load_warnings"])
        return engine

    def train(self, *, plugin_manager: pluggy.PluginManager | None = None,
              progress: Callable[[str], None] = lambda m: None,
              csv_dir: Path | None = None, only: Collection[str] | None = None) -> Path:
        """Fit every enabled strategy and write a new current model version.

        :param csv_dir: learn from the CSV files in this folder (customers.csv,
            terminals.csv, holdings.csv, events.csv) instead of the workspace's store.
        :param only: fit just these strategies; the others' artifacts are reused from the
            current version (``recommender.models.train_models``).
        """
        catalog = self.catalog()
        config = self.config()
        pm = plugin_manager or make_plugin_manager()
        if csv_dir is None:
            with self.store() as store:
                progress(f"reading {self.store_path}")
                data = TrainingData.from_store(store, catalog)
                fingerprint = store.fingerprint()
        else:
            data, fingerprint = _from_csv(csv_dir, catalog, progress)
        progress(f"read {data.n_customers} customers, {len(data.events)} events")
        engine = Engine(catalog, config, store=None, plugin_manager=pm)
        enabled = config.enabled_strategies()
        try:
            strategies = {n: s for n, s in engine.strategies.items() if n in enabled}
            return train_models(strategies, data, self.models_path,
                                fingerprint=fingerprint, progress=progress,
                                sources=engine.sources, only=only)
        finally:
            engine.close()


def _from_csv(csv_dir: Path, catalog: Catalog, progress: Callable[[str], None]
              ) -> tuple[TrainingData, str]:
    """Training data from a folder of CSV files, through a scratch store (never the
    workspace's own)."""
    import tempfile

    from .csvimport import import_directory

    with (tempfile.TemporaryDirectory(prefix="recommender-train-") as scratch,
          Store(Path(scratch) / "store.sqlite") as store):
        counts = import_directory(store, catalog, csv_dir, pause_s=0)
        if not counts.get("customers"):
            raise ModelError(f"{csv_dir}: no customers.csv to train on")
        progress(f"imported {counts} from {csv_dir}")
        return TrainingData.from_store(store, catalog), store.fingerprint()

