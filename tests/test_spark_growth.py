"""``benchmarks/growth_spark.py --quick``: the growth benchmark runs end to end (a generated
operator streamed to Parquet and a store, trained locally and on Spark, compared); CI checks
that it runs and agrees with itself, not how fast (BENCHMARKS.md has the figures)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from spark_support import spark_missing

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def test_growth_benchmark_trains_both_ways_to_the_same_models(tmp_path: Path) -> None:
    problem = spark_missing()
    if problem:
        pytest.skip(f"the Spark benchmark needs Java and pyspark: {problem}")
    out = tmp_path / "growth.json"
    result = subprocess.run([sys.executable, str(BENCH / "growth_spark.py"), "--quick",
                             "--work", str(tmp_path / "ops"), "--json", str(out)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert [r["engine"] for r in rows] == ["local", "spark"]
    assert all(r["same"] for r in rows)  # identical rules, equal popularity tables
    assert rows[0]["read_s"] >= 0 and all(r["fits"]["cf"] > 0 for r in rows)
    assert "one size only" in result.stdout
    # The generator wrote the import schema in Parquet, a row group per chunk.
    tables = tmp_path / "ops" / "op-1000-60" / "tables"
    customers = pq.read_table(tables / "customers.parquet")
    assert customers.num_rows == 1000
    assert {"id", "value_tier", "age", "monthly_spend", "region"} <= set(customers.column_names)
    events = pq.ParquetFile(tables / "events.parquet")
    assert events.metadata.num_rows == rows[0]["events"]
