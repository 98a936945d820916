"""Model versions in the console: listed with training date, strategies, data size and
offline metrics; activated or rolled back through the admin reload."""

from __future__ import annotations

import json
import re
import shutil
import time

import pytest
from api_support import copy_workspace
from console_support import close, console_app, csrf_of, signed_in, text

from api.console.models import previous, versions
from recommender.models import MANIFEST, current_model_dir

BODY = {"customer": {"id": "C0000744"}, "channel": "app", "moment": "query"}


@pytest.fixture(scope="module")
def workspace(sample_workspace, tmp_path_factory):
    """Two trained versions; the newer is current."""
    ws = copy_workspace(sample_workspace, tmp_path_factory.mktemp("console-models") / "ws")
    time.sleep(1.1)  # version names carry the second they were trained in
    ws.train()
    return ws


@pytest.fixture
def app(workspace):
    app = console_app(workspace.root, reload_poll_seconds=0)
    yield app
    close(app)


@pytest.fixture
def client(app):
    return signed_in(app)


def names(workspace) -> list[str]:
    return [v.name for v in versions(workspace.models_path)]


def test_versions_are_listed_newest_first_with_what_they_were_trained_on(client, workspace):
    newest, older = names(workspace)
    reports = workspace.root / "reports"
    reports.mkdir(exist_ok=True)
    (reports / f"{older}.json").write_text(json.dumps({
        "cf": {"ndcg@10": 0.5123, "precision@10": 0.25, "ndcg@5": 0.4},
        "popularity": {"ndcg@10": 0.3}}))
    html = text(client.get("/console/models/"))
    assert html.index(f'id="version-{newest}"') < html.index(f'id="version-{older}"')
    manifest = json.loads((workspace.models_path / older / MANIFEST).read_text())
    assert manifest["created"] in html
    assert f"{manifest['data']['customers']} customers" in html
    for strategy in manifest["strategies"]:
        assert strategy in html
    assert "0.5123" in html and "ndcg@10" in html and "0.2500" in html
    assert f"Roll back to {older}" in html
    section = html[html.index(f'id="version-{newest}"'):]
    assert "served" in section[:400]


def test_a_rollback_serves_the_version_before_on_every_request(client, app, workspace):
    newest, older = names(workspace)
    assert app.extensions["recommender"].slot.record.version == newest
    page = text(client.get("/console/models/"))
    response = client.post("/console/models/activate", data={
        "csrf_token": csrf_of(page), "version": older})
    assert response.status_code == 303
    assert client.post("/v1/recommendations", json=BODY).get_json()["model_version"] == older
    assert current_model_dir(workspace.models_path).name == older
    html = text(client.get("/console/models/"))
    assert f"Now serving model {older} (was {newest})" in html
    section = html[html.index(f'id="version-{older}"'):]
    assert "served" in section[:400]
    client.post("/console/models/activate", data={"csrf_token": csrf_of(html),
                                                 "version": newest})
    assert client.post("/v1/recommendations", json=BODY).get_json()["model_version"] == newest


def test_a_tampered_version_is_refused_and_the_served_one_keeps_serving(client, app,
                                                                       workspace):
    newest, _ = names(workspace)
    copy = workspace.models_path / "20000101T000000-tampered"
    shutil.copytree(workspace.models_path / newest, copy)
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["version"] = copy.name
    (copy / MANIFEST).write_text(json.dumps(manifest))
    victim = next(p for p in sorted(copy.rglob("*.npz")))
    victim.write_bytes(victim.read_bytes()[:-10])
    try:
        page = text(client.get("/console/models/"))
        response = client.post("/console/models/activate", data={
            "csrf_token": csrf_of(page), "version": copy.name}, follow_redirects=True)
        html = text(response)
        assert "checksum mismatch" in html and "/tmp/" not in html
        assert app.extensions["recommender"].slot.record.version == newest
    finally:
        shutil.rmtree(copy)


def test_an_unknown_version_is_named_and_nothing_changes(client, app, workspace):
    served = app.extensions["recommender"].slot.record
    page = text(client.get("/console/models/"))
    html = text(client.post("/console/models/activate", data={
        "csrf_token": csrf_of(page), "version": "../../etc"}, follow_redirects=True))
    assert "There is no model version ../../etc." in html
    assert app.extensions["recommender"].slot.record == served


def test_previous_is_the_newest_readable_version_older_than_the_served_one(workspace):
    listed = versions(workspace.models_path)
    newest, older = [v.name for v in listed]
    assert previous(listed, newest) == older
    assert previous(listed, older) is None
    assert previous(listed, "untrained") is None


def test_an_unreadable_manifest_is_listed_with_its_problem(client, workspace):
    broken = workspace.models_path / "19990101T000000-broken"
    broken.mkdir()
    (broken / MANIFEST).write_text("{not json")
    try:
        html = text(client.get("/console/models/"))
        assert re.search(r"19990101T000000-broken.*?manifest is not valid JSON", html, re.S)
        assert "/tmp/" not in html
    finally:
        shutil.rmtree(broken)
