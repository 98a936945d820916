"""POST /v1/admin/reload: token-protected, atomic, refuses a bad model, followed by all workers."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest
from api_support import ADMIN_TOKEN, check_problem, copy_workspace, make_app

from recommender.models import MANIFEST, current_model_dir

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BODY = {"customer": {"id": "C0000042"}, "channel": "app", "moment": "success",
        "product": "plan_5g"}


@pytest.fixture(scope="module")
def two_versions(sample_workspace, tmp_path_factory):
    """A workspace whose first version is served by an app, and a second trained after it."""
    ws = copy_workspace(sample_workspace, tmp_path_factory.mktemp("admin") / "ws")
    first = current_model_dir(ws.models_path).name
    app = make_app(ws.root, admin_token=ADMIN_TOKEN, reload_poll_seconds=0.05)
    time.sleep(1.1)  # version ids carry the second they were trained in
    second = ws.train().name
    yield ws, app, first, second
    app.extensions["recommender"].slot.close()


def copy_version(source: Path, target: Path) -> None:
    """A copy of a model version under another name, its manifest saying so."""
    shutil.copytree(source, target)
    manifest = json.loads((target / MANIFEST).read_text())
    manifest["version"] = target.name
    (target / MANIFEST).write_text(json.dumps(manifest))


def served_version(client) -> str:
    r = client.post("/v1/recommendations", json=BODY)
    assert r.status_code == 200
    return r.get_json()["model_version"]


def test_admin_is_off_without_a_configured_token(client, api_workspace):
    app = make_app(api_workspace.root)  # no admin_token
    problem = check_problem(app.test_client().post("/v1/admin/reload", headers=AUTH), 403)
    assert "RECOMMENDER_ADMIN_TOKEN" in problem["detail"]
    app.extensions["recommender"].slot.close()


@pytest.mark.parametrize("header", [
    None, "Bearer", "Bearer wrong-token-000000000", f"Basic {ADMIN_TOKEN}",
    f"Bearer {ADMIN_TOKEN}x", f"Bearer {ADMIN_TOKEN[:-1]}"])
def test_a_missing_or_wrong_token_is_401(client, header):
    headers = {} if header is None else {"Authorization": header}
    response = client.post("/v1/admin/reload", headers=headers)
    check_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_reload_swaps_in_the_new_version_and_back(two_versions):
    ws, app, first, second = two_versions
    client = app.test_client()
    assert served_version(client) == first
    body = client.post("/v1/admin/reload", headers=AUTH).get_json()
    assert body == {"previous_version": first, "model_version": second}
    assert served_version(client) == second
    assert client.get("/v1/strategies").get_json()["model_version"] == second
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f'recommender_model_info{{version="{second}"}} 1.0' in metrics
    back = client.post("/v1/admin/reload", headers=AUTH, json={"version": first}).get_json()
    assert back["model_version"] == first and served_version(client) == first
    assert current_model_dir(ws.models_path).name == first  # a restart serves the same


@pytest.mark.parametrize("damage", ["truncate", "tamper", "remove_manifest", "missing"])
def test_a_bad_model_is_refused_and_the_old_one_keeps_serving(two_versions, damage):
    ws, app, first, second = two_versions
    client = app.test_client()
    serving = served_version(client)
    bad = ws.models_path / f"bad-{damage}"
    shutil.rmtree(bad, ignore_errors=True)
    if damage != "missing":
        copy_version(ws.models_path / second, bad)
        artifact = next(p for p in sorted(bad.rglob("*.npz")))
        if damage == "truncate":
            artifact.write_bytes(artifact.read_bytes()[:100])
        elif damage == "tamper":
            data = bytearray(artifact.read_bytes())
            data[-10] ^= 0xFF
            artifact.write_bytes(bytes(data))
        else:
            (bad / "manifest.json").unlink()
    response = client.post("/v1/admin/reload", headers=AUTH, json={"version": bad.name})
    problem = check_problem(response, 409)
    assert "keeps serving" in problem["detail"]
    assert str(ws.root) not in response.get_data(as_text=True)
    assert served_version(client) == serving
    assert current_model_dir(ws.models_path).name == serving


@pytest.mark.parametrize("version", ["../models", "/etc", ".hidden", "", "a b"])
def test_version_must_be_a_plain_folder_name(client, version):
    problem = check_problem(client.post("/v1/admin/reload", headers=AUTH,
                                        json={"version": version}), 422)
    assert "version" in problem["errors"]


def test_reload_under_concurrent_requests_drops_none(two_versions):
    ws, app, first, second = two_versions
    client = app.test_client()
    client.post("/v1/admin/reload", headers=AUTH, json={"version": first})
    results: list[tuple[int, str | None]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def hammer():
        c = app.test_client()
        while not stop.is_set():
            r = c.post("/v1/recommendations", json=BODY)
            with lock:
                results.append((r.status_code, (r.get_json() or {}).get("model_version")))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    swapped = client.post("/v1/admin/reload", headers=AUTH, json={"version": second})
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert swapped.status_code == 200
    assert len(results) > 20
    assert {status for status, _ in results} == {200}
    versions = [v for _, v in results]
    assert set(versions) == {first, second}
    assert versions[-1] == second


def test_other_workers_follow_a_reload(two_versions):
    """Two apps over one workspace stand for two gunicorn workers."""
    ws, app, first, second = two_versions
    app.test_client().post("/v1/admin/reload", headers=AUTH, json={"version": first})
    other = make_app(ws.root, admin_token=ADMIN_TOKEN, reload_poll_seconds=0.05)
    try:
        assert served_version(other.test_client()) == first
        app.test_client().post("/v1/admin/reload", headers=AUTH, json={"version": second})
        time.sleep(0.1)
        assert served_version(other.test_client()) == second
    finally:
        other.extensions["recommender"].slot.close()
