"""Spark fits against local fits on the same data: identical rules (the Groceries reference),
identical popularity and item-similarity arrays, and CF quality within 2% through
``recommender evaluate``."""
# ruff: noqa: F811 - the fixtures imported from spark_support are parameters of the tests

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import dataset
from spark_support import MASTER, sample_tables, spark  # noqa: F401

from plugins.association import AssociationStrategy
from plugins.cf import CFStrategy, ItemSimilarityStrategy
from plugins.popularity import PopularityStrategy
from recommender import TrainingData
from recommender.cli import main
from recommender.mining import BasketMatrix, MiningLimitError, mine_rules, mine_rules_bounded
from recommender.spark import fits
from recommender.spark.mining import list_baskets, mine_rules_bounded_spark, mine_rules_spark
from recommender.spark.tables import from_training_data, load, parse_inputs
from recommender.workspace import Workspace


def run(*args: str) -> str:
    """The CLI in this process (so Spark commands use the test session); its output."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_rules_on_spark_reproduce_the_groceries_reference(spark, tmp_path: Path) -> None:
    groceries = dataset("groceries", "groceries.csv")
    reference = dataset("groceries", "reference_rules_supp0.001_conf0.5.csv")
    settings = ("--min-support", "0.001", "--min-confidence", "0.5", "--format", "json")
    on_spark = run("rules", "--engine", "spark", "--master", MASTER, "--baskets",
                   str(groceries), *settings)
    assert on_spark == run("rules", "--baskets", str(groceries), *settings)
    found = {(frozenset(r["antecedents"]), r["consequent"]): r for r in json.loads(on_spark)}
    with reference.open(newline="") as f:
        expected = list(csv.DictReader(f))
    assert len(found) == len(expected) == 5668
    for row in expected:
        rule = found[(frozenset(row["lhs"].strip("{}").split(",")), row["rhs"].strip("{}"))]
        assert rule["count"] == int(row["count"])
        assert rule["support"] == pytest.approx(int(row["count"]) / 9835, abs=1e-15)
        assert rule["confidence"] == pytest.approx(float(row["confidence"]), abs=1e-8)
        assert rule["lift"] == pytest.approx(float(row["lift"]), rel=1e-8)


@pytest.mark.parametrize("source", ["--dir", "--input"])
def test_rules_of_the_holdings_on_spark_equal_the_local_ones(
        spark, sample_workspace: Workspace, sample_tables: dict[str, Path], source: str) -> None:
    settings = ("--min-support", "0.01", "--min-confidence", "0.2", "--format", "csv")
    where = str(sample_workspace.root) if source == "--dir" else str(sample_tables["parquet"])
    on_spark = run("rules", "--engine", "spark", "--master", MASTER, source, where, *settings)
    local = run("rules", "--dir", str(sample_workspace.root), *settings)
    assert on_spark == local and local.count("\n") > 20


@pytest.mark.parametrize(("min_support", "min_confidence", "max_len", "expected"), [
    (0.005, 0.5, None, 120),  # published count (PROVENANCE.md)
    (0.001, 0.5, 3, 11 + 1461),  # FP-Growth counts longer itemsets; they are dropped
])
def test_rule_counts_and_rules_equal_the_local_miner(spark, min_support: float,
                                                     min_confidence: float,
                                                     max_len: int | None, expected: int) -> None:
    baskets = [line.rstrip("\r\n").split(",") for line in
               dataset("groceries", "groceries.csv").read_text().splitlines()]
    settings = {"min_support": min_support, "min_confidence": min_confidence,
                "max_len": max_len}
    rules = mine_rules_spark(list_baskets(spark, baskets), **settings)
    assert len(rules) == expected
    assert rules == mine_rules(baskets, **settings)


def dense_baskets(n: int = 400, items: int = 14, seed: int = 3) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [[f"i{j:02d}" for j in np.flatnonzero(rng.random(items) < 0.55)] for _ in range(n)]


def test_support_is_raised_to_the_same_value_under_the_itemset_cap(spark) -> None:
    baskets = dense_baskets()
    settings = {"min_support": 0.02, "min_confidence": 0.3, "max_len": 4, "max_itemsets": 300}
    local = mine_rules_bounded(BasketMatrix.from_baskets(baskets), **settings)
    on_spark = mine_rules_bounded_spark(list_baskets(spark, baskets), **settings)
    assert local.raised and on_spark.raised and on_spark.limit == local.limit
    assert on_spark.min_support == local.min_support and on_spark.min_count == local.min_count
    assert on_spark.notice() == local.notice()
    assert on_spark.rules == local.rules


def test_a_cap_reached_without_raising_support_is_the_named_error(spark) -> None:
    with pytest.raises(MiningLimitError, match="cap of 50 itemsets"):
        mine_rules_spark(list_baskets(spark, dense_baskets()), min_support=0.02,
                         min_confidence=0.3, max_itemsets=50)


@pytest.fixture(scope="module")
def spark_data(spark, sample_workspace: Workspace, sample_tables: dict[str, Path]) -> dict:
    """The sample operator twice on Spark: read from Parquet files, and handed over from the
    arrays local training reads; with the local arrays."""
    catalog = sample_workspace.catalog()
    with sample_workspace.store() as store:
        local = TrainingData.from_store(store, catalog)
    return {"local": local,
            "parquet": load(spark, parse_inputs([str(sample_tables["parquet"])]), catalog),
            "csv": load(spark, parse_inputs([str(sample_tables["csv"])]), catalog),
            "arrays": from_training_data(spark, local)}


@pytest.mark.parametrize("source", ["parquet", "csv", "arrays"])
def test_tables_read_on_spark_hold_what_the_store_holds(spark_data: dict, source: str) -> None:
    local, data = spark_data["local"], spark_data[source]
    assert (data.n_customers, data.n_events, data.now) == \
        (local.n_customers, len(local.events), local.now)
    assert data.holdings.count() == local.holdings.nnz


def popularity_state(strategy: PopularityStrategy) -> dict[str, np.ndarray]:
    return {"table": strategy.table}


def similarity_state(strategy: ItemSimilarityStrategy) -> dict[str, np.ndarray]:
    sim = strategy.similarity
    return {"indptr": sim.indptr, "indices": sim.indices, "data": sim.data}


def rules_state(strategy: AssociationStrategy) -> dict[str, np.ndarray]:
    return {**strategy._arrays, "support used": np.array([strategy.mined_min_support])}


@pytest.mark.parametrize(("source", "make", "fit", "state"), [
    ("parquet", PopularityStrategy, fits.fit_popularity, popularity_state),
    ("arrays", PopularityStrategy, fits.fit_popularity, popularity_state),
    ("parquet", lambda c: PopularityStrategy(c, half_life_days=None), fits.fit_popularity,
     popularity_state),
    ("parquet", ItemSimilarityStrategy, fits.fit_item_similarity, similarity_state),
    ("arrays", ItemSimilarityStrategy, fits.fit_item_similarity, similarity_state),
    ("parquet", AssociationStrategy, fits.fit_association, rules_state),
    ("arrays", lambda c: AssociationStrategy(c, baskets="sessions", min_support=0.002),
     fits.fit_association, rules_state),
], ids=["popularity", "popularity-arrays", "popularity-counts", "item_similarity",
        "item_similarity-arrays", "association", "association-sessions-arrays"])
def test_spark_fits_leave_the_local_fits_arrays(spark_data: dict, source: str, make, fit,
                                               state) -> None:
    catalog = spark_data["local"].catalog
    local, on_spark = make(catalog), make(catalog)
    local.fit(spark_data["local"])
    fit(on_spark, spark_data[source])
    expected, got = state(local), state(on_spark)
    assert expected.keys() == got.keys()
    for key in expected:
        assert got[key].shape == expected[key].shape, key
        # Sums of decayed weights may round differently in the last place; counts are exact.
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=0, err_msg=key)
    assert len(next(iter(got.values()))) > 1


def test_bpr_has_no_spark_fit_and_says_so(spark_data: dict) -> None:
    strategy = CFStrategy(spark_data["local"].catalog, model="bpr")
    assert fits.training_kind(strategy) == (fits.LOCAL, 'cf.model = \'bpr\': MLlib has ALS '
                                            'only; set model = "als" or train cf locally')
    with pytest.raises(ValueError, match="MLlib has ALS only"):
        fits.fit_cf(strategy, spark_data["arrays"])


def test_bm25_weighting_has_no_spark_fit_and_says_so(spark_data: dict) -> None:
    """The Spark fit writes no BM25 statistics: a model claiming the weighting would fold in
    customers unlike it was fitted, so cf is trained locally (or the weighting set to none)."""
    strategy = CFStrategy(spark_data["local"].catalog, weighting="bm25")
    kind, why = fits.training_kind(strategy)
    assert kind == fits.LOCAL and "cf.weighting = 'bm25'" in why and "train cf locally" in why
    with pytest.raises(ValueError, match="weighs no interactions"):
        fits.fit_cf(strategy, spark_data["arrays"])


def test_cf_ndcg_on_spark_is_within_two_percent_of_local_through_evaluate(
        spark, sample_workspace: Workspace, tmp_path: Path) -> None:
    """The same split, customers and engine; only the fit differs (implicit against MLlib)."""
    scores = {}
    for engine in ("local", "spark"):
        out = tmp_path / f"{engine}.json"
        run("evaluate", "--dir", str(sample_workspace.root), "--strategies", "cf", "--k", "10",
            "--bootstrap", "0", "--engine", engine, "--master", MASTER, "--json", str(out))
        scores[engine] = json.loads(out.read_text())["cf"]["ndcg@10"]
    assert scores["local"] > 0.2
    assert abs(scores["spark"] - scores["local"]) <= 0.02 * scores["local"], scores
