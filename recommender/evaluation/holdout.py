"""Offline evaluation: hold out each customer's latest orders and ask strategies to find them.

The protocol here is leave-last-out: for every customer with at least two successful orders, the
latest one is removed from the training data (events and the holding it created) and becomes
the target; each strategy is fitted on what remains and asked for its top k for that customer,
seen as they were before the order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from ..context import Channel, Customer, Moment, RequestContext, Terminal
from ..strategy import Strategy
from ..training import LIFECYCLES, MOMENTS, OSES, PERSONAS, TIERS, TrainingData


@dataclass(frozen=True)
class Holdout:
    """Training data without the held-out orders, and the orders to find."""

    train: TrainingData
    customers: np.ndarray  # customer positions
    targets: np.ndarray    # product positions, one per customer


def leave_last_out(data: TrainingData, *, min_orders: int = 2,
                   subscriptions_only: bool = False) -> Holdout:
    """Hold out each customer's latest successful order (customers with ``min_orders``+).

    :param subscriptions_only: consider only orders of businesses that customers go on to
        hold (plans, packs, memberships), not one-off purchases such as top-ups and day-passes,
        which a recommendation rarely needs to suggest.
    """
    ev = data.events
    is_success = ev.kind == MOMENTS.index(Moment.SUCCESS)
    if subscriptions_only:
        is_success &= (data.holdings.getnnz(axis=0) > 0)[ev.product]
    success = np.flatnonzero(is_success)
    order = success[np.lexsort((ev.ts[success], ev.customer[success]))]
    customer = ev.customer[order]
    last = np.flatnonzero(np.r_[customer[1:] != customer[:-1], True])
    counts = np.diff(np.r_[-1, last])
    last = last[counts >= min_orders]
    held_out = order[last]
    keep = np.ones(len(ev), dtype=bool)
    keep[held_out] = False
    # The same customer's earlier events for the held-out product (its transaction step)
    # would leak the answer: drop every event of that customer-product pair at or after it.
    pair = ev.customer.astype(np.int64) * data.n_products + ev.product
    target_pair = pair[held_out]
    first_ts = dict(zip(target_pair.tolist(), ev.ts[held_out].tolist(), strict=True))
    cutoff = np.array([first_ts.get(p, np.iinfo(np.int64).max) for p in pair.tolist()])
    keep &= ~(np.isin(pair, target_pair) & (ev.ts >= cutoff - 3600))
    holdings = data.holdings.tolil(copy=True)
    holdings[ev.customer[held_out], ev.product[held_out]] = 0
    train = replace(data, holdings=sp.csr_matrix(holdings), events=ev.select(keep))
    return Holdout(train, ev.customer[held_out].astype(np.int64),
                   ev.product[held_out].astype(np.int64))


def context_for(data: TrainingData, customer: int, *, moment: Moment = Moment.QUERY,
                channel: str = "app", slots: int = 100) -> RequestContext:
    """The request context of a training customer, from the arrays."""
    held = data.holdings.indices[data.holdings.indptr[customer]:data.holdings.indptr[customer + 1]]
    persona = int(data.persona[customer]) if len(data.persona) else -1
    os_code = int(data.os[customer]) if len(data.os) else -1
    return RequestContext(
        customer=Customer(
            id=str(data.customers[customer]),
            value_tier=TIERS[int(data.value_tier[customer])] if len(data.value_tier) else "mid",
            persona=PERSONAS[persona] if persona >= 0 else None,
            lifecycle=LIFECYCLES[int(data.lifecycle[customer])] if len(data.lifecycle)
            else "steady",
            tenure_months=int(data.tenure[customer]) if len(data.tenure) else 0,
            holdings=frozenset(data.catalog.ids[i] for i in held)),
        terminal=Terminal(network=f"{int(data.network[customer])}G" if len(data.network)
                          else "4G",
                          smartphone=bool(data.smartphone[customer]) if len(data.smartphone)
                          else True,
                          os=OSES[os_code] if os_code >= 0 else None),
        channel=Channel(id=channel, slots=slots), moment=moment)


def hit_rates(strategies: Mapping[str, Strategy], holdout: Holdout, *, k: int = 5
              ) -> dict[str, float]:
    """Share of held-out orders each (fitted) strategy puts in its top ``k``."""
    ids = holdout.train.catalog.ids
    hits = dict.fromkeys(strategies, 0)
    for customer, target in zip(holdout.customers.tolist(), holdout.targets.tolist(),
                                strict=True):
        context = context_for(holdout.train, customer)
        for name, strategy in strategies.items():
            got = [c.product for c in strategy.candidates(context, k)]
            hits[name] += ids[target] in got
    n = max(len(holdout.customers), 1)
    return {name: h / n for name, h in hits.items()}
