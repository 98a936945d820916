"""POST /v1/feedback: durable, idempotent on event_id, validated."""

from __future__ import annotations

import time

import pytest
from api_support import check_problem

EVENT = {"request_id": "req-1", "product": "cloud_storage", "action": "accept",
         "customer_id": "C0000042", "channel": "app", "moment": "success",
         "strategies": ["cf", "association"]}


def stored_ids(app) -> set[str]:
    return {e.event_id for e in app.extensions["recommender"].slot.engine.store.feedback()}


def test_new_event_is_201_and_in_the_store(app, client):
    r = client.post("/v1/feedback", json={**EVENT, "event_id": "fb-new-1", "ts": 1764000000})
    assert r.status_code == 201
    assert r.get_json() == {"event_id": "fb-new-1", "stored": True}
    [event] = [e for e in app.extensions["recommender"].slot.engine.store.feedback()
               if e.event_id == "fb-new-1"]
    assert (event.product, event.action, event.ts, event.strategies) == (
        "cloud_storage", "accept", 1764000000, ("cf", "association"))


def test_a_retry_is_200_and_stored_once(app, client):
    first = client.post("/v1/feedback", json={**EVENT, "event_id": "fb-retry"})
    again = client.post("/v1/feedback", json={**EVENT, "event_id": "fb-retry"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json() == {"event_id": "fb-retry", "stored": False}
    events = [e for e in app.extensions["recommender"].slot.engine.store.feedback()
              if e.event_id == "fb-retry"]
    assert [e.action for e in events] == ["accept"]


@pytest.mark.parametrize(("change", "fields"), [
    ({"action": "dismiss"}, ["action"]),
    ({"product": "intl_sms", "customer_id": "C0000043"}, ["product", "customer_id"]),
    ({"ts": 1764000001}, ["ts"]),
    ({"strategies": ["cf"]}, ["strategies"]),
    ({"request_id": "req-2"}, ["request_id"]),
    ({"experiment": "other_test", "arm": "b"}, ["experiment", "arm"]),
])
def test_an_event_id_reused_for_another_event_is_a_409_and_nothing_changes(
        app, client, change, fields):
    event_id = f"fb-reused-{'-'.join(fields)}"
    first = client.post("/v1/feedback", json={**EVENT, "event_id": event_id, "ts": 1764000000})
    assert first.status_code == 201
    clash = client.post("/v1/feedback", json={**EVENT, "event_id": event_id, "ts": 1764000000,
                                              **change})
    body = check_problem(clash, 409)
    assert sorted(body["errors"]) == sorted(fields)
    assert f"event_id {event_id!r} was already stored for a different event" in body["detail"]
    [kept] = [e for e in app.extensions["recommender"].slot.engine.store.feedback()
              if e.event_id == event_id]
    assert (kept.action, kept.product, kept.ts) == ("accept", "cloud_storage", 1764000000)


def test_a_retry_without_ts_matches_whatever_time_the_server_set(client):
    body = {**EVENT, "event_id": "fb-no-ts"}
    assert client.post("/v1/feedback", json=body).status_code == 201
    assert client.post("/v1/feedback", json=body).status_code == 200


def test_without_event_id_the_server_assigns_one(app, client):
    body = client.post("/v1/feedback", json={"request_id": "r", "product": "caller_id",
                                             "action": "impression"}).get_json()
    assert body["stored"] and body["event_id"] in stored_ids(app)


@pytest.mark.parametrize(("change", "field"), [
    ({"action": "buy"}, "action"),
    ({"action": None}, "action"),
    ({"product": "no_such"}, "product"),
    ({"product": ""}, "product"),
    ({"request_id": None}, "request_id"),
    ({"event_id": "a b"}, "event_id"),
    ({"event_id": "x" * 65}, "event_id"),
    ({"ts": -1}, "ts"),
    ({"ts": "yesterday"}, "ts"),
    ({"ts": 2**41}, "ts"),                  # year 71654: would break the customer's answers
    ({"ts": int(time.time()) + 3600}, "ts"),  # an hour ahead of the server's clock
    ({"ts": int(time.time() * 1000)}, "ts"),  # milliseconds
    ({"event_id": "fb-bad\n"}, "event_id"),
    ({"channel": "fax"}, "channel"),
    ({"moment": "never"}, "moment"),
    ({"strategies": "cf"}, "strategies"),
    ({"strategies": ["s"] * 33}, "strategies"),
    ({"score": 1}, "score"),
])
def test_invalid_feedback_is_a_422_and_nothing_is_stored(app, client, change, field):
    before = stored_ids(app)
    body = {k: v for k, v in {**EVENT, "event_id": "fb-bad", **change}.items() if v is not None}
    problem = check_problem(client.post("/v1/feedback", json=body), 422)
    assert field in problem["errors"]
    assert stored_ids(app) == before


def test_feedback_dated_a_little_ahead_is_taken_far_ahead_is_explained(client):
    """Another machine's clock may run a minute ahead; an hour is a client sending local time
    or milliseconds, told what to send."""
    ahead = client.post("/v1/feedback", json={**EVENT, "event_id": "fb-ahead",
                                              "ts": int(time.time()) + 60})
    assert ahead.status_code == 201
    far = check_problem(client.post("/v1/feedback", json={
        **EVENT, "event_id": "fb-far", "ts": int(time.time() * 1000)}), 422)
    assert "ahead of the server's clock" in far["errors"]["ts"][0]
    assert "milliseconds" in far["errors"]["ts"][0]
