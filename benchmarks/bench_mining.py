"""Speed of ``recommender.mining`` against mlxtend and pyfim on Groceries and FIMI retail.

Every miner's output is checked against ours (same rules or itemsets) before any time is reported.

    python benchmarks/bench_mining.py [--quick] [--repeat 3] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from recommender.mining import (  # noqa: E402
    BasketMatrix,
    frequent_itemsets,
    mine_rules,
    read_baskets,
)

try:
    import fim
except ImportError:
    fim = None

try:
    import pandas as pd
    from mlxtend.frequent_patterns import association_rules, fpgrowth
    from mlxtend.preprocessing import TransactionEncoder
except ImportError:
    pd = None

# (dataset, task, min_support, min_confidence)
FULL_CASES = [
    ("groceries", "rules", 0.005, 0.5),
    ("groceries", "rules", 0.001, 0.5),
    ("retail", "itemsets", 0.005, None),
    ("retail", "itemsets", 0.001, None),
    ("retail", "rules", 0.001, 0.5),
]
QUICK_CASES = [("groceries", "rules", 0.01, 0.3), ("retail", "itemsets", 0.02, None)]
FILES = {
    "groceries": (("groceries", "groceries.csv"), ","),
    "retail": (("fimi_retail", "retail.dat"), " "),
}


def operator_baskets(workspace: Path) -> list[list[str]]:
    """One basket per customer: current holdings plus successful orders, as the association
    strategy mines them."""
    import sqlite3

    db = sqlite3.connect(workspace / "store.sqlite")
    baskets: dict[str, set[str]] = {}
    for customer, product in db.execute(
            "SELECT customer_id, product_id FROM holdings UNION "
            "SELECT customer_id, product_id FROM events WHERE kind = 'success'"):
        baskets.setdefault(customer, set()).add(product)
    db.close()
    return [sorted(b) for b in baskets.values()]


def best_time(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Fastest of ``repeat`` runs, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def ours(
    baskets: list[list[str]],
    matrix: BasketMatrix,
    task: str,
    support: float,
    confidence: float | None,
    end_to_end: bool,
) -> tuple[Any, BasketMatrix]:
    if end_to_end:
        matrix = BasketMatrix.from_baskets(baskets)
    if task == "rules":
        return mine_rules(matrix, min_support=support, min_confidence=confidence), matrix
    return frequent_itemsets(matrix, support), matrix


def ours_comparable(task: str, found: tuple[Any, BasketMatrix]) -> set:
    result, matrix = found
    if task == "rules":
        return {(frozenset(r.antecedents), r.consequent) for r in result}
    return {(frozenset(matrix.items[i] for i in items), count) for items, count in result}


def pyfim(
    baskets: list[list[str]], task: str, support: float, confidence: float | None, algorithm: str
) -> list:
    miner = getattr(fim, algorithm)
    if task == "rules":
        return miner(
            baskets,
            target="r",
            supp=support * 100,
            conf=confidence * 100,
            zmin=2,
            report="aC",
            mode="o",
        )
    return miner(baskets, target="s", supp=support * 100, zmin=1, report="a")


def pyfim_comparable(task: str, found: list) -> set:
    if task == "rules":
        return {(frozenset(body), head) for head, body, *_ in found}
    return {(frozenset(items), count) for items, count in found}


def mlxtend_frame(baskets: list[list[str]]) -> Any:
    encoder = TransactionEncoder()
    matrix = encoder.fit(baskets).transform(baskets, sparse=True)
    return pd.DataFrame.sparse.from_spmatrix(matrix, columns=encoder.columns_)


def mlxtend(frame: Any, task: str, support: float, confidence: float | None) -> Any:
    itemsets = fpgrowth(frame, min_support=support, use_colnames=True)
    if task == "itemsets":
        return itemsets
    rules = association_rules(
        itemsets, num_itemsets=len(frame), metric="confidence", min_threshold=confidence - 1e-12
    )
    return rules[rules["consequents"].map(len) == 1]


def mlxtend_comparable(task: str, found: Any, n_baskets: int) -> set:
    if task == "itemsets":
        return {
            (frozenset(s), round(v * n_baskets))
            for s, v in zip(found["itemsets"], found["support"], strict=True)
        }
    return {
        (frozenset(a), next(iter(c)))
        for a, c in zip(found["antecedents"], found["consequents"], strict=True)
    }


def build_miners(
    baskets: list[list[str]],
    matrix: BasketMatrix,
    frame: Any,
    task: str,
    support: float,
    confidence: float | None,
) -> dict[str, tuple[Callable[[], Any], Callable[[Any], set]]]:
    """Each available miner as (run it, turn its output into a comparable set)."""
    miners: dict[str, tuple[Callable[[], Any], Callable[[Any], set]]] = {
        "ours": (
            lambda: ours(baskets, matrix, task, support, confidence, False),
            lambda found: ours_comparable(task, found),
        ),
        "ours_end_to_end": (
            lambda: ours(baskets, matrix, task, support, confidence, True),
            lambda found: ours_comparable(task, found),
        ),
    }
    if fim is not None:
        for algorithm in ("fpgrowth", "eclat"):
            miners[f"pyfim_{algorithm}"] = (
                lambda a=algorithm: pyfim(baskets, task, support, confidence, a),
                lambda found: pyfim_comparable(task, found),
            )
    if frame is not None:
        miners["mlxtend"] = (
            lambda: mlxtend(frame, task, support, confidence),
            lambda found: mlxtend_comparable(task, found, matrix.n_baskets),
        )
    return miners


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets",
        type=Path,
        default=Path(os.environ.get("RECOMMENDER_DATASETS", ROOT.parent / "shared" / "datasets")),
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--quick", action="store_true", help="one tiny run per dataset")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (best is kept)")
    parser.add_argument("--no-mlxtend", action="store_true", help="skip mlxtend (slow)")
    parser.add_argument("--generated", type=Path, metavar="WORKSPACE",
                        help="also mine the customer baskets (holdings plus orders) of a "
                             "generated operator, e.g. one built by benchmarks/scale.py")
    parser.add_argument("--generated-support", type=float, default=0.01)
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    cases = list(QUICK_CASES if args.quick else FULL_CASES)

    data: dict[str, tuple[list[list[str]], BasketMatrix]] = {}
    frames: dict[str, Any] = {}
    results = []
    if args.generated:
        baskets = operator_baskets(args.generated)
        data["operator"] = (baskets, BasketMatrix.from_baskets(baskets))
        cases.append(("operator", "rules", args.generated_support, 0.3))
    for name, task, support, confidence in cases:
        if name not in data:
            parts, delimiter = FILES[name]
            path = args.datasets.joinpath(*parts)
            if not path.exists():
                print(f"skip {name}: {path} not found (set RECOMMENDER_DATASETS)")
                data[name] = None
                continue
            baskets = read_baskets(path, delimiter)
            data[name] = (baskets, BasketMatrix.from_baskets(baskets))
        if data[name] is None:
            continue
        baskets, matrix = data[name]

        frame = None
        if pd is not None and not args.no_mlxtend:
            if name not in frames:
                frames[name] = mlxtend_frame(baskets)
            frame = frames[name]
        miners = build_miners(baskets, matrix, frame, task, support, confidence)
        times, reference = {}, None
        for label, (run, comparable) in miners.items():
            times[label], found = best_time(run, repeat)
            found = comparable(found)
            reference = found if reference is None else reference
            if found != reference:
                raise SystemExit(
                    f"{name} {task} {support}: {label} found {len(found)}, ours {len(reference)}"
                    f" ({len(found ^ reference)} differ)"
                )
        results.append(
            {
                "dataset": name,
                "task": task,
                "min_support": support,
                "min_confidence": confidence,
                "found": len(reference),
                "n_baskets": matrix.n_baskets,
                "n_items": len(matrix.items),
                "seconds": times,
                "ratio_to_ours": {k: v / times["ours"] for k, v in times.items()},
            }
        )

    labels = ["ours", "ours_end_to_end", "pyfim_fpgrowth", "pyfim_eclat", "mlxtend"]
    header = f"{'dataset':<10}{'task':<9}{'supp':>7}{'conf':>6}{'found':>8}"
    header += "".join(f"{label:>17}" for label in labels)
    print(header)
    for row in results:
        line = (
            f"{row['dataset']:<10}{row['task']:<9}{row['min_support']:>7}"
            f"{row['min_confidence'] or '':>6}{row['found']:>8}"
        )
        for label in labels:
            if label in row["seconds"]:
                cell = f"{row['seconds'][label]:.4f}s ({row['ratio_to_ours'][label]:.1f}x)"
            else:
                cell = "-"
            line += f"{cell:>17}"
        print(line)
    print(
        "seconds are the best of",
        repeat,
        "runs; (Nx) is time relative to 'ours' (mining from"
        " a BasketMatrix); end-to-end and pyfim start from lists of baskets; mlxtend starts"
        " from its encoded sparse DataFrame",
    )

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "python": platform.python_version(),
                    "numpy": np.__version__,
                    "machine": platform.machine(),
                    "cpu_count": os.cpu_count(),
                    "repeat": repeat,
                    "results": results,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
