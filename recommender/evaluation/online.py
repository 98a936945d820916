"""Online metrics from the feedback the API records: the impression -> click -> accept funnel.

Rates are per impression: ``ctr`` = clicks / impressions, ``acceptance_rate`` = accepts /
impressions (the conversion operators track), by strategy, moment, channel and customer segment.
A suggestion proposed by several strategies counts for each of them.

Experiments (``config.toml`` ``[experiments]``): one row per experiment arm (``by`` = ``"arm"``,
``value`` = ``"<experiment>/<arm>"``) from the feedback attributed to it, with 95% Wilson score
intervals of both rates and, for every arm but the first, the two-sided p-value of a pooled
two-proportion z-test of its rate against the first arm's (the baseline, normally the
control). The unit is the impression: a customer seeing several suggestions contributes
several, so with few customers per arm the intervals are optimistic; ``customers`` says how many
distinct customers each arm's events came from. Counts of clicks or accepts above the
impressions (responses whose impression was never sent) are capped at the impressions for the
intervals and tests.
"""

from __future__ import annotations

import math
import tomllib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from ..store import Store

ACTIONS = {"impression": "impressions", "click": "clicks", "accept": "accepts",
           "dismiss": "dismissals"}
#: The two-sided 95% normal quantile.
Z95 = 1.959963984540054
#: The rates compared per arm, and the count each is of.
ARM_RATES = {"ctr": "click", "acceptance_rate": "accept"}


def funnel(store: Store, *, arms: Mapping[str, Sequence[str]] | None = None
           ) -> list[dict[str, Any]]:
    """One row per (dimension, value): counts per action and the rates; then one row per
    experiment arm with intervals and p-values (see the module documentation).

    :param arms: each experiment's arm names in order, the first being the baseline the others
        are tested against (``Engine.experiments.arms()``). By default, the order of the
        configuration the server publishes in ``store``; arms it does not name follow in
        alphabetical order.
    """
    segment = {customer_id: tier for chunk in store.read_columns("customers",
                                                                ["id", "value_tier"])
               for customer_id, tier in zip(chunk["id"], chunk["value_tier"], strict=True)}
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    per_arm: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    customers: dict[tuple[str, str], set[str]] = defaultdict(set)
    for event in store.feedback():
        keys = [("strategy", s) for s in event.strategies] + [
            ("moment", event.moment or "unknown"), ("channel", event.channel or "unknown"),
            ("segment", segment.get(event.customer_id or "", "unknown")), ("all", "all")]
        for key in keys:
            counts[key][event.action] += 1
        if event.experiment is not None and event.arm is not None:
            per_arm[(event.experiment, event.arm)][event.action] += 1
            if event.customer_id:
                customers[(event.experiment, event.arm)].add(event.customer_id)
    rows = []
    for (by, value), c in sorted(counts.items()):
        rows.append({"by": by, "value": value, **_rates(c)})
    if per_arm:
        order = dict(arms) if arms is not None else published_arms(store)
        rows += arm_rows(per_arm, customers, order)
    return rows


def arm_rows(per_arm: Mapping[tuple[str, str], Counter[str]],
             customers: Mapping[tuple[str, str], set[str]],
             order: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """The per-arm rows of :func:`funnel` from counts of actions per (experiment, arm)."""
    rows = []
    for experiment in sorted({e for e, _ in per_arm}):
        seen = {a for e, a in per_arm if e == experiment}
        known = [a for a in order.get(experiment, ()) if a in seen]
        names = known + sorted(seen - set(known))
        baseline = per_arm[(experiment, names[0])]
        for arm in names:
            c = per_arm[(experiment, arm)]
            row: dict[str, Any] = {
                "by": "arm", "value": f"{experiment}/{arm}", "experiment": experiment,
                "arm": arm, "baseline": names[0], **_rates(c),
                "customers": len(customers.get((experiment, arm), ()))}
            n = c["impression"]
            for rate, action in ARM_RATES.items():
                x = min(c[action], n)
                row[f"{rate}_ci"] = list(wilson(x, n))
                row[f"{rate}_p_value"] = None if arm == names[0] else two_proportion_p(
                    x, n, min(baseline[action], baseline["impression"]),
                    baseline["impression"])
            rows.append(row)
    return rows


def _rates(c: Counter[str]) -> dict[str, Any]:
    impressions = c["impression"]
    return {**{plural: c[a] for a, plural in ACTIONS.items()},
            "ctr": c["click"] / impressions if impressions else 0.0,
            "acceptance_rate": c["accept"] / impressions if impressions else 0.0}


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); (0, 1) with no trials."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test of x1/n1 against x2/n2; None
    without trials on one side, 1.0 when both rates are 0 or both are 1."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / se
    return math.erfc(abs(z) / math.sqrt(2))


def published_arms(store: Store) -> dict[str, list[str]]:
    """Each experiment's arm names in the order of the configuration the server publishes in
    ``store`` (empty when nothing is published or it names no experiments)."""
    from ..errors import RecommenderError
    from ..snapshot import published, stored_snapshot

    try:
        record = published(store)
        if record is None:
            return {}
        text = stored_snapshot(store, record.snapshot).files.get("config.toml")
        data = tomllib.loads(text.decode("utf-8")) if text else {}
    except (RecommenderError, ValueError, UnicodeDecodeError):
        return {}
    experiments = data.get("experiments")
    if not isinstance(experiments, dict):
        return {}
    return {name: list(table["arms"]) for name, table in experiments.items()
            if isinstance(table, dict) and isinstance(table.get("arms"), dict)}
