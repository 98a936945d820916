"""A complete third-party plugin: a strategy pushing the campaign businesses of the month.

Configure it in the workspace's ``config.toml``::

    [strategies.campaign]
    products = ["video_membership", "cloud_storage"]
    reason = "本月活动：首月免费"

    [blend.success]
    campaign = 0.5
"""

from __future__ import annotations

from recommender import Candidate, Catalog, Config, RequestContext, Strategy, hookimpl


class CampaignStrategy(Strategy):
    """Proposes the configured campaign businesses, first listed first."""

    name = "campaign"

    def __init__(self, products: list[str] = (), reason: str = "this month's campaign"):
        self.products = list(products)
        self.reason = reason

    def candidates(self, context: RequestContext, n: int) -> list[Candidate]:
        held = context.customer.holdings
        offers = [p for p in self.products if p not in held][:n]
        return [Candidate(p, 1.0 / (rank + 1), self.reason) for rank, p in enumerate(offers)]


@hookimpl
def register_strategies(config: Config, catalog: Catalog) -> list[Strategy]:
    settings = config.strategy_settings("campaign")
    unknown = [p for p in settings.get("products", []) if p not in catalog]
    if unknown:
        raise ValueError(f"[strategies.campaign] products: unknown business {unknown[0]!r}")
    return [CampaignStrategy(**settings)]
