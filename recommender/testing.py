"""A pytest plugin for plugin authors: a tiny seeded operator, trained with your plugins, an
engine over it and a test client of the HTTP API.

Installed with the recommender (entry point ``pytest11``), so every project that depends on
it has these fixtures, all prefixed ``recommender_``:

``recommender_plugins``
    ``(name, plugin)`` pairs registered besides the built-ins; override it in your
    ``conftest.py`` to return your plugin module. Installed entry-point plugins are not
    loaded, so a test sees exactly the plugins it names.
``recommender_config``
    TOML appended to the sample operator's ``config.toml``: your ``[strategies.<name>]``
    settings and a ``[blend.<moment>]`` weight. Override it too.
``recommender_workspace``
    The sample operator (catalog, rules, configuration, ``recommender_customers`` customers
    generated with ``recommender_seed``), trained with your plugins, in a temporary folder
    (one per test module).
``recommender_engine``
    An engine over it with the trained models loaded.
``recommender_client``
    A Flask test client of the HTTP API over it.

Everything is real: a SQLite store, trained models, the app factory of ``recommender serve``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from flask.testing import FlaskClient

    from .engine import Engine
    from .workspace import Workspace


def plugin_manager(plugins: Sequence[tuple[str, Any]]) -> Any:
    """The built-in plugins and ``plugins``, without installed entry points."""
    from .plugin_manager import make_plugin_manager

    return make_plugin_manager(load_entry_points=False, extra_plugins=list(plugins))


def make_workspace(root: Path, *, plugins: Sequence[tuple[str, Any]] = (), config: str = "",
                   customers: int = 300, seed: int = 1, train: bool = True) -> Workspace:
    """A sample operator in ``root`` with ``config`` appended to its ``config.toml``, generated
    with ``customers`` customers and ``seed``, and trained with ``plugins`` unless not
    ``train``."""
    from . import sampledata
    from .workspace import Workspace

    root.mkdir(parents=True, exist_ok=True)
    sampledata.write_workspace_files(root)
    workspace = Workspace(root)
    if config:
        with workspace.config_path.open("a", encoding="utf-8") as f:
            f.write("\n" + config.strip() + "\n")
    with workspace.store() as store:
        sampledata.generate(store, workspace.catalog(), customers=customers, seed=seed)
    if train:
        workspace.train(plugin_manager=plugin_manager(plugins))
    return workspace


@pytest.fixture(scope="module")
def recommender_plugins() -> list[tuple[str, Any]]:
    """Plugins to register besides the built-ins: override to name yours."""
    return []


@pytest.fixture(scope="module")
def recommender_config() -> str:
    """TOML appended to the sample ``config.toml``: override with your settings and weights."""
    return ""


@pytest.fixture(scope="module")
def recommender_customers() -> int:
    """How many customers the sample operator has."""
    return 300


@pytest.fixture(scope="module")
def recommender_seed() -> int:
    """The sample generator's seed."""
    return 1


@pytest.fixture(scope="module")
def recommender_workspace(tmp_path_factory: pytest.TempPathFactory, recommender_plugins,
                          recommender_config, recommender_customers, recommender_seed
                          ) -> Workspace:
    """The sample operator, trained with ``recommender_plugins`` (one per test module)."""
    return make_workspace(tmp_path_factory.mktemp("recommender") / "workspace",
                          plugins=recommender_plugins, config=recommender_config,
                          customers=recommender_customers, seed=recommender_seed)


@pytest.fixture(scope="module")
def recommender_engine(recommender_workspace, recommender_plugins) -> Iterator[Engine]:
    """An engine over ``recommender_workspace`` with its trained models and your plugins."""
    with recommender_workspace.engine(plugin_manager=plugin_manager(recommender_plugins),
                                      require_models=True) as engine:
        yield engine


@pytest.fixture(scope="module")
def recommender_client(recommender_workspace, recommender_plugins) -> Iterator[FlaskClient]:
    """A test client of the HTTP API over ``recommender_workspace`` with your plugins."""
    from api import create_app

    app = create_app(recommender_workspace.root, environ={},
                     plugin_manager=plugin_manager(recommender_plugins))
    try:
        yield app.test_client()
    finally:
        app.extensions["recommender"].slot.close()
