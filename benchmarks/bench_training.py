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
    rows, cf_rows, read_rows = [], [], []
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
            t0 = time.perf_counter()
            data = TrainingData.from_store(store, ws.catalog())
            read_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            n_rows = _row_by_row(store, ws.catalog())
            read_rows.append({"customers": customers, "events": len(data.events),
                              "bulk_s": round(read_s, 2),
                              "row_by_row_s": round(time.perf_counter() - t0, 2)})
            assert n_rows == len(data.events)
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
    print("\nReading the store into arrays (TrainingData.from_store) against a row-by-row read")
    for r in read_rows:
        print(f"{r['customers']:>10,} customers, {r['events']:>11,} events: bulk "
              f"{r['bulk_s']:.2f} s, row by row {r['row_by_row_s']:.2f} s "
              f"({r['row_by_row_s'] / max(r['bulk_s'], 1e-9):.1f}x)")
    print("\nCF (ALS) fit by threads")
    for r in cf_rows:
        print(f"{r['customers']:>10,} customers, {r['threads']} thread(s): {r['fit_s']:.2f} s")
    if args.json:
        args.json.write_text(json.dumps({"train": rows, "cf_threads": cf_rows,
                                         "store_read": read_rows}, indent=2))
    return 0


def _row_by_row(store, catalog) -> int:
    """The peer: customers, holdings and events fetched as tuples and mapped one row at a
    time in Python (how the store was read before the bulk read); returns the events kept."""
    import numpy as np

    db = store.db
    position = {r[0]: i for i, r in enumerate(db.execute("SELECT id FROM customers ORDER BY id"))}
    index = catalog.index
    held = [(position.get(c), index.get(p)) for c, p in db.execute(
        "SELECT customer_id, product_id FROM holdings")]
    channels = {c: i for i, c in enumerate(("app", "web", "hotline", "sms", "wechat", "store"))}
    kinds = {k: i for i, k in enumerate(("query", "transaction", "success", "failure"))}
    ev = [(position.get(c), index.get(p), channels.get(ch), kinds.get(k), ts)
          for ts, c, p, ch, k in db.execute(
              "SELECT ts, customer_id, product_id, channel, kind FROM events ORDER BY ts, id")]
    ev = [e for e in ev if None not in e]
    np.array(ev, dtype=np.int64).reshape(-1, 5)
    return len(ev) if held is not None else 0


if __name__ == "__main__":
    sys.exit(main())
