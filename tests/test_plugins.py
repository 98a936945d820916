"""The plugin contract: hook specs, registration, discovery, validation and observers."""

from __future__ import annotations

import inspect
import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from recommender import (
    Candidate,
    Config,
    FeedbackEvent,
    PluginError,
    RecommendationRequest,
    Strategy,
    hookimpl,
    hookspecs,
)
from recommender.plugin_manager import DEFAULT_PLUGINS, make_plugin_manager
from recommender.workspace import Workspace

HOOKS = sorted(name for name, f in vars(hookspecs).items()
               if inspect.isfunction(f) and hasattr(f, "recommender_spec"))
TESTS = Path(__file__).parent


def test_there_are_hooks() -> None:
    assert {"register_strategies", "load_customer", "load_terminal", "channel_settings",
            "extra_context", "check_eligibility", "recommendation_served",
            "feedback_received", "plugin_error"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_for_plugin_authors(hook: str) -> None:
    spec = getattr(hookspecs, hook)
    doc = inspect.getdoc(spec)
    assert doc and len(doc.splitlines()[0]) > 20
    for parameter in inspect.signature(spec).parameters:
        assert f":param {parameter}:" in doc, f"{hook}: :param {parameter}: missing"
    if spec.recommender_spec.get("firstresult"):
        assert "first non-``None`` result" in doc


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook: str) -> None:
    """A hook is exercised by some test that implements it (``def <hook>(``)."""
    pattern = re.compile(rf"def {hook}\(")
    sources = [p.read_text() for p in TESTS.glob("test_*.py") if p.name != "test_plugins.py"]
    sources.append(Path(__file__).read_text().split("\n# -- implementations --\n")[1])
    assert any(pattern.search(s) for s in sources), f"no test implements hook {hook!r}"


def test_built_in_plugins_are_ordinary_registered_plugins() -> None:
    pm = make_plugin_manager(load_entry_points=False)
    names = {name for name, _ in pm.list_name_plugin()}
    assert {name for name, _ in DEFAULT_PLUGINS} == names


def test_allow_list_limits_what_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOMMENDER_PLUGINS", "eligibility, channels")
    pm = make_plugin_manager()
    assert {name for name, _ in pm.list_name_plugin()} == {"eligibility", "channels"}


# -- implementations --


class MisspelledHook:
    @hookimpl
    def register_strategys(self, config):
        return []


class UnknownArgument:
    @hookimpl
    def load_customer(self, customer_id, crm_handle):
        return None


@pytest.mark.parametrize(("plugin", "fragment"), [
    (MisspelledHook(), "register_strategys"),
    (UnknownArgument(), "crm_handle"),
])
def test_a_bad_hook_is_refused_at_start_up_naming_the_plugin(plugin, fragment) -> None:
    with pytest.raises(PluginError) as info:
        make_plugin_manager(extra_plugins=[("badplugin", plugin)], load_entry_points=False)
    assert "badplugin" in str(info.value) or fragment in str(info.value)
    assert fragment in str(info.value)


class Dummy(Strategy):
    name = "popularity"

    def candidates(self, context, n):
        return []


class DuplicateName:
    @hookimpl
    def register_strategies(self):
        return [Dummy()]


class NotAStrategy:
    @hookimpl
    def register_strategies(self):
        return ["popularity"]


class RaisingRegistration:
    @hookimpl
    def register_strategies(self, catalog):
        raise RuntimeError("licence file missing")


@pytest.mark.parametrize(("plugin", "fragment"), [
    (DuplicateName(), "strategy 'popularity' is already registered"),
    (NotAStrategy(), "not a recommender.Strategy"),
    (RaisingRegistration(), "licence file missing"),
])
def test_bad_strategy_registration_names_the_plugin(sample_workspace: Workspace, plugin,
                                                    fragment) -> None:
    pm = make_plugin_manager(extra_plugins=[("thirdparty", plugin)], load_entry_points=False)
    with pytest.raises(PluginError) as info:
        sample_workspace.engine(plugin_manager=pm)
    assert "'thirdparty'" in str(info.value) and fragment in str(info.value)
    if isinstance(plugin, DuplicateName):
        assert "'popularity'" in str(info.value).replace("strategy 'popularity'", "")


class Observer:
    def __init__(self):
        self.served, self.feedback, self.errors = [], [], []

    @hookimpl
    def recommendation_served(self, context, recommendation):
        self.served.append((context.customer.id, recommendation.request_id))

    @hookimpl
    def feedback_received(self, event):
        self.feedback.append(event.event_id)

    @hookimpl
    def plugin_error(self, plugin_name, stage, error):
        self.errors.append((plugin_name, stage, type(error).__name__))


class Crashing(Strategy):
    name = "crashing"

    def candidates(self, context, n):
        raise ZeroDivisionError("oops")


class CrashingPlugin:
    @hookimpl
    def register_strategies(self):
        return [Crashing()]


