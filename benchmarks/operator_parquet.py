"""A generated operator streamed to Parquet in the import schema, with bounded memory.

The sample operator's customers, terminals, holdings and events (``recommender.sampledata``,
planted patterns included) plus ``benchmarks/scale.py``'s long tail of synthetic businesses,
generated ``--chunk`` customers at a time, each chunk seeded on its own and written as one
row group of ``customers.parquet``, ``terminals.parquet``, ``holdings.parquet`` and
``events.parquet``: memory follows the chunk, not the customer base. With ``--store``, the
same rows also go into the workspace's ``store.sqlite``, so local training reads exactly
what Spark reads.

    python benchmarks/operator_parquet.py --customers 1000000 --dir /tmp/spark-growth/op-1m --store
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import _unconditioned, tail_catalog  # noqa: E402

from recommender import sampledata  # noqa: E402
from recommender.catalog import Catalog  # noqa: E402
from recommender.context import CHANNEL_IDS  # noqa: E402
from recommender.workspace import Workspace  # noqa: E402

TABLES = ("customers", "terminals", "holdings", "events")
DAY = 86400
MONTHS = 6


def prepare_workspace(root: Path, products: int, seed: int) -> Workspace:
    """The sample workspace files with a catalog of ``products`` businesses; only the
    strategies that learn from customers' histories are trained (no propensity)."""
    ws = Workspace(root)
    sampledata.write_workspace_files(root)
    base = ws.catalog_path.read_text(encoding="utf-8")
    if "tail00000" not in base:
        n_tail = max(0, products - base.count("[[product]]"))
        ws.catalog_path.write_text(base + "\n" + tail_catalog(n_tail, seed), encoding="utf-8")
    config = ws.config_path.read_text(encoding="utf-8")
    if "[targeting]" not in config:
        ws.config_path.write_text(config + "\n[targeting]\nstrategies = []\n", encoding="utf-8")
    return ws


def _tail_rows(catalog: Catalog, first: int, n: int, n_tail: int, seed: int, chunk: int
               ) -> tuple[list[tuple], list[tuple]]:
    """``scale._add_tail`` for customers ``first`` to ``first + n - 1``: holdings and orders
    of unconditioned tail businesses, Zipf-popular."""
    if n_tail == 0:
        return [], []
    rng = np.random.default_rng([seed + 1, chunk])
    free = np.array([i for i in range(n_tail) if _unconditioned(catalog, f"tail{i:05d}")])
    weights = 1.0 / np.arange(1, len(free) + 1) ** 1.1
    weights /= weights.sum()
    count = rng.poisson(3.0, n)
    who = np.repeat(np.arange(n), count)
    what = free[rng.choice(len(free), len(who), p=weights)]
    pairs = np.unique(who.astype(np.int64) * n_tail + what)
    who, what = np.divmod(pairs, n_tail)
    ids = np.array([f"C{first + i:07d}" for i in range(n)], dtype=object)
    names = np.array([f"tail{i:05d}" for i in range(n_tail)], dtype=object)
    ts = sampledata.DEFAULT_END - rng.integers(0, 180 * DAY, len(who))
    channel = np.array(CHANNEL_IDS, dtype=object)[rng.choice(2, len(who))]
    held = rng.random(len(who)) < 0.6
    holdings = list(zip(ids[who[held]], names[what[held]], (ts[held] - DAY).tolist(),
                        strict=True))
    events = list(zip(ts.tolist(), ids[who], names[what], channel, ["success"] * len(who),
                      [None] * len(who), strict=True))
    return holdings, events


def _arrow(table: str, rows: list[tuple]) -> Any:
    """Store rows of ``table`` as an Arrow table in the import schema."""
    import pyarrow as pa

    columns = list(zip(*rows, strict=True)) if rows else None
    if table == "customers":
        names = ("id", "value_tier", "persona", "lifecycle", "tenure_months", "vip_level",
                 "tags")
        out = {name: pa.array(columns[i] if columns else [], pa.int32() if i in (4, 5) else
                              pa.string()) for i, name in enumerate(names)}
        values = [json.loads(text) if text else {} for text in (columns[7] if columns else [])]
        for name, kind in sampledata.ATTRIBUTE_KINDS.items():
            out[name] = pa.array([v.get(name) for v in values],
                                 pa.float64() if kind == "numeric" else pa.string())
        return pa.table(out)
    types = {"terminals": (("customer_id", pa.string()), ("network", pa.string()),
                           ("smartphone", pa.bool_()), ("os", pa.string()),
                           ("model", pa.string())),
             "holdings": (("customer_id", pa.string()), ("product_id", pa.string()),
                          ("since", pa.int64())),
             "events": (("ts", pa.int64()), ("customer_id", pa.string()),
                        ("product_id", pa.string()), ("channel", pa.string()),
                        ("kind", pa.string()), ("failure_reason", pa.string()))}[table]
    return pa.table({name: pa.array([bool(v) for v in columns[i]] if columns and
                                     kind == pa.bool_() else (columns[i] if columns else []),
                                     kind) for i, (name, kind) in enumerate(types)})


def generate(root: Path, *, customers: int, products: int = 2000, seed: int = 7,
             chunk: int = 50_000, store: bool = False, log: Any = print) -> dict[str, int]:
    """Write the tables under ``root/tables`` (and, with ``store``, ``root/store.sqlite``);
    returns the rows per table. A folder already holding them is kept as it is."""
    import pyarrow.parquet as pq

    ws = prepare_workspace(root, products, seed)
    folder = root / "tables"
    done = root / "tables.json"
    if done.exists() and (not store or ws.store_path.exists()):
        return json.loads(done.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    catalog = ws.catalog()
    n_tail = sum(1 for p in catalog.ids if p.startswith("tail"))
    writers = {t: None for t in TABLES}
    counts = dict.fromkeys(TABLES, 0)
    end = sampledata.DEFAULT_END
    seeds = np.random.SeedSequence(seed).spawn((customers + chunk - 1) // chunk)
    started = time.perf_counter()
    target = ws.store() if store else None
    try:
        if target is not None:
            target.set_attribute_kinds(sampledata.ATTRIBUTE_KINDS)
        for i, chunk_seed in enumerate(seeds):
            first = i * chunk
            size = min(chunk, customers - first)
            rows = sampledata._chunk(catalog, np.random.default_rng(chunk_seed), first, size,
                                     end - MONTHS * 30 * DAY, end)
            tail_holdings, tail_events = _tail_rows(catalog, first, size, n_tail, seed, i)
            rows["holdings"] += tail_holdings
            rows["events"] += tail_events
            for table in TABLES:
                arrow = _arrow(table, rows[table])
                if writers[table] is None:
                    writers[table] = pq.ParquetWriter(folder / f"{table}.parquet", arrow.schema)
                writers[table].write_table(arrow)
                counts[table] += len(rows[table])
            if target is not None:
                with target.transaction() as tx:
                    for table in TABLES:
                        target.add_rows(table, rows[table], db=tx)
            del rows
            log(f"  {first + size:,} of {customers:,} customers "
                f"({time.perf_counter() - started:.0f} s)")
    finally:
        for writer in writers.values():
            if writer is not None:
                writer.close()
        if target is not None:
            target.close()
    done.write_text(json.dumps(counts))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, required=True)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chunk", type=int, default=50_000)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--store", action="store_true",
                        help="Also write the rows into the workspace's store.sqlite.")
    args = parser.parse_args()
    counts = generate(args.dir, customers=args.customers, products=args.products,
                      seed=args.seed, chunk=args.chunk, store=args.store)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
