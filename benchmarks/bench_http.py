"""HTTP throughput and latency: POST /v1/recommendations against a trivial JSON endpoint
(GET /healthz) of the same app, same gunicorn settings, same run, with wrk on loopback.

    python benchmarks/bench_http.py                  # 100k customers, 2,000 businesses, 15 s each
    python benchmarks/bench_http.py --quick          # CI smoke test
    git worktree add /tmp/baseline REV && \
        python benchmarks/bench_http.py --baseline /tmp/baseline   # before/after, one run

Requests cycle over random stored customers and the four moments. Needs wrk (apt-get install
wrk); the load generator shares the machine's cores with the server.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))

LUA = """
math.randomseed(7)
local moments = {
  '"moment": "query"',
  '"moment": "transaction", "product": "plan_5g"',
  '"moment": "success", "product": "intl_roaming"',
  '"moment": "failure", "product": "plan_5g_newsim", "failure_reason": "not_eligible"',
}
request = function()
  local body = string.format('{"customer": {"id": "C%%07d"}, "channel": "app", %%s}',
                             math.random(0, %(customers)d - 1), moments[math.random(1, 4)])
  return wrk.format("POST", "/v1/recommendations", {["Content-Type"] = "application/json"}, body)
end
"""


def wrk(url: str, seconds: int, connections: int, script: Path | None = None) -> dict:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script:
        args += ["-s", str(script)]
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        return float(m[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m[2]]

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
            "requests": int(re.search(r"(\d+) requests in", out)[1]),
            "p50_ms": ms("50"), "p99_ms": ms("99"),
            "non_2xx": int(non2xx[1]) if non2xx else 0,
            "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--work", type=Path, default=Path("/tmp/recommender-bench"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--baseline", type=Path,
                        help="also serve the code checked out here (e.g. a git worktree of an "
                             "earlier commit), same operator, same run")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("needs wrk (apt-get install wrk)")
        return 2
    from _server import Server
    from scale import build_operator

    if args.quick:
        args.customers, args.products, args.seconds = 2000, 100, 2
    root = args.work / f"op-{args.customers}-{args.products}"
    build_operator(root, customers=args.customers, products=args.products,
                   log=lambda m: print(m, file=sys.stderr))
    codes = [("current", None)] + ([("baseline", args.baseline.resolve())]
                                   if args.baseline else [])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "recommend.lua"
        script.write_text(LUA % {"customers": args.customers})
        for label, code in codes:
            env = {"PYTHONPATH": str(code)} if code else {}
            with Server(root, workers=args.workers, threads=args.threads, env=env,
                        cwd=code) as server:
                wrk(f"{server.base}/healthz", 2, args.connections)  # warm-up
                wrk(server.base, 2, args.connections, script)
                trivial = wrk(f"{server.base}/healthz", args.seconds, args.connections)
                recommend = wrk(server.base, args.seconds, args.connections, script)
            results[label] = {"trivial": trivial, "recommend": recommend,
                              "ratio": recommend["rps"] / trivial["rps"]}
    print(f"gunicorn, {args.workers} workers x {args.threads} threads; wrk 2 threads, "
          f"{args.connections} connections, {args.seconds} s each; {args.customers:,} customers "
          f"x {args.products:,} businesses")
    print(f"{'code':9} {'endpoint':28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} "
          f"{'errors':>7}")
    for label, r in results.items():
        for name, x in (("GET /healthz (trivial)", r["trivial"]),
                        ("POST /v1/recommendations", r["recommend"])):
            print(f"{label:9} {name:28} {x['rps']:9.1f} {x['p50_ms']:8.2f} {x['p99_ms']:8.2f} "
                  f"{x['non_2xx']:8} {x['socket_errors']:7}")
    for label, r in results.items():
        print(f"{label}: recommendations / trivial throughput: {r['ratio']:.1%} "
              f"(target: at least 70%)")
    if args.json:
        args.json.write_text(json.dumps({**results["current"], "runs": results,
                                         "settings": vars(args)}, indent=2, default=str))
    current = results["current"]["recommend"]
    return 0 if current["non_2xx"] == 0 and current["socket_errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
