"""benchmarks/bench_console.py in --quick mode: it runs, signs in, and prints a row per page
(CI checks the script, not the times; docs/console.md has the figures)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_console.py"


def test_the_console_benchmark_times_every_page_and_its_peers(tmp_path):
    out = tmp_path / "rows.json"
    result = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--work",
                             str(tmp_path / "ws"), "--json", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = json.loads(out.read_text())
    kinds = {row["kind"] for row in rows}
    assert kinds == {"page", "peer", "action"}
    pages = [row["page"] for row in rows if row["kind"] == "page"]
    assert "customer: grid of 24 answers" in pages and "live data (each poll)" in pages
    assert len(pages) == 12 and all(row["p50_ms"] > 0 for row in rows)
    assert "| customer: grid of 24 answers" in result.stdout and "within budget" in result.stdout
