"""Outbound at scale: ``target`` and ``batch`` over 10k to 1M customers and 2,000 businesses.

A synthetic operator (seeded): 2,000 businesses in 40 categories with conflicts,
prerequisites, upgrades, terminal and segment conditions; customers with four attributes
(two numeric, two categorical), a terminal and about five holdings each; a feedback log with
refusals, and do-not-disturb tags. The propensity models are trained once, on the smallest
store, and copied to the others (a model depends on the catalog, not on the customers).

Each measurement runs in its own process, so its peak RSS is its own:

- ``target``: the 1,000 best customers for 5 businesses, page by page;
- ``batch``: the top 3 offers of every customer on the SMS channel, to Parquet;
- ``peer``: the inbound engine, one ``Engine.recommend`` per customer (the propensity
  strategy alone in the blend), timed on 300 customers: what scoring a base one request at a
  time would cost, extrapolated linearly.

    python benchmarks/bench_outbound.py                       # 10k, 100k, 1M customers
    python benchmarks/bench_outbound.py --sizes 10000,100000  # a subset
    python benchmarks/bench_outbound.py --quick               # CI smoke test (2k, 5k)

Stores are cached in --work (a 1M store is about 1 GB and takes a few minutes to build).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CATEGORIES = 40
REGIONS = ("north", "south", "east", "west", "central")
PLANS = ("basic", "plus", "max", "family")
DAY = 86400
#: The benchmark's workspace configuration: the propensity strategy alone, negatives sampled
#: down to 2,000 per business so that 2,000 models train in minutes on two cores.
CONFIG = """[blend.query]
propensity = 1.0
[targeting]
strategies = ["propensity"]
[strategies.propensity]
max_negatives = 2000
"""


def catalog_toml(n: int, seed: int) -> str:
    """``n`` businesses: every 50th a plan (conflicting with the other plans of its block),
    every 10th upgrading the one before, every 7th needing the one before, some needing 5G,
    a smartphone or a value tier, every 25th a service, every 40th app-only."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        entry = [
            f'id = "b{i:04d}"',
            f'name = "Business {i}"',
            f'category = "c{i % CATEGORIES:02d}"',
            f"price = {rng.integers(1, 300)}",
        ]
        if i % 25 == 24:
            entry.append('kind = "service"')
        if i % 40 == 39:
            entry.append('channels = ["app"]')
        if i % 50 == 0 and i:
            entry.append(f'conflicts = ["b{i - 50:04d}"]')
        elif i % 10 == 9:
            entry.append(f'upgrades = ["b{i - 1:04d}"]')
        elif i % 7 == 6:
            entry.append(f'requires = ["b{i - 1:04d}"]')
        conditions = []
        if i % 11 == 3:
            conditions.append('min_network = "5G"')
        if i % 13 == 5:
            conditions.append("smartphone = true")
        if i % 17 == 8:
            conditions.append('value_tiers = ["high", "mid"]')
        if conditions:
            entry.append("eligibility = { " + ", ".join(conditions) + " }")
        lines.append("[[product]]\n" + "\n".join(entry))
    return "\n\n".join(lines) + "\n"


