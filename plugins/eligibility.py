"""The catalog's eligibility rules: holdings, conflicts, prerequisites, terminal, channel...

On a channel that allows hand-offs (``[handoff]`` of ``config.toml``), a business whose only
obstacle is that this channel cannot transact it stays, provided the customer can reach a
channel that does; the engine attaches the hand-off. Every other rule still excludes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

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
    rows = catalog.indices(products)
    failing = np.flatnonzero(codes[rows])
    if not len(failing):
        return []
    handoff = config.handoff
    anywhere = None  # the same check without the calling channel, computed when needed
    smartphone = context.terminal.smartphone
    allowed = handoff.allowed(context.channel.id)
    ids = catalog.ids
    out = []
    for i in rows[failing].tolist():
        value = int(codes[i])
        if value == Exclusion.CHANNEL and allowed:
            if anywhere is None:
                anywhere = catalog.exclusions(context, channels=False)
            value = int(anywhere[i])
            if (
                not value
                and handoff.target(catalog.products[i].channels, smartphone=smartphone)
                is not None
            ):
                continue  # orderable elsewhere: shown with a hand-off
            value = value or int(Exclusion.CHANNEL)
        code = Exclusion(value)
        detail = catalog.explain(ids[i], code, context) if explain else ""
        out.append(Ineligible(ids[i], code.code, detail))
    return out
