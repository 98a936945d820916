"""Read-only questions the console asks the store that the engine itself never needs.

Each is one indexed query on the store's public connection (``Store.db``): a customer's recent
events and responses (``events_by_customer``, ``feedback_by_customer``), a page of customer ids,
an evenly spread sample of them, and the feedback funnel.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from recommender.store import Store

#: Feedback actions in funnel order.
FUNNEL_ACTIONS = ("impression", "click", "accept", "dismiss")


@dataclass(frozen=True)
class Event:
    """One event of a customer's history: an order, a failure, a query."""

    ts: int
    product: str
    channel: str
    kind: str
    failure_reason: str | None


@dataclass(frozen=True)
class Response:
    """One feedback event of a customer: what they did with a suggestion."""

    ts: int
    product: str
    action: str
    channel: str | None
    moment: str | None


def recent_events(store: Store, customer_id: str, limit: int = 10) -> list[Event]:
    """The customer's latest events, newest first."""
    rows = store.db.execute(
        "SELECT ts, product_id, channel, kind, failure_reason FROM events "
        "WHERE customer_id = ? ORDER BY ts DESC, id DESC LIMIT ?", (customer_id, int(limit)))
    return [Event(*row) for row in rows]


def recent_responses(store: Store, customer_id: str, limit: int = 10) -> list[Response]:
    """The customer's latest feedback events, newest first."""
    rows = store.db.execute(
        "SELECT ts, product_id, action, channel, moment FROM feedback "
        "WHERE customer_id = ? ORDER BY ts DESC LIMIT ?", (customer_id, int(limit)))
    return [Response(*row) for row in rows]


def customer_ids(store: Store, prefix: str = "", after: str | None = None, limit: int = 50
                 ) -> list[str]:
    """Up to ``limit`` customer ids starting with ``prefix``, after ``after``, in id order."""
    sql = "SELECT id FROM customers WHERE id >= ? "
    args: list[object] = [prefix]
    if prefix:
        sql += "AND id < ? "
        args.append(prefix + "\U0010ffff")
    if after is not None:
        sql += "AND id > ? "
        args.append(after)
    sql += "ORDER BY id LIMIT ?"
    args.append(int(limit))
    return [row[0] for row in store.db.execute(sql, args)]


def sample_ids(store: Store, size: int) -> list[str]:
    """``size`` customer ids spread evenly over the id order (the same ones every time, so two
    dry runs of the same change compare the same customers)."""
    total = store.count("customers")
    if total == 0 or size <= 0:
        return []
    step = max(1, total // size)
    return [cid for position, cid in enumerate(_all_ids(store))
            if position % step == 0][:size]


def _all_ids(store: Store) -> Iterator[str]:
    for row in store.db.execute("SELECT id FROM customers ORDER BY id"):
        yield row[0]


def funnel(store: Store, since: int) -> dict[tuple[str, str], dict[str, int]]:
    """Feedback counts since ``since`` (unix seconds) by (channel, moment) and action."""
    out: dict[tuple[str, str], dict[str, int]] = {}
    rows = store.db.execute(
        "SELECT COALESCE(channel, ''), COALESCE(moment, ''), action, COUNT(*) FROM feedback "
        "WHERE ts >= ? GROUP BY 1, 2, 3", (int(since),))
    for channel, moment, action, count in rows:
        out.setdefault((channel, moment), dict.fromkeys(FUNNEL_ACTIONS, 0))[action] = count
    return out
