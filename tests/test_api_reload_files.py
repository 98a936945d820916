"""``POST /v1/admin/reload`` over real HTTP re-reads the workspace files with the model: each of
config.toml, rules.toml, catalog.toml and events.toml changed on disk takes effect on every
worker; what a reload cannot apply (the ``[server]`` table, a catalog the model was not
trained on) is refused with a 409 naming the file, and what was served keeps serving."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from api_support import ADMIN_TOKEN, call, copy_workspace, serving
from http_support import exchange

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
POLL_S = 0.2
#: Requests after a reload, on fresh connections, so both workers answer some of them.
ASKS = 8


@pytest.fixture(scope="module")
def server(sample_workspace, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    ws = copy_workspace(sample_workspace, tmp_path_factory.mktemp("reload") / "ws")
    env = {"RECOMMENDER_ADMIN_TOKEN": ADMIN_TOKEN,
           "RECOMMENDER_RELOAD_POLL_SECONDS": str(POLL_S)}
    with serving(ws.root, ws.root / "server.log", "--workers", "2", "--no-access-log",
                 env=env) as (base, _):
        yield base, ws.root


def reload(base: str) -> tuple[int, dict[str, Any]]:
    status, _, body = call(base, "POST", "/v1/admin/reload", headers=AUTH)
    time.sleep(POLL_S * 3)  # every worker follows within one poll
    return status, body


@contextmanager
def edited(root: Path, name: str, old: str, new: str) -> Iterator[None]:
    """``name`` with ``old`` replaced by ``new`` on disk; put back (and reloaded) afterwards."""
    path = root / name
    original = path.read_text(encoding="utf-8")
    assert original.count(old) == 1, f"{old!r} is not once in {name}"
    path.write_text(original.replace(old, new, 1), encoding="utf-8")
    try:
        yield
    finally:
        path.write_text(original, encoding="utf-8")


def recommend(base: str, **body: Any) -> dict[str, Any]:
    status, _, answer = call(base, "POST", "/v1/recommendations", {
        "customer": {"id": "C0000042"}, "channel": "app", **body})
    assert status == 200, answer
    return answer


def locale(base: str) -> str:
    return recommend(base, moment="query")["locale"]


def upgrade_reasons(base: str) -> list[str]:
    answer = recommend(base, moment="failure", product="plan_5g_newsim",
                       failure_reason="not_eligible", locale="en")
    return next(s["reasons"] for s in answer["suggestions"] if s["product"] == "upgrade_5g")


def sms_pack_name(base: str) -> str:
    return call(base, "GET", "/v1/products/intl_sms")[2]["name_en"]


def loss_guidance(base: str) -> str:
    answer = recommend(base, moment="query", event="phone_lost", locale="en")
    return next(s["text"] for s in answer["suggestions"] if s["product"] == "guide_report_loss")


#: (file, text on disk, its replacement, what a request shows, before, after)
EFFECTS: list[tuple[str, str, str, Callable[[str], Any], Any, Any]] = [
    ("config.toml", 'default = "zh-CN"', 'default = "en"', locale, "zh-CN", "en"),
    ("rules.toml", 'reason_en = "No new SIM or plan needed: add the 5G upgrade pack and enjoy '
                   '5G"', 'reason_en = "Keep your SIM: the upgrade pack brings 5G"',
     lambda base: "Keep your SIM: the upgrade pack brings 5G" in upgrade_reasons(base),
     False, True),
    ("catalog.toml", 'name_en = "International SMS pack"', 'name_en = "SMS abroad"',
     sms_pack_name, "International SMS pack", "SMS abroad"),
    ("events.toml", 'text_en = "Report the loss and suspend the line now so no one else can '
                    'use it; resume it any time"',
     'text_en = "Report the loss now; resume the line any time"', loss_guidance,
     "Report the loss and suspend the line now so no one else can use it; resume it any time",
     "Report the loss now; resume the line any time"),
]


@pytest.mark.parametrize(("name", "old", "new", "shown", "before", "after"), EFFECTS,
                         ids=[e[0] for e in EFFECTS])
def test_a_changed_file_takes_effect_on_every_worker_after_a_reload(
        server, name, old, new, shown, before, after):
    base, root = server
    assert shown(base) == before
    with edited(root, name, old, new):
        assert shown(base) == before, "served files change only with a reload"
        status, body = reload(base)
        assert status == 200, body
        assert [shown(base) for _ in range(ASKS)] == [after] * ASKS
    assert reload(base)[0] == 200
    assert [shown(base) for _ in range(ASKS)] == [before] * ASKS


def test_the_catalog_validators_change_with_a_reloaded_catalog(server):
    base, root = server
    _, headers, _ = exchange(base, "GET", "/v1/products/intl_sms")
    etag, modified = headers["ETag"], headers["Last-Modified"]
    time.sleep(1.1)  # Last-Modified has one-second resolution
    with edited(root, "catalog.toml", 'name_en = "International SMS pack"',
                'name_en = "SMS abroad"'):
        assert reload(base)[0] == 200
        status, headers, raw = exchange(base, "GET", "/v1/products/intl_sms", headers={
            "If-None-Match": etag})
        assert status == 200 and json.loads(raw)["name_en"] == "SMS abroad"
        assert headers["ETag"] != etag and headers["Last-Modified"] != modified
        status, _, _ = exchange(base, "GET", "/v1/products/intl_sms", headers={
            "If-Modified-Since": modified})
        assert status == 200
        status, _, raw = exchange(base, "GET", "/v1/products/intl_sms", headers={
            "If-Modified-Since": headers["Last-Modified"]})
        assert (status, raw) == (304, b"")
    assert reload(base)[0] == 200


@pytest.mark.parametrize(("table", "named"), [
    ("\n[server]\nthreads = 2\n", "server.threads"),
    ('\n[server]\ncors_origins = ["https://hall.example.com"]\nrate_limit = "9/second"\n',
     "server.cors_origins, server.rate_limit"),
])
def test_a_changed_server_table_is_refused_and_nothing_else_is_applied(server, table, named):
    """[server] is read when the server starts: a reload refuses it, naming the file and the
    keys, and the other files changed with it wait (restart, or undo it and reload)."""
    base, root = server
    config = root / "config.toml"
    original = config.read_text(encoding="utf-8")
    with edited(root, "rules.toml", 'reason_en = "No new SIM or plan needed: add the 5G '
                'upgrade pack and enjoy 5G"', 'reason_en = "Upgrade pack: 5G, same SIM"'):
        config.write_text(original + table, encoding="utf-8")
        try:
            status, problem = reload(base)
            assert status == 409 and problem["status"] == 409
            assert f"config.toml, {named}: changed since the server started" in problem["detail"]
            assert "restart" in problem["detail"] and "keeps serving" in problem["detail"]
            assert str(root) not in problem["detail"]
            assert all("Upgrade pack: 5G, same SIM" not in upgrade_reasons(base)
                       for _ in range(ASKS))
        finally:
            config.write_text(original, encoding="utf-8")
        assert reload(base)[0] == 200
        assert all("Upgrade pack: 5G, same SIM" in upgrade_reasons(base) for _ in range(ASKS))
    assert reload(base)[0] == 200


def publish_from_disk(root: Path) -> None:
    """What ``recommender train --activate`` does once the version is written."""
    from recommender.plugin_manager import make_plugin_manager
    from recommender.snapshot import EngineBuilder
    from recommender.workspace import Workspace

    ws = Workspace(root)
    with ws.store() as store:
        engine, _ = EngineBuilder(root, ws.models_path, store, make_plugin_manager()).activate()
        engine.close()


def test_a_publication_that_changes_the_server_table_is_followed_and_logged(server):
    """Published from the command line, a changed [server] cannot be refused by the server:
    the workers follow the other files, log that they keep the [server] settings they started
    with, and a later reload with that table on disk is still refused (not taken for applied)."""
    base, root = server
    config = root / "config.toml"
    original = config.read_text(encoding="utf-8")
    log = root / "server.log"
    logged = log.read_text(encoding="utf-8").count("keeps the [server] settings")
    with edited(root, "rules.toml", 'reason_en = "No new SIM or plan needed: add the 5G '
                'upgrade pack and enjoy 5G"', 'reason_en = "Upgrade pack: 5G, same SIM"'):
        config.write_text(original + "\n[server]\nthreads = 3\n", encoding="utf-8")
        try:
            publish_from_disk(root)
            time.sleep(POLL_S * 3)
            assert all("Upgrade pack: 5G, same SIM" in upgrade_reasons(base)
                       for _ in range(ASKS))
            text = log.read_text(encoding="utf-8")
            assert text.count("keeps the [server] settings") > logged
            assert "files that change server.threads of config.toml" in text
            status, problem = reload(base)
            assert status == 409 and "server.threads: changed since the server started" \
                in problem["detail"]
        finally:
            config.write_text(original, encoding="utf-8")
    assert reload(base)[0] == 200
    assert all("Upgrade pack: 5G, same SIM" not in upgrade_reasons(base) for _ in range(ASKS))


def workers(arbiter: int) -> set[int]:
    path = Path(f"/proc/{arbiter}/task/{arbiter}/children")
    return {int(p) for p in path.read_text().split()}


def test_a_worker_started_after_such_a_publication_keeps_the_servers_own_table(
        sample_workspace, tmp_path):
    """A worker gunicorn starts again (after a crash) runs with the settings the server
    started with, not those of the files published since: it refuses the same reloads as
    the others, and accepts them once the change is undone."""
    ws = copy_workspace(sample_workspace, tmp_path / "ws")
    config = ws.root / "config.toml"
    original = config.read_text(encoding="utf-8")
    env = {"RECOMMENDER_ADMIN_TOKEN": ADMIN_TOKEN,
           "RECOMMENDER_RELOAD_POLL_SECONDS": str(POLL_S)}
    with serving(ws.root, tmp_path / "server.log", "--workers", "2", "--no-access-log",
                 env=env) as (base, process):
        config.write_text(original + "\n[server]\nthreads = 3\n", encoding="utf-8")
        publish_from_disk(ws.root)
        before = workers(process.pid)
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while len(workers(process.pid) - {victim}) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(workers(process.pid) - before) == 1, "the worker was not started again"
        time.sleep(3)  # the new worker has booted and answers its share
        answers = [reload(base) for _ in range(ASKS)]
        assert {status for status, _ in answers} == {409}, answers
        assert all("server.threads: changed since the server started" in problem["detail"]
                   for _, problem in answers)
        config.write_text(original, encoding="utf-8")
        assert {reload(base)[0] for _ in range(ASKS)} == {200}


def test_a_catalog_the_model_was_not_trained_on_is_refused(server):
    """A business added or removed changes what the model scores: train, then reload."""
    base, root = server
    added = '\n[[product]]\nid = "satellite_sms"\nname = "卫星短信"\ncategory = "messaging"\n' \
            'price = 5\nchannels = ["app"]\n'
    catalog = root / "catalog.toml"
    original = catalog.read_text(encoding="utf-8")
    catalog.write_text(original + added, encoding="utf-8")
    try:
        status, problem = reload(base)
        assert status == 409
        assert "trained on a different catalog" in problem["detail"]
        assert call(base, "GET", "/v1/products/satellite_sms")[0] == 404
    finally:
        catalog.write_text(original, encoding="utf-8")
    assert reload(base)[0] == 200
