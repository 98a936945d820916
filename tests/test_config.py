"""config.toml: every number finite and within its range, every strategy name one that exists.

Each refusal names the file and the key (and, for a number, the allowed range); a misspelt
strategy name is refused when the engine is built, with a "did you mean".
"""

from __future__ import annotations

import math
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import recommender
from recommender import Catalog, Config, ConfigError, Engine
from recommender.config import ENGINE_LIMITS, SLOT_LIMITS, WEIGHT_LIMITS
from recommender.plugin_manager import make_plugin_manager

SAMPLE = Path(recommender.__file__).parent / "sample"
#: The sorted list of registered strategies, as far as it goes.
KNOWN = "known strategies: adaptive, alternatives, association, "


@pytest.fixture(scope="module")
def sample_catalog() -> Catalog:
    return Catalog.from_toml(SAMPLE / "catalog.toml")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# Numbers: finite and in range (TOML spells inf, -inf and nan as ordinary floats)
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "key", "fragment"), [
    ("[engine]\ncandidate_pool = 1e18", "engine.candidate_pool", "integer from 1 to 10,000"),
    ("[engine]\ncandidate_pool = 1000000000000000000", "engine.candidate_pool",
     "integer from 1 to 10,000"),
    ("[engine]\ncandidate_pool = 10001", "engine.candidate_pool", "from 1 to 10,000"),
    ("[engine]\ncandidate_pool = 0", "engine.candidate_pool", "from 1 to 10,000"),
    ("[engine]\ncandidate_pool = inf", "engine.candidate_pool", "from 1 to 10,000"),
    ("[engine]\ncandidate_pool = true", "engine.candidate_pool", "from 1 to 10,000"),
    ("[engine]\nstrategy_timeout_ms = inf", "engine.strategy_timeout_ms",
     "number from 1 to 600,000, got inf"),
    ("[engine]\nstrategy_timeout_ms = +inf", "engine.strategy_timeout_ms", "from 1 to 600,000"),
    ("[engine]\nstrategy_timeout_ms = nan", "engine.strategy_timeout_ms",
     "from 1 to 600,000, got nan"),
    ("[engine]\nstrategy_timeout_ms = 600001", "engine.strategy_timeout_ms",
     "from 1 to 600,000"),
    ("[engine]\nstrategy_timeout_ms = 0.5", "engine.strategy_timeout_ms", "from 1 to 600,000"),
    ("[engine]\ncontext_timeout_ms = -inf", "engine.context_timeout_ms", "from 1 to 600,000"),
    ("[engine]\ncontext_timeout_ms = -nan", "engine.context_timeout_ms", "from 1 to 600,000"),
    ("[engine]\ncontext_timeout_ms = 1e300", "engine.context_timeout_ms", "from 1 to 600,000"),
    ("[engine]\nworkers = 257", "engine.workers", "integer from 1 to 256"),
    ("[engine]\nworkers = inf", "engine.workers", "integer from 1 to 256"),
    ("[engine]\nworkers = 8.0", "engine.workers", "integer from 1 to 256"),
    ("[engine]\nmax_holdings = 100001", "engine.max_holdings", "integer from 1 to 100,000"),
    ("[engine]\nmax_holdings = nan", "engine.max_holdings", "integer from 1 to 100,000"),
    ("[channels]\napp = 101", "channels.app", "integer from 1 to 100"),
    ("[channels]\nsms = inf", "channels.sms", "integer from 1 to 100"),
    ("[channels]\nweb = 0", "channels.web", "integer from 1 to 100"),
    ("[blend.query]\npopularity = inf", "blend.query.popularity", "number from 0 to 1,000"),
    ("[blend.query]\npopularity = nan", "blend.query.popularity", "from 0 to 1,000"),
    ("[blend.query]\npopularity = 1001", "blend.query.popularity", "from 0 to 1,000"),
    ("[blend.query]\npopularity = -1", "blend.query.popularity", "from 0 to 1,000"),
    ("[blend.query]\npopularity = 'high'", "blend.query.popularity", "from 0 to 1,000"),
    ("[blend.success.hotline]\ncross_sell = inf", "blend.success.hotline.cross_sell",
     "from 0 to 1,000"),
    ("[blend.failure.app]\ncross_sell = -inf", "blend.failure.app.cross_sell",
     "from 0 to 1,000"),
    # Sections this module does not own still carry only finite numbers.
    ("[strategies.popularity]\nhalf_life_days = inf", "strategies.popularity.half_life_days",
     "finite number, got inf"),
    ("[strategies.association]\nmin_support = nan", "strategies.association.min_support",
     "finite number, got nan"),
    ("[strategies.cf]\nweights = [1.0, -inf]", "strategies.cf.weights[1]", "finite number"),
    ("[strategies.cf.nested]\ndeep = { x = nan }", "strategies.cf.nested.deep.x",
     "finite number"),
    ("[server]\nreload_poll_seconds = nan", "server.reload_poll_seconds", "finite number"),
    ("[training]\nsample = inf", "training.sample", "finite number"),
    # Shapes.
    ("[strategies]\npopularity = 3", "strategies.popularity", "must be a table"),
    ("strategies = 5", "strategies", "must be a table"),
    ("[engine]\npool = 5", "engine.pool", "unknown key"),
    ("[channels]\nfax = 1", "channels.fax", "unknown channel"),
    ("[blend.lunch]\npopularity = 1.0", "blend.lunch", "unknown moment"),
    ("[blend.query.fax]\npopularity = 1.0", "blend.query.fax", "named after a channel"),
    ("[colour]\nred = 1", "colour", "unknown section"),
])
def test_bad_config_names_file_key_and_range(tmp_path: Path, text: str, key: str,
                                             fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        Config.load(path)
    error = info.value
    assert error.source == str(path), str(error)
    assert error.key == key, str(error)
    assert str(error).startswith(f"{path}, {key}: "), str(error)
    assert fragment in str(error), str(error)


@pytest.mark.parametrize(("data", "key"), [
    ({"engine": {"strategy_timeout_ms": math.inf}}, "engine.strategy_timeout_ms"),
    ({"engine": {"candidate_pool": 10**18}}, "engine.candidate_pool"),
    ({"engine": {"workers": 10**400}}, "engine.workers"),
    ({"blend": {"query": {"cf": math.nan}}}, "blend.query.cf"),
    ({"strategies": {"cf": {"factors": -math.inf}}}, "strategies.cf.factors"),
])
def test_config_built_in_code_gets_the_same_checks(data, key) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_dict(data, source="settings")
    assert info.value.key == key and str(info.value).startswith(f"settings, {key}: ")


def test_the_sample_config_and_every_limit_still_load(tmp_path: Path) -> None:
    config = Config.load(SAMPLE / "config.toml")
    assert config.engine.candidate_pool == 50 and config.slots["hotline"] == 2
    assert config.weights("success", "hotline") == {"cross_sell": 1.5, "cf": 0.5}

    engine = "\n".join(f"{key} = {maximum}" for key, (_, maximum, _) in ENGINE_LIMITS.items())
    at_limits = write(tmp_path, f"[engine]\n{engine}\n[channels]\napp = {SLOT_LIMITS[1]}\n"
                                f"sms = {SLOT_LIMITS[0]}\n[blend.query]\npopularity = "
                                f"{WEIGHT_LIMITS[1]}\ncross_sell = {WEIGHT_LIMITS[0]}\n"
                                f"[strategies.popularity]\nhalf_life_days = 1e3\n")
    config = Config.load(at_limits)
    assert config.engine.candidate_pool == 10_000 and config.engine.workers == 256
    assert config.engine.strategy_timeout_ms == 600_000.0
    assert isinstance(config.engine.context_timeout_ms, float)
    assert config.slots["app"] == 100 and config.weights("query", "app")["popularity"] == 1000
    assert Config.load(write(tmp_path, "")).engine.candidate_pool == 50  # empty: defaults


# --------------------------------------------------------------------------------------------
# Strategy names: checked by the engine, which knows the registered strategies
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "key", "suggestion"), [
    ("[blend.query]\npopularty = 1.0", "blend.query.popularty", "popularity"),
    ("[blend.query]\npopularity = 1.0\ncros_sell = 0.5", "blend.query.cros_sell", "cross_sell"),
    ("[blend.success.hotline]\ncross_sell = 1.5\nCF = 0.5", "blend.success.hotline.CF", "cf"),
    ("[blend.failure]\nasociation = 0.0", "blend.failure.asociation", "association"),
    ("[strategies.popularty]\nhalf_life_days = 30", "strategies.popularty", "popularity"),
    ("[strategies.item_similarty]\n", "strategies.item_similarty", "item_similarity"),
])
def test_a_misspelt_strategy_is_refused_with_did_you_mean(tmp_path: Path, sample_catalog,
                                                          text, key, suggestion) -> None:
    path = write(tmp_path, text)
    config = Config.load(path)  # the configuration alone cannot know the strategies
    with pytest.raises(ConfigError) as info:
        Engine(sample_catalog, config, plugin_manager=make_plugin_manager(
            load_entry_points=False))
    error = info.value
    message = str(error)
    assert error.source == str(path) and error.key == key, message
    assert message.startswith(f"{path}, {key}: unknown strategy "), message
    assert f"did you mean {suggestion!r}?" in message, message
    assert ("known strategies: adaptive, alternatives, association, cf, cross_sell, "
            "item_similarity, popularity") in message, message


