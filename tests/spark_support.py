"""Shared by the Spark tests: one local Spark session for the whole test run, and the sample
operator's tables in the import schema as Parquet and CSV files.

Import the fixtures into a test module (``from spark_support import spark``). Without pyspark
or Java the fixtures skip the test, saying which is missing; CI installs both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recommender.csvimport import export_csv
from recommender.workspace import Workspace

TABLES = ("customers", "terminals", "holdings", "events")
MASTER = "local[2]"
_MADE: dict[tuple[str, str], Any] = {}  # what the session fixtures built, once per run


def spark_missing() -> str | None:
    """Why Spark cannot run here, or None."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install -e '.[test]')"
    from recommender.spark.session import java_problem

    return java_problem()


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """The Spark session every Spark test shares (created once: a JVM takes seconds)."""
    problem = spark_missing()
    if problem:
        pytest.skip(f"Spark tests need Java and pyspark: {problem}")
    from pyspark.sql import SparkSession

    from recommender.spark.session import local_defaults

    builder = SparkSession.builder.master(MASTER).appName("recommender-tests")
    for key, value in local_defaults(MASTER).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    # Not stopped here: the modules importing this fixture share the session; the JVM ends
    # with the test process.


def export_tables(ws: Workspace, folder: Path) -> dict[str, Path]:
    """The workspace store's tables as ``folder/csv/<table>.csv`` (the CSV export) and
    ``folder/parquet/<table>.parquet`` (the same rows, typed by pyarrow); returns both folders."""
    import pyarrow.csv as pv
    import pyarrow.parquet as pq

    csv_dir, parquet_dir = folder / "csv", folder / "parquet"
    csv_dir.mkdir(parents=True, exist_ok=True)
    parquet_dir.mkdir(parents=True, exist_ok=True)
    with ws.store() as store:
        for table in TABLES:
            export_csv(store, table, csv_dir / f"{table}.csv")
    for table in TABLES:
        strings = {c: "string" for c in ("id", "customer_id", "product_id", "tags", "persona",
                                          "os", "model", "failure_reason", "event_id")}
        import pyarrow as pa

        types = {c: pa.string() for c in strings}
        read = pv.read_csv(csv_dir / f"{table}.csv",
                           convert_options=pv.ConvertOptions(column_types=types))
        pq.write_table(read, parquet_dir / f"{table}.parquet")
    return {"csv": csv_dir, "parquet": parquet_dir}


@pytest.fixture(scope="session")
def sample_tables(sample_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory
                  ) -> dict[str, Path]:
    """The sample operator's tables, exported once: ``{"csv": folder, "parquet": folder}``."""
    key = ("tables", str(sample_workspace.root))
    if key not in _MADE:  # each module importing the fixture has its own instance of it
        _MADE[key] = export_tables(sample_workspace, tmp_path_factory.mktemp("tables"))
    return _MADE[key]


def invoke(*args: str) -> Any:
    """The CLI in this process, so that Spark commands use the test session."""
    from click.testing import CliRunner

    from recommender.cli import main

    return CliRunner().invoke(main, list(args))


def fresh_workspace(source: Workspace, target: Path) -> Workspace:
    """A copy of the workspace's files and store, without models."""
    import shutil

    shutil.copytree(source.root, target, ignore=shutil.ignore_patterns("models"))
    return Workspace(target)


@pytest.fixture(scope="session")
def spark_trained(spark, sample_workspace: Workspace, sample_tables: dict[str, Path],
                  tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """The sample workspace trained with --engine spark from its tables as Parquet files
    (propensity, which has no Spark fit, on 400 customers drawn at random). Read-only."""
    key = ("trained", str(sample_workspace.root))
    if key not in _MADE:
        ws = fresh_workspace(sample_workspace, tmp_path_factory.mktemp("spark") / "ws")
        result = invoke("train", "--dir", str(ws.root), "--engine", "spark", "--master",
                        MASTER, "--input", str(sample_tables["parquet"]), "--sample", "400")
        assert result.exit_code == 0, result.output
        _MADE[key] = ws
    return _MADE[key]
