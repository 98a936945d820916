"""Built-in strategies' ``[strategies.<name>]`` tables are checked as configuration."""

from __future__ import annotations

import pytest

from recommender import Config, ConfigError
from recommender.workspace import Workspace


def engine_with(ws: Workspace, strategies: dict):
    config = Config.from_dict({"strategies": strategies}, root=ws.root)
    return ws.engine(config=config, require_models=False)


@pytest.mark.parametrize("strategy, key, hint", [
    ("cf", "factorz", "factors"),
    ("item_similarity", "neighbors", "neighbours"),
    ("popularity", "half_life", "half_life_days"),
    ("association", "min_suport", "min_support"),
    ("propensity", "max_iter", None),
])
def test_an_unknown_key_is_named_with_a_close_match(sample_workspace: Workspace, strategy: str,
                                                     key: str, hint: str | None) -> None:
    with pytest.raises(ConfigError) as info:
        engine_with(sample_workspace, {strategy: {key: 8}})
    message = str(info.value)
    assert f"strategies.{strategy}.{key}" in message and "unknown key" in message, message
    if hint:
        assert f"did you mean {hint!r}?" in message, message
    assert "known: " in message and "TypeError" not in message


@pytest.mark.parametrize("strategy, key, value, fragment", [
    ("cf", "factors", 0, "factors must be an integer >= 1, got 0"),
    ("cf", "model", "svd", "model must be one of als, bpr, got 'svd'"),
    ("popularity", "half_life_days", -3, "half_life_days must be > 0"),
    ("association", "min_support", 2, "min_support must be in (0, 1], got 2"),
    ("item_similarity", "neighbours", "many", "neighbours must be an integer >= 1"),
])
def test_a_bad_value_is_named_with_its_file_and_key(sample_workspace: Workspace, strategy: str,
                                                    key: str, value, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        engine_with(sample_workspace, {strategy: {key: value}})
    message = str(info.value)
    assert f"strategies.{strategy}.{key}" in message and fragment in message, message
