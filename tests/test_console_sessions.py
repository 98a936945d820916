"""Console sessions kept on the server: open, look up, expire when idle, end; the same with a
store (every worker sees them) and without one (this process)."""

from __future__ import annotations

import time

import pytest

from api.console.sessions import ConsoleSessions
from recommender.store import Store


@pytest.fixture(params=["store", "process"])
def sessions(request, tmp_path):
    if request.param == "process":
        yield ConsoleSessions(None, idle_s=3600)
        return
    with Store(tmp_path / "store.sqlite") as store:
        yield ConsoleSessions(store, idle_s=3600)


def test_a_session_has_its_role_until_it_is_closed(sessions):
    admin, viewer = sessions.open("admin"), sessions.open("viewer")
    assert admin != viewer and len(admin) >= 40
    assert (sessions.role(admin), sessions.role(viewer)) == ("admin", "viewer")
    sessions.close(admin)
    assert (sessions.role(admin), sessions.role(viewer)) == (None, "viewer")
    sessions.close(admin)  # twice: nothing happens


@pytest.mark.parametrize("session_id", [None, "", 42, ["x"], "never-opened", "x" * 10_000])
def test_anything_but_an_open_session_id_has_no_role(sessions, session_id):
    sessions.open("admin")
    assert sessions.role(session_id) is None
    sessions.close(session_id)


def test_an_idle_session_expires_and_use_keeps_it_open(tmp_path):
    with Store(tmp_path / "store.sqlite") as store:
        now = time.time()
        kept = store.open_console_session("admin", now=now - 3000, idle_s=3600)
        idle = store.open_console_session("viewer", now=now - 3000, idle_s=3600)
        assert store.console_session_role(kept, now=now, idle_s=3600) == "admin"  # marks use
        assert store.console_session_role(kept, now=now + 1000, idle_s=3600) == "admin"
        assert store.console_session_role(idle, now=now + 1000, idle_s=3600) is None
        store.open_console_session("admin", now=now + 1000, idle_s=3600)  # drops the idle
        assert store.close_console_session(idle) is False
        assert store.close_console_session(kept) is True


def test_a_session_opened_by_one_worker_is_ended_for_all(tmp_path):
    with Store(tmp_path / "s.sqlite") as first, Store(tmp_path / "s.sqlite") as second:
        one, two = ConsoleSessions(first, 3600), ConsoleSessions(second, 3600)
        session_id = one.open("admin")
        assert two.role(session_id) == "admin"
        two.close(session_id)
        assert one.role(session_id) is None
