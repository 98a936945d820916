"""Whole customer bases as arrays, one page at a time: who can take what, and who may be told.

Outbound work (``recommender.targeting``, ``recommender.batch``) asks the inbound questions for
every customer at once. Here they are answered as customers x businesses matrices, page by
page, so memory follows the page size and not the customer base:

- :func:`pages` reads customers (segment, terminal, attributes, holdings) from the store in id
  order, as :class:`~recommender.training.TrainingData` of one page;
- :func:`eligible` is the catalog's eligibility (``Catalog.exclusions``) for all of a page;
- :func:`blocked` is the contact policy's suppression and do-not-disturb for all of a page.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from .attributes import AttributeTable, decode
from .catalog import Catalog, ProductKind
from .contact_policy import DAY, MAX_CLOCK_SKEW_S, WEEK, ContactPolicy
from .context import CHANNEL_IDS, Network
from .store import TAG_SEPARATOR, Store
from .training import LIFECYCLES, OSES, PERSONAS, TIERS, EventLog, TrainingData

#: Customers per page: a 10,000 x 2,000 score matrix is 80 MB of float32.
DEFAULT_PAGE = 10_000

_TIER = {t.value: i for i, t in enumerate(TIERS)}
_PERSONA = {p.value: i for i, p in enumerate(PERSONAS)}
_LIFECYCLE = {s.value: i for i, s in enumerate(LIFECYCLES)}
_OS = {o.value: i for i, o in enumerate(OSES)}


class BulkScorer(Protocol):
    """What outbound scoring needs of a strategy (``plugins.propensity`` provides it)."""

    name: str

    def score_rows(self, data: TrainingData, rows: Any, products: Any = None) -> np.ndarray:
        """Scores of customers ``rows`` x ``products`` (catalog positions; all if None)."""

    def reasons(
        self, data: TrainingData, rows: np.ndarray, products: np.ndarray, scores: np.ndarray,
        locale: str = "en",
    ) -> list[str]:
        """The reason of each (customer ``rows[i]``, business ``products[i]``) offer, in
        ``locale``."""

    def sources(self, products: np.ndarray) -> np.ndarray:
        """What scored each business: the strategy's name, or a named fallback."""


def page_data(
    rows: Sequence[tuple[Any, ...]],
    holdings: Sequence[tuple[str, str]],
    catalog: Catalog,
    kinds: Mapping[str, str],
) -> TrainingData:
    """One page of customers as arrays: ``rows`` in ``Store.PAGE_COLUMNS`` order and their
    ``holdings`` as (customer, product) pairs (unknown products are ignored)."""
    n = len(rows)
    ids = np.array([r[0] for r in rows], dtype=object)
    position = {cid: i for i, cid in enumerate(ids.tolist())}
    pairs = [
        (position[c], catalog.index[p]) for c, p in holdings if c in position and p in catalog.index
    ]
    held = sp.csr_matrix(
        (np.ones(len(pairs), np.float32), ([a for a, _ in pairs], [b for _, b in pairs])),
        shape=(n, len(catalog)),
    )
    held.sum_duplicates()
    held.data[:] = 1.0
    empty = np.zeros(0, np.int32)
    attributes = (
        AttributeTable.from_mappings((decode(r[6]) for r in rows), n, kinds) if kinds else None
    )
    return TrainingData(
        catalog=catalog,
        customers=ids,
        holdings=held,
        events=EventLog(
            empty, empty, empty.astype(np.int8), empty.astype(np.int8), empty.astype(np.int64)
        ),
        value_tier=np.array([_TIER[r[1]] for r in rows], np.int8),
        persona=np.array([_PERSONA.get(r[2], -1) for r in rows], np.int8),
        lifecycle=np.array([_LIFECYCLE[r[3]] for r in rows], np.int8),
        tenure=np.array([r[4] for r in rows], np.int32),
        network=np.array(
            [Network.G4.rank if r[7] is None else int(r[7][0]) for r in rows], np.int8
        ),
        smartphone=np.array([True if r[8] is None else bool(r[8]) for r in rows], bool),
        os=np.array([_OS.get(r[9], -1) for r in rows], np.int8),
        attributes=attributes,
    )


def tags_of(rows: Sequence[tuple[Any, ...]]) -> list[frozenset[str]]:
    return [frozenset(t for t in (r[5] or "").split(TAG_SEPARATOR) if t) for r in rows]


