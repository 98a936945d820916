"""What journeys across channels cost on the request path, against their peer in the same run.

    python benchmarks/bench_journeys.py                  # 2,000 customers, 1,000 requests a row
    python benchmarks/bench_journeys.py --requests 200   # quicker
    python benchmarks/bench_journeys.py --quick          # CI smoke test (300 customers)

Each row times one kind of request over random stored customers of the sample operator (seed
7), after a warm-up, in process, and divides its p50 by the peer row's:

- hotline (hand-offs, agent assist, talking points) against the web hall, same moment;
- a transaction whose pre-order check fails (served the alternatives) against one that passes;
- the failure moment with the catalog's alternatives against the same blend without them;
- a Chinese answer against an English one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def build(root: Path, customers: int) -> Any:
    from recommender import sampledata
    from recommender.workspace import Workspace

    ws = Workspace(root)
    if not (root / "models").exists():
        sampledata.write_workspace_files(root)
        with ws.store() as store:
            sampledata.generate(store, ws.catalog(), customers=customers, seed=7)
        ws.train()
    return ws


def timed(engine: Any, requests: list[Any]) -> list[float]:
    out = []
    for request in requests:
        t0 = time.perf_counter()
        engine.recommend(request)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument(
        "--work", type=Path, default=None, help="workspace folder to build once and reuse"
    )
    parser.add_argument("--quick", action="store_true", help="300 customers, 50 requests")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    if args.quick:
        args.customers, args.requests = 300, 50

    import numpy as np

    from recommender import Config, RecommendationRequest

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-journeys-"))
    ws = build(work, args.customers)
    rng = np.random.default_rng(7)
    with ws.store() as store:
        ids = store.customer_ids()
    who = [str(c) for c in rng.choice(ids, args.requests)]

    def requests(**fields: Any) -> list[Any]:
        return [RecommendationRequest(customer_id=c, **fields) for c in who]

    held_5g = {"holdings": ["plan_5g"]}
    rows = [
        (
            "hotline, transaction (hand-offs, assist)",
            requests(channel="hotline", moment="transaction", product="suspend_service"),
            "web, transaction",
            requests(channel="web", moment="transaction", product="suspend_service"),
        ),
        (
            "app, transaction, check fails (alternatives)",
            [
                RecommendationRequest(
                    customer_id=c,
                    channel="app",
                    moment="transaction",
                    product="plan_5g_newsim",
                    customer=held_5g,
                )
                for c in who
            ],
            "app, transaction, check passes",
            requests(channel="app", moment="transaction", product="intl_roaming"),
        ),
        (
            "app, failure, with alternatives",
            requests(channel="app", moment="failure", product="plan_5g"),
            "app, failure, without alternatives",
            None,
        ),
        (
            "app, query, zh-CN",
            requests(channel="app", moment="query", locale="zh-CN"),
            "app, query, en",
            requests(channel="app", moment="query", locale="en"),
        ),
    ]
    print(f"{args.requests} requests a row, {len(ids)} customers (sample operator, seed 7)\n")
    print(f"| {'request':46} | p50 ms | p99 ms | {'peer':36} | p50 ms | p50 ratio |")
    print(f"|{'-' * 48}|-------:|-------:|{'-' * 38}|-------:|----------:|")
    results = []
    for name, ours, peer_name, peer in rows:
        with ws.engine(require_models=True) as engine:
            timed(engine, ours[:50])  # warm-up
            a = timed(engine, ours)
        if peer is None:  # the same requests without the alternatives strategy
            raw = dict(ws.config().raw)
            raw["blend"] = {
                **raw["blend"],
                "failure": {
                    k: v for k, v in raw["blend"]["failure"].items() if k != "alternatives"
                },
            }
            config = Config.from_dict(raw, source="bench", root=ws.root)
            peer = ours
            with ws.engine(require_models=True, config=config) as engine:
                timed(engine, peer[:50])
                b = timed(engine, peer)
        else:
            with ws.engine(require_models=True) as engine:
                timed(engine, peer[:50])
                b = timed(engine, peer)
        p50a, p50b = statistics.median(a), statistics.median(b)
        p99a = float(np.percentile(a, 99))
        print(
            f"| {name:46} | {p50a:6.2f} | {p99a:6.2f} | {peer_name:36} | {p50b:6.2f} | "
            f"{p50a / p50b:9.2f} |"
        )
        results.append(
            {
                "request": name,
                "p50_ms": p50a,
                "p99_ms": p99a,
                "peer": peer_name,
                "peer_p50_ms": p50b,
                "ratio": p50a / p50b,
            }
        )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
