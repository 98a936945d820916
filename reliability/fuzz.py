"""Fuzz the API against its own OpenAPI document with schemathesis, on a real server.

    python reliability/fuzz.py                       # 1,000 cases per operation
    python reliability/fuzz.py --max-examples 25     # the short run CI does

Checks every response: no 5xx, the status code, content type and body match the document,
and invalid input is rejected. Not checked: that every schema-valid request is accepted,
because some rules depend on data the schema cannot carry (a product id must be in this
operator's catalog; only a failure-moment request may carry a failure reason) and are refused
with 422 naming the field, as documented. The per-endpoint counts come from the server's own
/metrics, so they are what the server saw.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Server, call, sample_workspace  # noqa: E402

TOKEN = "fuzz-admin-token-0123456789abcdef"
CHECKS = "all"
EXCLUDED = "positive_data_acceptance"


def scrape(base: str) -> dict[tuple[str, str, str], float]:
    _, text = call(base, "GET", "/metrics")
    out = {}
    for line in text.splitlines():
        m = re.match(r'recommender_http_requests_total\{endpoint="([^"]*)",method="([^"]*)",'
                     r'status="(\d+)"\} ([0-9.e+]+)', line)
        if m:
            out[(m[1], m[2], m[3])] = float(m[4])
    return out


def run(root: Path, max_examples: int, seed: int, workers: int) -> dict:
    with Server(root, workers=workers, env={"RECOMMENDER_ADMIN_TOKEN": TOKEN}) as server:
        before = scrape(server.base)
        started = time.monotonic()
        with tempfile.TemporaryDirectory() as reports:
            proc = subprocess.run(
                [sys.executable, "-m", "schemathesis.cli", "run",
                 f"{server.base}/openapi.json", "--checks", CHECKS,
                 "--exclude-checks", EXCLUDED, "--max-examples", str(max_examples),
                 "--seed", str(seed), "--mode", "all", "--workers", "2",
                 "-H", f"Authorization: Bearer {TOKEN}", "--no-color",
                 "--report", "junit", "--report-dir", reports,
                 "--generation-database", "none"],
                capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
        elapsed = time.monotonic() - started
        after = scrape(server.base)
    per_endpoint: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (endpoint, method, status), value in after.items():
        n = int(value - before.get((endpoint, method, status), 0))
        if n and endpoint != "/metrics":
            per_endpoint[f"{method} {endpoint}"][status[0] + "xx"] += n
    generated = re.search(r"(\d+) generated", proc.stdout)
    failures = re.search(r"(\d+) failures? in", proc.stdout)
    return {
        "max_examples_per_operation": max_examples, "seed": seed,
        "cases_generated": int(generated[1]) if generated else None,
        "schemathesis_exit_code": proc.returncode,
        "failures": int(failures[1]) if failures else 0,
        "server_5xx": sum(c.get("5xx", 0) for c in per_endpoint.values()),
        "seconds": round(elapsed, 1),
        "per_endpoint": {k: dict(v) for k, v in sorted(per_endpoint.items())},
        "summary": proc.stdout[-3000:] if proc.returncode else proc.stdout[-600:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="trained workspace (default: the sample)")
    parser.add_argument("--max-examples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or sample_workspace(Path(tmp) / "ws")
        result = run(root, args.max_examples, args.seed, args.workers)
    print(f"{'operation':34} {'2xx':>7} {'4xx':>7} {'5xx':>5}")
    for op, counts in result["per_endpoint"].items():
        print(f"{op:34} {counts.get('2xx', 0):7} {counts.get('4xx', 0):7} "
              f"{counts.get('5xx', 0):5}")
    for key in ("cases_generated", "failures", "server_5xx", "schemathesis_exit_code",
                "seconds"):
        print(f"{key:24} {result[key]}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    ok = result["schemathesis_exit_code"] == 0 and result["server_5xx"] == 0
    if not ok:
        print(result["summary"])
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
