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
