"""Soak: several minutes at about 80% of measured capacity on loopback; memory and p99 must
stay flat and no request may fail.

    python reliability/soak.py                    # 10 s capacity probe, then 6 x 30 s windows
    python reliability/soak.py --windows 2 --window-seconds 5 --probe-seconds 3   # quick

Load comes from ``hey`` (Debian package ``hey``) at a fixed rate; the request is the success
moment in the app for a stored customer, with every built-in strategy on.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Server, rss_kib, sample_workspace  # noqa: E402

BODY = {"customer": {"id": "C0000042"}, "channel": "app", "moment": "success",
        "product": "plan_5g"}
CONNECTIONS = 8


def hey(url: str, seconds: float, rate_per_connection: float | None = None) -> dict:
    args = ["hey", "-z", f"{seconds}s", "-c", str(CONNECTIONS), "-m", "POST",
            "-T", "application/json", "-d", json.dumps(BODY)]
    if rate_per_connection:
        args += ["-q", f"{rate_per_connection:.2f}"]
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout

    def number(pattern: str) -> float:
        m = re.search(pattern, out)
        return float(m[1]) if m else float("nan")

    statuses = {int(code): int(n) for code, n in re.findall(r"\[(\d+)\]\s+(\d+) responses",
                                                            out)}
    errors = sum(int(n) for n in re.findall(r"\[(\d+)\]\s+Get|\[(\d+)\]\s+Post", out)
                 if n) if "Error distribution" in out else 0
    return {"rps": number(r"Requests/sec:\s+([\d.]+)"),
            "p50_ms": number(r"50%+ in ([\d.]+) secs") * 1000,
            "p99_ms": number(r"99%+ in ([\d.]+) secs") * 1000,
            "ok": statuses.get(200, 0),
            "failed": sum(n for code, n in statuses.items() if code != 200) + errors}


def run(root: Path, probe_seconds: float, windows: int, window_seconds: float,
        load: float) -> dict:
    with Server(root, workers=2, threads=4) as server:
        url = f"{server.base}/v1/recommendations"
        hey(url, 2)  # warm-up
        capacity = hey(url, probe_seconds)
        rate = capacity["rps"] * load
        workers = server.workers()
        rows = [{"window": 0, "rss_mib": round(sum(rss_kib(p) for p in workers) / 1024, 1)}]
        for w in range(1, windows + 1):
            result = hey(url, window_seconds, rate / CONNECTIONS)
            rows.append({"window": w, **result,
                         "rss_mib": round(sum(rss_kib(p) for p in workers) / 1024, 1)})
        restarted = sorted(workers) != sorted(server.workers())
    return {"capacity_rps": round(capacity["rps"], 1), "target_rps": round(rate, 1),
            "windows": rows, "workers_restarted": restarted,
            "failed": sum(r.get("failed", 0) for r in rows),
            "requests": sum(r.get("ok", 0) for r in rows)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="trained workspace (default: the sample)")
    parser.add_argument("--probe-seconds", type=float, default=10)
    parser.add_argument("--windows", type=int, default=6)
    parser.add_argument("--window-seconds", type=float, default=30)
    parser.add_argument("--load", type=float, default=0.8, help="fraction of capacity")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if shutil.which("hey") is None:
        print("needs 'hey' (apt-get install hey)")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or sample_workspace(Path(tmp) / "ws")
        started = time.monotonic()
        result = run(root, args.probe_seconds, args.windows, args.window_seconds, args.load)
        result["seconds"] = round(time.monotonic() - started, 1)
    print(f"capacity {result['capacity_rps']} req/s; soak at {result['target_rps']} req/s")
    print(f"{'window':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'ok':>8} {'failed':>7} "
          f"{'workers RSS MiB':>16}")
    for r in result["windows"]:
        print(f"{r['window']:6} {r.get('rps', float('nan')):8.1f} "
              f"{r.get('p50_ms', float('nan')):8.2f} {r.get('p99_ms', float('nan')):8.2f} "
              f"{r.get('ok', 0):8} {r.get('failed', 0):7} {r['rss_mib']:16}")
    rss = [r["rss_mib"] for r in result["windows"]]
    p99 = [r["p99_ms"] for r in result["windows"][1:]]
    result["rss_growth_mib"] = round(rss[-1] - rss[1 if len(rss) > 1 else 0], 1)
    print(f"requests {result['requests']}, failed {result['failed']}, RSS growth after the "
          f"first window {result['rss_growth_mib']} MiB, p99 {min(p99):.2f}-{max(p99):.2f} ms, "
          f"workers restarted: {result['workers_restarted']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    ok = result["failed"] == 0 and not result["workers_restarted"]
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