def test_a_name_like_no_strategy_lists_the_known_ones(tmp_path: Path, sample_catalog) -> None:
    path = write(tmp_path, "[blend.query]\nzzz = 1.0")
    with pytest.raises(ConfigError) as info:
        Engine(sample_catalog, Config.load(path),
               plugin_manager=make_plugin_manager(load_entry_points=False))
    message = str(info.value)
    assert "did you mean" not in message and KNOWN in message, message


def test_the_sample_config_builds_an_engine_with_every_plugin(sample_catalog) -> None:
    with Engine(sample_catalog, Config.load(SAMPLE / "config.toml")) as engine:
        assert {"popularity", "cross_sell", "association", "cf", "item_similarity"} <= set(
            engine.strategies)


@pytest.mark.parametrize("allow", [["eligibility", "popularity"], ["eligibility"], []])
def test_strategies_of_plugins_not_loaded_are_allowed(sample_catalog, allow) -> None:
    """RECOMMENDER_PLUGINS may leave out plugins the configuration names: still valid."""
    pm = make_plugin_manager(allow=allow, load_entry_points=False)
    with Engine(sample_catalog, Config.load(SAMPLE / "config.toml"), plugin_manager=pm) as e:
        assert set(e.strategies) == {"popularity"} & set(allow)
    # ...but a typo is still a typo, and the message says what is not loaded.
    typo = Config.from_dict({"blend": {"query": {"popularty": 1.0}}}, source="config.toml")
    with pytest.raises(ConfigError, match=r"did you mean 'popularity'\?.*not loaded: .*cf"):
        Engine(sample_catalog, typo, plugin_manager=pm)


def test_the_allow_list_from_the_environment(monkeypatch, sample_catalog) -> None:
    monkeypatch.setenv("RECOMMENDER_PLUGINS", "eligibility,cross_sell")
    with Engine(sample_catalog, Config.load(SAMPLE / "config.toml")) as engine:
        assert set(engine.strategies) == {"cross_sell"}


def test_an_installed_plugin_that_is_not_loaded_keeps_its_name(sample_catalog) -> None:
    if "campaign" not in {ep.name for ep in entry_points(group="recommender")}:
        pytest.fail("the example plugin is not installed: pip install ./examples/campaign-plugin")
    config = Config.from_dict({"blend": {"success": {"campaign": 0.5, "cf": 1.0}},
                               "strategies": {"campaign": {"products": ["cloud_storage"]}}})
    pm = make_plugin_manager(load_entry_points=False)
    with Engine(sample_catalog, config, plugin_manager=pm) as engine:
        assert "campaign" not in engine.strategies
    with Engine(sample_catalog, config) as engine:  # loaded: it runs
        assert "campaign" in engine.strategies