class ProfileCache:
    """A context provider that wins over the store: every customer is high value."""

    @hookimpl
    def load_customer(self, customer_id, store):
        stored = store.customer(customer_id)
        return None if stored is None else stored.__class__(
            id=stored.id, value_tier="high", holdings=stored.holdings)

    @hookimpl
    def load_terminal(self, customer_id):
        from recommender import Terminal
        return Terminal(network="5G", smartphone=True, os="ios")

    @hookimpl
    def channel_settings(self, channel_id):
        from recommender import Channel
        return Channel(id=channel_id, slots=3) if channel_id == "web" else None

    @hookimpl
    def extra_context(self, context):
        return {"cache_hit": True}


def test_observers_see_results_feedback_and_faults(tmp_path: Path,
                                                   sample_workspace: Workspace) -> None:
    import shutil

    ws = Workspace(tmp_path / "ws")
    shutil.copytree(sample_workspace.root, ws.root)
    observer = Observer()
    pm = make_plugin_manager(extra_plugins=[("observer", observer), ("crash", CrashingPlugin())],
                             load_entry_points=False)
    config = Config.from_dict({"blend": {"query": {"popularity": 1.0, "crashing": 1.0}}},
                              root=ws.root)
    with ws.engine(plugin_manager=pm, config=config, require_models=True) as engine:
        stored_before = engine.store.count("feedback")
        customer_id = engine.store.customer_ids(limit=1)[0]
        result = engine.recommend(RecommendationRequest(customer_id, "app", "query"))
        assert observer.served == [(customer_id, result.request_id)]
        assert observer.errors == [("crashing", "strategy", "ZeroDivisionError")]
        event = FeedbackEvent("ev-1", result.request_id, "cloud_storage", "click", 1700000000)
        assert engine.record_feedback(event) is True
        assert engine.record_feedback(event) is False  # idempotent on the event id
        assert observer.feedback == ["ev-1"]
        assert engine.store.count("feedback") == stored_before + 1


def test_context_providers_take_precedence_over_the_store(sample_workspace: Workspace) -> None:
    pm = make_plugin_manager(extra_plugins=[("cache", ProfileCache())], load_entry_points=False)
    with sample_workspace.engine(plugin_manager=pm, require_models=True) as engine:
        customer_id = engine.store.db.execute(
            "SELECT id FROM customers WHERE value_tier = 'low' LIMIT 1").fetchone()[0]
        context, warnings = engine.build_context(
            RecommendationRequest(customer_id, "web", "query"))
        assert context.customer.value_tier == "high"
        assert context.customer.holdings == engine.store.holdings(customer_id)
        assert context.terminal.os == "ios" and context.terminal.network == "5G"
        assert context.channel.slots == 3 and context.limit == 3
        assert context.attributes == {"cache_hit": True}
        assert not warnings
        app, _ = engine.build_context(RecommendationRequest(customer_id, "app", "query"))
        assert app.channel.slots == engine.config.slots["app"]  # falls through to built-in


# -- the example third-party plugin, installed from its own folder --


def test_third_party_plugin_is_discovered_from_its_entry_point(
        sample_workspace: Workspace) -> None:
    names = {ep.name for ep in entry_points(group="recommender")}
    assert "campaign" in names, (
        "the example plugin is not installed: pip install ./examples/campaign-plugin")
    config = Config.from_dict({
        "strategies": {"campaign": {"products": ["cloud_storage", "video_membership"],
                                    "reason": "本月活动：首月免费"}},
        "blend": {"success": {"campaign": 5.0, "popularity": 0.1}},
    }, root=sample_workspace.root)
    with sample_workspace.engine(config=config, require_models=True) as engine:
        assert engine.sources["campaign"] == "campaign"
        customer_id = engine.store.db.execute(
            "SELECT t.customer_id FROM terminals t WHERE t.smartphone = 1 AND NOT EXISTS "
            "(SELECT 1 FROM holdings h WHERE h.customer_id = t.customer_id "
            " AND h.product_id IN ('cloud_storage', 'video_membership')) LIMIT 1").fetchone()[0]
        result = engine.recommend(RecommendationRequest(customer_id, "app", "success",
                                                        product="data_1gb"))
        top = result.suggestions[0]
        assert top.product == "cloud_storage"
        assert "campaign" in top.strategies
        assert "本月活动：首月免费" in top.reasons


def test_third_party_plugin_settings_are_validated(sample_workspace: Workspace) -> None:
    if "campaign" not in {ep.name for ep in entry_points(group="recommender")}:
        pytest.fail("the example plugin is not installed: pip install ./examples/campaign-plugin")
    config = Config.from_dict({"strategies": {"campaign": {"products": ["gold_bar"]}}})
    with pytest.raises(PluginError) as info:
        sample_workspace.engine(config=config)
    assert "'campaign'" in str(info.value) and "gold_bar" in str(info.value)


def test_candidate_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="finite"):
        Candidate("data_1gb", float("inf"), "x")
    with pytest.raises(TypeError, match="score"):
        Candidate("data_1gb", "high", "x")
    with pytest.raises(TypeError, match="product"):
        Candidate("", 1.0, "x")
