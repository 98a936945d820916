"""The catalog's eligibility rules: holdings, conflicts, prerequisites, terminal, channel...

On a channel that allows hand-offs (``[handoff]`` of ``config.toml``), a business whose only
obstacle is that this channel cannot transact it stays, provided the customer can reach a
channel that does; the engine attaches the hand-off. Every other rule still excludes.
"""

from __future__ import annotations

from collections.abc import Sequence

from recommender import Catalog, Config, Exclusion, Ineligible, RequestContext, hookimpl


@hookimpl
def check_eligibility(
    context: RequestContext,
    catalog: Catalog,
    products: Sequence[str],
    explain: bool,
    config: Config,
) -> list[Ineligible]:
    # (pluggy passes no argument that has a default value: every one here is required)
    codes = catalog.exclusions(context)
    handoff = config.handoff
    anywhere = None  # the same check without the calling channel, computed when needed
    smartphone = context.terminal.smartphone
    index = catalog.index
    out = []
    for product in products:
        i = index[product]
        value = int(codes[i])
        if value == Exclusion.CHANNEL and handoff.allowed(context.channel.id):
            if anywhere is None:
                anywhere = catalog.exclusions(context, channels=False)
            value = int(anywhere[i])
            if (
                not value
                and handoff.target(catalog[product].channels, smartphone=smartphone) is not None
            ):
                continue  # orderable elsewhere: shown with a hand-off
            value = value or int(Exclusion.CHANNEL)
        if value:
            code = Exclusion(value)
            detail = catalog.explain(product, code, context) if explain else ""
            out.append(Ineligible(product, code.code, detail))
    return out
