"""The catalog as served: every business with its category, kind, price, channels,
eligibility, prerequisites, conflicts and upgrades, filtered by category, channel or text."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from recommender.catalog import Product
from recommender.context import CHANNEL_IDS

from ..state import service

blp = Blueprint("catalog", __name__, url_prefix="/catalog")


def matches(product: Product, text: str, category: str, channel: str) -> bool:
    """Whether a business passes the page's filters (text in its id or either name)."""
    if category and product.category != category:
        return False
    if channel and channel not in product.channels:
        return False
    if text:
        haystack = " ".join(filter(None, (product.id, product.name, product.name_en))).lower()
        return text.lower() in haystack
    return True


@blp.route("/")
def index() -> Any:
    catalog = service().slot.engine.catalog
    text = request.args.get("q", "").strip()
    category = request.args.get("category", "")
    channel = request.args.get("channel", "")
    categories = sorted({p.category for p in catalog})
    if category not in categories:
        category = ""
    if channel not in CHANNEL_IDS:
        channel = ""
    shown = [p for p in catalog if matches(p, text, category, channel)]
    return render_template("catalog.html", products=shown, total=len(catalog),
                           categories=categories, channels=CHANNEL_IDS, text=text,
                           category=category, channel=channel, catalog=catalog)
