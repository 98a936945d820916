"""Train/test splits of the successful orders, each leak-free and described in words.

A split holds out some orders; the customer's training data then keeps only what happened
before their first held-out order (time-based splits), or everything but the held-out orders
(random split). A held-out business the customer still holds in training is not a target:
the engine never recommends what is held, as in production.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..training import TrainingData
from .data import SUCCESS, EvalData

SPLITS = ("temporal", "leave-last", "random")


@dataclass(frozen=True)
class Split:
    """Training data, and per evaluated customer the businesses to find.

    :param users: customer positions evaluated (present in training, with a target).
    :param relevant: ``len(users) x n_products``, 1 where the business is a target.
    :param channel: per evaluated customer, the channel code of their first held-out order.
    :param recipe: the ``make_split`` arguments that made it (empty when made otherwise), so
        the same protocol can be applied to the training data for validation.
    """

    protocol: str
    train: TrainingData
    users: np.ndarray
    relevant: sp.csr_matrix
    channel: np.ndarray
    held_out_orders: int
    cold_users: int
    recipe: Mapping[str, Any] = field(default_factory=dict)


def temporal(data: TrainingData, test_fraction: float = 0.2, *,
             per_customer: bool = False, seed: int = 42) -> Split:
    """Hold out the latest ``test_fraction`` of orders: by one global cut in time, or of
    each customer's own orders (customers with at least two; orders at the same time are
    ordered at random, seeded)."""
    _check_fraction(test_fraction)
    orders = np.flatnonzero(data.events.kind == SUCCESS)
    ts = data.events.ts[orders]
    if not per_customer:
        cut = int(np.quantile(ts, 1 - test_fraction, method="higher"))
        test = orders[ts >= cut]
        protocol = (f"temporal, global cut at {_date(cut)}: the last {test_fraction:.0%} of "
                    f"orders are held out; training keeps every event at least an hour "
                    f"before the cut")
        return _make(data, test, protocol, time_based=True, global_cut=cut)
    test = _latest_of_each(data.events.customer[orders], ts, orders, test_fraction, seed)
    protocol = (f"temporal per customer: the latest {test_fraction:.0%} of each customer's "
                f"orders (at least one, customers with two or more; ties in time drawn at random, "
                f"seed {seed}) are held out; training "
                f"keeps each customer's events up to an hour before their first held-out order")
    return _make(data, test, protocol, time_based=True)


def leave_last(data: TrainingData, n: int = 1, *, seed: int = 42) -> Split:
    """Hold out each customer's last ``n`` orders (customers with more than ``n``).

    Orders at the same time have no last one: among them, those held out are drawn at random
    (seeded), so a basket's items, which share one time, are not held out by file position.
    """
    if n < 1:
        raise ValueError(f"leave-last needs n >= 1, got {n}")
    orders = np.flatnonzero(data.events.kind == SUCCESS)
    customer, ts = data.events.customer[orders], data.events.ts[orders]
    order = np.lexsort((_ties(len(orders), seed), ts, customer))
    customer, sorted_orders = customer[order], orders[order]
    starts = np.flatnonzero(np.r_[True, customer[1:] != customer[:-1]])
    counts = np.diff(np.r_[starts, len(customer)])
    position = np.arange(len(customer)) - np.repeat(starts, counts)
    keep_n = np.repeat(counts - n, counts)
    test = sorted_orders[(position >= keep_n) & (np.repeat(counts, counts) > n)]
    protocol = (f"leave-last-{n}: each customer's last {n} order(s) held out (customers with "
                f"more than {n}; ties in time drawn at random, seed {seed}); training keeps "
                f"their events up to an hour before the first "
                f"held-out one")
    return _make(data, test, protocol, time_based=True)


def random(data: TrainingData, test_fraction: float = 0.2, *, seed: int = 42,
           per_customer: bool = False) -> Split:
    """Hold out a uniformly random ``test_fraction`` of orders (seeded): of all orders, or of
    each customer's own (at least one, customers with two or more)."""
    _check_fraction(test_fraction)
    orders = np.flatnonzero(data.events.kind == SUCCESS)
    rng = np.random.default_rng(seed)
    if not per_customer:
        test = orders[rng.random(len(orders)) < test_fraction]
        protocol = (f"random holdout, seed {seed}: {test_fraction:.0%} of orders held out "
                    f"uniformly; training keeps every other event")
        return _make(data, test, protocol, time_based=False)
    test = _latest_of_each(data.events.customer[orders], rng.random(len(orders)), orders,
                           test_fraction, seed)
    protocol = (f"random per customer, seed {seed}: {test_fraction:.0%} of each customer's "
                f"orders (at least one, customers with two or more) held out at random; "
                f"training keeps every other event")
    return _make(data, test, protocol, time_based=False)


