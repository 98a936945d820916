"""Splits: each is leak-free, holds out what it says, and is reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from recommender import TrainingData
from recommender.evaluation import Split, leave_last, make_split, random, temporal
from recommender.evaluation.data import SUCCESS


def targets(split: Split) -> set[tuple[int, int]]:
    rel = split.relevant.tocoo()
    return set(zip(split.users[rel.row].tolist(), rel.col.tolist(), strict=True))


def pairs(data: TrainingData) -> set[tuple[int, int]]:
    h = data.holdings.tocoo()
    return set(zip(h.row.tolist(), h.col.tolist(), strict=True))


@pytest.mark.parametrize("split", [
    lambda d: temporal(d, 0.2), lambda d: temporal(d, 0.3, per_customer=True),
    lambda d: leave_last(d, 1), lambda d: leave_last(d, 2), lambda d: random(d, 0.2, seed=3),
    lambda d: random(d, 0.25, seed=3, per_customer=True)],
    ids=["temporal", "temporal-per-customer", "leave-last-1", "leave-last-2", "random",
         "random-per-customer"])
def test_no_target_is_in_training(sample_data, split):
    s = split(sample_data)
    assert len(s.users) > 50 and s.relevant.nnz >= len(s.users)
    held = pairs(s.train)
    ev = s.train.events
    ordered = set(zip(ev.customer[ev.kind == SUCCESS].tolist(),
                      ev.product[ev.kind == SUCCESS].tolist(), strict=True))
    rel = s.relevant.tocoo()
    for row, item in zip(rel.row.tolist(), rel.col.tolist(), strict=True):
        user = int(s.users[row])
        assert (user, item) not in held and (user, item) not in ordered
    if s.protocol.startswith("random"):
        return
    full = sample_data.events
    for user in s.users[:200].tolist():
        first_held_out = full.ts[(full.customer == user) & (full.kind == SUCCESS)
                                 & ~np.isin(full.ts, ev.ts[ev.customer == user])].min()
        # Nothing from the customer's future, not even the order's own query/transaction step.
        assert ev.ts[ev.customer == user].max(initial=0) < first_held_out - 3600


def test_temporal_global_cut_keeps_only_the_past(sample_data):
    s = temporal(sample_data, 0.25)
    orders = sample_data.events.ts[sample_data.events.kind == SUCCESS]
    cut = np.quantile(orders, 0.75, method="higher")
    assert s.train.events.ts.max() < cut - 3600
    assert s.held_out_orders == (orders >= cut).sum()
    assert 0.2 < s.held_out_orders / len(orders) < 0.3


def test_time_based_splits_train_only_on_each_customers_past(sample_data):
    s = leave_last(sample_data, 1)
    ev, full = s.train.events, sample_data.events
    for user in s.users[:100].tolist():
        mine = full.ts[(full.customer == user) & (full.kind == SUCCESS)]
        assert ev.ts[ev.customer == user].max(initial=0) < mine.max()


@pytest.mark.parametrize("per_customer", [False, True])
def test_random_split_is_reproducible_and_seeded(sample_data, per_customer):
    a, b, c = (targets(random(sample_data, 0.2, seed=s, per_customer=per_customer))
               for s in (1, 1, 2))
    assert a == b and a != c


@pytest.mark.parametrize("fraction", [0.2, 0.5])
def test_random_per_customer_holds_out_that_share_of_each_customers_orders(sample_data,
                                                                           fraction):
    s = random(sample_data, fraction, seed=4, per_customer=True)
    ev = sample_data.events
    orders = np.bincount(ev.customer[ev.kind == SUCCESS], minlength=sample_data.n_customers)
    kept = s.train.events
    trained = np.bincount(kept.customer[kept.kind == SUCCESS],
                          minlength=sample_data.n_customers)
    held = orders - trained
    expected = np.where(orders >= 2, np.maximum(np.floor(orders * fraction), 1), 0)
    assert np.array_equal(held, expected)
    assert s.held_out_orders == expected.sum()
    assert s.protocol.startswith(f"random per customer, seed 4: {fraction:.0%}")


@pytest.mark.parametrize(("kind", "options"), [
    ("temporal", {}), ("temporal", {"per_customer": True}), ("random", {"per_customer": True}),
    ("leave-last", {"leave_out": 2})])
def test_a_split_remembers_how_it_was_made(sample_data, kind, options):
    s = make_split(sample_data, kind, seed=9, **options)
    again = make_split(sample_data, **s.recipe)
    assert s.recipe["kind"] == kind and s.recipe["seed"] == 9
    assert (again.relevant != s.relevant).nnz == 0 and again.protocol == s.protocol


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "temporal", "test_fraction": 0}, "between 0 and 1"),
    ({"kind": "random", "test_fraction": 1.5}, "between 0 and 1"),
    ({"kind": "leave-last", "leave_out": 0}, "n >= 1"),
    ({"kind": "k-fold"}, "split must be one of"),
])
def test_bad_split_parameters_say_what_is_wrong(sample_data, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_split(sample_data, **kwargs)
