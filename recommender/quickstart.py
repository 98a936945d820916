"""The quickstart tour: four kinds of customer, every moment, several channels, a pre-order
check and hand-offs."""

from __future__ import annotations

from collections.abc import Callable

from .engine import Engine, Recommendation, RecommendationRequest
from .workspace import Workspace

#: (title, SQL picking a customer id, [(channel, moment, product, failure_reason)])
TOURS: tuple[tuple[str, str, list[tuple[str, str, str | None, str | None]]], ...] = (
    (
        "5G phone on a 4G plan",
        "SELECT t.customer_id FROM terminals t JOIN holdings h ON h.customer_id = t.customer_id "
        "WHERE t.network = '5G' AND h.product_id = 'plan_4g' AND NOT EXISTS (SELECT 1 FROM "
        "holdings u WHERE u.customer_id = t.customer_id AND u.product_id IN "
        "('upgrade_5g', 'intl_roaming')) ORDER BY t.customer_id LIMIT 1",
        [("app", "query", "balance_query", None),
         ("app", "transaction", "intl_roaming", None),
         ("web", "success", "intl_roaming", None),
         ("web", "failure", "plan_5g_newsim", "not_eligible")],
    ),
    (
        "4G smartphone",
        "SELECT t.customer_id FROM terminals t WHERE t.network = '4G' AND t.smartphone = 1 "
        "ORDER BY t.customer_id LIMIT 1",
        [("wechat", "query", "bill_query", None),
         ("app", "transaction", "data_5gb", None),
         ("store", "success", "broadband", None)],
    ),
    (
        "feature phone",
        "SELECT customer_id FROM terminals WHERE smartphone = 0 ORDER BY customer_id LIMIT 1",
        [("sms", "query", "balance_query", None),
         ("hotline", "success", "data_1gb", None),
         ("hotline", "failure", "video_membership", "not_eligible")],
    ),
    (
        "4G smartphone on the 4G plan",
        "SELECT t.customer_id FROM terminals t JOIN holdings h ON h.customer_id = t.customer_id "
        "JOIN customers c ON c.id = t.customer_id WHERE t.network = '4G' AND t.smartphone = 1 "
        "AND h.product_id = 'plan_4g' AND c.lifecycle != 'new' AND NOT EXISTS (SELECT 1 FROM "
        "holdings u WHERE u.customer_id = t.customer_id AND u.product_id = 'suspend_service') "
        "ORDER BY t.customer_id LIMIT 1",
        [("app", "transaction", "plan_5g", None),
         ("hotline", "transaction", "suspend_service", None)],
    ),
)


def run(ws: Workspace, echo: Callable[[str], None]) -> None:
    """Print suggestions for each tour, with the exclusions that show eligibility at work."""
    with ws.engine(require_models=True) as engine:
        echo(f"\nModel version {engine.model_version}; strategies: "
             + ", ".join(sorted(n for n, s in engine.strategies.items() if s.is_fitted)))
        for title, sql, steps in TOURS:
            row = engine.store.db.execute(sql).fetchone() if engine.store else None
            if row is None:
                echo(f"\n(no {title} customer in this sample)")
                continue
            customer = engine.store.customer(row[0])
            terminal = engine.store.terminal(row[0])
            held = ", ".join(engine.catalog[p].name for p in sorted(customer.holdings))
            echo(f"\n=== {title}: customer {customer.id} ({customer.value_tier} value, "
                 f"{customer.persona or 'no'} persona, {terminal.network} "
                 f"{'smartphone' if terminal.smartphone else 'feature phone'})")
            echo(f"    holds: {held}")
            for channel, moment, product, reason in steps:
                if product is not None and product in customer.holdings and moment != "query":
                    continue
                result = engine.recommend(RecommendationRequest(
                    customer_id=customer.id, channel=channel, moment=moment, product=product,
                    failure_reason=reason, debug=True))
                _show(engine, result, product, reason, echo)
    echo(f"\nTry: recommender recommend --dir {ws.root} --customer <id> --channel app "
         "--moment query --debug")
    echo(f"     recommender serve --dir {ws.root}        (HTTP API on 127.0.0.1:8000, docs "
         "at /docs)")
    echo(f"     recommender evaluate --dir {ws.root}     (offline metrics, popularity as "
         "the baseline)")


def _show(engine: Engine, result: Recommendation, product: str | None, reason: str | None,
          echo: Callable[[str], None]) -> None:
    about = f" {engine.catalog[product].name} ({product})" if product else ""
    failed = f", failed: {reason}" if reason else ""
    echo(f"\n  [{result.channel} · {result.moment}{about}{failed}] "
         f"{len(result.suggestions)} suggestion(s) in {result.timings['total']:.1f} ms")
    if result.explanation is not None:
        echo(f"    why it failed: {result.explanation.detail}")
    if result.check is not None and not result.check.will_succeed:
        echo(f"    pre-order check: will fail: {result.check.detail}")
    for i, s in enumerate(result.suggestions, 1):
        echo(f"    {i}. {s.name} ({s.product})  score {s.score:.3f}")
        for strategy, why in zip(s.strategies, s.reasons, strict=True):
            echo(f"         {strategy}: {why}")
        if s.handoff is not None:
            echo(f"         hand-off ({s.handoff.channel}): {s.handoff.text}")
    shown = [e for e in result.excluded
             if e.code not in ("held", "not_orderable", "current_product")]
    for e in shown[:3]:
        echo(f"    excluded {e.product}: {e.detail}")