def make_split(data: TrainingData, kind: str, *, test_fraction: float = 0.2, seed: int = 42,
               per_customer: bool = False, leave_out: int = 1) -> Split:
    """Dispatch on ``kind`` (one of ``SPLITS``)."""
    if kind == "temporal":
        split = temporal(data, test_fraction, per_customer=per_customer, seed=seed)
    elif kind == "leave-last":
        split = leave_last(data, leave_out, seed=seed)
    elif kind == "random":
        split = random(data, test_fraction, seed=seed, per_customer=per_customer)
    else:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {kind!r}")
    return replace(split, recipe={"kind": kind, "test_fraction": test_fraction, "seed": seed,
                                  "per_customer": per_customer, "leave_out": leave_out})


def split_source(source: EvalData, kind: str | None, *, test_fraction: float = 0.2,
                 seed: int = 42, per_customer: bool = False, leave_out: int = 1) -> Split:
    """``make_split`` for an evaluation source, choosing the kind when ``kind`` is None:
    ``temporal``; for a basket file ``leave-last`` (one random item of each basket); for a
    ratings file ``random`` per customer (a rating's time is when it was entered, see
    ``RATINGS_SPLIT``).

    A global temporal cut on a basket file is refused: every basket is its own customer, so
    the held-out baskets belong to customers nobody was trained on and nothing is evaluated.
    """
    if source.baskets and kind == "temporal" and not per_customer:
        raise ValueError(
            "a global temporal split of a basket file evaluates nobody: each basket is its own "
            "customer, so every held-out basket is unknown to training; use --split leave-last "
            "(one random item of each basket held out), --split random, or --per-customer")
    if kind is None and source.ratings:
        kind, per_customer, why = "random", True, RATINGS_SPLIT
    elif kind is None and source.baskets:
        kind, why = "leave-last", ("basket file, so the split chosen is leave-last (a global "
                                   "temporal cut would evaluate nobody)")
    else:
        kind, why = kind or "temporal", None
    split = make_split(source.data, kind, test_fraction=test_fraction, seed=seed,
                       per_customer=per_customer, leave_out=leave_out)
    if not len(split.users):
        raise ValueError(
            f"the {kind} split leaves no customer to evaluate: {split.held_out_orders} orders "
            f"held out, {split.cold_users} of their customers unknown to training; choose "
            f"another split or test fraction")
    return replace(split, protocol=f"{why}: {split.protocol}") if why else split


#: Why a ratings file is split at random per customer unless told otherwise.
RATINGS_SPLIT = (
    "ratings file, so the split chosen is random per customer (a rating's time is when it was "
    "entered, often all in one sitting, not when the item was taken: a global cut keeps only "
    "the customers still rating after it, and each customer's latest ratings are the last "
    "screens of a sign-up session; --split temporal [--per-customer] asks for them)")


# -- internals --------------------------------------------------------------------------------

