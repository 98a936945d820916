"""The contact policy's cost on the request path, on a store of 1M customers and 10M feedback
events: the indexed read of a customer's refusals, the contact-log write of a capped request,
and whole recommendations with the policy off, with suppression (the default) and with caps.

    python benchmarks/bench_contact_policy.py                   # 1M customers, 10M events
    python benchmarks/bench_contact_policy.py --quick           # CI smoke test

The feedback store is generated once (seeded, streamed in chunks) and cached in --work. The
recommendations use the sample operator's catalog and models with the big store behind them;
each request names a random customer of the big store with inline attributes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))

ACTIONS = np.array(["impression", "impression", "impression", "click", "accept", "dismiss"])
CHANNELS = np.array(["app", "web", "hotline", "sms", "wechat", "store"])


def build_store(path: Path, customers: int, events: int, products: list[str], seed: int,
                now: int) -> float:
    """A store whose feedback log has ``events`` rows over ``customers`` customers and the
    last 90 days; returns seconds taken."""
    from recommender.store import Store

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    with Store(path) as store:
        db = store.db
        db.execute("DROP INDEX IF EXISTS feedback_by_customer")
        chunk = 500_000
        for start in range(0, events, chunk):
            n = min(chunk, events - start)
            cust = rng.integers(0, customers, n)
            rows = zip(
                (f"e{start + i}" for i in range(n)),
                (now - rng.integers(0, 90 * 86400, n)).tolist(),
                ("bench" for _ in range(n)),
                np.array(products)[rng.integers(0, len(products), n)].tolist(),
                ACTIONS[rng.integers(0, len(ACTIONS), n)].tolist(),
                (f"C{c:07d}" for c in cust.tolist()),
                CHANNELS[rng.integers(0, len(CHANNELS), n)].tolist(),
                ("query" for _ in range(n)), ("" for _ in range(n)), strict=True)
            with store.transaction() as tx:
                tx.executemany("INSERT INTO feedback (event_id, ts, request_id, product_id, "
                               "action, customer_id, channel, moment, strategies) "
                               "VALUES (?,?,?,?,?,?,?,?,?)", rows)
            print(f"  {start + n:,} events", file=sys.stderr)
        db.execute("CREATE INDEX IF NOT EXISTS feedback_by_customer "
                    "ON feedback (customer_id, ts, action, product_id, channel)")
        db.execute("ANALYZE")
    return time.perf_counter() - started


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered), 4),
            "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir())
                        / "recommender-bench")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="10k customers, 100k events")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.customers, args.events, args.requests = 10_000, 100_000, 200

    import dataclasses

    from _server import sample_workspace

    from recommender import RecommendationRequest
    from recommender.contact_policy import ContactPolicy
    from recommender.store import Store
    from recommender.workspace import Workspace

    args.work.mkdir(parents=True, exist_ok=True)
    sample = sample_workspace(args.work / "sample-operator")
    catalog = Workspace(sample).catalog()
    products = [p.id for p in catalog if p.orderable]
    now = 1_800_000_000
    path = args.work / f"feedback-{args.customers}-{args.events}.sqlite"
    build_s = None
    if not path.exists():
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        build_s = build_store(partial, args.customers, args.events, products, args.seed, now)
        partial.rename(path)
    rng = np.random.default_rng(args.seed)
    customers = [f"C{c:07d}" for c in rng.integers(0, args.customers, args.requests).tolist()]
    rows: list[dict] = []

    with Store(path) as store:
        policy = ContactPolicy()
        read = []
        for customer in customers:
            t0 = time.perf_counter()
            store.recent_dismissals(customer, now - policy.lookback_seconds)
            read.append((time.perf_counter() - t0) * 1000)
        rows.append({"step": "read a customer's refusals (one indexed query)",
                     **percentiles(read)})
        capped = ContactPolicy(max_per_channel_day=5, max_per_business_week=2)
        write = []
        for i, customer in enumerate(customers):
            t0 = time.perf_counter()
            store.record_contacts(customer, "app", now, f"r{i}", lambda c, p=capped: p.allowed(
                "app", products[:3], c, now=now)[0])
            write.append((time.perf_counter() - t0) * 1000)
        rows.append({"step": "contact log: count and record, one transaction (caps on)",
                     **percentiles(write)})
        plan = store.db.execute(
            "EXPLAIN QUERY PLAN SELECT ts, product_id, action, channel FROM feedback "
            "WHERE customer_id = ? AND ts >= ? AND action = 'dismiss' ORDER BY ts",
            ("C0000001", 0)).fetchall()
        counts = store.db.execute("SELECT COUNT(*), COUNT(DISTINCT customer_id) FROM feedback"
                                  ).fetchone()

    variants = {
        "policy off": ContactPolicy(dismissals=0, do_not_disturb_tags=frozenset()),
        "suppression (default)": ContactPolicy(),
        "suppression + caps": ContactPolicy(max_per_channel_day=5, max_per_business_week=2),
    }
    base = None
    for name, variant in variants.items():
        engine = Workspace(sample).engine(require_models=True, store=Store(path))
        engine.config = dataclasses.replace(engine.config, contact_policy=variant)
        engine.clock = lambda: float(now)
        times = []
        for i, customer in enumerate(customers):
            request = RecommendationRequest(
                customer_id=customer, channel="app", moment="query",
                customer={"value_tier": "mid", "lifecycle": "steady", "tenure_months": 24},
                terminal={"network": "5G", "smartphone": True})
            t0 = time.perf_counter()
            engine.recommend(request)
            if i >= 20:  # warm-up
                times.append((time.perf_counter() - t0) * 1000)
        engine.close()
        stats = percentiles(times)
        base = base or stats["p50_ms"]
        rows.append({"step": f"recommendation, {name}", **stats,
                     "p50_vs_off": round(stats["p50_ms"] / base, 3)})

    print(f"store: {counts[0]:,} feedback events, {counts[1]:,} customers with feedback"
          + (f" (built in {build_s:.0f} s)" if build_s else ""))
    print("query plan:", "; ".join(r[-1] for r in plan))
    width = max(len(r["step"]) for r in rows)
    print(f"{'step':{width}}  p50 ms   p99 ms   p50 vs off")
    for r in rows:
        print(f"{r['step']:{width}}  {r['p50_ms']:7.3f}  {r['p99_ms']:7.3f}  "
              f"{r.get('p50_vs_off', '')}")
    if args.json:
        args.json.write_text(json.dumps({"events": counts[0], "customers": counts[1],
                                         "plan": [r[-1] for r in plan], "rows": rows},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
