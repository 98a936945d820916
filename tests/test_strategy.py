"""The strategy contract: Candidate (with a reason written on demand) and Candidates arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recommender import Candidate, Candidates, Catalog
from recommender.strategy import first_n, ranking, top_n


@pytest.fixture(scope="module")
def catalog(sample_workspace) -> Catalog:
    return sample_workspace.catalog()


def test_a_reason_given_as_a_callable_is_written_once_when_read() -> None:
    calls = []
    c = Candidate("cloud_storage", 0.5, lambda: calls.append(1) or "because")
    assert calls == []
    assert c.reason == "because" and c.reason == "because"
    assert calls == [1]
    assert c == Candidate("cloud_storage", 0.5, "because")


@pytest.mark.parametrize("args, error, message", [
    (("", 1.0, "r"), TypeError, "product must be a non-empty str"),
    (("p", "1", "r"), TypeError, "score must be a number"),
    (("p", True, "r"), TypeError, "score must be a number"),
    (("p", math.inf, "r"), ValueError, "score must be finite"),
    (("p", 1.0, 3), TypeError, "reason must be a str (or a callable returning one)"),
])
def test_a_bad_candidate_is_refused_naming_the_field(args, error, message) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        Candidate(*args)


def test_a_reason_callable_returning_no_string_is_a_clear_error() -> None:
    c = Candidate("cloud_storage", 1.0, lambda: None)
    with pytest.raises(TypeError, match="the reason of candidate 'cloud_storage' is NoneType"):
        _ = c.reason


def test_a_candidate_cannot_be_changed() -> None:
    c = Candidate("cloud_storage", 1.0, "r")
    with pytest.raises(AttributeError, match="immutable"):
        c.score = 2.0  # type: ignore[misc]


def test_candidates_read_as_a_sequence_of_candidate(catalog: Catalog) -> None:
    rows = np.array([3, 0, 7])
    got = Candidates(catalog, rows, [0.9, 0.5, 0.1], lambda row: f"row {row}")
    assert len(got) == 3
    assert [c.product for c in got] == [catalog.ids[3], catalog.ids[0], catalog.ids[7]]
    assert got[1] == Candidate(catalog.ids[0], 0.5, "row 0")
    assert got[-1].reason == "row 7"
    assert got[:2] == [got[0], got[1]]
    assert got == list(got) and got != []
    same_reason = Candidates(catalog, rows, [0.9, 0.5, 0.1], "one for all")
    assert {c.reason for c in same_reason} == {"one for all"}
    assert Candidates(catalog, np.array([], dtype=np.int64), [], "r") == []


@pytest.mark.parametrize("rows, scores, reason, error, message", [
    ([[1, 2]], [[1.0, 2.0]], "r", TypeError, "1-d array of catalog rows"),
    ([1.0, 2.0], [1.0, 2.0], "r", TypeError, "1-d array of catalog rows"),
    ([1, 2], [1.0], "r", ValueError, "1 scores for 2 rows"),
    ([-1, 2], [1.0, 1.0], "r", ValueError, "rows must be in"),
    ([1, 10_000], [1.0, 1.0], "r", ValueError, "rows must be in"),
    ([1, 2], [1.0, math.nan], "r", ValueError, "scores must be finite"),
    ([1, 1], [1.0, 0.5], "r", ValueError, "must not repeat a business"),
    ([1, 2], [1.0, 0.5], 7, TypeError, "reason must be a str or a callable"),
])
def test_bad_candidate_arrays_are_refused_naming_the_problem(
        catalog: Catalog, rows, scores, reason, error, message) -> None:
    with pytest.raises(error, match=message):
        Candidates(catalog, np.array(rows), np.array(scores), reason)


@pytest.mark.parametrize("seed", range(20))
def test_first_n_of_a_ranking_is_top_n(seed):
    """A ranking computed once and cut per request gives top_n's indices, in its order: ties
    by index, no score at or below zero, none infinite or NaN, excluded rows skipped."""
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 300))
    scores = rng.choice([-1.0, 0.0, 0.5, 1.0, 2.0, np.inf, np.nan], size=size) \
        * rng.integers(1, 4, size=size)
    order = ranking(scores)
    for n in (0, 1, 5, size, size + 3):
        exclude = rng.choice(size, size=int(rng.integers(0, min(size, 12) + 1)), replace=False)
        expected = top_n(scores, n, exclude=exclude)
        assert first_n(order, n, exclude).tolist() == expected.tolist()
        assert first_n(order, n).tolist() == top_n(scores, n).tolist()
