"""Blending strategies' candidates on per-request arrays (``recommender.blend``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recommender import Candidate, Candidates, Catalog
from recommender.blend import Blend, propose


@pytest.fixture(scope="module")
def catalog(sample_workspace) -> Catalog:
    return sample_workspace.catalog()


def reference(catalog: Catalog, outputs: dict[str, list[tuple[str, float]]],
              weights: dict[str, float]) -> dict[str, float]:
    """The blend written out in Python: max-normalised scores, rank-based off scale."""
    total: dict[str, float] = {}
    for name, pairs in outputs.items():
        ranked = sorted(pairs, key=lambda x: -x[1])
        top = ranked[0][1]
        for rank, (product, score) in enumerate(ranked):
            norm = score / top if top > 0 and score > 0 else 1 / (rank + 2)
            total[product] = total.get(product, 0.0) + weights[name] * norm
    return total


def test_the_blend_matches_its_definition_for_lists_and_arrays(catalog: Catalog) -> None:
    ids = catalog.ids
    rng = np.random.default_rng(3)
    outputs = {
        "a": [(ids[i], float(s)) for i, s in zip(rng.choice(len(ids), 12, replace=False),
                                                   rng.uniform(0.1, 5, 12), strict=True)],
        "b": [(ids[i], float(s)) for i, s in zip(rng.choice(len(ids), 9, replace=False),
                                                   rng.uniform(-3, -1, 9), strict=True)],
        "c": [(ids[i], float(s)) for i, s in zip(rng.choice(len(ids), 7, replace=False),
                                                   [2.0, 1.0, 0.0, -1.0, 3.0, 0.5, 0.25],
                                                   strict=True)],
    }
    weights = {"a": 1.0, "b": 0.5, "c": 2.0}
    expected = reference(catalog, outputs, weights)
    as_lists = [propose(n, [Candidate(p, s, f"{n}:{p}") for p, s in pairs], catalog)[0]
                for n, pairs in outputs.items()]
    as_arrays = [propose(n, Candidates(catalog, catalog.indices(p for p, _ in pairs),
                                       [s for _, s in pairs], lambda row, n=n: f"{n}:{ids[row]}"),
                         catalog)[0] for n, pairs in outputs.items()]
    for proposals in (as_lists, as_arrays):
        blend = Blend(catalog, proposals, weights)
        got = blend.scores()
        assert set(got) == set(expected)
        assert all(math.isclose(got[p], expected[p]) for p in expected)
        for product in expected:
            proposers = blend.proposers(product)
            assert [c for _, _, c in proposers] == sorted((c for _, _, c in proposers),
                                                          reverse=True)
            assert {(n, r) for n, r, _ in proposers} == {
                (n, f"{n}:{product}") for n, pairs in outputs.items()
                if product in dict(pairs)}


def test_garbage_is_counted_and_a_duplicate_keeps_its_best(catalog: Catalog) -> None:
    product = catalog.ids[0]
    nan = Candidate.__new__(Candidate)
    object.__setattr__(nan, "product", product)
    object.__setattr__(nan, "score", math.nan)
    object.__setattr__(nan, "_reason", "nan")
    output = ["text", nan, Candidate("no_such_business", 1.0, "x"),
              Candidate(product, 0.2, "low"), Candidate(product, 0.8, "high")]
    proposal, garbage = propose("g", output, catalog)
    assert garbage == 3
    blend = Blend(catalog, [proposal], {"g": 1.0})
    assert blend.scores() == {product: 1.0}
    assert blend.proposers(product) == [("g", "high", 1.0)]
    assert blend.proposers(catalog.ids[1]) == [] and catalog.ids[1] not in blend
    assert blend.scores(exclude=[product]) == {}