def _latest_of_each(customer: np.ndarray, key: np.ndarray, orders: np.ndarray,
                    fraction: float, seed: int) -> np.ndarray:
    """The ``fraction`` of each customer's orders with the largest ``key`` (at least one,
    customers with two or more; equal keys ordered at random, seeded)."""
    order = np.lexsort((_ties(len(orders), seed), key, customer))
    customer, sorted_orders = customer[order], orders[order]
    starts = np.flatnonzero(np.r_[True, customer[1:] != customer[:-1]])
    counts = np.diff(np.r_[starts, len(customer)])
    position = np.arange(len(customer)) - np.repeat(starts, counts)
    n_test = np.floor(counts * fraction).astype(np.int64)
    n_test[(counts >= 2) & (n_test == 0)] = 1
    return sorted_orders[position >= np.repeat(counts - n_test, counts)]


def _ties(n: int, seed: int) -> np.ndarray:
    """A seeded random key that orders events sharing a time."""
    return np.random.default_rng(seed).random(n)


#: Events this close before a held-out order are its own steps (query, transaction): dropped.
SESSION_SECONDS = 3600


def _make(data: TrainingData, test: np.ndarray, protocol: str, *, time_based: bool,
          global_cut: int | None = None) -> Split:
    ev = data.events
    n_users, n_items = data.n_customers, data.n_products
    test_mask = np.zeros(len(ev), dtype=bool)
    test_mask[test] = True
    if time_based:
        # Training ends an hour before the customer's first held-out order (or the global
        # cut, for everyone): nothing from the future, not even the order's own steps.
        start = np.iinfo(np.int64).max if global_cut is None else global_cut
        cut = np.full(n_users, start, dtype=np.int64)
        np.minimum.at(cut, ev.customer[test], ev.ts[test])
        keep = (ev.ts < cut[ev.customer] - SESSION_SECONDS) & ~test_mask
    else:
        # The queries and transaction steps of a held-out order would give it away.
        pair = ev.customer.astype(np.int64) * n_items + ev.product
        keep = ~test_mask & ~(np.isin(pair, pair[test]) & (ev.kind != SUCCESS))
    train_events = ev.select(keep)
    test_pairs = np.unique(ev.customer[test].astype(np.int64) * n_items + ev.product[test])
    success = train_events.kind == SUCCESS
    train_pairs = np.unique(train_events.customer[success].astype(np.int64) * n_items
                            + train_events.product[success])
    # Holdings acquired through a held-out order (and never ordered in training) go.
    held = data.holdings.tocoo()
    held_pairs = held.row.astype(np.int64) * n_items + held.col
    drop = np.isin(held_pairs, test_pairs) & ~np.isin(held_pairs, train_pairs)
    holdings = sp.csr_matrix((held.data[~drop], (held.row[~drop], held.col[~drop])),
                             shape=held.shape)
    train = replace(data, holdings=holdings, events=train_events)
    holding_pairs = held_pairs[~drop]
    targets = test_pairs[~np.isin(test_pairs, holding_pairs) & ~np.isin(test_pairs, train_pairs)]
    target_user, target_item = np.divmod(targets, n_items)
    known = (np.diff(holdings.indptr) > 0)
    known[np.unique(train_events.customer)] = True
    users_all = np.unique(target_user)
    users = users_all[known[users_all]]
    row_of = np.full(n_users, -1, dtype=np.int64)
    row_of[users] = np.arange(len(users))
    keep_t = row_of[target_user] >= 0
    relevant = sp.csr_matrix((np.ones(keep_t.sum(), np.float32),
                              (row_of[target_user[keep_t]], target_item[keep_t])),
                             shape=(len(users), n_items))
    first = np.full(n_users, -1, dtype=np.int64)
    order = test[np.argsort(ev.ts[test], kind="stable")][::-1]
    first[ev.customer[order]] = ev.channel[order]  # the earliest wins (written last)
    channel = np.maximum(first[users], 0).astype(np.int8)
    return Split(protocol=protocol, train=train, users=users, relevant=relevant,
                 channel=channel, held_out_orders=len(test),
                 cold_users=len(users_all) - len(users))


def _check_fraction(fraction: float) -> None:
    if not 0 < fraction < 1:
        raise ValueError(f"test fraction must be between 0 and 1, got {fraction!r}")


def _date(ts: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