def pages(
    store: Store, catalog: Catalog, *, page: int = DEFAULT_PAGE, ids: Sequence[str] | None = None
) -> Iterator[tuple[TrainingData, list[tuple[Any, ...]]]]:
    """Every stored customer (or those among ``ids``), ``page`` at a time, in id order: the
    page as arrays and its raw rows (for tags)."""
    kinds = store.attribute_kinds()
    if ids is not None:
        wanted = sorted(set(ids))
        for start in range(0, len(wanted), page):
            rows = store.customers_by_id(wanted[start : start + page])
            if rows:  # by id, not by id range: the ids may be spread over the whole base
                holdings = store.holdings_for([r[0] for r in rows])
                yield page_data(rows, holdings, catalog, kinds), rows
        return
    after = None
    while True:
        rows = store.customer_page(after, page)
        if not rows:
            return
        yield page_data(rows, store.holdings_of(rows[0][0], rows[-1][0]), catalog, kinds), rows
        after = rows[-1][0]


def eligible(catalog: Catalog, data: TrainingData, channel: str | None = None) -> np.ndarray:
    """Customers x businesses: can this customer take this business (on ``channel``; on any
    channel that transacts it when None)? The rules of ``Catalog.exclusions`` at the query
    moment, for a whole page at once.

    Terminal and segment conditions depend on a handful of values, so they are decided once
    per distinct (network, smartphone, OS, tier, persona, lifecycle) and gathered; holdings,
    conflicts, upgrades and prerequisites are sparse products with the catalog's relation
    matrices, touching only what customers hold and the businesses with prerequisites.
    """
    n, m = data.n_customers, len(catalog)
    if n == 0:
        return np.zeros((0, m), dtype=bool)
    profile = np.stack(
        [
            np.asarray(a, np.int64)
            for a in (
                data.network,
                data.smartphone,
                data.os,
                data.value_tier,
                data.persona,
                data.lifecycle,
            )
        ],
        axis=1,
    )
    groups, inverse = np.unique(profile, axis=0, return_inverse=True)
    ok = _segment_rules(catalog, groups, channel)[inverse.ravel()]
    tenure = np.nonzero(catalog.min_tenure > 0)[0]
    if len(tenure):
        ok[:, tenure] &= data.tenure[:, None] >= catalog.min_tenure[None, tenure]
    held = data.holdings.astype(np.float32).tocsr()
    # The catalog's relation matrices (see Catalog._build_arrays): clash[i, j] and
    # supersede[i, j] mean holding i rules j out; needs_all/needs_any[j, i]: j needs i.
    for ruled_out in (held, held @ catalog._clash, held @ catalog._supersede):
        ruled_out = ruled_out.tocoo()
        ok[ruled_out.row, ruled_out.col] = False
    needs = np.nonzero(catalog._n_required > 0)[0]
    if len(needs):
        have = (held @ catalog._needs_all[needs].T).toarray()
        ok[:, needs] &= have >= catalog._n_required[needs][None, :]
    needs = np.nonzero(catalog._has_any)[0]
    if len(needs):
        ok[:, needs] &= (held @ catalog._needs_any[needs].T).toarray() > 0
    return ok


def _segment_rules(catalog: Catalog, groups: np.ndarray, channel: str | None) -> np.ndarray:
    """Distinct profiles x businesses: orderable, and terminal, channel and segment
    conditions met (columns of ``groups``: network, smartphone, OS, tier, persona,
    lifecycle; -1 for no OS or persona)."""
    network, smartphone, os, tier, persona, lifecycle = groups.T
    ok = np.broadcast_to(catalog.orderable, (len(groups), len(catalog))).copy()
    ok &= network[:, None] >= catalog.min_network[None, :]
    ok &= (smartphone[:, None] != 0) | ~catalog.needs_smartphone[None, :]
    if channel is not None:
        ok &= ((catalog.channel_mask & (1 << CHANNEL_IDS.index(channel))) != 0)[None, :]
    for codes, masks in (
        (os, catalog.os_mask),
        (tier, catalog.tier_mask),
        (persona, catalog.persona_mask),
        (lifecycle, catalog.lifecycle_mask),
    ):
        bit = np.where(codes >= 0, np.left_shift(1, np.maximum(codes, 0)), 0)
        ok &= (masks[None, :] == 0) | ((masks[None, :] & bit[:, None]) != 0)
    return ok


