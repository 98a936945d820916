"""``POST /v1/checks``: the pre-order check alone, for a channel that only wants the verdict."""

from __future__ import annotations

from typing import Any

from recommender.engine import RecommendationRequest
from recommender.experiments import ANONYMOUS

from .schemas import CheckRequestSchema, CheckResponseSchema
from .state import Blueprint, request_id, service

blp = Blueprint(
    "checks",
    __name__,
    url_prefix="/v1",
    description="Whether an order will succeed, before it is placed.",
)


@blp.route("/checks", methods=["POST"])
@blp.arguments(
    CheckRequestSchema,
    example={
        "customer": {"id": "C0000042"},
        "terminal": {"network": "4G"},
        "channel": "app",
        "product": "plan_5g",
        "locale": "zh-CN",
    },
)
@blp.response(200, CheckResponseSchema)
@blp.alt_response(400, description="The body is not valid JSON.")
@blp.alt_response(413, description="The body is larger than the configured limit.")
@blp.alt_response(415, description="The body is not application/json.")
@blp.alt_response(
    422, description="A field is missing or out of its contract; ``errors`` names it."
)
def check(body: dict[str, Any]) -> dict[str, Any]:
    """Say whether ordering a business will succeed for this customer, terminal and channel.

    Runs every eligibility check on the business (holdings, conflicts, prerequisites,
    terminal, customer conditions, eligibility plugins) and then the channel. When it will
    fail, ``reason`` and ``detail`` name the obstacle and ``alternatives`` are what works
    instead, as the failure moment would serve them. Nothing is ordered or recorded.
    """
    customer = dict(body["customer"])
    customer_id = customer.pop("id", None) or ANONYMOUS
    request = RecommendationRequest(
        customer_id=customer_id,
        channel=body["channel"],
        moment="transaction",
        product=body["product"],
        customer=customer,
        terminal=body.get("terminal") or {},
        request_id=request_id(body),
        locale=body.get("locale"),
    )
    with service().slot.lease() as engine:
        context, _ = engine.build_context(request)
        result = engine.check(context)
    return {
        "request_id": context.request_id,
        "channel": context.channel.id,
        "locale": context.locale,
        "check": result.to_dict(),
    }
