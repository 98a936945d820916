"""``recommender train --engine spark``: the same model version format as local training, a
served workspace whose every answer passes the eligibility properties, and clear refusals."""
# ruff: noqa: F811 - the fixtures imported from spark_support are parameters of the tests

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from api_support import call, serving
from spark_support import (  # noqa: F401
    MASTER,
    fresh_workspace,
    invoke,
    sample_tables,
    spark,
    spark_trained,
)
from test_eligibility_properties import PREFER, SMARTPHONE_ONLY, first_reason, served_as

from recommender import CHANNEL_IDS, Channel, Exclusion, Moment, RecommendationRequest
from recommender.artifacts import load_arrays
from recommender.models import current_model_dir, read_manifest
from recommender.plugin_manager import make_plugin_manager
from recommender.spark.tables import InputError, load, parse_inputs
from recommender.spark.train import train_on_spark
from recommender.strategy import Candidate, Strategy
from recommender.workspace import Workspace

SPARK_FITTED = ("popularity", "item_similarity", "cf", "association")


def test_the_version_has_the_local_format(spark_trained: Workspace,
                                          sample_workspace: Workspace) -> None:
    spark_dir = current_model_dir(spark_trained.models_path)
    local_dir = current_model_dir(sample_workspace.models_path)
    spark_manifest, local = read_manifest(spark_dir), read_manifest(local_dir)  # checksums
    assert spark_manifest.keys() == local.keys()
    assert spark_manifest["data"]["fingerprint"].startswith("spark:")
    assert {k: v for k, v in spark_manifest["data"].items() if k != "fingerprint"} == \
        {k: v for k, v in local["data"].items() if k != "fingerprint"}
    assert spark_manifest["strategies"].keys() == local["strategies"].keys()
    assert spark_manifest["failed"] == {}
    for name, entry in spark_manifest["strategies"].items():
        same = local["strategies"][name]
        assert (entry["class"], entry["state_format"], entry["plugin"]) == \
            (same["class"], same["state_format"], same["plugin"])
    # Every file local training writes, with arrays of the same names and shapes.
    files = sorted(p.relative_to(local_dir) for p in local_dir.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(spark_dir) for p in spark_dir.rglob("*")
                           if p.is_file())
    for path in files:
        # Propensity was fitted on a sample of customers: its models differ in number.
        if path.suffix == ".npz" and path.parts[0] in SPARK_FITTED:
            keys = np.load(local_dir / path).files
            mine, theirs = (load_arrays((d / path).parent, path.name, "test", keys)[0]
                            for d in (spark_dir, local_dir))
            assert {k: v.shape for k, v in mine.items()} == {k: v.shape for k, v in
                                                             theirs.items()}, path
    # The popularity table and the rules are the local ones exactly (same data, same fit).
    for folder, name in (("popularity", "popularity.npz"), ("association", "rules.npz")):
        mine, theirs = (np.load(d / folder / name) for d in (spark_dir, local_dir))
        for key in theirs.files:
            np.testing.assert_allclose(mine[key], theirs[key], rtol=1e-6, err_msg=key)


def check_served(base: str, ws: Workspace, customers: list[str]) -> int:
    """Ask for every channel and moment through HTTP; check each suggestion against the
    reference rules of tests/test_eligibility_properties.py. Returns suggestions checked."""
    checked = 0
    products = ("intl_roaming", "plan_5g_newsim", "data_5gb")
    with ws.engine(require_models=True) as engine:
        by_id = {p.id: p for p in engine.catalog.products}
        for i, customer in enumerate(customers):
            for channel in CHANNEL_IDS:
                for moment in Moment:
                    asked = {"channel": channel, "moment": moment.value,
                             "product": products[(i + len(channel)) % len(products)]}
                    if moment is Moment.FAILURE:
                        asked["failure_reason"] = "not_eligible"
                    if moment is Moment.QUERY:
                        asked["product"] = "balance_query"
                    body = {"customer": {"id": customer}, **asked}
                    status, _, answer = call(base, "POST", "/v1/recommendations", body)
                    assert status == 200, answer
                    context, _ = engine.build_context(RecommendationRequest(
                        customer_id=customer, **asked))
                    serving_ = served_as(by_id, context)
                    for s in answer["suggestions"]:
                        if s["kind"] != "business":
                            continue
                        p = by_id[s["product"]]
                        if s["handoff"] is None:
                            assert first_reason(by_id, p, serving_) is Exclusion.OK, (body, s)
                        else:
                            reachable = [c for c in PREFER if c in p.channels and (
                                context.terminal.smartphone or c not in SMARTPHONE_ONLY)]
                            assert s["handoff"]["channel"] == reachable[0], (body, s)
                            there = serving_.evolve(channel=Channel(s["handoff"]["channel"],
                                                                    slots=100))
                            assert first_reason(by_id, p, there) is Exclusion.OK, (body, s)
                        checked += 1
    return checked


def test_a_spark_trained_workspace_serves_every_moment_eligibly(spark_trained: Workspace,
                                                                tmp_path: Path) -> None:
    with spark_trained.store() as store:
        customers = store.customer_ids()[::100]
    with serving(spark_trained.root, tmp_path / "serve.log", "--workers", "1") as (base, _):
        status, _, ready = call(base, "GET", "/readyz")
        assert status == 200, ready
        model = current_model_dir(spark_trained.models_path).name
        status, _, answer = call(base, "POST", "/v1/recommendations", {
            "customer": {"id": customers[0]}, "channel": "app", "moment": "success",
            "product": "intl_roaming"})
        assert status == 200 and answer["model_version"] == model, answer
        assert {s for x in answer["suggestions"] for s in x["strategies"]} & {"cf",
                                                                              "association"}
        assert check_served(base, spark_trained, customers) > 500


