"""Metric definitions: hand-computed cases, and agreement with trec_eval and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.evaluation import bootstrap, coverage, hit_matrix, per_user, popularity_bias


def scores(recommended: list[list[int]], relevant: list[list[int]], k: int, n_items: int = 10
           ) -> dict[str, np.ndarray]:
    rows = [i for i, items in enumerate(relevant) for _ in items]
    cols = [j for items in relevant for j in items]
    rel = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(relevant), n_items))
    hits = hit_matrix(np.array(recommended), rel)
    return per_user(hits, np.diff(rel.indptr), k)


# (ranked list, targets, k, expected) worked out by hand
CASES = [
    ("first hit at rank 1", [0, 1, 2], [0], 3,
     {"precision": 1 / 3, "recall": 1.0, "ndcg": 1.0, "map": 1.0, "mrr": 1.0, "hit_rate": 1.0}),
    ("hit at rank 3 of 3", [0, 1, 2], [2], 3,
     {"precision": 1 / 3, "recall": 1.0, "ndcg": 0.5, "map": 1 / 3, "mrr": 1 / 3,
      "hit_rate": 1.0}),
    ("no hit", [0, 1, 2], [5], 3,
     {"precision": 0.0, "recall": 0.0, "ndcg": 0.0, "map": 0.0, "mrr": 0.0, "hit_rate": 0.0}),
    ("two of three targets at ranks 1 and 3", [4, 1, 7], [4, 7, 9], 3,
     {"precision": 2 / 3, "recall": 2 / 3,
      "ndcg": (1 + 0.5) / (1 + 1 / np.log2(3) + 0.5),
      "map": (1 + 2 / 3) / 3, "mrr": 1.0, "hit_rate": 1.0}),
    ("hit beyond k does not count", [0, 1, 2, 3], [3], 2,
     {"precision": 0.0, "recall": 0.0, "ndcg": 0.0, "map": 0.0, "mrr": 0.0, "hit_rate": 0.0}),
    ("short list padded with -1", [6, -1, -1], [6, 8], 3,
     {"precision": 1 / 3, "recall": 0.5, "ndcg": 1 / (1 + 1 / np.log2(3)), "map": 0.5,
      "mrr": 1.0, "hit_rate": 1.0}),
    ("more targets than k: ideal DCG uses k", [1, 2], [1, 2, 3, 4], 2,
     {"precision": 1.0, "recall": 0.5, "ndcg": 1.0, "map": 0.5, "mrr": 1.0, "hit_rate": 1.0}),
]


@pytest.mark.parametrize(("name", "ranked", "targets", "k", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_hand_computed(name, ranked, targets, k, expected):
    got = scores([ranked], [targets], k)
    for metric, value in expected.items():
        assert got[metric][0] == pytest.approx(value, abs=1e-12), metric


def random_run(seed: int, n_users: int = 300, n_items: int = 60, depth: int = 20):
    rng = np.random.default_rng(seed)
    recommended = np.array([rng.choice(n_items, depth, replace=False) for _ in range(n_users)])
    relevant = [rng.choice(n_items, rng.integers(1, 8), replace=False) for _ in range(n_users)]
    return recommended, relevant


@pytest.mark.parametrize("k", [1, 5, 10, 20])
def test_agrees_with_trec_eval(k):
    """pytrec_eval is the C trec_eval: P_k, recall_k, ndcg_cut_k, map_cut_k; recip_rank on
    the run cut at k."""
    pytrec_eval = pytest.importorskip("pytrec_eval")
    recommended, relevant = random_run(k)
    got = scores(recommended.tolist(), [r.tolist() for r in relevant], k, n_items=60)
    qrels = {f"u{u}": {f"i{i}": 1 for i in rel} for u, rel in enumerate(relevant)}
    run = {f"u{u}": {f"i{i}": float(len(row) - r) for r, i in enumerate(row[:k])}
           for u, row in enumerate(recommended)}
    measures = {f"P_{k}", f"recall_{k}", f"ndcg_cut_{k}", f"map_cut_{k}", "recip_rank"}
    trec = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    for ours, theirs in [("precision", f"P_{k}"), ("recall", f"recall_{k}"),
                         ("ndcg", f"ndcg_cut_{k}"), ("map", f"map_cut_{k}"),
                         ("mrr", "recip_rank")]:
        expected = np.array([trec[f"u{u}"][theirs] for u in range(len(relevant))])
        np.testing.assert_allclose(got[ours], expected, atol=1e-6, err_msg=ours)


@pytest.mark.parametrize("k", [3, 10])
def test_ndcg_agrees_with_scikit_learn(k):
    from sklearn.metrics import ndcg_score

    recommended, relevant = random_run(100 + k, n_users=50)
    got = scores(recommended.tolist(), [r.tolist() for r in relevant], k, n_items=60)
    for u in range(50):
        truth = np.zeros((1, 60))
        truth[0, relevant[u]] = 1
        score = np.zeros((1, 60))
        score[0, recommended[u]] = np.arange(len(recommended[u]), 0, -1)
        assert got["ndcg"][u] == pytest.approx(ndcg_score(truth, score, k=k), abs=1e-9)


def test_coverage_and_popularity_bias():
    recommended = np.array([[0, 1, -1], [1, 2, 3]])
    assert coverage(recommended, 2, 10) == pytest.approx(3 / 10)  # {0, 1, 2}
    assert coverage(recommended, 3, 10) == pytest.approx(4 / 10)
    popularity = np.linspace(0, 0.9, 10)
    assert popularity_bias(recommended, 2, popularity) == pytest.approx(
        np.mean(popularity[[0, 1, 1, 2]]))


def test_bootstrap_interval_contains_the_mean_and_narrows_with_more_customers():
    rng = np.random.default_rng(0)
    small = {"x": rng.random(50)}
    large = {"x": rng.random(5000)}
    low, high = bootstrap(small, samples=500)["x"]
    assert low < small["x"].mean() < high
    low2, high2 = bootstrap(large, samples=500)["x"]
    assert high2 - low2 < (high - low) / 3
    assert bootstrap(small, samples=500, seed=1) == bootstrap(small, samples=500, seed=1)
