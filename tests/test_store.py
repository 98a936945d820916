"""The store's failures are named (missing folder, read-only, full disk, busy), bulk writes
leave room for other writers, and an older store is brought up to date on open."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from recommender.errors import RecommenderError
from recommender.store import (
    MAX_ID_LENGTH,
    FeedbackEvent,
    Store,
    StoreBusyError,
    StoreError,
    text_problem,
)


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` (a file or a folder) unwritable for this process, even as root."""
    if os.geteuid() == 0:
        # Permissions do not stop root; the immutable attribute does.
        done = shutil.which("chattr") and subprocess.run(
            ["chattr", "+i", str(path)], capture_output=True).returncode == 0
        if not done:
            pytest.skip("running as root and 'chattr +i' is not available here")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)


def event(event_id: str) -> FeedbackEvent:
    return FeedbackEvent(event_id=event_id, request_id="r", product="caller_id",
                         action="click", ts=1_764_000_000)


def events(n: int, start: int = 0) -> list[tuple]:
    """Keyed event rows, their keys and customers scattered like real ones."""
    return [(1_760_000_000 + i, f"C{i * 7919 % 5000:04d}", "caller_id", "app", "success", None,
             f"~{i * 2654435761 % 2**32:08x}.{i}") for i in range(start, start + n)]


@contextmanager
def held_lock(path: Path, seconds: float) -> Iterator[None]:
    """Another connection holds the store's write lock for ``seconds``, from a thread."""
    taken = threading.Event()

    def hold() -> None:
        with Store(path) as other, other.transaction() as tx:
            tx.execute("INSERT INTO meta VALUES ('holder', 'x')")
            taken.set()
            time.sleep(seconds)
            tx.execute("DELETE FROM meta WHERE key = 'holder'")

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(10)
    try:
        yield
    finally:
        thread.join()


# -- clear errors ------------------------------------------------------------------------------

def test_a_missing_folder_is_a_store_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "store.sqlite"
    with pytest.raises(StoreError) as info:
        Store(path)
    assert isinstance(info.value, RecommenderError)
    assert str(info.value) == (f"{path}: cannot open: the folder {tmp_path / 'nowhere'} "
                               f"does not exist")
    assert not path.parent.exists()


def test_a_read_only_folder_is_a_store_error_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    folder.mkdir()
    Store(folder / "store.sqlite").close()
    with read_only(folder), pytest.raises(StoreError) as info, \
            Store(folder / "store.sqlite") as store:
        store.set_meta("k", "v")
    message = str(info.value)
    assert message.startswith(f"{folder / 'store.sqlite'}: ")
    assert f"the folder {folder} is read-only" in message
    assert "unable to open database file" not in message


def test_a_read_only_store_file_is_a_store_error_and_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    with Store(path) as store:
        store.set_meta("k", "v")
    with read_only(path), Store(path) as store:
        assert store.meta("k") == "v"
        with pytest.raises(StoreError) as info:
            store.set_meta("k", "w")
        assert str(info.value) == (f"{path}: cannot open for writing: the file is read-only "
                                   f"(no write permission)")
        assert store.meta("k") == "v"


