"""Precision@10 on a public ratings file: the served CF against ``implicit``'s own recommend.

The default ``recommender evaluate`` protocol on a ratings file (MovieLens ``u.data``, or a
long CSV): the split it chooses, CF's settings chosen by validation inside the training data,
every customer asked through ``Engine.recommend``. In the same run, on the same split and the
same training matrix, the same models are asked through ``implicit``'s own
``model.recommend`` (its fitted user factors, what the customer holds filtered out), and two
references that are not strategies of the project: plain popularity and EASE (Steck, 2019;
the closed-form linear model, L2 weight 500), a strong, simple baseline on such data.

    pip download recbole==1.2.1 --no-deps -d /tmp/rb && unzip -q -o /tmp/rb/recbole-*.whl \\
        'recbole/dataset_example/ml-100k/*' -d /tmp/rb
    tail -n +2 /tmp/rb/recbole/dataset_example/ml-100k/ml-100k.inter > /tmp/u.data
    python benchmarks/eval_ratings.py /tmp/u.data
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender import evaluation as ev
from recommender.config import Config
from recommender.evaluation import metrics as m

K = 10
EASE_L2 = 500.0
#: CF as ``evaluate`` runs it: the defaults (every tuned key fixed) and tuned; and ALS with
#: BM25 weighting, its other settings tuned (``evaluate`` tries it too, but takes it only when
#: it beats the unweighted model in validation). BPR is fitted on one thread on both sides:
#: its parallel SGD is not reproducible with more, and a comparison must be.
RUNS = (("ALS, defaults", {"factors": 8, "regularization": 0.1, "weighting": "none",
                           "alpha": 1.0}),
        ("ALS, tuned", {}),
        ("ALS, BM25, tuned", {"weighting": "bm25"}),
        ("BPR, defaults", {"model": "bpr", "factors": 8, "learning_rate": 0.05,
                           "num_threads": 1}),
        ("BPR, tuned", {"model": "bpr", "num_threads": 1}))


def precision(recommended: np.ndarray, split: ev.Split) -> float:
    """Mean precision@K of ``recommended`` (customers x ranks) against the split's targets."""
    hits = m.hit_matrix(recommended.astype(np.int64), split.relevant)
    return float(m.per_user(hits, np.diff(split.relevant.indptr), K)["precision"].mean())


def served(source: ev.EvalData, split: ev.Split, params: dict[str, Any]) -> tuple[float,
                                                                                   dict]:
    """P@K of ``cf`` through ``evaluate`` (engine, default tuning), and its fitted settings."""
    raw = dict(source.config.raw)
    raw["strategies"] = {"cf": params}
    source = dataclasses.replace(source, config=Config.from_dict(raw, root=source.config.root))
    result = ev.evaluate(source, split, ["cf"], ks=(K,), bootstrap_samples=0)
    return result.metrics["cf"][f"precision@{K}"], result.fitted["cf"]


def library(split: ev.Split, settings: dict[str, Any]) -> float:
    """P@K of ``implicit``'s own ``recommend`` with the same settings and training matrix
    (with BM25, weighted by implicit's own ``bm25_weight``, whose lengths are sums of
    weights rather than numbers of items)."""
    from implicit.als import AlternatingLeastSquares
    from implicit.bpr import BayesianPersonalizedRanking
    from implicit.nearest_neighbours import bm25_weight
    from threadpoolctl import threadpool_limits

    from plugins.cf import BM25_B, BM25_K1

    matrix = split.train.interactions(settings["event_weights"],
                                      holding_weight=settings["holding_weight"])
    matrix.eliminate_zeros()
    if settings.get("weighting") == "bm25":
        matrix = bm25_weight(matrix, K1=BM25_K1, B=BM25_B).tocsr().astype(np.float32)
    common = {"factors": settings["factors"], "regularization": settings["regularization"],
              "iterations": settings["iterations"], "random_state": settings["random_state"],
              "num_threads": settings.get("num_threads", 0)}
    with threadpool_limits(1, "blas"):
        if settings["model"] == "bpr":
            model = BayesianPersonalizedRanking(learning_rate=settings["learning_rate"],
                                                **common)
        else:
            model = AlternatingLeastSquares(alpha=settings["alpha"], **common)
        model.fit(matrix, show_progress=False)
        ids, _ = model.recommend(split.users, matrix[split.users], N=K,
                                 filter_already_liked_items=True)
    return precision(ids, split)


def one_sitting(source: ev.EvalData) -> float:
    """Share of customers (two ratings or more) who entered every rating within an hour."""
    events = source.data.events
    n = source.data.n_customers
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(first, events.customer, events.ts)
    np.maximum.at(last, events.customer, events.ts)
    several = np.bincount(events.customer, minlength=n) >= 2
    return float((last - first < 3600)[several].mean())


def references(split: ev.Split) -> dict[str, float]:
    """Plain popularity and EASE on the split's binarised training matrix."""
    matrix = split.train.interactions({"success": 1.0}).tocsr()
    matrix.data[:] = 1.0
    rows = matrix[split.users].toarray() > 0
    counts = np.asarray(matrix.sum(axis=0)).ravel()
    gram = (matrix.T @ matrix).toarray().astype(np.float64)
    inverse = np.linalg.inv(gram + EASE_L2 * np.eye(len(gram)))
    weights = -inverse / np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    out = {}
    for name, scores in (("popularity (counts)", np.tile(counts, (len(rows), 1))),
                         (f"EASE, L2 {EASE_L2:g}", sp.csr_matrix(rows, dtype=np.float64)
                          @ weights)):
        scores = np.where(rows, -np.inf, scores)
        out[name] = precision(np.argsort(-scores, axis=1, kind="stable")[:, :K], split)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--input-format", default="movielens", choices=["movielens", "csv"])
    parser.add_argument("--user-column", default="user")
    parser.add_argument("--item-column", default="item")
    parser.add_argument("--time-column", default="timestamp")
    parser.add_argument("--split", default=None, choices=list(ev.SPLITS))
    parser.add_argument("--per-customer", action="store_true")
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    source = ev.load(args.path, args.input_format, user=args.user_column,
                     item=args.item_column, timestamp=args.time_column, weight=None)
    split = ev.split_source(source, args.split, test_fraction=args.test_fraction,
                            seed=args.seed, per_customer=args.per_customer)
    print(f"customers whose ratings all fall within one hour: {one_sitting(source):.1%}")
    print(f"split: {split.protocol}")
    print(f"{len(split.users)} customers evaluated, {split.relevant.nnz} targets, "
          f"{split.train.n_products} items\n")
    print(f"| model | settings | served P@{K} | implicit recommend P@{K} | served / implicit "
          f"| seconds |")
    print("|---|---|---:|---:|---:|---:|")
    for label, params in RUNS:
        started = time.perf_counter()
        ours, settings = served(source, split, params)
        theirs = library(split, {**settings, "num_threads": params.get("num_threads", 0)})
        shown = ", ".join(f"{k}={settings[k]}" for k in ("factors", "regularization", "alpha",
                                                         "weighting", "learning_rate")
                          if k in settings and (settings["model"] == "als"
                                                or k not in ("alpha", "weighting")))
        print(f"| {label} | {shown} | {ours:.4f} | {theirs:.4f} | {ours / theirs:.2f} | "
              f"{time.perf_counter() - started:.0f} |")
    print()
    for name, value in references(split).items():
        print(f"reference, {name}: P@{K} {value:.4f}")


if __name__ == "__main__":
    main()
