"""Online metrics from the feedback the API records: the impression -> click -> accept funnel.

Rates are per impression: ``ctr`` = clicks / impressions, ``acceptance_rate`` = accepts /
impressions (the conversion operators track), by strategy, moment, channel and customer segment.
A suggestion proposed by several strategies counts for each of them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from ..store import Store

ACTIONS = {"impression": "impressions", "click": "clicks", "accept": "accepts",
           "dismiss": "dismissals"}


def funnel(store: Store) -> list[dict[str, Any]]:
    """One row per (dimension, value): counts per action and the rates."""
    segment = dict(store.db.execute("SELECT id, value_tier FROM customers").fetchall())
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for event in store.feedback():
        keys = [("strategy", s) for s in event.strategies] + [
            ("moment", event.moment or "unknown"), ("channel", event.channel or "unknown"),
            ("segment", segment.get(event.customer_id or "", "unknown")), ("all", "all")]
        for key in keys:
            counts[key][event.action] += 1
    rows = []
    for (by, value), c in sorted(counts.items()):
        impressions = c["impression"]
        rows.append({"by": by, "value": value, **{plural: c[a] for a, plural in ACTIONS.items()},
                     "ctr": c["click"] / impressions if impressions else 0.0,
                     "acceptance_rate": c["accept"] / impressions if impressions else 0.0})
    return rows