def test_not_a_store_is_named(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    path.write_bytes(b"this is not a database, just text " * 200)
    with pytest.raises(StoreError, match="not a SQLite store, or damaged"):
        Store(path)


def test_a_full_disk_is_a_store_error_and_the_store_stays_usable(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    with Store(path) as store:
        store.add_rows("events", events(10))
        pages = store.db.execute("PRAGMA page_count").fetchone()[0]
        store.db.execute(f"PRAGMA max_page_count = {pages + 2}")
        with pytest.raises(StoreError) as info:
            store.add_rows("events", events(50_000, start=10))
        message = str(info.value)
        assert message.startswith(f"{path}: the disk is full")
        assert "cannot rollback" not in message
        assert not store.db.in_transaction
        assert store.count("events") == 10  # the failed transaction left nothing
        store.db.execute("PRAGMA max_page_count = 1073741823")
        store.add_rows("events", events(5, start=10))
        assert store.count("events") == 15


def test_a_failure_inside_a_transaction_rolls_it_back(tmp_path: Path) -> None:
    with Store(tmp_path / "store.sqlite") as store:
        with pytest.raises(ZeroDivisionError), store.transaction() as tx:
            tx.execute("INSERT INTO meta VALUES ('a', 'b')")
            1 / 0  # noqa: B018
        assert store.meta("a") is None and not store.db.in_transaction


def test_a_writer_over_its_busy_budget_gets_store_busy_error(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    Store(path).close()
    with Store(path) as store, held_lock(path, 1.5):
        started = time.monotonic()
        with store.busy_timeout(0.2), pytest.raises(StoreBusyError) as info:
            store.add_feedback(event("busy-1"))
        waited = time.monotonic() - started
        assert 0.15 < waited < 1.0
        assert str(info.value) == (f"{path}: busy: another writer held the write lock for more "
                                   f"than 0.2 s")
        assert not store.db.in_transaction
    with Store(path) as store:
        assert store.add_feedback(event("busy-1"))  # nothing was half written


def test_the_busy_budget_is_restored_after_the_block(tmp_path: Path) -> None:
    with Store(tmp_path / "store.sqlite", timeout_s=7) as store:
        with store.busy_timeout(0.3):
            assert store.db.execute("PRAGMA busy_timeout").fetchone()[0] == 300
        assert store.db.execute("PRAGMA busy_timeout").fetchone()[0] == 7000


def test_writers_of_one_process_queue_within_their_budget(tmp_path: Path) -> None:
    """Threads of one process take turns; one that cannot get its turn in time is refused."""
    with Store(tmp_path / "store.sqlite") as store:
        inside = threading.Event()

        def slow() -> None:
            with store.transaction() as tx:
                tx.execute("INSERT INTO meta VALUES ('slow', 'x')")
                inside.set()
                time.sleep(0.6)

        thread = threading.Thread(target=slow)
        thread.start()
        assert inside.wait(5)
        with store.busy_timeout(0.1), pytest.raises(StoreBusyError):
            store.add_feedback(event("turn-1"))
        with store.busy_timeout(3.0):
            assert store.add_feedback(event("turn-2"))
        thread.join()
        assert store.meta("slow") == "x"


# -- bounded bulk writes ----------------------------------------------------------------------

@pytest.mark.parametrize(("max_transaction_s", "budget_holds"), [(0.1, True), (60.0, False)])
def test_a_paced_bulk_write_lets_another_writer_in_within_its_budget(
        tmp_path: Path, max_transaction_s: float, budget_holds: bool) -> None:
    """Short transactions with pauses let a 0.75 s-budget writer in every time; one long
    transaction (the old import) makes it fail."""
    path = tmp_path / "store.sqlite"
    rows = events(400_000)
    Store(path).close()
    result = {}

    def bulk() -> None:
        with Store(path) as store:
            result["paced"] = store.add_rows_paced("events", rows,
                                                   max_transaction_s=max_transaction_s)

    writer = threading.Thread(target=bulk)
    latencies, refused = [], 0
    with Store(path) as other:
        writer.start()
        i = 0
        while writer.is_alive():
            started = time.monotonic()
            try:
                with other.busy_timeout(0.75):
                    other.add_feedback(event(f"paced-{i}"))
                latencies.append(time.monotonic() - started)
            except StoreBusyError:
                refused += 1
            i += 1
            time.sleep(0.01)
        writer.join()
        assert other.count("events") == len(rows)
    paced = result["paced"]
    if budget_holds:
        assert refused == 0 and len(latencies) >= 5
        assert max(latencies) < 0.75
        assert paced.transactions > 3
        assert paced.longest_transaction_s < max_transaction_s + 0.15
    else:
        assert paced.transactions == 1 and refused >= 1


def test_a_paced_write_counts_what_it_changed(tmp_path: Path) -> None:
    with Store(tmp_path / "store.sqlite") as store:
        first = store.add_rows_paced("events", events(5000), max_transaction_s=0.01,
                                     pause_s=0.0)
        again = store.add_rows_paced("events", events(6000), max_transaction_s=0.01,
                                     pause_s=0.0)
        assert (first.rows, first.changed) == (5000, 5000)
        assert (again.rows, again.changed) == (6000, 1000)  # keyed events are stored once
        assert store.count("events") == 6000


# -- migration --------------------------------------------------------------------------------

OLD_EVENTS = """
CREATE TABLE events (
    id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, customer_id TEXT NOT NULL,
    product_id TEXT NOT NULL, channel TEXT NOT NULL, kind TEXT NOT NULL, failure_reason TEXT);
CREATE INDEX events_by_customer ON events (customer_id, ts);
INSERT INTO events (ts, customer_id, product_id, channel, kind) VALUES
    (1, 'C1', 'caller_id', 'app', 'success'), (2, 'C1', 'caller_id', 'app', 'success');
"""


def test_a_store_without_event_keys_is_migrated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_EVENTS)
    opened = []

    def open_it() -> None:
        with Store(path) as store:
            opened.append(store.count("events"))

    threads = [threading.Thread(target=open_it) for _ in range(4)]  # racing migrations
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert opened == [2, 2, 2, 2]
    with Store(path) as store:
        columns = [r[1] for r in store.db.execute("PRAGMA table_info(events)")]
        assert columns[-1] == "event_key"
        index = store.db.execute("SELECT sql FROM sqlite_master WHERE name = 'events_by_key'"
                                 ).fetchone()[0]
        assert "UNIQUE" in index
        store.add_rows("events", [(3, "C1", "caller_id", "app", "success", None, "k")] * 2)
        assert store.count("events") == 3


@pytest.mark.parametrize("older", [False, True], ids=["new store", "older store"])
def test_workers_opening_a_store_together_all_open_it(tmp_path: Path, older: bool) -> None:
    """The switch to write-ahead logging fails at once, without SQLite's busy wait, while
    another connection holds the file: one opener in a few dozen failed when four raced."""
    for round_ in range(25):
        path = tmp_path / f"store-{round_}.sqlite"
        if older:
            with sqlite3.connect(path) as db:
                db.executescript(OLD_EVENTS)
        failures: list[str] = []

        def open_it(path: Path = path, failures: list[str] = failures) -> None:
            try:
                with Store(path) as store:
                    store.count("events")
            except StoreError as e:
                failures.append(str(e))

        threads = [threading.Thread(target=open_it) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == [], (round_, failures)


# -- the shared id rule -----------------------------------------------------------------------

@pytest.mark.parametrize(("value", "problem"), [
    ("C0000042", None),
    ("客户,甲", None),
    ("x" * MAX_ID_LENGTH, None),
    ("", "is empty"),
    ("x" * (MAX_ID_LENGTH + 1), "is longer than 128 characters"),
    ("C1\nC2", "must not contain control characters"),
    ("\x1b[31mC1\x1b[0m", "must not contain control characters"),
    ("C1\x00", "must not contain control characters"),
    ("C1\x7f", "must not contain control characters"),
    ("C1\ud800", "is not valid Unicode text"),
])
def test_the_id_rule(value: str, problem: str | None) -> None:
    found = text_problem(value)
    assert (found if found is None else found[:len(problem or "")]) == problem


def test_recent_events_are_a_customer_s_latest_newest_first(tmp_path: Path) -> None:
    from recommender.store import CustomerEvent

    with Store(tmp_path / "s.sqlite") as store:
        store.add_rows("events", [
            (100, "C1", "caller_id", "app", "query", None, None),
            (300, "C1", "plan_5g", "web", "failure", "terminal", None),
            (200, "C1", "data_5gb", "app", "success", None, None),
            (250, "C2", "data_5gb", "app", "success", None, None),
        ])
        got = store.recent_events("C1")
        assert got == [CustomerEvent(300, "plan_5g", "web", "failure", "terminal"),
                       CustomerEvent(200, "data_5gb", "app", "success"),
                       CustomerEvent(100, "caller_id", "app", "query")]
        assert store.recent_events("C1", since=200) == got[:2]
        assert store.recent_events("C1", limit=1) == got[:1]
        assert store.recent_events("C1", kinds=["success", "query"]) == got[1:]
        assert store.recent_events("nobody") == []


@pytest.mark.parametrize("kwargs, message", [
    ({"limit": 0}, "limit must be an integer from 1 to 1,000, got 0"),
    ({"limit": 1001}, "limit must be an integer from 1 to 1,000"),
    ({"limit": True}, "limit must be an integer"),
    ({"limit": "5"}, "limit must be an integer"),
    ({"kinds": ["order"]}, "unknown event kind 'order'; known: query, transaction, success"),
])
def test_recent_events_refuses_a_bad_request_naming_it(tmp_path: Path, kwargs, message) -> None:
    with Store(tmp_path / "s.sqlite") as store, pytest.raises(ValueError, match=message):
        store.recent_events("C1", **kwargs)


def test_every_connection_caches_a_bounded_share_of_pages(tmp_path: Path) -> None:
    from recommender.store import CACHE_KIB

    with Store(tmp_path / "s.sqlite") as store:
        sizes = [store.db.execute("PRAGMA cache_size").fetchone()[0]]
        other = threading.Thread(target=lambda: sizes.append(
            store.db.execute("PRAGMA cache_size").fetchone()[0]))
        other.start()
        other.join()
    assert sizes == [-CACHE_KIB, -CACHE_KIB]  # negative: KiB, per connection (per thread)


# -- what the console and the reports read -----------------------------------------------------

def customers(ids: list[str], tier: str = "mid") -> list[tuple]:
    return [(cid, tier, None, "active", 12, 0, "", None) for cid in ids]


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({}, ["A1", "A10", "A2", "B%1", "B_2", "Bz"]),
    ({"limit": 2}, ["A1", "A10"]),
    ({"prefix": "A1"}, ["A1", "A10"]),
    ({"prefix": "B%"}, ["B%1"]),          # a range, not LIKE: no wildcard
    ({"prefix": "B_"}, ["B_2"]),
    ({"after": "A2"}, ["B%1", "B_2", "Bz"]),
    ({"prefix": "B", "after": "B%1", "limit": 1}, ["B_2"]),
    ({"prefix": "C"}, []),
    ({"prefix": "B", "after": "A5"}, ["B%1", "B_2", "Bz"]),
    ({"prefix": "A", "after": "B"}, []),
])
def test_customer_ids_pages_by_prefix_and_position(tmp_path: Path, kwargs, expected) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        store.add_rows("customers", customers(["Bz", "A1", "A2", "B_2", "A10", "B%1"]))
        assert store.customer_ids(**kwargs) == expected


@pytest.mark.parametrize(("n", "size", "expected"), [
    (10, 5, [0, 2, 4, 6, 8]), (10, 3, [0, 3, 6]), (10, 20, list(range(10))), (10, 0, []),
    (0, 5, []), (7, 7, list(range(7))),
])
def test_spread_customer_ids_are_evenly_spaced_and_repeat(tmp_path: Path, n, size,
                                                          expected) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        store.add_rows("customers", customers([f"C{i:03d}" for i in reversed(range(n))]))
        got = store.spread_customer_ids(size)
        assert got == [f"C{i:03d}" for i in expected]
        assert store.spread_customer_ids(size) == got


def test_feedback_of_a_customer_newest_first_and_counts_by_funnel_cell(tmp_path: Path) -> None:
    rows = [("e1", 100, "C1", "caller_id", "impression", "app", "query"),
            ("e2", 200, "C1", "caller_id", "click", "app", "query"),
            ("e3", 300, "C1", "data_5gb", "dismiss", None, None),
            ("e4", 250, "C2", "data_5gb", "accept", "web", "success")]
    with Store(tmp_path / "s.sqlite") as store:
        for event_id, ts, customer, product, action, channel, moment in rows:
            store.add_feedback(FeedbackEvent(event_id, "r", product, action, ts, customer,
                                             channel, moment, ("cf", "popularity")))
        got = store.feedback_of("C1", limit=2)
        assert [(e.event_id, e.action, e.channel, e.strategies) for e in got] == [
            ("e3", "dismiss", None, ("cf", "popularity")),
            ("e2", "click", "app", ("cf", "popularity"))]
        assert store.feedback_of("nobody") == []
        assert store.feedback_event("e4") == store.feedback_of("C2")[0]
        assert store.feedback_counts(200) == {("app", "query", "click"): 1,
                                              ("", "", "dismiss"): 1,
                                              ("web", "success", "accept"): 1}
        assert sum(store.feedback_counts(0).values()) == 4


def test_unknown_value_names_the_first_outside_the_list(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        store.add_rows("customers", customers(["C1", "C2"]) + customers(["C3"], "gold"))
        assert store.unknown_value("value_tier", ["low", "mid", "high"]) == "gold"
        assert store.unknown_value("value_tier", ["mid", "gold"]) is None
        with pytest.raises(ValueError, match="not a coded customer column: 'id; DROP"):
            store.unknown_value("id; DROP TABLE customers", ["x"])
        assert store.count("customers") == 3


def test_a_log_reader_gets_a_store_error_naming_the_file_not_sqlite3s(tmp_path: Path) -> None:
    """Readers that follow the feedback log in the background (the adaptive strategy) catch
    the project's StoreError, whatever database is behind the store."""
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.db.execute("DROP TABLE customers")  # a damaged store
        with pytest.raises(StoreError, match="no such table: customers") as caught:
            store.feedback_since(0, 10)
        assert str(path) in str(caught.value)
