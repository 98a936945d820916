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
