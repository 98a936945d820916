"""CSV import: a faithful round trip, every bad row refused with file, line and column and
nothing written, the API's value rules, safe to run again, one import at a time."""

from __future__ import annotations

import csv
import fcntl
import json
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_store import read_only

from recommender import Catalog, ImportRowError, Store
from recommender.context import CHANNEL_IDS
from recommender.csvimport import (
    MAX_TIMESTAMP,
    TABLE_ORDER,
    export_csv,
    import_csv,
    import_directory,
    import_file,
    import_lock,
)
from recommender.store import StoreError
from recommender.workspace import Workspace

QUERIES = {
    "customers": "SELECT * FROM customers ORDER BY id",
    "terminals": "SELECT * FROM terminals ORDER BY customer_id",
    "holdings": "SELECT * FROM holdings ORDER BY customer_id, product_id",
    "events": "SELECT ts, customer_id, product_id, channel, kind, failure_reason FROM events "
              "ORDER BY ts, id",
}


@pytest.fixture(scope="module")
def exported(sample_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("csv")
    with sample_workspace.store() as store:
        for table in TABLE_ORDER:
            export_csv(store, table, folder / f"{table}.csv")
    return folder


def test_export_then_import_is_identical(sample_workspace: Workspace, catalog: Catalog,
                                         exported: Path, tmp_path: Path) -> None:
    with Store(tmp_path / "copy.sqlite") as copy, sample_workspace.store() as original:
        counts = import_directory(copy, catalog, exported)
        assert counts == {t: original.count(t) for t in TABLE_ORDER}
        for query in QUERIES.values():
            assert copy.db.execute(query).fetchall() == original.db.execute(query).fetchall()


@pytest.fixture
def store(catalog: Catalog, tmp_path: Path) -> Store:
    """A store holding two customers, C1 and C2, each with a terminal and one event."""
    s = Store(tmp_path / "store.sqlite")
    write(tmp_path / "c.csv", "id,value_tier,lifecycle,tenure_months\nC1,high,steady,24\n"
                              "C2,low,new,1\n")
    import_csv(s, catalog, "customers", tmp_path / "c.csv")
    write(tmp_path / "t.csv", "customer_id,network,smartphone\nC1,5G,true\nC2,3G,false\n")
    import_csv(s, catalog, "terminals", tmp_path / "t.csv")
    write(tmp_path / "e.csv", "ts,customer_id,product_id,channel,kind\n"
                              "2026-10-01T08:00:00,C1,data_1gb,app,success\n")
    import_csv(s, catalog, "events", tmp_path / "e.csv")
    yield s
    s.close()


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


BAD_FILES = [
    # (table, file content, line, column, fragment)
    ("customers", "", 1, None, "empty file"),
    ("customers", "value_tier,lifecycle\nhigh,steady\n", 1, "id", "required column missing"),
    ("customers", "id,value_tier,lifecycle,tenure_months,sh oe\nC9,high,steady,3,42\n", 1,
     "sh oe", "unknown column, and it is not an attribute name"),
    ("customers", "id,value_tier,lifecycle,tenure_months\nC9,high,steady,3\nC10,gold,steady,3\n",
     3, "value_tier", "'gold' is not one of high, mid, low"),
    ("customers", "id,value_tier,lifecycle,tenure_months\nC9,high,steady,three\n", 2,
     "tenure_months", "not an integer"),
    ("customers", "id,value_tier,lifecycle,tenure_months\nC9,high,steady,-4\n", 2,
     "tenure_months", "below 0"),
    ("customers", "id,value_tier,lifecycle,tenure_months\n,high,steady,3\n", 2, "id",
     "empty, but required"),
    ("customers", "id,value_tier,lifecycle,tenure_months\nC9,high,steady\n", 2, None,
     "3 fields, the header has 4"),
    ("customers", "id,value_tier,persona,lifecycle,tenure_months\nC9,high,gamer,steady,3\n", 2,
     "persona", "'gamer' is not one of"),
    ("terminals", "customer_id,network,smartphone\nC1,6G,true\n", 2, "network",
     "'6G' is not one of"),
    ("terminals", "customer_id,network,smartphone\nC1,5G,maybe\n", 2, "smartphone",
     "not true/false"),
    ("terminals", "customer_id,network,smartphone\nC404,5G,true\n", 2, "customer_id",
     "unknown customer 'C404'"),
    ("holdings", "customer_id,product_id\nC1,plan_4g\nC1,gold_bar\n", 3, "product_id",
     "unknown product 'gold_bar'"),
    ("holdings", "customer_id,product_id,since\nC1,plan_4g,yesterday\n", 2, "since",
     "neither ISO 8601 nor unix seconds"),
    ("events", "ts,customer_id,product_id,channel,kind\n1700000000,C1,data_1gb,fax,success\n",
     2, "channel", "'fax' is not one of"),
    ("events", "ts,customer_id,product_id,channel,kind\n1700000000,C1,data_1gb,app,lunch\n",
     2, "kind", "'lunch' is not one of"),
    ("events", "ts,customer_id,product_id,channel,kind,failure_reason\n"
               "1700000000,C1,data_1gb,app,success,conflict\n", 2, "failure_reason",
     "only failure events"),
    ("events", "ts,customer_id,product_id,channel,kind,failure_reason\n"
               "1700000000,C1,data_1gb,app,failure,bad luck\n", 2, "failure_reason",
     "is not one of"),
    ("events", 'ts,customer_id,product_id,channel,kind\n1700000000,C1,"data_1gb,app,success\n',
     2, None, "malformed CSV: unexpected end of data"),
]


C = "id,value_tier,lifecycle,tenure_months,vip_level,tags\n"
E = "ts,customer_id,product_id,channel,kind\n"
EID = "ts,customer_id,product_id,channel,kind,event_id\n"
T = "customer_id,network,smartphone,os,model\n"
REST = ",C1,data_1gb,app,success\n"
TOO_MANY_TAGS = ";".join(f"t{i}" for i in range(65))

BAD_VALUES = [
    # integers and times: ASCII digits only, bounded (int() takes '²'-like digits, SQLite
    # overflows on 23 digits)
    ("events", E + "²" + REST, 2, "ts", "neither ISO 8601 nor unix seconds"),
    ("events", E + "\u0661\u0667\u0660\u0660" + REST, 2, "ts", "neither ISO 8601 nor unix"),
    ("events", E + "\uff11\uff17\uff10\uff10" + REST, 2, "ts", "neither ISO 8601 nor unix"),
    ("events", E + "1_700_000_000" + REST, 2, "ts", "neither ISO 8601 nor unix seconds"),
    ("events", E + "17000000000000000000000" + REST, 2, "ts",
     "is outside 1970-01-01..9999-12-31"),
    ("events", E + "1" * 5000 + REST, 2, "ts", "is outside 1970-01-01..9999-12-31"),
    ("events", E + str(MAX_TIMESTAMP + 1) + REST, 2, "ts", "is outside"),
    ("events", E + "-1" + REST, 2, "ts", "is outside"),
    ("events", E + "1969-12-31T23:59:59" + REST, 2, "ts", "is outside"),
    ("events", E + "0001-01-01T00:00:00" + REST, 2, "ts", "is outside"),
    ("holdings", "customer_id,product_id,since\nC1,plan_4g,\u00b3\n", 2, "since",
     "neither ISO 8601 nor unix seconds"),
    ("customers", C + "C9,high,steady,\u00b2,0,\n", 2, "tenure_months", "not an integer"),
    ("customers", C + "C9,high,steady,\u0663,0,\n", 2, "tenure_months", "not an integer"),
    ("customers", C + "C9,high,steady,+3,0,\n", 2, "tenure_months", "not an integer"),
    ("customers", C + "C9,high,steady,1_0,0,\n", 2, "tenure_months", "not an integer"),
    ("customers", C + "C9,high,steady,99999999999999999999999,0,\n", 2, "tenure_months",
     "99999999999999999999999 is above 1200"),
    ("customers", C + "C9,high,steady,1201,0,\n", 2, "tenure_months", "1201 is above 1200"),
    ("customers", C + "C9,high,steady,3,11,\n", 2, "vip_level", "11 is above 10"),
    ("customers", C + "C9,high,steady,3,9223372036854775808,\n", 2, "vip_level",
     "is above 10"),
    ("customers", C + "C9,high,steady,3,-1,\n", 2, "vip_level", "-1 is below 0"),
    # ids, tags and models: the API's rule (no control characters, 128 characters, 64 tags)
    ("customers", C + 'C8,high,steady,3,0,\n"C\n9",high,steady,3,0,\n', 3, "id",
     "must not contain control characters"),
    ("customers", C + "\x1b[2JC9,high,steady,3,0,\n", 2, "id",
     "must not contain control characters"),
    ("customers", C + "C\x7f9,high,steady,3,0,\n", 2, "id", "control characters"),
    ("customers", C + "x" * 129 + ",high,steady,3,0,\n", 2, "id",
     "is longer than 128 characters"),
    ("customers", C + f"C9,high,steady,3,0,{TOO_MANY_TAGS}\n", 2, "tags",
     "65 tags; at most 64 are allowed"),
    ("customers", C + f"C9,high,steady,3,0,ok;{'t' * 129}\n", 2, "tags",
     "is longer than 128 characters"),
    ("customers", C + "C9,high,steady,3,0,ok;\x1b[31mred\n", 2, "tags", "control characters"),
    ("terminals", T + "C1,5G,true,android,\x1b]0;pwned\x07\n", 2, "model",
     "control characters"),
    ("terminals", T + '"C\n1",5G,true,,\n', 2, "customer_id", "control characters"),
    ("events", E + "1700000000,\x1b[31mC1,data_1gb,app,success\n", 2, "customer_id",
     "control characters"),
    ("events", EID + "1700000000,C1,data_1gb,app,success,a b\n", 2, "event_id",
     "is not 1 to 64 of"),
    ("events", EID + f"1700000000,C1,data_1gb,app,success,{'e' * 65}\n", 2, "event_id",
     "is not 1 to 64 of"),
    ("events", EID + "1700000000,C1,data_1gb,app,success,e1\n"
                     "1700000001,C1,data_1gb,app,success,e1\n", 3, "event_id",
     "'e1' is already used on line 2"),
]


@pytest.mark.parametrize(("table", "content", "line", "column", "fragment"),
                         BAD_FILES + BAD_VALUES)
def test_bad_rows_name_file_line_and_column_and_change_nothing(
        store: Store, catalog: Catalog, tmp_path: Path, table, content, line, column,
        fragment) -> None:
    before = store.counts()
    path = write(tmp_path / f"bad_{table}.csv", content)
    with pytest.raises(ImportRowError) as info:
        import_csv(store, catalog, table, path)
    error = info.value
    assert (error.path, error.line, error.column) == (str(path), line, column), str(error)
    assert fragment in str(error)
    assert str(path) in str(error) and f"line {line}" in str(error)
    assert store.counts() == before  # all or nothing


def test_a_non_utf8_file_names_the_line(store: Store, catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes(b"id,value_tier,lifecycle,tenure_months\nC9,high,steady,3\n"
                     + "C10,mid,steady,3,\u5f20\u4e09\n".encode("gbk"))
    before = store.counts()
    with pytest.raises(ImportRowError, match="line 3: not UTF-8"):
        import_csv(store, catalog, "customers", path)
    assert store.counts() == before


def test_bom_quotes_chinese_and_iso_times(store: Store, catalog: Catalog, tmp_path: Path
                                          ) -> None:
    path = write(tmp_path / "bom.csv",
                 "id,value_tier,lifecycle,tenure_months,tags\n"
                 '"客户,甲",mid,steady,5,"family;学生"\n', encoding="utf-8-sig")
    assert import_csv(store, catalog, "customers", path) == 1
    customer = store.customer("客户,甲")
    assert customer.tags == {"family", "学生"}
    ts = store.db.execute("SELECT ts FROM events WHERE customer_id = 'C1'").fetchone()[0]
    assert ts == int(datetime(2026, 10, 1, 8, tzinfo=UTC).timestamp())  # naive times are UTC


def test_train_from_csv_files(sample_workspace: Workspace, exported: Path, tmp_path: Path
                              ) -> None:
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(sample_workspace.root, ws.root)
    model_dir = ws.train(csv_dir=exported)
    from recommender.models import read_manifest
    manifest = read_manifest(model_dir)
    assert manifest["data"]["customers"] == 2000
    assert manifest["data"]["events"] == read_manifest(
        sample_workspace.models_path / (sample_workspace.models_path / "CURRENT")
        .read_text().strip())["data"]["events"]


@pytest.mark.parametrize(("given", "expected"), [
    ("0", 0),
    ("0001700000000", 1_700_000_000),
    (str(MAX_TIMESTAMP), MAX_TIMESTAMP),
    ("1970-01-01T00:00:00Z", 0),
    ("9999-12-31T23:59:59", MAX_TIMESTAMP),
    ("2026-10-01T10:00:00+02:00", int(datetime(2026, 10, 1, 8, tzinfo=UTC).timestamp())),
])
def test_times_at_the_edges_of_the_range(store: Store, catalog: Catalog, tmp_path: Path,
                                         given: str, expected: int) -> None:
    path = write(tmp_path / "edge.csv", E + f"{given},C2,data_1gb,web,query\n")
    assert import_csv(store, catalog, "events", path) == 1
    assert store.db.execute("SELECT ts FROM events WHERE customer_id = 'C2'"
                            ).fetchall() == [(expected,)]


# -- running an import again ------------------------------------------------------------------

def events_in(store: Store) -> list[tuple]:
    return store.db.execute(QUERIES["events"]).fetchall()


def test_importing_the_same_events_again_adds_nothing(store: Store, catalog: Catalog,
                                                      tmp_path: Path) -> None:
    first = write(tmp_path / "e1.csv", E + "1700000000,C1,data_1gb,app,success\n"
                                           "1700000000,C1,data_1gb,app,success\n"
                                           "1700000100,C2,caller_id,web,query\n")
    before = store.count("events")
    assert import_csv(store, catalog, "events", first) == 3
    assert store.count("events") == before + 3  # two identical rows are two events
    stored = events_in(store)
    result = import_file(store, catalog, "events", first)
    assert (result.rows, result.stored) == (3, 0)
    assert events_in(store) == stored
    # the same event in another file (written differently) is the same event
    second = write(tmp_path / "e2.csv", E + "2023-11-14T22:13:20,C1,data_1gb,app,success\n"
                                            "1700000200,C2,caller_id,web,query\n")
    assert import_file(store, catalog, "events", second).stored == 1
    assert store.count("events") == before + 4


def test_event_ids_make_events_idempotent(store: Store, catalog: Catalog, tmp_path: Path
                                          ) -> None:
    path = write(tmp_path / "ids.csv", EID + "1700000000,C1,data_1gb,app,success,app-1\n"
                                             "1700000000,C1,data_1gb,app,success,app-2\n")
    before = store.count("events")
    assert import_file(store, catalog, "events", path).stored == 2
    again = write(tmp_path / "ids2.csv", EID + "1700000999,C2,caller_id,web,query,app-2\n"
                                               "1700000000,C1,data_1gb,app,success,app-3\n")
    assert import_file(store, catalog, "events", again).stored == 1  # app-2 is known
    assert store.count("events") == before + 3
    exported = tmp_path / "export.csv"
    export_csv(store, "events", exported)
    assert "app-1" in exported.read_text()
    assert import_file(store, catalog, "events", exported).stored == 0
    assert store.count("events") == before + 3


def test_customers_terminals_and_holdings_imported_again_change_nothing(
        sample_workspace: Workspace, catalog: Catalog, exported: Path, tmp_path: Path) -> None:
    with Store(tmp_path / "copy.sqlite") as copy:
        import_directory(copy, catalog, exported)
        tables = {t: copy.db.execute(QUERIES[t]).fetchall() for t in QUERIES}
        again = import_directory(copy, catalog, exported)
        assert again == {t: len(rows) for t, rows in tables.items()}
        assert {t: copy.db.execute(QUERIES[t]).fetchall() for t in QUERIES} == tables


def test_a_full_disk_mid_import_is_named_and_running_it_again_completes_it(
        store: Store, catalog: Catalog, tmp_path: Path) -> None:
    path = events_csv(tmp_path / "big.csv", 60_000, ["C1", "C2"], catalog)
    before = store.count("events")
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages + 400}")
    with pytest.raises(StoreError) as info:
        import_file(store, catalog, "events", path, max_transaction_s=0.01, pause_s=0.0)
    assert str(info.value).startswith(f"{store.path}: the disk is full")
    assert "cannot rollback" not in str(info.value)
    partial = store.count("events") - before
    assert 0 < partial < 60_000  # short transactions: what was committed stays
    assert str(info.value).endswith(f"; {partial:,} of 60,000 rows of {path} were written "
                                    f"before, run the same import again to complete it")
    store.db.execute("PRAGMA max_page_count = 1073741823")
    assert import_file(store, catalog, "events", path).stored == 60_000 - partial
    assert store.count("events") == before + 60_000
    assert import_file(store, catalog, "events", path).stored == 0


# -- the import command, as a process ---------------------------------------------------------

def events_csv(path: Path, rows: int, customers: list[str], catalog: Catalog,
               seed: int = 5) -> Path:
    rng = random.Random(seed)
    products = list(catalog.ids)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["ts", "customer_id", "product_id", "channel", "kind"])
        for _ in range(rows):
            out.writerow([1_760_000_000 + rng.randrange(10_000_000), rng.choice(customers),
                          rng.choice(products), rng.choice(CHANNEL_IDS), "success"])
    return path


def cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "recommender.cli", "import", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def workspace(sample_workspace: Workspace, tmp_path: Path) -> Workspace:
    """A writable copy of the sample workspace, without its models."""
    shutil.copytree(sample_workspace.root, tmp_path / "ws",
                    ignore=shutil.ignore_patterns("models"))
    return Workspace(tmp_path / "ws")


def test_an_import_killed_mid_way_is_completed_by_running_it_again(
        workspace: Workspace, catalog: Catalog, tmp_path: Path) -> None:
    with workspace.store() as store:
        customers = store.customer_ids()
        before = store.count("events")
    path = events_csv(tmp_path / "events.csv", 300_000, customers, catalog)
    process = cli("--dir", str(workspace.root), "events", str(path))
    with workspace.store() as store:
        deadline = time.monotonic() + 120
        while store.count("events") == before and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
        partial = store.count("events") - before
    assert 0 < partial < 300_000, partial
    again = cli("--dir", str(workspace.root), "events", str(path))
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert json.loads(out) == {"table": "events", "rows": 300_000}
    assert f"{300_000 - partial:,} new or updated" in err
    with workspace.store() as store:
        assert store.count("events") == before + 300_000
        assert store.db.execute("SELECT COUNT(DISTINCT event_key) FROM events WHERE "
                                "event_key IS NOT NULL").fetchone()[0] == 300_000


