"""``GET /v1/products``: the catalog, with what each business needs, for front-ends to explain."""

from __future__ import annotations

import functools
from typing import Any

from flask_smorest import abort

from recommender.catalog import Catalog, product_to_dict

from .schemas import ProductListSchema, ProductQuerySchema, ProductSchema
from .state import Blueprint, service

blp = Blueprint("products", __name__, url_prefix="/v1",
                description="The businesses in the catalog and their conditions.")


@blp.route("/products", methods=["GET"])
@blp.arguments(ProductQuerySchema, location="query")
@blp.response(200, ProductListSchema)
@blp.alt_response(422, description="A query parameter is out of its contract.")
def list_products(query: dict[str, Any]) -> dict[str, Any]:
    """List the catalog, optionally only a category or what one channel can transact.

    Each business carries its category, channels, eligibility conditions (network, smartphone,
    OS, tier, persona, lifecycle, tenure), prerequisites and conflicts.
    """
    catalog = service().catalog
    products = [described for p, described in zip(catalog.products, _described(catalog),
                                                   strict=True)
                if query.get("category") in (None, p.category)
                and query.get("channel") in (None, *p.channels)]
    return {"products": products, "count": len(products)}


@functools.lru_cache(maxsize=2)
def _described(catalog: Catalog) -> tuple[dict[str, Any], ...]:
    """Every product as the API shows it, built once per loaded catalog (not per request)."""
    return tuple(describe(catalog, p.id) for p in catalog.products)


@blp.route("/products/<product_id>", methods=["GET"])
@blp.response(200, ProductSchema)
@blp.alt_response(404, description="No business has this id.")
def get_product(product_id: str) -> dict[str, Any]:
    """One business and its conditions, e.g. to say "needs a 5G phone"."""
    catalog = service().catalog
    if product_id not in catalog:
        abort(404, message=f"no product {product_id!r} in the catalog")
    return describe(catalog, product_id)


def describe(catalog: Catalog, product_id: str) -> dict[str, Any]:
    """A product as the API shows it: conflicts in both directions, and what upgrades it."""
    out = product_to_dict(catalog[product_id])
    conflicts = catalog.conflicts_of(product_id)
    if conflicts:
        out["conflicts"] = sorted(conflicts)
    upgraded_by = catalog.upgrade_paths(product_id)
    if upgraded_by:
        out["upgraded_by"] = sorted(upgraded_by)
    return out
