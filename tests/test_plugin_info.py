"""Which plugins are installed, in which version, and what a model records of them."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import version
from pathlib import Path

import pytest
from api_support import copy_workspace
from click.testing import CliRunner
from marshmallow import Schema, fields, validate

from recommender import (
    Candidate,
    Catalog,
    ModelError,
    PluginError,
    RequestContext,
    Strategy,
    hookimpl,
)
from recommender.cli import main
from recommender.models import MANIFEST, current_model_dir
from recommender.plugin_info import describe_plugins, distribution_of
from recommender.plugin_manager import DEFAULT_PLUGINS, make_plugin_manager
from recommender.workspace import Workspace


class Counter(Strategy):
    """A learning strategy defined in this test file: no installed distribution ships it."""

    name = "counter"
    state_format = 1

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.fitted = False

    def fit(self, data):
        self.fitted = True
        return self

    @property
    def is_fitted(self) -> bool:
        return self.fitted

    def save(self, directory: Path) -> None:
        (directory / "state.json").write_text("{}")

    def load(self, directory: Path):
        self.fitted = True
        return self

    def candidates(self, context: RequestContext, n: int) -> list[Candidate]:
        return []


class CounterPlugin:
    strategy_class = Counter

    @hookimpl
    def register_strategies(self, catalog):
        return [self.strategy_class(catalog)]


def manager(plugin: object | None = None):
    return make_plugin_manager(load_entry_points=False,
                               extra_plugins=[("counter", plugin or CounterPlugin())])


@pytest.fixture
def workspace(sample_workspace: Workspace, tmp_path: Path) -> Workspace:
    ws = copy_workspace(sample_workspace, tmp_path / "ws")
    ws.config_path.write_text(ws.config_path.read_text() + "\n[blend.success.web]\ncounter = 1.0"
                              "\ncf = 1.0\n")
    return ws


def test_builtins_are_listed_with_the_project_distribution_and_their_hooks() -> None:
    infos = {i.name: i for i in describe_plugins(manager())}
    assert [name for name, _ in DEFAULT_PLUGINS] == list(infos)[:len(DEFAULT_PLUGINS)]
    ours = version("recommender")
    for name, _ in DEFAULT_PLUGINS:
        assert (infos[name].distribution, infos[name].version, infos[name].builtin) == \
            ("recommender", ours, True)
    assert infos["eligibility"].hooks == ("check_eligibility",)
    assert infos["adaptive"].hooks == ("feedback_received", "register_strategies")
    script = infos["counter"]
    assert (script.distribution, script.version, script.builtin) == (None, None, False)
    assert distribution_of("no_such_module_anywhere") == (None, None)


def test_the_manifest_records_each_strategy_s_plugin_and_state_format(workspace) -> None:
    workspace.train(plugin_manager=manager())
    manifest = json.loads((current_model_dir(workspace.models_path) / MANIFEST).read_text())
    counter, cf = manifest["strategies"]["counter"], manifest["strategies"]["item_similarity"]
    assert (counter["plugin"], counter["distribution"], counter["state_format"]) == \
        ("counter", None, 1)
    assert (cf["plugin"], cf["distribution"], cf["plugin_version"]) == \
        ("cf", "recommender", version("recommender"))
    with workspace.engine(plugin_manager=manager(), require_models=True) as engine:
        assert "counter" in engine.trained_strategies and engine.load_warnings == ()


def test_a_model_of_another_plugin_version_loads_with_a_warning(workspace, caplog) -> None:
    workspace.train(plugin_manager=manager())
    path = current_model_dir(workspace.models_path) / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["strategies"]["cf"]["plugin_version"] = "0.0.1"
    path.write_text(json.dumps(manifest))
    with workspace.engine(plugin_manager=manager(), require_models=True) as engine:
        assert engine.strategies["cf"].is_fitted
        [warning] = engine.load_warnings
    assert warning == f"cf: trained by recommender 0.0.1, served by recommender " \
                      f"{version('recommender')}"
    assert "trained by recommender 0.0.1" in caplog.text


def test_a_model_saved_in_another_state_format_is_refused_naming_it(workspace) -> None:
    workspace.train(plugin_manager=manager())

    class Newer(Counter):
        state_format = 2

    plugin = CounterPlugin()
    plugin.strategy_class = Newer
    with pytest.raises(ModelError) as info:
        workspace.engine(plugin_manager=manager(plugin), require_models=True)
    message = str(info.value)
    assert "strategy 'counter' trained with state format 1" in message
    assert "reads format 2: retrain" in message


def test_the_plugins_command_lists_plugins_and_training_states(sample_workspace) -> None:
    workspace = sample_workspace
    result = CliRunner().invoke(main, ["plugins", "--dir", str(workspace.root), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["model_version"] == current_model_dir(workspace.models_path).name
    by_name = {p["name"]: p for p in data["plugins"]}
    cf = {s["name"]: s["training"] for s in by_name["cf"]["strategies"]}
    assert cf == {"cf": f"trained in {data['model_version']}",
                  "item_similarity": f"trained in {data['model_version']}"}
    assert by_name["adaptive"]["strategies"] == [{"name": "adaptive",
                                                   "training": "not in blend"}]
    table = CliRunner().invoke(main, ["plugins", "--dir", str(workspace.root)])
    assert table.exit_code == 0
    assert "eligibility" in table.output and "check_eligibility" in table.output
    assert f"recommender {version('recommender')}" in table.output


def test_an_untrained_workspace_says_what_to_train(sample_workspace, tmp_path) -> None:
    ws = copy_workspace(sample_workspace, tmp_path / "ws")
    shutil.rmtree(ws.models_path)
    result = CliRunner().invoke(main, ["plugins", "--dir", str(ws.root), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["model_version"] is None
    states = {s["name"]: s["training"] for p in data["plugins"] for s in p["strategies"]}
    assert states["cf"] == "not trained" and states["cross_sell"] == "needs no training"


def test_the_api_lists_the_served_engine_s_plugins(client) -> None:
    response = client.get("/v1/plugins")
    assert response.status_code == 200
    body = response.get_json()
    names = [p["name"] for p in body["plugins"]]
    assert names[:len(DEFAULT_PLUGINS)] == [name for name, _ in DEFAULT_PLUGINS]
    assert body["model_version"] and body["load_warnings"] == []
    cf = next(p for p in body["plugins"] if p["name"] == "cf")
    assert cf["distribution"] == "recommender" and cf["hooks"] == ["register_strategies"]


@pytest.mark.parametrize(("allow", "message"), [
    ("nosuch", "RECOMMENDER_PLUGINS: unknown plugin 'nosuch'; known plugins: eligibility,"),
    ("eligibility,channels,popularty",
     "RECOMMENDER_PLUGINS: unknown plugin 'popularty'; did you mean 'popularity'?"),
    (" cf , crosssell", "unknown plugin 'crosssell'; did you mean 'cross_sell'?"),
])
def test_an_allow_list_naming_no_plugin_is_refused_with_a_suggestion(
        monkeypatch, allow: str, message: str) -> None:
    monkeypatch.setenv("RECOMMENDER_PLUGINS", allow)
    with pytest.raises(PluginError) as info:
        make_plugin_manager()
    assert str(info.value).startswith(message) or message in str(info.value), info.value


def test_an_allow_list_without_channel_settings_says_so_not_unknown_channel(
        sample_workspace, monkeypatch) -> None:
    monkeypatch.setenv("RECOMMENDER_PLUGINS", "eligibility,store_provider")
    result = CliRunner().invoke(main, ["recommend", "--dir", str(sample_workspace.root),
                                       "--customer", "C0000001", "--channel", "app",
                                       "--moment", "query"])
    assert result.exit_code == 1
    assert "no loaded plugin provides channel settings" in result.output
    assert "unknown channel" not in result.output


class Schematic(Counter):
    """A strategy declaring its settings: checked when the engine is built."""

    name = "schematic"

    class settings_schema(Schema):  # noqa: N801 - the ClassVar the engine reads
        window_days = fields.Integer(load_default=30, validate=validate.Range(min=1))
        label = fields.String(load_default="hello")


class SchematicPlugin:
    @hookimpl
    def register_strategies(self, catalog):
        return [Schematic(catalog)]


@pytest.mark.parametrize(("table", "key", "message"), [
    ({"window_day": 3}, "window_day", "unknown key; did you mean 'window_days'? known: label, "
                                      "window_days"),
    ({"window_days": 0}, "window_days", "Must be greater than or equal to 1."),
    ({"window_days": "soon"}, "window_days", "Not a valid integer."),
    ({"colour": "red"}, "colour", "unknown key; known: label, window_days"),
])
def test_declared_settings_are_checked_when_the_engine_is_built(
        catalog, table, key, message) -> None:
    from recommender import Config, ConfigError, Engine

    config = Config.from_dict({"strategies": {"schematic": table}}, source="config.toml")
    pm = make_plugin_manager(load_entry_points=False,
                             extra_plugins=[("schematic", SchematicPlugin())])
    with pytest.raises(ConfigError) as info:
        Engine(catalog, config, plugin_manager=pm)
    assert str(info.value) == f"config.toml, strategies.schematic.{key}: {message}"


def test_declared_settings_come_back_checked_with_defaults(catalog) -> None:
    from recommender import Config, Engine

    config = Config.from_dict({"strategies": {"schematic": {"window_days": 7}}})
    pm = make_plugin_manager(load_entry_points=False,
                             extra_plugins=[("schematic", SchematicPlugin())])
    with Engine(catalog, config, plugin_manager=pm):
        pass  # a good table builds
    assert config.strategy_settings("schematic", Schematic.settings_schema) == \
        {"window_days": 7, "label": "hello"}
    assert config.strategy_settings("schematic") == {"window_days": 7}  # the raw table