def blocked(
    policy: ContactPolicy,
    store: Store,
    catalog: Catalog,
    data: TrainingData,
    tags: Sequence[frozenset[str]],
    *,
    channel: str | None,
    moment: str,
    now: float,
) -> np.ndarray:
    """Customers x businesses held back by the contact policy: refused too often
    (suppression, by category too when configured), tagged do-not-disturb (marketing only,
    services pass), or, on a ``channel``, past a cap given the marketing contacts already
    served (``remaining_contacts``; the business-week cap on any channel)."""
    n, m = data.n_customers, len(catalog)
    out = np.zeros((n, m), dtype=bool)
    if moment in policy.exempt_moments or n == 0:
        return out
    if policy.caps:
        budget, per_business = _contact_counts(policy, store, catalog, data, channel, now)
        marketing = np.array([p.kind is not ProductKind.SERVICE for p in catalog.products])
        out |= (budget == 0)[:, None] & marketing[None, :]
        if policy.max_per_business_week:
            out |= (per_business >= policy.max_per_business_week) & marketing[None, :]
    quiet = policy.do_not_disturb_tags
    if quiet:
        silent = np.array([bool(t & quiet) for t in tags], dtype=bool)
        marketing = np.array([p.kind is not ProductKind.SERVICE for p in catalog.products])
        out |= silent[:, None] & marketing[None, :]
    if policy.dismissals:
        ids = data.customers
        rows = store.dismissals_of(ids[0], ids[-1], int(now - policy.lookback_seconds))
        out |= _suppressed(policy, rows, data, catalog, channel, now)
    return out


def remaining_contacts(policy: ContactPolicy, store: Store, catalog: Catalog,
                       data: TrainingData, channel: str | None, now: float) -> np.ndarray:
    """Per customer, how many more marketing suggestions the channel caps allow on
    ``channel`` now (a large number where no cap applies)."""
    return _contact_counts(policy, store, catalog, data, channel, now)[0]


def _contact_counts(policy: ContactPolicy, store: Store, catalog: Catalog,
                    data: TrainingData, channel: str | None, now: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``ContactPolicy.allowed``'s counts for many customers: the channel budget left per
    customer, and contacts per customer x business in the last 7 days (any channel)."""
    n, m = data.n_customers, len(catalog)
    unlimited = np.iinfo(np.int32).max
    budget = np.full(n, unlimited, dtype=np.int64)
    per_business = np.zeros((n, m), dtype=np.int32)
    if n == 0 or not policy.caps:
        return budget, per_business
    ids = data.customers
    rows = store.contacts_of(ids[0], ids[-1], int(now - WEEK))
    position = {cid: i for i, cid in enumerate(ids.tolist())}
    keep = [(position[c], catalog.index[p], ts, ch == channel)
            for c, p, ts, ch in rows if c in position and p in catalog.index
            and -MAX_CLOCK_SKEW_S <= now - ts < WEEK]
    if not keep:
        return budget, per_business
    who, what, ts, here = (np.array(col) for col in zip(*keep, strict=True))
    np.add.at(per_business, (who, what), 1)
    if channel is not None:
        week = np.bincount(who[here], minlength=n)
        day = np.bincount(who[here & (now - ts < DAY)], minlength=n)
        for limit, seen in ((policy.max_per_channel_day, day),
                            (policy.max_per_channel_week, week)):
            if limit:
                budget = np.minimum(budget, np.maximum(limit - seen, 0))
    return budget, per_business


def _suppressed(
    policy: ContactPolicy,
    rows: Sequence[tuple[str, str, int, str | None]],
    data: TrainingData,
    catalog: Catalog,
    channel: str | None,
    now: float,
) -> np.ndarray:
    """``ContactPolicy._suppressed`` for many customers: a business is suppressed when
    ``dismissals`` refusals fall within the window and the last is still cooling off."""
    n, m = data.n_customers, len(catalog)
    out = np.zeros((n, m), dtype=bool)
    position = {cid: i for i, cid in enumerate(data.customers.tolist())}
    keep = [
        (position[c], catalog.index[p], ts)
        for c, p, ts, ch in rows
        if c in position
        and p in catalog.index
        and ts <= now + MAX_CLOCK_SKEW_S  # dated later: not happened yet
        and (policy.across_channels or channel is None or ch == channel)
    ]
    if not keep:
        return out
    arr = np.array(keep, dtype=np.int64)
    order = np.lexsort((arr[:, 2], arr[:, 1], arr[:, 0]))
    who, what, ts = arr[order, 0], arr[order, 1], arr[order, 2]
    k = policy.dismissals
    if len(ts) >= k:
        last = np.arange(k - 1, len(ts))
        first = last - (k - 1)
        same = (who[first] == who[last]) & (what[first] == what[last])
        hit = (
            same
            & (ts[last] - ts[first] <= policy.dismissal_window_days * DAY)
            & (now - ts[last] < policy.cool_off_days * DAY)
        )
        out[who[last[hit]], what[last[hit]]] = True
    if policy.suppress_category and out.any():
        categories = sorted({p.category for p in catalog.products})
        code = np.array([categories.index(p.category) for p in catalog.products])
        same_category = code[:, None] == code[None, :]
        out |= (out.astype(np.int32) @ same_category.astype(np.int32)) > 0
    return out
