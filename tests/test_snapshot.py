"""What is served: files and model checked before they are published, and every worker (an app
built with ``follow_published``) serving the published pair whatever the disk holds now."""

from __future__ import annotations

import json
import shutil
import time

import pytest
from api_support import ADMIN_TOKEN, check_problem, copy_workspace, make_app

from api import create_app
from recommender.errors import ModelError
from recommender.models import MANIFEST, current_model_dir, read_manifest
from recommender.plugin_manager import make_plugin_manager
from recommender.snapshot import EngineBuilder, Snapshot, published

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BODY = {"customer": {"id": "C0000744"}, "channel": "app", "moment": "success",
        "product": "intl_roaming"}


@pytest.fixture
def workspace(sample_workspace, tmp_path):
    return copy_workspace(sample_workspace, tmp_path / "ws")


@pytest.fixture
def server(workspace):
    """The first worker of a server: checks the files and publishes them."""
    app = make_app(workspace.root, admin_token=ADMIN_TOKEN, reload_poll_seconds=0.05)
    yield app
    app.extensions["recommender"].slot.close()


def worker(first):
    """Another worker of the same server as ``first``: the settings the server started with,
    booting from what is published."""
    return create_app(settings=first.extensions["recommender"].settings,
                      follow_published=True)


def answer(app) -> dict:
    r = app.test_client().post("/v1/recommendations", json=BODY)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def ready(app) -> dict:
    return app.test_client().get("/readyz").get_json()


BROKEN_FILES = [
    ("rules.toml", "[[rule]\nname = ", "rules.toml"),
    ("rules.toml", '[[rule]]\nid = "x"\nmoments = ["success"]\npriority = 5\n'
                   'recommend = [{ product = "no_such_business", reason = "r" }]\n',
     "no_such_business"),
    ("catalog.toml", "[[product]]\nid = ", "catalog.toml"),
    ("catalog.toml", '[[product]]\nid = "a"\n', "catalog.toml"),
    ("config.toml", "[engine\n", "config.toml"),
    ("config.toml", "[strategies.cross_sell]\nrulez = 1\n", "rulez"),
    ("config.toml", "[engine]\ncandidate_pool = -3\n", "candidate_pool"),
]


@pytest.mark.parametrize("name, text, named", BROKEN_FILES)
def test_a_broken_file_is_refused_on_reload_and_a_new_worker_still_boots(
        workspace, server, name, text, named):
    before = answer(server)
    (workspace.root / name).write_text(text)
    problem = check_problem(server.test_client().post("/v1/admin/reload", headers=AUTH), 409)
    assert named in problem["detail"] and "keeps serving" in problem["detail"]
    assert str(workspace.root) not in problem["detail"]
    other = worker(server)  # a worker restarted while the bad file sits on disk
    try:
        assert answer(other)["suggestions"] == before["suggestions"]
        assert ready(other)["status"] == "ready"
    finally:
        other.extensions["recommender"].slot.close()
    assert answer(server)["suggestions"] == before["suggestions"]
    assert ready(server)["status"] == "ready"


def test_a_missing_catalog_is_refused_on_reload(workspace, server):
    (workspace.root / "catalog.toml").unlink()
    problem = check_problem(server.test_client().post("/v1/admin/reload", headers=AUTH), 409)
    assert "catalog.toml" in problem["detail"]
    assert answer(server)["suggestions"]


def test_a_fixed_file_is_served_by_every_worker_after_a_reload(workspace, server):
    other = worker(server)
    try:
        rules = (workspace.root / "rules.toml").read_text()
        (workspace.root / "rules.toml").write_text(rules.replace("[[rule]]", "[[rule]]", 1)
                                                   + "\n# reviewed\n")
        first = published(server.extensions["recommender"].slot._builder.store)
        assert server.test_client().post("/v1/admin/reload", headers=AUTH).status_code == 200
        record = server.extensions["recommender"].slot.record
        assert record.snapshot != first.snapshot
        time.sleep(0.1)
        assert ready(other)["status"] == "ready"
        assert other.extensions["recommender"].slot.record.key == record.key
    finally:
        other.extensions["recommender"].slot.close()


def test_training_does_not_move_what_is_served(workspace, server):
    served = answer(server)["model_version"]
    time.sleep(1.1)  # version ids carry the second they were trained in
    newer = workspace.train().name
    assert current_model_dir(workspace.models_path).name == newer
    other = worker(server)  # a worker restarted after the training
    try:
        assert answer(other)["model_version"] == served
        assert answer(server)["model_version"] == served
        assert ready(other)["status"] == "ready"
        # activating is what moves it, for every worker
        EngineBuilder(workspace.root, workspace.models_path, workspace.store(),
                      make_plugin_manager()).activate(newer)[0].close()
        time.sleep(0.1)
        assert answer(other)["model_version"] == newer
        assert answer(server)["model_version"] == newer
    finally:
        other.extensions["recommender"].slot.close()


