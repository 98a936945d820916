"""The catalog's eligibility rules: holdings, conflicts, prerequisites, terminal, channel..."""

from __future__ import annotations

from collections.abc import Sequence

from recommender import Catalog, Exclusion, Ineligible, RequestContext, hookimpl


@hookimpl
def check_eligibility(
    context: RequestContext, catalog: Catalog, products: Sequence[str]
) -> list[Ineligible]:
    codes = catalog.exclusions(context)
    out = []
    for product in products:
        code = Exclusion(int(codes[catalog.index[product]]))
        if code is not Exclusion.OK:
            out.append(Ineligible(product, code.code, catalog.explain(product, code, context)))
    return out
