"""The propensity strategy: calibrated per-business models over attributes, saved as arrays."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from plugins.propensity import PropensityStrategy, one_customer
from recommender import Catalog, Engine, ModelError, RequestContext, TrainingData
from recommender.context import Channel, Customer, Terminal


@pytest.fixture(scope="module")
def fitted(catalog: Catalog, sample_data: TrainingData) -> PropensityStrategy:
    return PropensityStrategy(catalog).fit(sample_data)


def took(data: TrainingData) -> np.ndarray:
    """Customers x products: held, or ordered successfully (the label)."""
    out = data.holdings.toarray() > 0
    success = data.events.kind == 2
    out[data.events.customer[success], data.events.product[success]] = True
    return out


def test_a_model_per_business_enough_customers_took(
    fitted: PropensityStrategy, sample_data: TrainingData
) -> None:
    positives = took(sample_data).sum(axis=0)
    modelled = fitted.model_of >= 0
    assert modelled.sum() >= 10
    assert (positives[modelled] >= fitted.min_positives).all()
    for product, count in fitted.skipped.items():
        assert count == positives[sample_data.catalog.index[product]] < fitted.min_positives


def test_scores_are_calibrated_on_average(
    fitted: PropensityStrategy, sample_data: TrainingData
) -> None:
    scores = fitted.score_rows(sample_data, slice(None))
    labels = took(sample_data)
    for j in np.nonzero(fitted.model_of >= 0)[0]:
        assert scores[:, j].mean() == pytest.approx(labels[:, j].mean(), rel=0.05, abs=2e-3)


def test_sampled_negatives_keep_the_scores_calibrated(
    catalog: Catalog, sample_data: TrainingData
) -> None:
    sampled = PropensityStrategy(catalog, max_negatives=400).fit(sample_data)
    scores = sampled.score_rows(sample_data, slice(None))
    labels = took(sample_data)
    common = np.nonzero((sampled.model_of >= 0) & (labels.mean(axis=0) > 0.02))[0]
    assert len(common) >= 5
    ratio = scores[:, common].mean(axis=0) / labels[:, common].mean(axis=0)
    assert np.all((ratio > 0.6) & (ratio < 1.6)), ratio


def test_scores_rank_the_takers_first(
    fitted: PropensityStrategy, sample_data: TrainingData
) -> None:
    from sklearn.metrics import roc_auc_score

    scores = fitted.score_rows(sample_data, slice(None))
    labels = took(sample_data)
    aucs = [roc_auc_score(labels[:, j], scores[:, j]) for j in np.nonzero(fitted.model_of >= 0)[0]]
    assert np.median(aucs) > 0.75, aucs


def test_saved_and_loaded_models_score_the_same(
    fitted: PropensityStrategy, catalog: Catalog, sample_data: TrainingData, tmp_path: Path
) -> None:
    fitted.save(tmp_path)
    loaded = PropensityStrategy(catalog).load(tmp_path)
    rows = np.arange(50)
    np.testing.assert_array_equal(
        loaded.score_rows(sample_data, rows), fitted.score_rows(sample_data, rows)
    )
    assert loaded.reasons(sample_data, rows, np.full(50, 3), np.ones(50)) == fitted.reasons(
        sample_data, rows, np.full(50, 3), np.ones(50)
    )


@pytest.mark.parametrize("tamper", ["numeric_names", "categories", "drop"])
def test_artifacts_that_do_not_fit_are_refused(
    fitted: PropensityStrategy, catalog: Catalog, tmp_path: Path, tamper: str
) -> None:
    fitted.save(tmp_path)
    settings = json.loads((tmp_path / "settings.json").read_text())
    if tamper == "numeric_names":
        settings["numeric_names"].append("extra")
    elif tamper == "categories":
        settings["categories"]["region"] = settings["categories"]["region"][:-1]
    else:
        del settings["categories"]
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    with pytest.raises(ModelError, match="propensity"):
        PropensityStrategy(catalog).load(tmp_path)


def test_a_model_trained_with_other_features_is_refused(
    catalog: Catalog, sample_data: TrainingData, tmp_path: Path
) -> None:
    PropensityStrategy(catalog, segment=False).fit(sample_data).save(tmp_path)
    with pytest.raises(ModelError, match="coef has shape"):
        PropensityStrategy(catalog).load(tmp_path)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"c": 0}, "c must be"),
        ({"c": float("nan")}, "c must be"),
        ({"min_positives": 0}, "min_positives"),
        ({"max_negatives": -1}, "max_negatives"),
        ({"attributes": "age"}, "attributes"),
        ({"segment": "yes"}, "segment"),
    ],
)
def test_bad_settings_are_refused(catalog: Catalog, settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PropensityStrategy(catalog, **settings)


def context(customer: Customer) -> RequestContext:
    return RequestContext(
        customer=customer,
        terminal=Terminal(network="5G"),
        channel=Channel("app", 9),
        moment="query",
    )


def test_inbound_candidates_use_the_attributes_and_say_why(fitted: PropensityStrategy) -> None:
    young = fitted.candidates(
        context(
            Customer("A", attributes={"age": 19, "region": "east"}, holdings=frozenset({"plan_4g"}))
        ),
        50,
    )
    old = fitted.candidates(
        context(
            Customer("A", attributes={"age": 70, "region": "east"}, holdings=frozenset({"plan_4g"}))
        ),
        50,
    )
    assert young and old
    assert {c.product: c.score for c in young} != {c.product: c.score for c in old}
    assert all("chance" in c.reason for c in young)
    assert "plan_4g" not in {c.product for c in young}
    assert [c.score for c in young] == sorted((c.score for c in young), reverse=True)


def test_inbound_reasons_are_in_the_request_s_language(fitted: PropensityStrategy) -> None:
    customer = Customer("A", attributes={"age": 70, "region": "east"},
                        holdings=frozenset({"plan_4g"}))
    chinese = fitted.candidates(context(customer).evolve(locale="zh-CN"), 50)
    english = fitted.candidates(context(customer), 50)
    assert [c.product for c in chinese] == [c.product for c in english]
    assert all(c.reason.startswith(("可能办理（可能性", "相似客户常办理（可能性"))
               for c in chinese), [c.reason for c in chinese]
    assert all("chance" in c.reason for c in english)
    held = [c.reason for c in chinese if "已办理" in c.reason]
    assert not held or all("4G" in r or "套餐" in r for r in held)


def test_one_customer_scores_like_the_same_row_of_the_store(
    fitted: PropensityStrategy, engine: Engine, sample_data: TrainingData
) -> None:
    from recommender import RecommendationRequest

    row = 17
    cid = sample_data.customers[row]
    ctx, _ = engine.build_context(
        RecommendationRequest(customer_id=cid, channel="app", moment="query")
    )
    single = fitted.score_rows(one_customer(ctx, fitted.catalog), np.array([0]))[0]
    np.testing.assert_allclose(
        single, fitted.score_rows(sample_data, np.array([row]))[0], rtol=1e-5
    )


def test_the_engine_serves_it_when_blended(sample_workspace, tmp_path: Path) -> None:
    from recommender import RecommendationRequest

    root = tmp_path / "ws"
    shutil.copytree(sample_workspace.root, root)
    (root / "config.toml").write_text("[blend.query]\npropensity = 1.0\n")
    from recommender.workspace import Workspace

    with Workspace(root).engine(require_models=True) as engine:
        result = engine.recommend(
            RecommendationRequest(
                customer_id="C0000003",
                channel="app",
                moment="query",
                customer={"attributes": {"age": 23}},
            )
        )
    assert result.suggestions
    assert all(s.strategies == ("propensity",) for s in result.suggestions)