def test_a_worker_that_cannot_follow_says_it_is_not_ready(workspace, server):
    served = answer(server)["model_version"]
    time.sleep(1.1)
    newer = workspace.train().name
    assert server.test_client().post("/v1/admin/reload", headers=AUTH).status_code == 200
    # a second worker boots on the newer version; then the operator publishes the older one
    # after removing its folder from this machine
    other = worker(server)
    try:
        assert answer(other)["model_version"] == newer
        shutil.move(workspace.models_path / served, workspace.root / "moved")
        store = server.extensions["recommender"].slot._builder.store
        record = published(store)
        from recommender.snapshot import SERVING_KEY, ServingRecord
        store.set_meta(SERVING_KEY, ServingRecord(served, record.snapshot, 1.0).to_json())
        time.sleep(0.1)
        status = other.test_client().get("/readyz")
        body = check_problem(status, 503)
        assert served in body["checks"]["serving"]
        assert "not found" in body["checks"]["serving"]
        assert answer(other)["model_version"] == newer  # keeps serving what it has
    finally:
        other.extensions["recommender"].slot.close()


def test_a_worker_boots_not_ready_when_the_published_model_is_gone(workspace, server):
    served = answer(server)["model_version"]
    shutil.rmtree(workspace.models_path / served)
    other = worker(server)
    try:
        body = check_problem(other.test_client().get("/readyz"), 503)
        assert served in body["checks"]["serving"]
    finally:
        other.extensions["recommender"].slot.close()


def test_a_renamed_version_folder_is_refused(workspace, server):
    served = answer(server)["model_version"]
    renamed = workspace.models_path / "renamed"
    shutil.copytree(workspace.models_path / served, renamed)
    problem = check_problem(server.test_client().post(
        "/v1/admin/reload", headers=AUTH, json={"version": "renamed"}), 409)
    assert "must not be renamed" in problem["detail"]
    assert answer(server)["model_version"] == served


def _rewrite(manifest_path, change):
    manifest = json.loads(manifest_path.read_text())
    change(manifest)
    manifest_path.write_text(json.dumps(manifest))


MANIFEST_DAMAGE = {
    "files as a list": lambda m: m.update(files=list(m["files"])),
    "strategies an int": lambda m: m.update(strategies=3),
    "version missing": lambda m: m.pop("version"),
    "version an object": lambda m: m.update(version={"a": 1}),
    "catalog a string": lambda m: m.update(catalog="x"),
    "a file unlisted": lambda m: m["files"].pop(sorted(m["files"])[0]),
    "a path outside": lambda m: m["files"].update({"../x": "0" * 64}),
    "a short checksum": lambda m: m["files"].update({k: "ab" for k in m["files"]}),
    "not an object": lambda m: m.clear(),
}


@pytest.mark.parametrize("damage", list(MANIFEST_DAMAGE) + ["a directory", "extra file",
                                                            "not JSON", "a JSON list"])
def test_a_malformed_manifest_is_a_409_and_nothing_changes(workspace, server, damage):
    served = answer(server)["model_version"]
    time.sleep(1.1)
    newer = workspace.train().name
    folder = workspace.models_path / newer
    path = folder / MANIFEST
    if damage == "a directory":
        path.unlink()
        path.mkdir()
    elif damage == "extra file":
        (folder / "popularity" / "extra.npz").write_bytes(b"PK\x03\x04")
    elif damage == "not JSON":
        path.write_text("{")
    elif damage == "a JSON list":
        path.write_text("[1, 2]")
    else:
        _rewrite(path, MANIFEST_DAMAGE[damage])
    with pytest.raises(ModelError):
        read_manifest(folder)
    problem = check_problem(server.test_client().post(
        "/v1/admin/reload", headers=AUTH, json={"version": newer}), 409)
    assert "manifest" in problem["detail"] or "listed" in problem["detail"]
    assert answer(server)["model_version"] == served
    assert published(workspace.store()).version == served


def test_an_unlisted_artifact_with_altered_content_is_refused(workspace, server):
    """The artifact is removed from the manifest and its file changed: still refused."""
    served = answer(server)["model_version"]
    time.sleep(1.1)
    folder = workspace.train()
    artifact = "popularity/popularity.npz"
    _rewrite(folder / MANIFEST, lambda m: m["files"].pop(artifact))
    (folder / artifact).write_bytes((folder / artifact).read_bytes()[:-5])
    problem = check_problem(server.test_client().post(
        "/v1/admin/reload", headers=AUTH, json={"version": folder.name}), 409)
    assert "not listed" in problem["detail"]
    assert answer(server)["model_version"] == served


def test_snapshot_carries_files_named_by_strategy_settings(workspace):
    (workspace.root / "marketing").mkdir()
    shutil.move(workspace.root / "rules.toml", workspace.root / "marketing" / "rules.toml")
    config = workspace.root / "config.toml"
    text = config.read_text()
    assert 'rules = "rules.toml"' in text
    config.write_text(text.replace('rules = "rules.toml"', 'rules = "marketing/rules.toml"'))
    snapshot = Snapshot.capture(workspace.root)
    assert "marketing/rules.toml" in snapshot.files
    assert Snapshot.from_json(snapshot.to_json()) == snapshot
    app = make_app(workspace.root)
    try:
        (workspace.root / "marketing" / "rules.toml").write_text("broken [")
        other = worker(app)
        assert answer(other)["suggestions"] == answer(app)["suggestions"]
        other.extensions["recommender"].slot.close()
    finally:
        app.extensions["recommender"].slot.close()


@pytest.mark.parametrize("name", ["../escape.toml", "/etc/passwd", ""])
def test_a_stored_snapshot_naming_an_unsafe_path_is_refused(name):
    with pytest.raises(ModelError, match="unsafe path"):
        Snapshot.from_json(json.dumps({name: ""}))
