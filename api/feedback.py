"""``POST /v1/feedback``: what the customer did with a suggestion, stored before it is acked."""

from __future__ import annotations

import uuid
from typing import Any

from flask_smorest import abort

from recommender.store import FeedbackEvent, now

from .schemas import FeedbackAckSchema, FeedbackRequestSchema
from .state import Blueprint, service

blp = Blueprint("feedback", __name__, url_prefix="/v1",
                description="Impressions, clicks, accepts and dismissals of suggestions.")


@blp.route("/feedback", methods=["POST"])
@blp.arguments(FeedbackRequestSchema, example={
    "event_id": "app-7f3c-0001", "request_id": "4b1e0c", "product": "cloud_storage",
    "action": "accept", "customer_id": "C0000042", "channel": "app", "moment": "success"})
@blp.response(201, FeedbackAckSchema, description="Stored (committed durably).")
@blp.alt_response(200, schema=FeedbackAckSchema,
                  description="Already stored under this event id; nothing changed.")
@blp.alt_response(400, description="The body is not valid JSON.")
@blp.alt_response(415, description="The body is not application/json.")
@blp.alt_response(422, description="A field is missing or out of its contract.")
def add_feedback(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Record one feedback event durably; idempotent on ``event_id``.

    The answer is sent only after the event is committed to the store, so an acknowledged event
    is never lost. Send a client-chosen ``event_id`` and retry freely: a repeat is stored once
    and answered 200 instead of 201.
    """
    state = service()
    with state.slot.lease() as engine:
        if body["product"] not in engine.catalog:
            abort(422, messages={"json": {"product": [f"unknown product {body['product']!r}"]}})
        event = FeedbackEvent(
            event_id=body.get("event_id") or uuid.uuid4().hex, request_id=body["request_id"],
            product=body["product"], action=body["action"], ts=body.get("ts") or now(),
            customer_id=body.get("customer_id"), channel=body.get("channel"),
            moment=body.get("moment"), strategies=tuple(body.get("strategies") or ()))
        stored = engine.record_feedback(event)
    state.metrics.feedback.labels(action=event.action,
                                  outcome="stored" if stored else "duplicate").inc()
    return {"event_id": event.event_id, "stored": stored}, 201 if stored else 200