def test_a_second_import_waits_for_the_first(workspace: Workspace, catalog: Catalog,
                                             tmp_path: Path) -> None:
    with workspace.store() as store:
        customers = store.customer_ids()
        before = store.count("events")
        path = events_csv(tmp_path / "events.csv", 1000, customers, catalog)
        with import_lock(store):
            waiting = cli("--dir", str(workspace.root), "events", str(path))
            time.sleep(2)
            assert waiting.poll() is None  # still waiting for the lock
            assert store.count("events") == before
        out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert f"waiting for another import into {workspace.store_path} to finish" in err
    with workspace.store() as store:
        assert store.count("events") == before + 1000


def test_concurrent_imports_both_succeed(workspace: Workspace, catalog: Catalog,
                                         tmp_path: Path) -> None:
    with workspace.store() as store:
        customers = store.customer_ids()
        before = store.count("events")
    a = events_csv(tmp_path / "a.csv", 100_000, customers, catalog, seed=1)
    b = events_csv(tmp_path / "b.csv", 100_000, customers, catalog, seed=2)
    first = cli("--dir", str(workspace.root), "events", str(a))
    lock = Path(f"{workspace.store_path}.import.lock")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the first one holds the lock
        if lock.exists():
            with lock.open() as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    break
        time.sleep(0.01)
    second = cli("--dir", str(workspace.root), "events", str(b))
    results = [p.communicate(timeout=300) for p in (first, second)]
    for process, (_, err) in zip((first, second), results, strict=True):
        assert process.returncode == 0, err
        assert "database is locked" not in err and "Traceback" not in err
    assert "waiting for another import" in results[1][1]
    with workspace.store() as store:
        assert store.count("events") == before + 200_000


