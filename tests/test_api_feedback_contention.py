"""POST /v1/feedback while another writer holds the store: answered 503 with Retry-After
within its budget, never 500; feedback writers never hold every request thread; what is
acknowledged during a large import is stored."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from api_support import check_problem, copy_workspace
from test_store import held_lock

from api.feedback import (
    FEEDBACK_BUSY_TIMEOUT_S,
    FEEDBACK_SLOT_WAIT_S,
    RETRY_AFTER_BUSY_S,
    RETRY_AFTER_FAILED_S,
    writer_slots,
)
from recommender.context import CHANNEL_IDS
from recommender.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
from _server import Server  # noqa: E402

EVENT = {"request_id": "req-c", "product": "cloud_storage", "action": "click",
         "customer_id": "C0000042", "channel": "app", "moment": "success"}
RECOMMEND = {"customer": {"id": "C0000042"}, "channel": "app", "moment": "success",
             "product": "plan_5g"}
#: Slack for a loaded two-core test machine on top of each budget.
SLACK_S = 1.0


def store_of(app) -> Store:
    return app.extensions["recommender"].slot.engine.store


def stored_ids(app) -> set[str]:
    return {e.event_id for e in store_of(app).feedback()}


# -- in process -------------------------------------------------------------------------------

def test_feedback_while_another_writer_holds_the_store_is_503_with_retry_after(app, client):
    with held_lock(store_of(app).path, FEEDBACK_BUSY_TIMEOUT_S + 2):
        started = time.monotonic()
        response = client.post("/v1/feedback", json={**EVENT, "event_id": "held-1"})
        waited = time.monotonic() - started
    body = check_problem(response, 503)  # also checked against the OpenAPI document
    assert response.headers["Retry-After"] == str(RETRY_AFTER_BUSY_S)
    assert FEEDBACK_BUSY_TIMEOUT_S * 0.9 <= waited < FEEDBACK_BUSY_TIMEOUT_S + SLACK_S
    assert body["detail"].startswith("the store is busy with another writer")
    assert "held-1" not in stored_ids(app)
    again = client.post("/v1/feedback", json={**EVENT, "event_id": "held-1"})
    assert again.status_code == 201 and "held-1" in stored_ids(app)


def test_writers_beyond_the_slots_are_refused_at_once(app):
    """With every writer slot waiting for the store, one more feedback request does not wait
    for the store (it would hold the last request thread): 503 after the short slot wait."""
    slots = writer_slots(app.extensions["recommender"].settings.threads)
    answers: list[tuple[int, float]] = []

    def post(event_id: str) -> None:
        started = time.monotonic()
        response = app.test_client().post("/v1/feedback", json={**EVENT, "event_id": event_id})
        answers.append((response.status_code, time.monotonic() - started))

    with held_lock(store_of(app).path, FEEDBACK_BUSY_TIMEOUT_S + 2):
        waiting = [threading.Thread(target=post, args=(f"slot-{i}",)) for i in range(slots)]
        for t in waiting:
            t.start()
        time.sleep(0.3)  # every slot is taken and waiting for the store
        started = time.monotonic()
        response = app.test_client().post("/v1/feedback", json={**EVENT, "event_id": "extra"})
        refused_in = time.monotonic() - started
        for t in waiting:
            t.join()
    body = check_problem(response, 503)
    assert response.headers["Retry-After"] == str(RETRY_AFTER_BUSY_S)
    assert "every feedback writer of this server process" in body["detail"]
    assert refused_in < FEEDBACK_SLOT_WAIT_S + 0.5
    assert sorted(status for status, _ in answers) == [503] * slots
    assert not {"extra", *(f"slot-{i}" for i in range(slots))} & stored_ids(app)


def test_feedback_on_a_full_disk_is_503_not_500(app, client):
    db = store_of(app).db  # the test client answers in this thread, on this connection
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")
    try:
        for i in range(5000):
            response = client.post("/v1/feedback", json={**EVENT, "event_id": f"full-{i}"})
            if response.status_code != 201:
                break
    finally:
        db.execute("PRAGMA max_page_count = 1073741823")
    body = check_problem(response, 503)
    assert response.headers["Retry-After"] == str(RETRY_AFTER_FAILED_S)
    assert "SQLITE_FULL" in body["detail"] and "nothing was stored" in body["detail"]
    assert f"full-{i}" not in stored_ids(app)
    assert client.post("/v1/feedback", json={**EVENT, "event_id": f"full-{i}"}
                       ).status_code == 201


def test_the_503_is_in_the_openapi_document(app):
    spec = app.extensions["recommender"].api.spec.to_dict()
    answer = spec["paths"]["/v1/feedback"]["post"]["responses"]["503"]
    assert "Retry-After" in answer["headers"]
    assert answer["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"}


# -- a real server: two worker processes, four threads each ----------------------------------

def post(base: str, path: str, body: Any, timeout: float = 30
         ) -> tuple[int, dict[str, str], float]:
    """(status, headers, seconds); status 0 for a dropped connection."""
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                     method="POST",
                                     headers={"Content-Type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            r.read()
            status, headers = r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        e.read()
        status, headers = e.code, dict(e.headers)
    except OSError:
        status, headers = 0, {}
    return status, headers, time.monotonic() - started


@pytest.fixture(scope="module")
def served(sample_workspace, tmp_path_factory):
    ws = copy_workspace(sample_workspace, tmp_path_factory.mktemp("contention") / "ws")
    with Server(ws.root, workers=2, threads=4) as server:
        yield server, ws


def test_recommendations_are_answered_while_feedback_waits_for_a_held_store(served):
    """The SRE's fault: with the store held, feedback filled every thread and recommendations
    hung. Now feedback is refused within its budget and recommendations keep flowing."""
    server, ws = served
    hold_s = FEEDBACK_BUSY_TIMEOUT_S + 4
    feedback: list[tuple[int, dict[str, str], float]] = []
    recommendations: list[tuple[int, dict[str, str], float]] = []

    def client(i: int) -> None:
        feedback.append(post(server.base, "/v1/feedback", {**EVENT, "event_id": f"srv-{i}"}))

    with held_lock(ws.store_path, hold_s):
        held_at = time.monotonic()
        clients = [threading.Thread(target=client, args=(i,)) for i in range(12)]
        for c in clients:
            c.start()
        time.sleep(0.3)
        for _ in range(3):
            recommendations.append(post(server.base, "/v1/recommendations", RECOMMEND))
        answered_within = time.monotonic() - held_at
        for c in clients:
            c.join()
    assert [r[0] for r in recommendations] == [200, 200, 200]
    assert answered_within < hold_s - 1  # answered while the store was still held
    assert max(r[2] for r in recommendations) < 2.0
    assert sorted({status for status, _, _ in feedback}) == [503]
    assert all(h.get("Retry-After") == str(RETRY_AFTER_BUSY_S) for _, h, _ in feedback)
    assert max(s for _, _, s in feedback) < FEEDBACK_BUSY_TIMEOUT_S + SLACK_S


def test_feedback_is_stored_within_its_budget_while_a_large_import_runs(served, catalog,
                                                                        tmp_path):
    server, ws = served
    with Store(ws.store_path) as store:
        customers = store.customer_ids()
        before = store.count("events")
    rows = 150_000
    rng = random.Random(3)
    path = tmp_path / "events.csv"
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["ts", "customer_id", "product_id", "channel", "kind"])
        for _ in range(rows):
            out.writerow([1_760_000_000 + rng.randrange(10_000_000), rng.choice(customers),
                          rng.choice(list(catalog.ids)), rng.choice(CHANNEL_IDS), "query"])
    answers: list[tuple[int, dict[str, str], float]] = []
    acked: list[str] = []
    importing = subprocess.Popen([sys.executable, "-m", "recommender.cli", "import", "--dir",
                                  str(ws.root), "events", str(path)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def client(t: int) -> None:
        i = 0
        while importing.poll() is None:
            event_id = f"imp-{t}-{i}"
            while True:
                answer = post(server.base, "/v1/feedback", {**EVENT, "event_id": event_id})
                answers.append(answer)
                if answer[0] in (200, 201):
                    acked.append(event_id)
                    break
                time.sleep(float(answer[1].get("Retry-After", 1)) if answer[0] == 503
                           else 0.1)
            i += 1

    clients = [threading.Thread(target=client, args=(t,)) for t in range(4)]
    for c in clients:
        c.start()
    _, err = importing.communicate(timeout=600)
    for c in clients:
        c.join()
    assert importing.returncode == 0, err
    statuses = {status for status, _, _ in answers}
    assert statuses <= {200, 201, 503}, statuses
    assert all(h.get("Retry-After") for status, h, _ in answers if status == 503)
    assert max(s for _, _, s in answers) < FEEDBACK_BUSY_TIMEOUT_S + SLACK_S
    assert len(acked) >= 20
    with Store(ws.store_path) as store:
        found = {r[0] for r in store.db.execute(
            "SELECT event_id FROM feedback WHERE event_id LIKE 'imp-%'")}
        assert set(acked) <= found
        assert store.count("events") == before + rows