def test_a_strategy_without_a_spark_fit_is_refused_by_name(spark, sample_workspace: Workspace,
                                                           sample_tables: dict[str, Path],
                                                           tmp_path: Path) -> None:
    ws = fresh_workspace(sample_workspace, tmp_path / "ws")
    result = invoke("train", "--dir", str(ws.root), "--engine", "spark", "--master", MASTER,
                    "--input", str(sample_tables["parquet"]))
    assert result.exit_code == 1
    assert "cannot train on Spark: propensity (it has no Spark fit" in result.output
    assert "--sample N" in result.output
    assert current_model_dir(ws.models_path) is None  # nothing fitted, nothing written


class CountingStrategy(Strategy):
    """A third party's strategy with a Spark fit: orders per business, counted on Spark."""

    name = "order_counts"
    spark_training = "spark"

    def __init__(self, catalog: Any):
        self.catalog = catalog
        self.counts: np.ndarray | None = None

    def fit_spark(self, data: Any) -> CountingStrategy:
        rows = data.events.groupBy("product").count().collect()
        self.counts = np.zeros(data.n_products, np.int64)
        for row in rows:
            self.counts[row["product"]] = row["count"]
        return self

    def fit(self, data: Any) -> CountingStrategy:
        raise AssertionError("trained locally although it has a Spark fit")

    def candidates(self, context: Any, n: int) -> list[Candidate]:
        return []

    def save(self, directory: Path) -> None:
        np.save(directory / "counts.npy", self.counts)


class CountingPlugin:
    from recommender import hookimpl

    @hookimpl
    def register_strategies(self, catalog: Any) -> list[Strategy]:
        return [CountingStrategy(catalog)]


def test_a_plugin_strategy_with_fit_spark_is_fitted_on_spark(
        spark, spark_trained: Workspace, sample_tables: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECOMMENDER_PLUGINS", raising=False)
    ws = Workspace(shutil.copytree(spark_trained.root, tmp_path / "ws"))
    ws.config_path.write_text(ws.config_path.read_text().replace(
        "[blend.query]", "[blend.query]\norder_counts = 0.1", 1))
    pm = make_plugin_manager(extra_plugins=[("counting", CountingPlugin())],
                             load_entry_points=False)
    model_dir = train_on_spark(ws, spark, parse_inputs([str(sample_tables["parquet"])]),
                               plugin_manager=pm, only=["order_counts"])
    counts = np.load(model_dir / "order_counts" / "counts.npy")
    with ws.store() as store:
        assert counts.sum() == store.count("events")  # every sample event names a business
    manifest = read_manifest(model_dir)
    assert manifest["strategies"]["popularity"]["reused_from"]
    assert "reused_from" not in manifest["strategies"]["order_counts"]


def test_a_fit_that_fails_on_spark_is_left_out_as_locally(
        spark, spark_trained: Workspace, sample_tables: dict[str, Path], tmp_path: Path) -> None:
    ws = Workspace(shutil.copytree(spark_trained.root, tmp_path / "ws"))
    ws.config_path.write_text(ws.config_path.read_text().replace(
        "max_itemsets = 200000", "max_itemsets = 1").replace(
        'on_limit = "raise_support"', 'on_limit = "error"'))
    model_dir = train_on_spark(ws, spark, parse_inputs([str(sample_tables["parquet"])]),
                               only=["association", "popularity"])
    manifest = read_manifest(model_dir)
    assert "association" in manifest["failed"] and "association" not in manifest["strategies"]
    assert "reused_from" not in manifest["strategies"]["popularity"]
    assert "raise strategies.association.max_itemsets" in \
        manifest["failed"]["association"]["error"]


def write_table(folder: Path, name: str, table: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / f"{name}.parquet")


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t.drop_columns(["id"]), "required column 'id' missing"),
    (lambda t: t.set_column(t.schema.get_field_index("value_tier"), "value_tier", pa.array(
        t.column("value_tier").to_pylist()[:-1] + ["platinum"])),
     "value_tier: unknown value 'platinum'; known: high, mid, low"),
])
def test_bad_tables_are_named(spark, sample_workspace: Workspace, sample_tables: dict,
                              tmp_path: Path, change, message: str) -> None:
    customers = pq.read_table(sample_tables["parquet"] / "customers.parquet")
    write_table(tmp_path, "customers", change(customers))
    with pytest.raises(InputError, match=re.escape(message)) as raised:
        load(spark, parse_inputs([f"customers={tmp_path / 'customers.parquet'}"]),
             sample_workspace.catalog())
    assert str(raised.value).startswith(f"customers ({tmp_path / 'customers.parquet'}): ")


@pytest.mark.parametrize(("args", "message"), [
    (["--input", "x"], "--input and --sample go with --engine spark"),
    (["--engine", "spark"], "--engine spark reads the tables named by --input"),
    (["--engine", "spark", "--input", "bogus=here.parquet"], "unknown table 'bogus'"),
    (["--engine", "spark", "--input", "hive:"], "name the Hive database"),
    (["--engine", "spark", "--input", "{empty}"], "no table found; expected customers.parquet"),
    (["--engine", "spark", "--input", "events={missing}"], "does not exist"),
])
def test_train_options_are_checked(sample_workspace: Workspace, tmp_path: Path,
                                   args: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    args = [a.format(empty=tmp_path / "empty", missing=tmp_path / "nope.parquet") for a in args]
    result = invoke("train", "--dir", str(sample_workspace.root), *args)
    assert result.exit_code != 0
    assert message in result.output
