"""Top-k metrics over a whole evaluation at once: arrays in, one value per customer out.

``hits`` is a boolean matrix, one row per customer and one column per rank (True where the
business at that rank is a target); ``n_relevant`` is each customer's number of targets.
Definitions (binary relevance; k is the cut-off; R the customer's targets):

- precision@k = hits in the top k / k
- recall@k = hits in the top k / |R|
- hit_rate@k = 1 if any hit in the top k, else 0
- ndcg@k = DCG / ideal DCG, DCG = sum over ranks i <= k of hit_i / log2(i + 1), the ideal
  putting min(|R|, k) hits first
- map@k = sum over ranks i <= k of precision@i x hit_i, divided by |R| (trec_eval's map_cut)
- mrr@k = 1 / rank of the first hit in the top k, 0 if none
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

METRICS = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")


def hit_matrix(recommended: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """Which recommended businesses are targets. ``recommended`` is customers x ranks of
    product positions, -1 where fewer were returned."""
    n_users, n_items = relevant.shape
    coo = relevant.tocoo()
    target_keys = np.sort(coo.row.astype(np.int64) * n_items + coo.col)
    keys = np.arange(n_users, dtype=np.int64)[:, None] * n_items + recommended
    found = np.searchsorted(target_keys, keys)
    found = np.minimum(found, len(target_keys) - 1) if len(target_keys) else found
    hits = (recommended >= 0) & (len(target_keys) > 0)
    if len(target_keys):
        hits &= target_keys[found] == keys
    return hits


def per_user(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Every metric of ``METRICS`` at ``k``, one value per customer."""
    top = hits[:, :k].astype(np.float64)
    n_hits = top.sum(axis=1)
    n_rel = np.maximum(n_relevant, 1).astype(np.float64)
    ranks = np.arange(1, k + 1, dtype=np.float64)
    discounts = 1.0 / np.log2(ranks + 1)
    dcg = (top * discounts[: top.shape[1]]).sum(axis=1)
    ideal_cum = np.concatenate([[0.0], np.cumsum(discounts)])
    idcg = ideal_cum[np.minimum(n_relevant, k)]
    precision_at = np.cumsum(top, axis=1) / ranks[: top.shape[1]]
    first = np.where(top.any(axis=1), top.argmax(axis=1) + 1, 0)
    return {
        "precision": n_hits / k,
        "recall": n_hits / n_rel,
        "ndcg": np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0),
        "map": (precision_at * top).sum(axis=1) / n_rel,
        "mrr": np.divide(1.0, first, out=np.zeros(len(first)), where=first > 0),
        "hit_rate": (n_hits > 0).astype(np.float64),
    }


def coverage(recommended: np.ndarray, k: int, n_items: int) -> float:
    """Share of the catalog's businesses recommended to at least one customer in the top k."""
    top = recommended[:, :k]
    return len(np.unique(top[top >= 0])) / max(n_items, 1)


def popularity_bias(recommended: np.ndarray, k: int, popularity: np.ndarray) -> float:
    """Mean popularity (share of training customers holding it) of what is recommended in the
    top k: higher means the list leans on what everyone already has."""
    top = recommended[:, :k]
    valid = top >= 0
    return float(popularity[top[valid]].mean()) if valid.any() else 0.0


def bootstrap(values: Mapping[str, np.ndarray], *, samples: int = 1000, seed: int = 0,
              level: float = 0.95) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap confidence interval of each mean, resampling customers (the same
    resamples for every metric, so intervals are comparable)."""
    if not values or samples <= 0:
        return {}
    n = len(next(iter(values.values())))
    if n == 0:
        return {name: (0.0, 0.0) for name in values}
    rng = np.random.default_rng(seed)
    means: dict[str, list[np.ndarray]] = {name: [] for name in values}
    chunk = max(1, min(samples, 4_000_000 // n))  # bounded memory however many customers
    for start in range(0, samples, chunk):
        index = rng.integers(0, n, size=(min(chunk, samples - start), n))
        for name, v in values.items():
            means[name].append(v[index].mean(axis=1))
    low, high = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    out = {}
    for name, parts in means.items():
        m = np.concatenate(parts)
        out[name] = (float(np.percentile(m, low)), float(np.percentile(m, high)))
    return out
