"""Lift at the top of the ranking for ``recommender target`` on a cross-sell data set.

Give it a CSV with one row per customer, attribute columns and a 0/1 (or No/Yes) column
saying who bought the business (the CoIL 2000 "Caravan" insurance data, for one). Each
comparison runs through the project's own path: the rows are written as ``customers.csv``
(every column but the target an attribute) and ``holdings.csv`` (the buyers), imported with
the CSV import, trained with ``Workspace.train`` at default settings, and ranked with
``recommender.targeting.target`` on customers the model has not seen (``--customers FILE``).

Three rankings are compared, in the same folds:

- ``target``: the default (propensity over every attribute);
- ``holdings-only``: propensity restricted to the columns of what the customer already holds
  (``--holding-columns``, the P*/A* product-ownership counts of the Caravan data);
- ``popularity``: the popularity strategy, the inbound cold-start fallback (one value tier
  here, so every customer scores alike: ties broken at random, seeded).

Stratified k-fold cross-validation reports, per ranking, the buyers found in the top
``--top-fraction`` of each held-out fold, the lift over random, and that capture rate scaled
to a test set of ``--scale-customers`` customers holding ``--scale-buyers`` buyers. With
``--test FILE`` it also trains on the whole file and ranks the test file.

    python benchmarks/eval_targeting.py /tmp/islp/ISLP/data/Caravan.csv --target Purchase
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recommender.csvimport import import_file
from recommender.targeting import read_customers, target
from recommender.training import TIERS
from recommender.workspace import Workspace

PRODUCT = "offer"
YES = {"1", "yes", "true", "y"}
NO = {"0", "no", "false", "n"}


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    bought: np.ndarray


def read(path: Path, target_column: str | None) -> Table:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader)]
        rows = [r for r in reader if r]
    name = target_column or next(
        (c for c in ("CARAVAN", "Purchase", "target", "bought") if c in header), None
    )
    if name is None or name not in header:
        raise SystemExit(
            f"{path}: no target column {target_column or '(CARAVAN, Purchase)'}; "
            f"columns: {', '.join(header[:10])}..."
        )
    at = header.index(name)
    values = [r[at].strip().lower() for r in rows]
    bad = next((v for v in values if v not in YES | NO), None)
    if bad is not None:
        raise SystemExit(f"{path}: column {name} holds {bad!r}, expected 0/1 or No/Yes")
    bought = np.array([v in YES for v in values])
    keep = [i for i in range(len(header)) if i != at]
    return Table([header[i] for i in keep], [[r[i] for i in keep] for r in rows], bought)


def write_customers(path: Path, table: Table, rows: np.ndarray, prefix: str) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", *table.header])
        for i in rows.tolist():
            writer.writerow([f"{prefix}{i:06d}", *table.rows[i]])


def workspace(folder: Path, table: Table, rows: np.ndarray, config: str) -> Workspace:
    """A workspace holding ``rows`` as customers and their purchases as holdings, trained."""
    folder.mkdir(parents=True)
    (folder / "catalog.toml").write_text(
        f'[[product]]\nid = "{PRODUCT}"\nname = "the offer"\ncategory = "offer"\n'
    )
    (folder / "config.toml").write_text(config)
    write_customers(folder / "customers.csv", table, rows, "T")
    with (folder / "holdings.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["customer_id", "product_id"])
        writer.writerows([f"T{i:06d}", PRODUCT] for i in rows[table.bought[rows]].tolist())
    ws = Workspace(folder)
    catalog = ws.catalog()
    with ws.store() as store:
        for name in ("customers", "holdings"):
            import_file(store, catalog, name, folder / f"{name}.csv", pause_s=0)
    ws.train()
    return ws


class PopularityScorer:
    """The popularity strategy's score of the business for each customer's value tier and
    channel, ties broken at random (seeded): the inbound fallback as a targeting baseline."""

    name = "popularity"

    def __init__(self, strategy: object, channel: str, seed: int):
        from recommender.context import CHANNEL_IDS

        self.table = strategy.table  # type: ignore[attr-defined]
        self.channel = CHANNEL_IDS.index(channel)
        self.rng = np.random.default_rng(seed)

    def score_rows(self, data, rows, products=None):  # noqa: ANN001, ANN201
        tiers = np.asarray(data.value_tier[rows], np.int64)
        scores = self.table[tiers, self.channel][:, products].astype(np.float64)
        return (scores + 1e-6 * self.rng.random(scores.shape)).astype(np.float32)

    def reasons(self, data, rows, products, scores):  # noqa: ANN001, ANN201
        return [
            f"popular with {TIERS[t].value}-value customers"
            for t in np.asarray(data.value_tier)[rows]
        ]

    def sources(self, products):  # noqa: ANN001, ANN201
        return np.full(len(products), self.name)


def rank(
    ws: Workspace, table: Table, rows: np.ndarray, top: int, scratch: Path, how: str, seed: int
) -> np.ndarray:
    """The positions in ``table`` of the ``top`` customers of ``rows`` ranked ``how``."""
    path = scratch / "score.csv"
    write_customers(path, table, rows, "S")
    with ws.engine(require_models=True) as engine:
        given = read_customers(path, engine.store, engine.catalog)
        scorer = (
            engine.strategies["propensity"]
            if how != "popularity"
            else PopularityScorer(engine.strategies["popularity"], "app", seed)
        )
        (audience,) = target(
            engine.store, engine.catalog, engine.config, scorer, [PRODUCT], top=top, customers=given
        )
    return np.array([int(c[1:]) for c in audience.customers], np.int64)


def holdings_config(table: Table, patterns: list[str]) -> str:
    import fnmatch

    chosen = [c for c in table.header if any(fnmatch.fnmatchcase(c, p) for p in patterns)]
    names = ", ".join(f'"{c}"' for c in chosen)
    return f"[strategies.propensity]\nattributes = [{names}]\nsegment = false\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, help="customers with attributes and a target column")
    parser.add_argument("--target", default=None, help="the bought column (0/1, No/Yes)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--top-fraction", type=float, default=0.2)
    parser.add_argument(
        "--holding-columns",
        default="P*,A*",
        help="columns of current holdings (shell patterns), for holdings-only",
    )
    parser.add_argument("--scale-customers", type=int, default=4000)
    parser.add_argument("--scale-buyers", type=int, default=238)
    parser.add_argument("--test", type=Path, help="also train on all of csv, rank this file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from sklearn.model_selection import StratifiedKFold

    table = read(args.csv, args.target)
    n, buyers = len(table.rows), int(table.bought.sum())
    print(
        f"{args.csv}: {n:,} customers, {buyers} buyers ({buyers / n:.2%}), "
        f"{len(table.header)} attribute columns",
        file=sys.stderr,
    )
    configs = {
        "target": "",
        "holdings-only": holdings_config(table, args.holding_columns.split(",")),
        "popularity": "",
    }
    found = {name: 0 for name in configs}
    ranked = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="eval-targeting-") as tmp:
        scratch = Path(tmp)
        for repeat in range(args.repeats):
            folds = StratifiedKFold(args.folds, shuffle=True, random_state=args.seed + repeat)
            for fold, (train, test) in enumerate(folds.split(np.zeros(n), table.bought)):
                top = int(round(args.top_fraction * len(test)))
                ranked += top
                trained: dict[str, Workspace] = {}
                for name, config in configs.items():
                    key = "holdings-only" if name == "holdings-only" else "target"
                    if key not in trained:
                        trained[key] = workspace(
                            scratch / f"r{repeat}f{fold}{key}", table, np.sort(train), config
                        )
                    picked = rank(
                        trained[key],
                        table,
                        np.sort(test),
                        top,
                        scratch,
                        "popularity" if name == "popularity" else "propensity",
                        args.seed + fold,
                    )
                    found[name] += int(table.bought[picked].sum())
                print(
                    f"  repeat {repeat + 1} fold {fold + 1}: "
                    + ", ".join(f"{k} {v}" for k, v in found.items()),
                    file=sys.stderr,
                )
        total_buyers = buyers * args.repeats
        rate = ranked / (n * args.repeats)
        print(
            f"\n{args.folds}-fold cross-validation x {args.repeats}, top "
            f"{args.top_fraction:.0%} of each held-out fold ({ranked:,} ranked customers, "
            f"{total_buyers} buyers in all)\n"
        )
        print(
            f"| ranking | buyers in top {args.top_fraction:.0%} | captured | "
            f"lift@{args.top_fraction:.0%} | scaled: buyers in top "
            f"{int(args.top_fraction * args.scale_customers)} of {args.scale_customers:,} "
            f"({args.scale_buyers} buyers) | vs target |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for name, hits in found.items():
            captured = hits / total_buyers
            print(
                f"| {name} | {hits} | {captured:.1%} | {captured / rate:.2f} | "
                f"{captured * args.scale_buyers:.1f} | "
                f"{hits / max(found['target'], 1):.2f} |"
            )
        if args.test is not None:
            test = read(args.test, args.target)
            both = Table(
                table.header, table.rows + test.rows, np.concatenate([table.bought, test.bought])
            )
            ws = workspace(scratch / "all", both, np.arange(n), "")
            rows = np.arange(n, n + len(test.rows))
            top = int(round(args.top_fraction * len(rows)))
            picked = rank(ws, both, rows, top, scratch, "propensity", args.seed)
            print(
                f"\ntest {args.test}: {int(both.bought[picked].sum())} of "
                f"{int(test.bought.sum())} buyers in the top {top} of {len(rows):,}"
            )
    print(f"\n({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
