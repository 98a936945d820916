"""The tenure strategy, trained on a generated operator and served by the real engine and the
HTTP API (fixtures from ``recommender.testing``, configured in conftest.py)."""

from pathlib import Path

import numpy as np
import pytest
import recommender_tenure

from recommender import ModelError, RecommendationRequest


def test_trained_and_explained(recommender_engine) -> None:
    assert recommender_engine.strategies["tenure"].is_fitted
    customer = recommender_engine.store.customer_ids(limit=1)[0]
    result = recommender_engine.recommend(RecommendationRequest(
        customer_id=customer, channel="app", moment="success", locale="en"))
    mine = [s for s in result.suggestions if "tenure" in s.strategies]
    assert mine, result
    assert any("similar tenure" in reason for s in mine for reason in s.reasons)


def test_reasons_are_in_the_request_s_language(recommender_engine) -> None:
    customer = recommender_engine.store.customer_ids(limit=1)[0]
    result = recommender_engine.recommend(RecommendationRequest(
        customer_id=customer, channel="app", moment="success", locale="zh-CN"))
    reasons = [r for s in result.suggestions
               for name, r in zip(s.strategies, s.reasons, strict=True) if name == "tenure"]
    assert reasons and all("入网时长相近" in r for r in reasons)


def test_a_bad_setting_is_refused_naming_it(recommender_workspace) -> None:
    from recommender import Config, ConfigError
    from recommender.plugin_manager import make_plugin_manager

    config = Config.from_dict({"strategies": {"tenure": {"band": [12]}}},
                              root=recommender_workspace.root)
    plugins = make_plugin_manager(extra_plugins=[("tenure", recommender_tenure)],
                                  load_entry_points=False)
    with pytest.raises(ConfigError, match="strategies.tenure.band: unknown key; did you mean"):
        recommender_workspace.engine(config=config, plugin_manager=plugins)


def test_served_over_http(recommender_client) -> None:
    response = recommender_client.post("/v1/recommendations", json={
        "customer": {"id": "C0000001"}, "channel": "app", "moment": "success", "locale": "en"})
    assert response.status_code == 200, response.get_json()
    assert any("tenure" in s["strategies"] for s in response.get_json()["suggestions"])


def test_a_model_of_another_catalog_is_refused(recommender_workspace, tmp_path: Path) -> None:
    strategy = recommender_tenure.TenureStrategy(recommender_workspace.catalog())
    np.save(tmp_path / "shares.npy", np.zeros((2, 3)))
    with pytest.raises(ModelError, match="expected"):
        strategy.load(tmp_path)
