"""``GET /v1/products``: the catalog, with what each business needs, for front-ends to explain."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from flask import Response, request
from flask_smorest import abort

from recommender.catalog import Catalog, product_to_dict

from .schemas import (
    AudienceQuerySchema,
    AudienceSchema,
    ProductListSchema,
    ProductQuerySchema,
    ProductSchema,
)
from .state import Blueprint, service

blp = Blueprint("products", __name__, url_prefix="/v1",
                description="The businesses in the catalog and their conditions.")

#: The catalog views a front-end may cache: answered with an ETag and a Last-Modified, and
#: 304 when the copy the client holds is current.
CACHEABLE = frozenset({"products.list_products", "products.get_product"})
NOT_MODIFIED = ("Not modified: the If-None-Match ETag is current (or, without If-None-Match, "
                "nothing was published since If-Modified-Since); no body.")
VALIDATORS = {
    "ETag": {"description": "A hash of the body; send it back in If-None-Match.",
             "schema": {"type": "string"}},
    "Last-Modified": {"description": "When the files served were published (server start or "
                                     "the last reload); send it back in If-Modified-Since.",
                      "schema": {"type": "string"}},
}


@blp.after_request
def _validators(response: Response) -> Response:
    """An ETag (a hash of the body) and a Last-Modified (when the served files were published)
    on each catalog answer, and 304 with no body when the request's If-None-Match names the
    ETag or, without one, its If-Modified-Since is not older: the catalog changes only with
    a reload. ``no-cache``: a browser may keep the answer but asks again before using it."""
    if request.endpoint in CACHEABLE and request.method == "GET" and \
            response.status_code == 200:
        response.add_etag()
        published = service().slot.record.at
        if published > 0:
            response.last_modified = datetime.fromtimestamp(int(published), UTC)
        response.headers["Cache-Control"] = "no-cache"
        response.make_conditional(request)
    return response


@blp.route("/products", methods=["GET"])
@blp.arguments(ProductQuerySchema, location="query")
@blp.response(200, ProductListSchema, headers=VALIDATORS)
@blp.alt_response(422, description="A query parameter is out of its contract.")
@blp.alt_response(304, description=NOT_MODIFIED)
def list_products(query: dict[str, Any]) -> dict[str, Any]:
    """List the catalog, optionally only a category or what one channel can transact.

    Each business carries its category, channels, eligibility conditions (network, smartphone,
    OS, tier, persona, lifecycle, tenure), prerequisites and conflicts. Send the ETag back in
    If-None-Match (or Last-Modified in If-Modified-Since) to get a 304 while it is current.
    """
    with service().slot.lease() as engine:
        catalog = engine.catalog
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
@blp.response(200, ProductSchema, headers=VALIDATORS)
@blp.alt_response(404, description="No business has this id.")
@blp.alt_response(304, description=NOT_MODIFIED)
def get_product(product_id: str) -> dict[str, Any]:
    """One business and its conditions, e.g. to say "needs a 5G phone"."""
    with service().slot.lease() as engine:
        catalog = engine.catalog
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


@blp.route("/products/<product_id>/audience", methods=["GET"])
@blp.arguments(AudienceQuerySchema, location="query")
@blp.response(200, AudienceSchema)
@blp.alt_response(404, description="No business has this id.")
@blp.alt_response(409, description="No trained propensity model to rank with.")
@blp.alt_response(422, description="A query service, or a parameter out of its contract.")
def get_audience(query: dict[str, Any], product_id: str) -> dict[str, Any]:
    """The customers to offer this business to, best first: eligible ones only, the contact
    policy respected, each with score and reason. For small audiences; score a whole base
    with ``recommender target`` or ``recommender batch``."""
    from recommender.targeting import TargetError, target

    with service().slot.lease() as engine:
        if product_id not in engine.catalog:
            abort(404, message=f"no product {product_id!r} in the catalog")
        scorer = engine.strategies.get("propensity")
        if scorer is None or not scorer.is_fitted or engine.store is None:
            abort(409, message="no trained propensity model: run 'recommender train'")
        try:
            (audience,) = target(engine.store, engine.catalog, engine.config, scorer,
                                 [product_id], top=query["top"],
                                 min_score=query.get("min_score"),
                                 channel=query.get("channel"), locale=query.get("locale"))
        except TargetError as e:
            abort(422, message=str(e))
    return audience.to_dict()

