"""The API as deployed: `recommender serve` (gunicorn, two workers) on loopback, real HTTP."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time

import pytest
from api_support import ADMIN_TOKEN, call, copy_workspace, free_port, serving

from recommender.models import current_model_dir, set_current
from recommender.store import Store

BODY = {"customer": {"id": "C0000042"}, "channel": "app", "moment": "success",
        "product": "plan_5g"}


@pytest.fixture(scope="module")
def server(sample_workspace, tmp_path_factory):
    """A two-worker gunicorn server on a workspace with two model versions, serving the first."""
    ws = copy_workspace(sample_workspace, tmp_path_factory.mktemp("served") / "ws")
    first = current_model_dir(ws.models_path).name
    time.sleep(1.1)  # version ids carry the second they were trained in
    second = ws.train().name
    set_current(ws.models_path, first)
    env = {"RECOMMENDER_ADMIN_TOKEN": ADMIN_TOKEN, "RECOMMENDER_RELOAD_POLL_SECONDS": "0.2"}
    with serving(ws.root, ws.root / "server.log", "--workers", "2", "--threads", "4",
                 "--no-access-log", env=env) as (base, process):
        yield {"base": base, "ws": ws, "first": first, "second": second, "process": process}
    shutil.rmtree(ws.root, ignore_errors=True)


@pytest.mark.parametrize(("moment", "extra"), [
    ("query", {}), ("transaction", {"product": "plan_5g"}), ("success", {"product": "plan_5g"}),
    ("failure", {"product": "plan_5g_newsim", "failure_reason": "not_eligible"}),
])
def test_each_moment_over_http(server, moment, extra):
    status, ctype, body = call(server["base"], "POST", "/v1/recommendations",
                               {"customer": {"id": "C0000042"}, "channel": "app",
                                "moment": moment, **extra})
    assert (status, ctype) == (200, "application/json")
    assert body["suggestions"] and body["model_version"] == server["first"]


@pytest.mark.parametrize(("raw", "headers", "status"), [
    (b"{oops", {}, 400),
    (b'{"a": 1}', {"Content-Type": "text/plain"}, 415),
    (b"x" * 70_000, {}, 413),
])
def test_errors_over_http_are_problem_details(server, raw, headers, status):
    got, ctype, body = call(server["base"], "POST", "/v1/recommendations", raw=raw,
                            headers=headers)
    assert (got, ctype) == (status, "application/problem+json")
    assert body["status"] == status and body["detail"]


def test_unknown_path_over_http(server):
    status, ctype, body = call(server["base"], "GET", "/admin.php")
    assert (status, ctype, body["status"]) == (404, "application/problem+json", 404)


def test_concurrent_feedback_is_all_stored_exactly_once(server):
    threads, per_thread = 8, 40
    acked: list[str] = []
    lock = threading.Lock()

    def send(t: int) -> None:
        for i in range(per_thread):
            event_id = f"live-{t}-{i}"
            body = {"event_id": event_id, "request_id": f"r{t}", "product": "caller_id",
                    "action": "click"}
            for _ in range(2 if i % 5 == 0 else 1):  # every fifth is retried
                for attempt in range(100):  # 503 is back-pressure: retry, as the API asks
                    status, _, reply = call(server["base"], "POST", "/v1/feedback", body)
                    if status != 503:
                        break
                    time.sleep(0.02 * (attempt + 1))
                if status not in (200, 201):
                    return
            with lock:
                acked.append(event_id)

    workers = [threading.Thread(target=send, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(acked) == threads * per_thread
    with Store(server["ws"].store_path) as store:
        stored = [e.event_id for e in store.feedback() if e.event_id.startswith("live-")]
    assert sorted(stored) == sorted(acked)


def test_reload_under_load_drops_nothing_and_every_answer_names_its_model(server):
    base, first, second = server["base"], server["first"], server["second"]
    results: list[tuple[float, int, str | None]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            status, _, body = call(base, "POST", "/v1/recommendations", BODY)
            with lock:
                results.append((time.monotonic(), status,
                                body.get("model_version") if isinstance(body, dict) else None))

    clients = [threading.Thread(target=hammer) for _ in range(6)]
    for c in clients:
        c.start()
    time.sleep(1.0)
    status, _, body = call(base, "POST", "/v1/admin/reload",
                           headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                           body={"version": second})
    reloaded_at = time.monotonic()
    time.sleep(2.0)
    stop.set()
    for c in clients:
        c.join()
    assert status == 200 and body == {"previous_version": first, "model_version": second}
    assert len(results) > 50
    assert {s for _, s, _ in results} == {200}
    assert {v for _, _, v in results} == {first, second}
    settled = [v for t, _, v in results if t > reloaded_at + 1.0]
    assert settled and set(settled) == {second}  # both workers followed


def test_metrics_sum_over_workers(server):
    before = _count(call(server["base"], "GET", "/metrics")[2])
    for _ in range(10):
        call(server["base"], "POST", "/v1/recommendations", BODY)
    assert _count(call(server["base"], "GET", "/metrics")[2]) == before + 10


def _count(text: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("recommender_http_requests_total{") and \
                'endpoint="/v1/recommendations"' in line and 'status="200"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_dev_server_serves_the_same_app(sample_workspace, tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "recommender.cli", "serve", "--dir", str(sample_workspace.root),
         "--port", str(port), "--dev"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _, body = call(base, "GET", "/healthz")
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert (status, body) == (200, {"status": "ok"})
        status, _, body = call(base, "POST", "/v1/recommendations", BODY)
        assert status == 200 and body["suggestions"]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_refuses_a_folder_without_a_workspace(tmp_path):
    result = subprocess.run([sys.executable, "-m", "recommender.cli", "serve", "--dir",
                             str(tmp_path / "none"), "--port", str(free_port())],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "recommender quickstart" in result.stderr


@pytest.mark.parametrize(("name", "text", "fragment"), [
    ("rules.toml", "[[rule]\n", "rules.toml"),
    ("catalog.toml", "[[product]]\nid = 1\n", "catalog.toml"),
    ("config.toml", "[engine]\ncandidate_pool = 1e18\n", "candidate_pool"),
])
def test_serve_with_a_broken_file_stops_at_once_naming_it(sample_workspace, tmp_path, name,
                                                           text, fragment):
    ws = tmp_path / "ws"
    shutil.copytree(sample_workspace.root, ws)
    (ws / name).write_text(text)
    result = subprocess.run([sys.executable, "-m", "recommender.cli", "serve", "--dir", str(ws),
                             "--port", str(free_port())], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    assert fragment in result.stderr and "Traceback" not in result.stderr
    assert "Worker failed to boot" not in result.stderr
