"""The catalog's eligibility rules: holdings, conflicts, prerequisites, terminal, channel..."""

from __future__ import annotations

from collections.abc import Sequence

from recommender import Catalog, Exclusion, Ineligible, RequestContext, hookimpl


@hookimpl
def check_eligibility(
    context: RequestContext, catalog: Catalog, products: Sequence[str], explain: bool = True
) -> list[Ineligible]:
    codes = catalog.exclusions(context)
    index = catalog.index
    out = []
    for product in products:
        value = int(codes[index[product]])
        if value:
            code = Exclusion(value)
            detail = catalog.explain(product, code, context) if explain else ""
            out.append(Ineligible(product, code.code, detail))
    return out
