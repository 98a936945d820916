"""CSV import: a faithful round trip, and every bad row refused with file, line and column."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recommender import Catalog, ImportRowError, Store
from recommender.csvimport import TABLE_ORDER, export_csv, import_csv, import_directory
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
    ("customers", "id,value_tier,lifecycle\nC9,high,steady\n", 1, "tenure_months",
     "required column missing"),
    ("customers", "id,value_tier,lifecycle,tenure_months,shoe\nC9,high,steady,3,42\n", 1,
     "shoe", "unknown column"),
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


@pytest.mark.parametrize(("table", "content", "line", "column", "fragment"), BAD_FILES)
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
