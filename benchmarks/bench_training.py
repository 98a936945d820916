"""Training cost and how it grows: a full ``recommender train`` by number of customers (reading
the store, each strategy's fit, writing the model), and CF fitting by thread count.

    python benchmarks/bench_training.py                              # 10k and 100k customers
    python benchmarks/bench_training.py --customers 10000,100000,1000000   # the published run
    python benchmarks/bench_training.py --quick

Mining against mlxtend and pyfim is benchmarks/bench_mining.py.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", default="10000,100000")
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--threads", default="1,2", help="CF fitting threads to compare")
    parser.add_argument("--work", type=Path, default=Path("/tmp/recommender-bench"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from scale import build_operator

    from recommender.models import read_manifest
    from recommender.training import TrainingData
    from recommender.workspace import Workspace

    sizes = [int(c) for c in args.customers.split(",")]
    products = args.products
    if args.quick:
        sizes, products = [2000], 100
    rows, cf_rows = [], []
    for customers in sizes:
        root = args.work / f"op-{customers}-{products}"
        build_operator(root, customers=customers, products=products, train=False,
                       log=lambda m: print(m, file=sys.stderr))
        ws = Workspace(root)
        shutil.rmtree(ws.models_path, ignore_errors=True)
        t0 = time.perf_counter()
        model_dir = ws.train()
        total = time.perf_counter() - t0
        manifest = read_manifest(model_dir, verify=False)
        fits = {name: e["fit_seconds"] for name, e in manifest["strategies"].items()}
        rows.append({"customers": customers, "products": products, "events":
                     manifest["data"]["events"], "total_s": round(total, 1), **fits})
        print(f"trained {customers:,} customers in {total:.1f} s", file=sys.stderr)
        with ws.store() as store:
            data = TrainingData.from_store(store, ws.catalog())
        from plugins.cf import CFStrategy

        for threads in [int(t) for t in args.threads.split(",")]:
            strategy = CFStrategy(data.catalog, num_threads=threads)
            t0 = time.perf_counter()
            strategy.fit(data)
            cf_rows.append({"customers": customers, "threads": threads,
                            "fit_s": round(time.perf_counter() - t0, 2)})
    names = sorted({k for r in rows for k in r} - {"customers", "products", "events",
                                                    "total_s"})
    print(f"{'customers':>10} {'events':>11} {'train s':>8} " + " ".join(f"{n:>16}"
                                                                          for n in names))
    for r in rows:
        print(f"{r['customers']:>10,} {r['events']:>11,} {r['total_s']:>8.1f} " + " ".join(
            f"{r.get(n, 0):>16.2f}" for n in names))
    print("\nCF (ALS) fit by threads")
    for r in cf_rows:
        print(f"{r['customers']:>10,} customers, {r['threads']} thread(s): {r['fit_s']:.2f} s")
    if args.json:
        args.json.write_text(json.dumps({"train": rows, "cf_threads": cf_rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
