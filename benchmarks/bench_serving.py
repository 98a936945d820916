"""Engine latency and serving memory by catalog size: p50/p99 of one recommendation per moment,
all built-in strategies on, in process; peak RSS of a serving process.

    python benchmarks/bench_serving.py                         # 100k customers; 100/2,000/10,000
    python benchmarks/bench_serving.py --customers 1000000     # the published figures
    python benchmarks/bench_serving.py --quick                 # CI smoke test
    git worktree add /tmp/baseline REV && \
        python benchmarks/bench_serving.py --baseline /tmp/baseline   # before/after, one run

Each size is measured in a fresh process (so its peak RSS is its own), after a warm-up, over
random stored customers. Operators are built once by benchmarks/scale.py and cached in --work.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

MOMENTS = {
    "query": [None, "balance_query", "bill_query"],
    "transaction": ["plan_5g", "intl_roaming", "data_5gb", "broadband"],
    "success": ["plan_5g", "intl_roaming", "upgrade_5g", "cloud_storage"],
    "failure": ["plan_5g_newsim", "intl_ld_pack", "broadband_speedup"],
}


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the
    parent that built the operator)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(root: Path, requests: int, seed: int, isolate_all: bool = False) -> dict:
    """In this process: load the engine, warm up, time ``requests`` calls per moment.
    ``isolate_all``: with ``[engine] fast_strategy_ms = 0``, every plugin call in the pool."""
    import dataclasses

    import numpy as np

    from recommender import RecommendationRequest
    from recommender.workspace import Workspace

    started = time.perf_counter()
    workspace = Workspace(root)
    config = workspace.config()
    if isolate_all:
        config = dataclasses.replace(config, engine=dataclasses.replace(
            config.engine, fast_strategy_ms=0.0))
    engine = workspace.engine(require_models=True, config=config)
    load_s = time.perf_counter() - started
    try:
        from api.serving import settle_heap
    except ImportError:  # a baseline from before workers froze their heap
        pass
    else:
        settle_heap()  # as a serving worker does once booted
    rss_loaded = peak_rss_mib()
    # A random sample of customers, drawn in SQL: a list of every id would itself be ~65 MB at
    # a million customers and hide whether the engine's memory grows with them.
    ids = [r[0] for r in engine.store.db.execute(
        "SELECT id FROM customers ORDER BY random() LIMIT ?", (4 * requests,))]
    n_customers = engine.store.count("customers")
    rng = np.random.default_rng(seed)
    out = {"products": len(engine.catalog), "customers": n_customers,
           "load_s": round(load_s, 2),
           "rss_loaded_mib": round(rss_loaded, 1), "moments": {}}
    for moment, products in MOMENTS.items():
        reqs = [RecommendationRequest(
            str(ids[int(rng.integers(len(ids)))]), "app", moment,
            product=products[int(rng.integers(len(products)))],
            failure_reason="not_eligible" if moment == "failure" else None)
            for _ in range(requests)]
        for r in reqs[:100]:
            engine.recommend(r)
        times = []
        parts: dict[str, list[float]] = {}
        cpu = time.process_time()
        for r in reqs:
            t0 = time.perf_counter()
            result = engine.recommend(r)
            times.append((time.perf_counter() - t0) * 1000)
            for step, ms in result.timings.items():  # the engine's own profile of the request
                parts.setdefault(step, []).append(ms)
        cpu = (time.process_time() - cpu) / len(reqs) * 1000
        times.sort()
        out["moments"][moment] = {"p50_ms": round(statistics.median(times), 3),
                                  "p99_ms": round(times[int(len(times) * 0.99) - 1], 3),
                                  "mean_ms": round(statistics.fmean(times), 3),
                                  "cpu_ms": round(cpu, 3),
                                  "steps_p50_ms": {k: round(statistics.median(v), 3)
                                                   for k, v in parts.items()}}
    out["rss_peak_mib"] = round(peak_rss_mib(), 1)
    engine.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--products", default="100,2000,10000")
    parser.add_argument("--requests", type=int, default=2000, help="per moment")
    parser.add_argument("--memory-customers", default="10000",
                        help="also measure RSS at these customer counts (2,000 businesses)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/recommender-bench"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--baseline", type=Path,
                        help="also measure the code checked out here (e.g. a git worktree of "
                             "an earlier commit), on the same operators, in the same run")
    parser.add_argument("--isolate-all", action="store_true",
                        help="also the current code with fast_strategy_ms = 0 (every plugin "
                             "call handed to the thread pool): what the request thread saves")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.requests, args.seed, args.isolate_all)))
        return 0
    from scale import build_operator

    sizes = [int(p) for p in args.products.split(",")]
    customers, requests = args.customers, args.requests
    memory_customers = [int(c) for c in args.memory_customers.split(",") if c]
    if args.quick:
        sizes, customers, requests, memory_customers = [100], 2000, 100, [500]
    runs = [(customers, p) for p in sizes] + [(c, 2000 if not args.quick else 100)
                                            for c in memory_customers]
    results = []
    for n_customers, n_products in runs:
        root = args.work / f"op-{n_customers}-{n_products}"
        print(f"operator {n_customers:,} customers x {n_products:,} businesses", file=sys.stderr)
        build_operator(root, customers=n_customers, products=n_products, seed=args.seed,
                       log=lambda m: print(m, file=sys.stderr))
        codes = [("current", None, False)] + \
            ([("isolated", None, True)] if args.isolate_all else []) + \
            ([("baseline", args.baseline, False)] if args.baseline else [])
        for label, code, isolate in codes:
            env = dict(os.environ)
            if code is not None:  # the baseline's packages first on the path
                env["PYTHONPATH"] = os.pathsep.join(
                    [str(code.resolve()), *filter(None, [env.get("PYTHONPATH")])])
            child = subprocess.run([sys.executable, __file__, "--child", str(root),
                                    "--requests", str(requests), "--seed", str(args.seed),
                                    *(["--isolate-all"] if isolate else [])],
                                   capture_output=True, text=True, check=True, env=env,
                                   cwd=code or Path.cwd())
            results.append({"code": label,
                            **json.loads(child.stdout.strip().splitlines()[-1])})
    print(f"{'code':>9} {'customers':>10} {'products':>9} " + " ".join(
        f"{m + ' p50':>16} {m + ' p99':>16}" for m in MOMENTS) + f" {'RSS MiB':>8} {'load s':>7}")
    for r in results:
        print(f"{r['code']:>9} {r['customers']:>10,} {r['products']:>9,} " + " ".join(
            f"{r['moments'][m]['p50_ms']:>16.3f} {r['moments'][m]['p99_ms']:>16.3f}"
            for m in MOMENTS) + f" {r['rss_peak_mib']:>8.1f} {r['load_s']:>7.2f}")
    print("\nsteps, median ms per request where the step ran (the engine's timings), and "
          "CPU ms per request (all threads)")
    for r in results:
        for m in MOMENTS:
            row = r["moments"][m]
            print(f"{r['code']:>9} {r['products']:>6,} {m:>11}  cpu {row['cpu_ms']:.3f}  "
                  + "  ".join(f"{k} {v:.3f}" for k, v in row["steps_p50_ms"].items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
