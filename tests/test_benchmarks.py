"""The benchmark scripts in --quick mode: CI checks they run and print their tables (it does
not time them; BENCHMARKS.md has the figures)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def run(script: str, *args: str, tmp_path: Path) -> tuple[str, object]:
    out = tmp_path / "out.json"
    result = subprocess.run([sys.executable, str(BENCH / script), "--quick", *args,
                             "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout, json.loads(out.read_text())


def test_serving_benchmark(tmp_path):
    stdout, results = run("bench_serving.py", "--work", str(tmp_path / "ops"), "--isolate-all",
                          tmp_path=tmp_path)
    assert "p99" in stdout
    codes = [r["code"] for r in results]  # every operator size, current then isolated
    assert codes == ["current", "isolated"] * (len(codes) // 2) and codes
    assert {m for m in results[0]["moments"]} == {"query", "transaction", "success", "failure"}
    assert all(r["rss_peak_mib"] > 0 for r in results)


def test_training_benchmark(tmp_path):
    stdout, results = run("bench_training.py", "--work", str(tmp_path / "ops"),
                          tmp_path=tmp_path)
    assert results["train"][0]["customers"] == 2000 and results["train"][0]["total_s"] > 0
    assert {r["threads"] for r in results["cf_threads"]} == {1, 2}
    assert results["store_read"][0]["bulk_s"] > 0 and results["store_read"][0]["events"] > 0


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (apt-get install wrk)")
def test_http_benchmark(tmp_path):
    stdout, results = run("bench_http.py", "--work", str(tmp_path / "ops"), tmp_path=tmp_path)
    assert "target: at least 70%" in stdout
    assert results["recommend"]["non_2xx"] == 0 and results["recommend"]["requests"] > 0


def test_http_layers_benchmark(tmp_path):
    stdout, results = run("bench_http_layers.py", "--work", str(tmp_path / "ops"),
                          tmp_path=tmp_path)
    assert "trivial / recommendation CPU" in stdout
    assert "at 70% of the trivial endpoint, a recommendation could cost" in stdout
    # Every layer measured (a smoke test: comparing CPU times of 200 calls is for the
    # benchmark's full run, not for a test).
    assert all(ms > 0 for ms in results.values()) and len(results) == 7


def test_mining_benchmark(tmp_path):
    stdout, _ = run("bench_mining.py", "--no-mlxtend", tmp_path=tmp_path)
    assert "groceries" in stdout.lower()


def test_contact_policy_benchmark(tmp_path):
    stdout, results = run("bench_contact_policy.py", "--work", str(tmp_path / "ops"),
                          tmp_path=tmp_path)
    assert "COVERING INDEX feedback_by_customer" in " ".join(results["plan"])
    assert results["events"] == 100_000
    assert [r["step"].split(",")[0] for r in results["rows"]][-3:] == ["recommendation"] * 3


def test_outbound_benchmark(tmp_path):
    stdout, results = run("bench_outbound.py", "--work", str(tmp_path / "ops"),
                          tmp_path=tmp_path)
    assert "| batch |" in stdout and "speed-up" in stdout
    assert [(r["customers"], r["what"]) for r in results["results"]] == [
        (2000, "target"), (2000, "batch"), (5000, "target"), (5000, "batch")]
    assert all(r["rows"] > 0 and r["rss_peak_mib"] > 0 for r in results["results"])


def test_journeys_benchmark(tmp_path):
    stdout, rows = run("bench_journeys.py", "--work", str(tmp_path / "ws"), tmp_path=tmp_path)
    assert [r["peer"] for r in rows] == ["web, transaction", "app, transaction, check passes",
                                         "app, failure, without alternatives", "app, query, en"]
    for r in rows:
        assert r["p50_ms"] > 0 and r["peer_p50_ms"] > 0 and r["ratio"] > 0
        assert r["request"] in stdout

