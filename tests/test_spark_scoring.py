"""``recommender batch`` and ``target`` with ``--engine spark`` give the local answers, and the
contact policy's memory answers as the store does."""
# ruff: noqa: F811 - the fixtures imported from spark_support are parameters of the tests

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from spark_support import MASTER, invoke, sample_tables, spark, spark_trained  # noqa: F401

from recommender.spark.scoring import PartitionStore, PolicyLog
from recommender.store import Store
from recommender.workspace import Workspace

#: How every outbound reason opens in English (a model, no driver, a take rate).
ENGLISH = ("likely to take it (", "customers like this one take it (", "taken by ")


def spark_args(tables: dict[str, Path]) -> list[str]:
    return ["--engine", "spark", "--master", MASTER, "--input", str(tables["parquet"])]


def ok(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def read_rows(path: Path) -> dict[str, list]:
    """A batch file or folder of part files, as columns."""
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pydict()
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    rows = [row for f in files for row in csv.DictReader(f.open(newline=""))]
    return {key: [r[key] for r in rows] for key in rows[0]} if rows else {}


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_batch_on_spark_writes_the_local_offers(spark_trained: Workspace,
                                               sample_tables: dict[str, Path],
                                               tmp_path: Path, suffix: str) -> None:
    args = ["batch", "--dir", str(spark_trained.root), "--channel", "sms", "--k", "3",
            "--locale", "en"]  # not the workspace's default: the executors must be told
    local_out, spark_out = tmp_path / f"local{suffix}", tmp_path / f"spark{suffix}"
    local = json.loads(ok(*args, "--out", str(local_out)))
    on_spark = json.loads(ok(*args, "--out", str(spark_out), *spark_args(sample_tables)))
    assert spark_out.is_dir()  # part files, written by the executors
    for key in ("customers", "offers", "without_offer"):
        assert on_spark[key] == local[key], key
    expected, got = read_rows(local_out), read_rows(spark_out)
    assert local["offers"] > 1000
    for column in ("customer_id", "rank", "product", "strategies", "reasons"):
        assert got[column] == expected[column], column
    assert all(r.startswith(ENGLISH)
               for r in got["reasons"])
    # Scores are float32 products of the same model; pages of another size may round the
    # last place differently.
    np.testing.assert_allclose(np.asarray(got["score"], float),
                               np.asarray(expected["score"], float), rtol=1e-5)


def test_target_on_spark_ranks_the_local_audience(spark_trained: Workspace,
                                                  sample_tables: dict[str, Path],
                                                  tmp_path: Path) -> None:
    ids = tmp_path / "ids.csv"
    with spark_trained.store() as store:
        chosen = store.customer_ids()[::3]
    ids.write_text("id\n" + "\n".join(chosen) + "\nnobody\n")
    args = ["target", "--dir", str(spark_trained.root), "--product", "intl_sms,data_20gb",
            "--top", "40", "--channel", "app", "--customers", str(ids), "--locale", "en"]
    local_out, spark_out = tmp_path / "local.csv", tmp_path / "spark.csv"
    local = json.loads(invoke(*args, "--out", str(local_out)).stdout)
    on_spark = json.loads(invoke(*args, "--out", str(spark_out),
                                 *spark_args(sample_tables)).stdout)
    assert on_spark["products"] == local["products"]
    assert on_spark["not_found"] == local["not_found"] == 1
    expected, got = read_rows(local_out), read_rows(spark_out)
    assert len(expected["customer_id"]) == 80
    for column in ("product", "rank", "customer_id", "strategies", "reasons"):
        assert got[column] == expected[column], column
    assert all(r.startswith(ENGLISH)
               for r in got["reasons"])


def test_spark_scoring_refuses_a_customers_file_with_columns(spark_trained: Workspace,
                                                             sample_tables: dict[str, Path],
                                                             tmp_path: Path) -> None:
    given = tmp_path / "customers.csv"
    given.write_text("id,value_tier\nC0000001,high\n")
    result = invoke("target", "--dir", str(spark_trained.root), "--product", "intl_sms",
                    "--top", "5", "--customers", str(given), *spark_args(sample_tables))
    assert result.exit_code == 1
    assert "with --engine spark, --customers is a file of ids" in result.output


def test_an_existing_output_folder_is_not_overwritten(spark_trained: Workspace,
                                                      sample_tables: dict[str, Path],
                                                      tmp_path: Path) -> None:
    (tmp_path / "offers.parquet").write_text("an earlier run's offers")
    result = invoke("batch", "--dir", str(spark_trained.root), "--channel", "sms", "--out",
                    str(tmp_path / "offers.parquet"), *spark_args(sample_tables))
    assert result.exit_code == 1
    assert "already exists" in result.output


def test_the_policy_log_answers_as_the_store(sample_workspace: Workspace) -> None:
    with Store(sample_workspace.store_path) as store:
        ids = store.customer_ids()
        log = PolicyLog.from_store(store, now=2e9, lookback_s=10**10)
        assert log.rows()[0], "the sample's feedback log holds dismissals"
        for first, last in ((ids[0], ids[-1]), (ids[10], ids[500]), (ids[7], ids[7]),
                            ("", "C"), ("Z", "ZZ")):
            for since in (0, 1_790_000_000):
                assert log.dismissals_of(first, last, since) == \
                    store.dismissals_of(first, last, since)
                assert sorted(log.contacts_of(first, last, since)) == \
                    sorted(store.contacts_of(first, last, since))
        page = store.customer_page(None, 300)
        holdings = store.holdings_of(page[0][0], page[-1][0])
        partition = PartitionStore(page, holdings, store.attribute_kinds(), log)
        assert partition.customer_page(None, 100) == page[:100]
        assert partition.customer_page(page[99][0], 100) == page[100:200]
        assert partition.customer_page(page[-1][0], 100) == []
        assert sorted(partition.holdings_of(page[5][0], page[40][0])) == \
            sorted(store.holdings_of(page[5][0], page[40][0]))
