"""``POST /v1/feedback``: what the customer did with a suggestion, stored before it is acked.

SQLite takes one writer at a time, and a large ``recommender import`` writes in transactions of
about a quarter of a second. A feedback write waits at most ``FEEDBACK_BUSY_TIMEOUT_S`` for the
lock and otherwise answers 503 with ``Retry-After``; at most ``threads - 1`` requests of a
process write at once (a short wait for a slot, then 503), so writers waiting for the lock can
never hold every request thread and recommendations keep being answered.
"""

from __future__ import annotations

import logging
import threading
import uuid
from contextlib import nullcontext
from typing import Any

from flask import Response, current_app
from flask_smorest import abort

from recommender.store import FeedbackEvent, StoreBusyError, StoreError, now

from .problems import problem
from .schemas import FeedbackAckSchema, FeedbackRequestSchema
from .state import Blueprint, ServiceState, service

log = logging.getLogger("recommender.api")

#: Longest a feedback write waits for another writer (an import) to release the store (s).
FEEDBACK_BUSY_TIMEOUT_S = 1.0
#: Longest a request waits for one of its process's writer slots before answering 503 (s).
FEEDBACK_SLOT_WAIT_S = 0.1
#: Retry-After of a 503 because the store was busy (s).
RETRY_AFTER_BUSY_S = 1
#: Retry-After of a 503 because the store cannot be written at all (disk full, read-only) (s).
RETRY_AFTER_FAILED_S = 30

_SLOTS_KEY = "recommender.feedback_writers"
_slots_lock = threading.Lock()

blp = Blueprint("feedback", __name__, url_prefix="/v1",
                description="Impressions, clicks, accepts and dismissals of suggestions.")


def writer_slots(threads: int) -> int:
    """Concurrent feedback writers allowed in a process with ``threads`` request threads."""
    return max(1, threads - 1)


#: Body fields that identify an event, and the stored event's attribute for each.
IDENTITY = {"request_id": "request_id", "product": "product", "action": "action",
            "customer_id": "customer_id", "channel": "channel", "moment": "moment",
            "ts": "ts", "strategies": "strategies", "experiment": "experiment", "arm": "arm"}


def _differences(body: dict[str, Any], stored: FeedbackEvent | None, sent: FeedbackEvent
                 ) -> list[str]:
    """The fields of a repeated ``event_id`` whose values differ from the stored event's: a
    retry sends the same event; anything else is a client reusing an id. Fields the client
    left out (a server-set ``ts``) are not compared."""
    if stored is None:
        return []
    return [field for field, attribute in IDENTITY.items()
            if field in body and getattr(sent, attribute) != getattr(stored, attribute)]


def _writers(state: ServiceState) -> threading.BoundedSemaphore:
    """This app's semaphore of feedback writer slots (one per process)."""
    extensions = current_app.extensions
    slots = extensions.get(_SLOTS_KEY)
    if slots is None:
        with _slots_lock:
            slots = extensions.get(_SLOTS_KEY)
            if slots is None:
                slots = threading.BoundedSemaphore(writer_slots(state.settings.threads))
                extensions[_SLOTS_KEY] = slots
    return slots


def _unavailable(state: ServiceState, action: str, outcome: str, detail: str,
                 retry_after: int) -> Response:
    state.metrics.feedback.labels(action=action, outcome=outcome).inc()
    return problem(503, detail, headers={"Retry-After": str(retry_after)})


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
@blp.alt_response(
    409, description="The event_id was already stored for a different event (another product, "
                "action, customer...); nothing was stored.")
@blp.alt_response(
    503, description="Not stored: the store is busy with another writer (an import) or cannot be "
                "written. Nothing was recorded; send the same event again after Retry-After "
                "seconds.",
    headers={"Retry-After": {"description": "Seconds to wait before sending the event again.",
                             "schema": {"type": "integer", "minimum": 1}}})
def add_feedback(body: dict[str, Any]) -> tuple[dict[str, Any], int] | Response:
    """Record one feedback event durably; idempotent on ``event_id``.

    The answer is sent only after the event is committed to the store, so an acknowledged event
    is never lost. Send a client-chosen ``event_id`` and retry freely: a repeat is stored once
    and answered 200 instead of 201; the same ``event_id`` with a different event is a 409
    (nothing stored). A 503 means nothing was stored: retry after
    ``Retry-After`` seconds with the same ``event_id``.

    Send back the response's ``experiment`` and ``arm`` when it had them. Without them, an
    event naming ``customer_id`` is attributed to the customer's arm of the experiment that
    covers its ``channel`` and ``moment`` at ``ts`` in the configuration served now (none when
    no experiment, or more than one, could have served it).
    """
    state = service()
    with state.slot.lease() as engine:
        if body["product"] not in engine.catalog:
            abort(422, messages={"json": {"product": [f"unknown product {body['product']!r}"]}})
        ts = body.get("ts") or now()
        experiment, arm = body.get("experiment"), body.get("arm")
        if experiment is None:  # recomputed from the experiments configured now, if certain
            experiment, arm = engine.experiments.attribute(
                body.get("customer_id"), body.get("channel"), body.get("moment"), ts
            ) or (None, None)
        event = FeedbackEvent(
            event_id=body.get("event_id") or uuid.uuid4().hex, request_id=body["request_id"],
            product=body["product"], action=body["action"], ts=ts,
            customer_id=body.get("customer_id"), channel=body.get("channel"),
            moment=body.get("moment"), strategies=tuple(body.get("strategies") or ()),
            experiment=experiment, arm=arm)
        counted = engine.experiments.knows(experiment, arm)  # bounded metric labels
        writers = _writers(state)
        if not writers.acquire(timeout=FEEDBACK_SLOT_WAIT_S):
            return _unavailable(
                state, event.action, "busy",
                f"the store is busy: every feedback writer of this server process is waiting "
                f"for it; nothing was stored, retry after {RETRY_AFTER_BUSY_S} s",
                RETRY_AFTER_BUSY_S)
        try:
            store = engine.store
            budget = store.busy_timeout(FEEDBACK_BUSY_TIMEOUT_S) if store is not None \
                else nullcontext()
            with budget:
                stored = engine.record_feedback(event)
        except StoreBusyError:
            return _unavailable(
                state, event.action, "busy",
                f"the store is busy with another writer (an import) for more than "
                f"{FEEDBACK_BUSY_TIMEOUT_S:g} s; nothing was stored, retry after "
                f"{RETRY_AFTER_BUSY_S} s", RETRY_AFTER_BUSY_S)
        except StoreError as e:
            log.error("feedback not stored: the store cannot be written (%s)",
                      e.code or type(e).__name__)
            return _unavailable(
                state, event.action, "store_error",
                f"the store cannot be written now ({e.code or 'store error'}); nothing was "
                f"stored, retry after {RETRY_AFTER_FAILED_S} s", RETRY_AFTER_FAILED_S)
        finally:
            writers.release()
        if not stored:
            clash = _differences(body, engine.store.feedback_event(event.event_id), event)
            if clash:
                return problem(409, f"event_id {event.event_id!r} was already stored for a "
                                    f"different event ({', '.join(clash)} differ); nothing was "
                                    f"stored: send a new event_id for a new event",
                               errors={name: ["differs from the stored event"] for name in clash})
    state.metrics.feedback.labels(action=event.action,
                                  outcome="stored" if stored else "duplicate").inc()
    if stored and counted:
        state.metrics.experiment_feedback.labels(experiment=event.experiment, arm=event.arm,
                                                 action=event.action).inc()
    return {"event_id": event.event_id, "stored": stored}, 201 if stored else 200