def build_store(path: Path, customers: int, n_products: int, seed: int, now: int) -> float:
    """A store of ``customers`` synthetic customers; returns seconds taken."""
    from recommender.attributes import encode
    from recommender.store import Store

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    tiers = np.array(["high", "mid", "low"], dtype=object)
    lifecycles = np.array(["new", "steady", "open_request", "resolved"], dtype=object)
    networks = np.array(["3G", "4G", "5G"], dtype=object)
    oses = np.array(["android", "ios", "harmonyos"], dtype=object)
    popularity = 1.0 / np.arange(1, n_products + 1) ** 0.8
    popularity /= popularity.sum()
    chunk = 100_000
    with Store(path) as store:
        store.set_attribute_kinds(
            {"age": "numeric", "arpu": "numeric", "region": "categorical", "plan": "categorical"}
        )
        db = store.db
        db.execute("PRAGMA synchronous=OFF")
        for first in range(0, customers, chunk):
            n = min(chunk, customers - first)
            ids = np.array([f"U{i:08d}" for i in range(first, first + n)], dtype=object)
            tier = rng.choice(3, n, p=[0.2, 0.5, 0.3])
            age = rng.integers(18, 80, n)
            arpu = np.round(np.array([150.0, 80.0, 35.0])[tier] * rng.lognormal(0, 0.3, n), 1)
            region = rng.integers(0, len(REGIONS), n)
            plan = rng.integers(0, len(PLANS), n)
            attributes = [
                encode({"age": float(a), "arpu": float(m), "region": REGIONS[r], "plan": PLANS[p]})
                for a, m, r, p in zip(
                    age.tolist(), arpu.tolist(), region.tolist(), plan.tolist(), strict=True
                )
            ]
            tags = np.where(rng.random(n) < 0.02, "dnd", "")
            customers_rows = zip(
                ids,
                tiers[tier],
                [None] * n,
                lifecycles[rng.choice(4, n, p=[0.1, 0.75, 0.08, 0.07])],
                rng.integers(0, 180, n).tolist(),
                [0] * n,
                tags.tolist(),
                attributes,
                strict=True,
            )
            network = rng.choice(3, n, p=[0.1, 0.5, 0.4])
            terminal_rows = zip(
                ids,
                networks[network],
                (rng.random(n) < 0.9).astype(int).tolist(),
                oses[rng.integers(0, 3, n)],
                [None] * n,
                strict=True,
            )
            count = rng.poisson(5, n)
            who = np.repeat(np.arange(n), count)
            what = rng.choice(n_products, len(who), p=popularity)
            # Regions and plans shift what customers hold, so attributes carry signal.
            what = (what + region[who] * 3 + (plan[who] == 3) * 7) % n_products
            holding_rows = zip(
                ids[who], [f"b{j:04d}" for j in what.tolist()], [None] * len(who), strict=True
            )
            dismissed = rng.random(n) < 0.01
            d_who = np.repeat(np.nonzero(dismissed)[0], 2)
            d_what = np.repeat(rng.choice(n_products, int(dismissed.sum())), 2)
            feedback_rows = [
                (
                    f"fb{first}-{k}",
                    now - int(rng.integers(1, 20)) * DAY,
                    "r",
                    f"b{d_what[k]:04d}",
                    "dismiss",
                    ids[d_who[k]],
                    "sms",
                    "query",
                    "propensity",
                    None,
                    None,
                )
                for k in range(len(d_who))
            ]
            with store.transaction() as tx:
                store.add_rows("customers", customers_rows, db=tx)
                store.add_rows("terminals", terminal_rows, db=tx)
                store.add_rows("holdings", holding_rows, db=tx)
                store.add_rows("feedback", feedback_rows, db=tx)
    return time.perf_counter() - started