def test_imports_from_threads_of_one_process_take_turns(workspace: Workspace,
                                                        catalog: Catalog, tmp_path: Path
                                                        ) -> None:
    with workspace.store() as store:
        customers = store.customer_ids()
        before = store.count("events")
    files = [events_csv(tmp_path / f"{i}.csv", 20_000, customers, catalog, seed=i)
             for i in range(3)]
    errors: list[BaseException] = []
    waited: list[str] = []

    def run(path: Path) -> None:
        try:
            with workspace.store() as store:
                import_file(store, catalog, "events", path, progress=waited.append)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert any(m.startswith("waiting for another import") for m in waited)
    with workspace.store() as store:
        assert store.count("events") == before + 60_000


def test_a_read_only_workspace_is_one_line_and_no_traceback(workspace: Workspace,
                                                            tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", "id,value_tier,lifecycle,tenure_months\n"
                                             "NEW1,mid,new,1\n")
    with read_only(workspace.root):
        process = cli("--dir", str(workspace.root), "customers", str(path))
        out, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert "Traceback" not in err and "unable to open database file" not in err
    [line] = err.strip().splitlines()
    # opening fails, or (when -wal and -shm files are left over) creating the import lock
    assert line.startswith(f"Error: {workspace.store_path}: cannot "), line
    assert line.endswith(f"the folder {workspace.root} is read-only (the store's -wal, -shm "
                         f"and import lock files are written beside it)"), line
    assert Workspace(workspace.root).store().customer("NEW1") is None


def test_a_missing_workspace_is_one_line_and_no_traceback(tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", "id,value_tier,lifecycle,tenure_months\n")
    process = cli("--dir", str(tmp_path / "nowhere"), "customers", str(path))
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert err.strip() == f"Error: {tmp_path / 'nowhere' / 'catalog.toml'}: file not found"
    assert not (tmp_path / "nowhere").exists()



def test_an_unreadable_file_is_named(store: Store, catalog: Catalog, tmp_path: Path) -> None:
    from recommender.csvimport import ImportFileError

    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(ImportFileError, match=r"folder\.csv: cannot read: Is a directory"):
        import_csv(store, catalog, "customers", tmp_path / "folder.csv")
