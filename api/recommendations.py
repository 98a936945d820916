"""``POST /v1/recommendations``: the call every channel makes at every moment."""

from __future__ import annotations

from typing import Any

from flask import Response

from recommender.engine import RecommendationRequest
from recommender.experiments import ANONYMOUS

from .jsonio import json_response
from .schemas import RecommendationRequestSchema, RecommendationSchema
from .state import Blueprint, request_id, service

blp = Blueprint("recommendations", __name__, url_prefix="/v1",
                description="Suggestions for a customer at a moment of their journey.")


@blp.route("/recommendations", methods=["POST"])
@blp.arguments(RecommendationRequestSchema(), example={
    "customer": {"id": "C0000042"}, "terminal": {"network": "5G"}, "channel": "app",
    "moment": "success", "product": "plan_5g"})
@blp.response(200, RecommendationSchema)
@blp.alt_response(400, description="The body is not valid JSON.")
@blp.alt_response(413, description="The body is larger than the configured limit.")
@blp.alt_response(415, description="The body is not application/json.")
@blp.alt_response(422, description="A field is missing or out of its contract; "
                                   "``errors`` names it.")
def recommend(body: dict[str, Any]) -> Response:
    """Recommend businesses for a customer at a moment on a channel.

    Gathers the TCPC context (stored profile, holdings and terminal, overridden by what the
    request carries), runs the strategies the moment and channel enable, drops everything the
    customer cannot take and returns at most the channel's slot count, each suggestion with the
    strategies that proposed it and why. At the failure moment, ``explanation`` says why the
    business could not be taken. At the transaction moment, ``check`` says whether the order
    will succeed; when it will not, the suggestions are what works instead. A business the
    calling channel cannot transact is kept only where hand-offs are allowed, with ``handoff``.
    ``locale`` picks the language of every sentence; ``event`` adds a service event's guidance
    and businesses. ``debug`` adds exclusions, timings and strategy errors.
    """
    customer = dict(body["customer"])
    customer_id = customer.pop("id", None) or ANONYMOUS
    request = RecommendationRequest(
        customer_id=customer_id, channel=body["channel"], moment=body["moment"],
        product=body.get("product"), failure_reason=body.get("failure_reason"),
        k=body.get("k"), customer=customer, terminal=body.get("terminal") or {},
        debug=body["debug"], request_id=request_id(body), locale=body.get("locale"),
        event=body.get("event"))
    with service().slot.lease() as engine:
        return json_response(engine.recommend(request).to_dict())
