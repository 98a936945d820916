"""``recommender new-plugin NAME``: a plugin package that installs, trains, serves and passes
its tests as written, for an author to change into their own."""

from __future__ import annotations

import keyword
import re
from pathlib import Path

from .errors import RecommenderError

NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

PYPROJECT = '''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "recommender-{dash}"
version = "0.1.0"
description = "A recommender strategy plugin: {name}."
requires-python = ">=3.11"
dependencies = ["recommender", "marshmallow>=3.24"]

[project.optional-dependencies]
test = ["pytest>=8"]

# How the recommender finds the plugin: the "recommender" entry-point group.
[project.entry-points.recommender]
{name} = "recommender_{name}"

[tool.setuptools]
packages = ["recommender_{name}"]
'''

MODULE = '''"""The {name} strategy: businesses most held by customers, weighted by how recently they
joined. Change ``fit`` and ``candidates`` into your own; keep the contract."""

from __future__ import annotations

from pathlib import Path
from typing import Self

import numpy as np
from marshmallow import Schema, fields, validate
from recommender import (
    Candidate,
    Catalog,
    Config,
    ModelError,
    RequestContext,
    Strategy,
    TrainingData,
    hookimpl,
)
from recommender.i18n import tr
from recommender.strategy import top_n

NAME = "{name}"


class Settings(Schema):
    """``[strategies.{name}]`` in config.toml, checked when the engine is built."""

    recent_months = fields.Integer(load_default=12, validate=validate.Range(min=1, max=600))
    recent_weight = fields.Float(load_default=2.0, validate=validate.Range(min=0, max=100))


class {klass}(Strategy):
    """Share of customers holding each business, customers who joined within
    ``recent_months`` counting ``recent_weight`` times."""

    name = NAME
    state_format = 1  # raise it when what save() writes changes meaning
    settings_schema = Settings  # [strategies.{name}] checked when the engine is built

    def __init__(self, catalog: Catalog, recent_months: int = 12, recent_weight: float = 2.0):
        self.catalog = catalog
        self.recent_months = recent_months
        self.recent_weight = recent_weight
        self.shares: np.ndarray | None = None

    def fit(self, data: TrainingData) -> Self:
        weight = np.where(data.tenure <= self.recent_months, self.recent_weight, 1.0)
        held = data.holdings.T @ weight  # arrays over customers, never a Python loop
        self.shares = np.asarray(held, dtype=np.float64).ravel() / max(weight.sum(), 1.0)
        return self

    @property
    def is_fitted(self) -> bool:
        return self.shares is not None

    def save(self, directory: Path) -> None:
        np.save(directory / "shares.npy", self.shares)

    def load(self, directory: Path) -> Self:
        shares = np.load(directory / "shares.npy")
        if shares.shape != (len(self.catalog),):
            raise ModelError(f"{{NAME}}: shares.npy has {{shares.shape}} entries, the catalog "
                             f"{{len(self.catalog)}}: retrain")
        self.shares = shares
        return self

    def candidates(self, context: RequestContext, n: int) -> list[Candidate]:
        held = self.catalog.indices(context.customer.holdings)
        picks = top_n(self.shares, n, exclude=held)
        return [Candidate(self.catalog.ids[i], float(self.shares[i]),
                          tr(context.locale, "{{share:.0%}} of customers hold it",
                             share=float(self.shares[i])))
                for i in picks.tolist()]

    def describe(self) -> dict:
        return {{"recent_months": self.recent_months, "recent_weight": self.recent_weight}}


@hookimpl
def register_strategies(config: Config, catalog: Catalog) -> list[Strategy]:
    # Checked against Settings: an unknown key or a bad value names the file and key.
    return [{klass}(catalog, **config.strategy_settings(NAME, Settings))]
'''

CONFTEST = '''"""What the testing kit (``recommender.testing``) adds to its sample operator."""

import pytest

import recommender_{name}


@pytest.fixture(scope="module")
def recommender_plugins():
    return [("{name}", recommender_{name})]


@pytest.fixture(scope="module")
def recommender_config():
    return """
[strategies.{name}]
recent_months = 24

[blend.success.app]
{name} = 2.0
cf = 1.0
"""
'''

TESTS = '''"""The {name} strategy: trained on a generated operator, served by the engine
and over HTTP."""

import pytest
from recommender import Config, ConfigError, RecommendationRequest

import recommender_{name}


def test_trained_and_explained(recommender_engine) -> None:
    assert recommender_engine.strategies["{name}"].is_fitted
    customer = recommender_engine.store.customer_ids(limit=1)[0]
    result = recommender_engine.recommend(RecommendationRequest(
        customer_id=customer, channel="app", moment="success", locale="en"))
    mine = [s for s in result.suggestions if "{name}" in s.strategies]
    assert mine and all("of customers hold it" in " ".join(s.reasons) for s in mine)


def test_served_over_http(recommender_client) -> None:
    response = recommender_client.post("/v1/recommendations", json={{
        "customer": {{"id": "C0000001"}}, "channel": "app", "moment": "success"}})
    assert response.status_code == 200
    assert any("{name}" in s["strategies"] for s in response.get_json()["suggestions"])


@pytest.mark.parametrize(("table", "message"), [
    ({{"recent_months": 0}}, "strategies.{name}.recent_months: Must be greater than or equal"),
    ({{"recent_month": 6}}, "strategies.{name}.recent_month: unknown key; did you mean "
                          "'recent_months'?"),
])
def test_bad_settings_name_the_file_and_key(recommender_workspace, table, message) -> None:
    config = Config.from_dict({{"strategies": {{"{name}": table}}}}, source="config.toml")
    with pytest.raises(ConfigError) as info:
        recommender_{name}.register_strategies(config, recommender_workspace.catalog())
    assert str(info.value).startswith(f"config.toml, {{message}}"), info.value
'''

README = '''# recommender-{dash}

A strategy plugin for the recommender, written by `recommender new-plugin {name}`.

```bash
pip install -e ".[test]"      # installs the plugin: the recommender finds it by entry point
python -m pytest              # trains it on a generated operator and serves it
```

Give it a weight in a workspace's `config.toml` (`[blend.success] {name} = 1.0`), run
`recommender train`, and it serves. Settings: `[strategies.{name}]` (see `Settings`).
'''


def write_plugin(name: str, parent: Path) -> Path:
    """Write the package ``recommender-<name>`` in ``parent``; returns its folder.

    :raises RecommenderError: a name that is not a lowercase identifier, or a folder that
        exists already (nothing is overwritten).
    """
    if not NAME.fullmatch(name) or keyword.iskeyword(name):
        raise RecommenderError(f"plugin name {name!r}: use 1 to 40 lowercase letters, digits "
                               f"and underscores, starting with a letter")
    dash = name.replace("_", "-")
    folder = parent / f"recommender-{dash}"
    if folder.exists():
        raise RecommenderError(f"{folder}: already exists; choose another name or folder")
    klass = "".join(part.title() for part in name.split("_")) + "Strategy"
    values = {"name": name, "dash": dash, "klass": klass}
    files = {
        "pyproject.toml": PYPROJECT, f"recommender_{name}/__init__.py": MODULE,
        "tests/conftest.py": CONFTEST, f"tests/test_{name}.py": TESTS, "README.md": README,
    }
    for rel, template in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values), encoding="utf-8")
    return folder
