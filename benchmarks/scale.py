"""Scaled sample operators for the benchmarks: N customers, a catalog of M businesses.

The seeded sample operator (35 businesses, planted patterns) is extended with M - 35
synthetic long-tail businesses: categories, channel subsets, a share needing 5G, a smartphone or
a value tier, conflicting pairs and prerequisites, so eligibility does real work; customers
hold and order them with a Zipf-like popularity, so every strategy sees them.

    python benchmarks/scale.py --customers 100000 --products 2000 --dir /tmp/op-100k-2000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from recommender import sampledata
from recommender.context import CHANNEL_IDS
from recommender.workspace import Workspace

CATEGORIES = ("data", "voice", "content", "vas", "family", "international", "device")
TIERS = ("high", "mid", "low")
TAIL_PRODUCTS_PER_CUSTOMER = 3.0  # mean, Poisson


def tail_catalog(n: int, seed: int) -> str:
    """TOML for ``n`` synthetic businesses ``tail0000``...; conditions on a fixed share."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        channels = [c for c in CHANNEL_IDS if c == "app" or rng.random() < 0.6]
        lines = [
            "[[product]]", f'id = "tail{i:05d}"', f'name = "长尾业务{i:05d}"',
            f'name_en = "Tail business {i}"',
            f'category = "{CATEGORIES[i % len(CATEGORIES)]}"',
            f"price = {float(rng.integers(1, 200))}",
            "channels = [" + ", ".join(f'"{c}"' for c in channels) + "]",
        ]
        eligibility = []
        if rng.random() < 0.2:
            eligibility.append('min_network = "5G"')
        if rng.random() < 0.1:
            eligibility.append("smartphone = true")
        if rng.random() < 0.1:
            eligibility.append(f'value_tiers = ["{TIERS[int(rng.integers(0, 3))]}"]')
        if eligibility:
            lines.append("eligibility = { " + ", ".join(eligibility) + " }")
        if i % 10 == 1:
            lines.append(f'conflicts = ["tail{i - 1:05d}"]')
        if i % 20 == 7:
            lines.append(f'requires = ["tail{i - 7:05d}"]')
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def build_operator(root: Path, *, customers: int, products: int, seed: int = 7,
                   train: bool = True, log=print) -> Workspace:
    """Create (or reuse, if already there) a scaled operator in ``root``."""
    ws = Workspace(root)
    if (ws.models_path / "CURRENT").exists() or (not train and ws.store_path.exists()):
        return ws
    root.mkdir(parents=True, exist_ok=True)
    sampledata.write_workspace_files(root)
    base = ws.catalog_path.read_text(encoding="utf-8")
    n_tail = max(0, products - base.count("[[product]]"))
    ws.catalog_path.write_text(base + "\n" + tail_catalog(n_tail, seed), encoding="utf-8")
    catalog = ws.catalog()
    t0 = time.perf_counter()
    with ws.store() as store:
        sampledata.generate(store, catalog, customers=customers, seed=seed)
        _add_tail(store, catalog, customers, n_tail, seed)
    log(f"  generated {customers:,} customers x {len(catalog):,} businesses in "
        f"{time.perf_counter() - t0:.1f} s")
    if train:
        t0 = time.perf_counter()
        ws.train()
        log(f"  trained in {time.perf_counter() - t0:.1f} s")
    return ws


def _add_tail(store, catalog, customers: int, n_tail: int, seed: int) -> None:
    """Holdings and orders of unconditioned tail businesses, Zipf-popular, vectorised."""
    if n_tail == 0:
        return
    rng = np.random.default_rng(seed + 1)
    free = np.array([i for i in range(n_tail) if _unconditioned(catalog, f"tail{i:05d}")])
    weights = 1.0 / np.arange(1, len(free) + 1) ** 1.1
    weights /= weights.sum()
    count = rng.poisson(TAIL_PRODUCTS_PER_CUSTOMER, customers)
    who = np.repeat(np.arange(customers), count)
    what = free[rng.choice(len(free), len(who), p=weights)]
    pairs = np.unique(who.astype(np.int64) * n_tail + what)
    who, what = np.divmod(pairs, n_tail)
    ids = np.array([f"C{i:07d}" for i in range(customers)], dtype=object)
    names = np.array([f"tail{i:05d}" for i in range(n_tail)], dtype=object)
    end = sampledata.DEFAULT_END
    ts = end - rng.integers(0, 180 * 86400, len(who))
    channel = np.array(CHANNEL_IDS, dtype=object)[rng.choice(2, len(who))]
    held = rng.random(len(who)) < 0.6
    with store.transaction() as tx:
        store.add_rows("holdings", zip(ids[who[held]], names[what[held]],
                                       (ts[held] - 86400).tolist(), strict=True), db=tx)
        store.add_rows("events", zip(ts.tolist(), ids[who], names[what], channel,
                                     ["success"] * len(who), [None] * len(who), strict=True),
                       db=tx)


def _unconditioned(catalog, product_id: str) -> bool:
    p = catalog[product_id]
    e = p.eligibility
    return not (p.requires or p.conflicts or e.min_network or e.smartphone or e.value_tiers
                or len(p.channels) < len(CHANNEL_IDS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--no-train", action="store_true")
    args = parser.parse_args()
    build_operator(args.dir, customers=args.customers, products=args.products, seed=args.seed,
                   train=not args.no_train)


if __name__ == "__main__":
    main()
