"""The reliability scripts in their short form: CI proves they work; RELIABILITY.md has the
long runs' figures."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_script(name: str, *args: str, tmp_path: Path) -> dict:
    out = tmp_path / f"{name}.json"
    result = subprocess.run([sys.executable, str(ROOT / "reliability" / f"{name}.py"), *args,
                             "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.rstrip().endswith("PASS")
    return json.loads(out.read_text())


def test_crash_test_loses_no_acknowledged_event(sample_workspace, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(sample_workspace.root, ws)
    result = run_script("crash_test", "--dir", str(ws), "--threads", "4", "--events", "60",
                        "--kills", "1", tmp_path=tmp_path)
    assert result["workers_killed"] == 1
    assert result["acknowledged"] == result["found_in_store"] == 240
    assert result["missing"] == 0


def test_fuzzing_finds_no_5xx_and_no_schema_break(sample_workspace, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(sample_workspace.root, ws)
    result = run_script("fuzz", "--dir", str(ws), "--max-examples", "10", tmp_path=tmp_path)
    assert result["server_5xx"] == 0 and result["failures"] == 0
    assert result["cases_generated"] > 100
    assert "POST /v1/recommendations" in result["per_endpoint"]


@pytest.mark.skipif(shutil.which("hey") is None, reason="needs hey (apt-get install hey)")
def test_soak_quick(sample_workspace, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(sample_workspace.root, ws)
    result = run_script("soak", "--dir", str(ws), "--windows", "2", "--window-seconds", "2",
                        "--probe-seconds", "2", tmp_path=tmp_path)
    assert result["failed"] == 0 and result["requests"] > 0


@pytest.fixture
def private_workspace(sample_workspace, tmp_path) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(sample_workspace.root, ws)
    return ws


def test_broken_files_never_take_the_server_down(private_workspace, tmp_path):
    result = run_script("broken_files", "--dir", str(private_workspace), "--requests", "8",
                        tmp_path=tmp_path)
    assert len(result["cases"]) >= 8
    for case in result["cases"]:
        assert case["reload"] == 409 and case["names_file"] and case["alive"], case
        assert case["answers"] == {"200": 8} and case["same_version"], case


def test_workers_never_split_between_model_versions(private_workspace, tmp_path):
    result = run_script("split_versions", "--dir", str(private_workspace), "--requests", "8",
                        tmp_path=tmp_path)
    assert [s["held"] for s in result["steps"]] == [True] * 5
    assert all(len(s["versions"]) == 1 for s in result["steps"])
    assert result["steps"][0]["versions"] == result["steps"][2]["versions"]
    assert result["steps"][3]["versions"] != result["steps"][0]["versions"]


def test_every_manifest_tampering_is_a_409(private_workspace, tmp_path):
    result = run_script("manifest_tampering", "--dir", str(private_workspace), "--requests",
                        "4", tmp_path=tmp_path)
    assert len(result["cases"]) >= 12
    assert {c["reload"] for c in result["cases"]} == {409}


def test_random_methods_add_no_metric_series(private_workspace, tmp_path):
    result = run_script("metric_cardinality", "--dir", str(private_workspace), "--requests",
                        "150", tmp_path=tmp_path)
    assert result["series_added"] <= 60 and result["added_by_round_2"] == 0


def test_chunked_bodies_obey_the_limit(private_workspace, tmp_path):
    result = run_script("chunked_body", "--dir", str(private_workspace), tmp_path=tmp_path)
    assert all(c["held"] for c in result["cases"])
    assert sum(c["stored"] for c in result["cases"]) == 1


def test_concurrent_trainings_are_serialised(sample_workspace, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(sample_workspace.root, ws)
    result = run_script("concurrent_train", "--dir", str(ws), "--runs", "2", tmp_path=tmp_path)
    assert result["exit_0"] == 2 and result["new_versions"] == 2
    assert result["tracebacks"] == 0 and result["partial_after_next_train"] == 0


def test_import_under_load_keeps_feedback_and_serving_within_budget(private_workspace,
                                                                     tmp_path):
    result = run_script("import_under_load", "--dir", str(private_workspace), "--quick",
                        tmp_path=tmp_path)
    assert result["import_ok"] and result["feedback_5xx_other"] == 0
    assert result["acknowledged"] == result["acknowledged_in_store"] > 0
    assert result["feedback_503_without_retry_after"] == 0
    assert result["events_after"] - result["events_before"] == result["rows"]