def prepare(work: Path, sizes: list[int], n_products: int, seed: int) -> dict[int, Path]:
    """One workspace per size (cached), all with the models trained on the smallest."""
    from recommender.workspace import Workspace

    work.mkdir(parents=True, exist_ok=True)
    catalog = catalog_toml(n_products, seed)
    now = int(time.time())
    roots = {}
    for size in sizes:
        root = work / f"n{size}-p{n_products}"
        roots[size] = root
        if (root / "store.sqlite").exists() and (root / "catalog.toml").read_text() == catalog:
            (root / "config.toml").write_text(CONFIG)
            continue
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        (root / "catalog.toml").write_text(catalog)
        (root / "config.toml").write_text(CONFIG)
        seconds = build_store(root / "store.sqlite", size, n_products, seed + size, now)
        print(f"  built {size:,} customers in {seconds:.0f} s", file=sys.stderr, flush=True)
    smallest = Workspace(roots[min(sizes)])
    trained = smallest.root / "models" / ".bench-config.toml"  # what the models were trained with
    if (
        not (smallest.models_path / "CURRENT").exists()
        or not trained.exists()
        or trained.read_text() != CONFIG
    ):
        t0 = time.perf_counter()
        shutil.rmtree(smallest.models_path, ignore_errors=True)
        smallest.train(plugin_manager=_propensity_only())
        trained.write_text(CONFIG)
        print(
            f"  trained on {min(sizes):,} customers in {time.perf_counter() - t0:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    for root in roots.values():
        if root != smallest.root:
            shutil.rmtree(root / "models", ignore_errors=True)
            shutil.copytree(smallest.models_path, root / "models")
    return roots


def _propensity_only():  # noqa: ANN202
    from recommender.plugin_manager import make_plugin_manager

    return make_plugin_manager(
        load_entry_points=False, allow=["eligibility", "store_provider", "channels", "propensity"]
    )


def child(what: str, root: Path, out: Path) -> dict:
    """One measurement, in this process: seconds, rows and peak RSS."""
    from recommender.batch import batch
    from recommender.targeting import target
    from recommender.workspace import Workspace

    ws = Workspace(root)
    started = time.perf_counter()
    with ws.engine(require_models=True, plugin_manager=_propensity_only()) as engine:
        scorer = engine.strategies["propensity"]
        args = (engine.store, engine.catalog, engine.config, scorer)
        loaded = time.perf_counter()
        if what == "target":
            n = len(engine.catalog)
            chosen = [f"b{j:04d}" for j in (1, 12, n // 20, n // 4, 3 * n // 4)]
            audiences = target(*args, chosen, top=1000)
            rows = sum(len(a.customers) for a in audiences)
            customers = audiences[0].scanned
        elif what == "batch":
            result = batch(*args, out, channel="sms", k=3)
            rows, customers = result.offers, result.customers
        else:
            from recommender import RecommendationRequest

            ids = engine.store.customer_ids(limit=300)
            for cid in ids:
                engine.recommend(
                    RecommendationRequest(customer_id=cid, channel="sms", moment="query", k=3)
                )
            rows, customers = len(ids), len(ids)
    done = time.perf_counter()
    return {
        "what": what,
        "customers": customers,
        "rows": rows,
        "load_s": round(loaded - started, 2),
        "seconds": round(done - loaded, 2),
        "rss_peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def measure(what: str, root: Path, work: Path) -> dict:
    out = work / "batch.parquet"
    result = subprocess.run(
        [sys.executable, __file__, "--child", what, "--root", str(root), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    out.unlink(missing_ok=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-outbound"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="2k and 5k customers, 200 businesses")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.root, args.out)))
        return 0
    sizes = [2000, 5000] if args.quick else [int(s) for s in args.sizes.split(",")]
    n_products = 200 if args.quick else args.products
    roots = prepare(args.work, sizes, n_products, args.seed)
    peer = measure("peer", roots[min(sizes)], args.work)
    per_request = peer["seconds"] / peer["customers"]
    results = []
    print(
        f"\n{n_products:,} businesses; peer: Engine.recommend one customer at a time, "
        f"{per_request * 1000:.1f} ms per customer ({peer['customers']} timed)\n"
    )
    print(
        "| customers | command | seconds | customers/s | rows | peak RSS MiB | "
        "peer, extrapolated (s) | speed-up |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for size in sizes:
        for what in ("target", "batch"):
            r = measure(what, roots[size], args.work)
            r["peer_s"] = round(per_request * r["customers"], 1)
            results.append(r)
            print(
                f"| {r['customers']:,} | {what} | {r['seconds']:.1f} | "
                f"{r['customers'] / max(r['seconds'], 1e-9):,.0f} | {r['rows']:,} | "
                f"{r['rss_peak_mib']:,} | {r['peer_s']:,.0f} | "
                f"{r['peer_s'] / max(r['seconds'], 1e-9):,.0f}x |",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps({"peer": peer, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
