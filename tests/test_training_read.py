"""TrainingData.from_store reads the store in bulk and gives what a row-by-row read gives."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from recommender import Catalog, TrainingData
from recommender.attributes import AttributeTable, decode
from recommender.store import Store
from recommender.training import CHANNEL_IDS, LIFECYCLES, MOMENTS, OSES, PERSONAS, TIERS
from recommender.workspace import Workspace


def reference(store: Store, catalog: Catalog) -> dict[str, object]:
    """The arrays as the documented semantics define them, one row at a time."""
    db = store.db
    rows = db.execute("SELECT id, value_tier, persona, lifecycle, tenure_months FROM customers "
                      "ORDER BY id").fetchall()
    position = {r[0]: i for i, r in enumerate(rows)}
    tiers = [t.value for t in TIERS]
    personas = [p.value for p in PERSONAS]
    lifecycles = [s.value for s in LIFECYCLES]
    oses = [o.value for o in OSES]
    n = len(rows)
    network, smartphone, os_ = [4] * n, [True] * n, [-1] * n
    for cid, net, smart, os_name in db.execute("SELECT customer_id, network, smartphone, os "
                                               "FROM terminals"):
        if cid in position:
            i = position[cid]
            network[i], smartphone[i] = int(net[0]), bool(smart)
            os_[i] = oses.index(os_name) if os_name in oses else -1
    holdings = sorted({(position[c], catalog.index[p]) for c, p in db.execute(
        "SELECT customer_id, product_id FROM holdings")
        if c in position and p in catalog.index})
    channels, kinds = list(CHANNEL_IDS), [m.value for m in MOMENTS]
    events = [(position[c], catalog.index[p], channels.index(ch), kinds.index(k), ts)
              for ts, c, p, ch, k in db.execute(
                  "SELECT ts, customer_id, product_id, channel, kind FROM events ORDER BY ts, id")
              if c in position and p in catalog.index and ch in channels and k in kinds]
    kinds = store.attribute_kinds()
    attributes = AttributeTable.from_mappings(
        (decode(text) for _, text in store.customer_attributes()), n, kinds) if kinds else None
    return {
        "attributes": attributes,
        "customers": [r[0] for r in rows],
        "value_tier": [tiers.index(r[1]) for r in rows],
        "persona": [personas.index(r[2]) if r[2] in personas else -1 for r in rows],
        "lifecycle": [lifecycles.index(r[3]) for r in rows],
        "tenure": [r[4] for r in rows],
        "network": network, "smartphone": smartphone, "os": os_,
        "holdings": holdings, "events": events,
    }


def assert_matches(data: TrainingData, expected: dict[str, object]) -> None:
    assert data.customers.tolist() == expected["customers"]
    for name in ("value_tier", "persona", "lifecycle", "tenure", "network", "smartphone", "os"):
        assert getattr(data, name).tolist() == expected[name], name
    held = data.holdings.tocoo()
    assert sorted(zip(held.row.tolist(), held.col.tolist(), strict=True)) == expected["holdings"]
    assert (data.holdings.data == 1).all()
    ev = data.events
    assert list(zip(ev.customer.tolist(), ev.product.tolist(), ev.channel.tolist(),
                    ev.kind.tolist(), ev.ts.tolist(), strict=True)) == expected["events"]
    assert (ev.customer.dtype, ev.product.dtype, ev.channel.dtype, ev.kind.dtype, ev.ts.dtype) \
        == (np.int32, np.int32, np.int8, np.int8, np.int64)
    want = expected["attributes"]
    if want is None:
        assert data.attributes is None
    else:
        got = data.attributes
        assert got.numeric_names == want.numeric_names
        assert np.array_equal(got.numeric, want.numeric, equal_nan=True)
        assert got.categorical_names == want.categorical_names
        assert np.array_equal(got.codes, want.codes)


@pytest.fixture
def workspace(sample_workspace: Workspace, tmp_path: Path) -> Workspace:
    """A copy of the sample store that a test may spoil."""
    (tmp_path / "ws").mkdir()
    for name in ("catalog.toml", "config.toml", "rules.toml", "events.toml"):
        source = sample_workspace.root / name
        if source.exists():
            (tmp_path / "ws" / name).write_bytes(source.read_bytes())
    ws = Workspace(tmp_path / "ws")
    with sample_workspace.store() as src, ws.store() as dst:
        src.db.backup(dst.db)
    return ws


@pytest.fixture(params=["pyarrow", "dict"])
def lookup(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Ids are looked up by pyarrow when it is installed, through a dict otherwise: both."""
    if request.param == "dict":
        monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow: ImportError
    return request.param


def test_bulk_read_equals_the_row_by_row_semantics(workspace: Workspace, lookup: str) -> None:
    catalog = workspace.catalog()
    with workspace.store() as store:
        assert_matches(TrainingData.from_store(store, catalog), reference(store, catalog))


def test_rows_naming_unknowns_are_skipped_and_odd_text_survives(workspace: Workspace,
                                                                lookup: str) -> None:
    catalog = workspace.catalog()
    known = catalog.ids[0]
    with workspace.store() as store:
        with store.transaction() as db:
            # Ids holding the bulk reader's own separator, and commas, quotes and newlines.
            db.executemany("INSERT INTO customers (id, value_tier, persona, lifecycle, "
                           "tenure_months) VALUES (?, ?, NULL, ?, ?)",
                           [("odd\x1fid", "high", "new", 3), ('a,"b"\nc', "low", "steady", 0)])
            db.executemany("INSERT INTO events (ts, customer_id, product_id, channel, kind) "
                           "VALUES (?, ?, ?, ?, ?)",
                           [(5, "odd\x1fid", known, "app", "success"),
                            (5, "nobody", known, "app", "success"),       # unknown customer
                            (4, 'a,"b"\nc', "no_such_business", "app", "query"),
                            (4, 'a,"b"\nc', known, "fax", "query"),       # unknown channel
                            (3, 'a,"b"\nc', known, "app", "success")])
            db.execute("INSERT INTO holdings (customer_id, product_id) VALUES (?, ?)",
                       ("odd\x1fid", known))
            db.execute("INSERT INTO terminals (customer_id, network, smartphone, os) "
                       "VALUES ('ghost', '5G', 0, NULL)")
        expected = reference(store, catalog)
        data = TrainingData.from_store(store, catalog)
    assert_matches(data, expected)
    assert "odd\x1fid" in data.customers.tolist()


def test_events_in_several_chunks_keep_time_then_id_order(workspace: Workspace) -> None:
    catalog = workspace.catalog()
    with workspace.store() as store:
        whole = list(store.read_columns("events", ["id", "ts"]))
        chunks = list(store.read_columns("events", ["id", "ts"], chunk_rows=997))
        assert len(whole) == 1 and len(chunks) > 5
        assert np.concatenate([c["id"] for c in chunks]).tolist() == whole[0]["id"].tolist()
        assert whole[0]["id"].dtype == np.int64
        # Ids looked up chunk by chunk, on the reading threads, against the whole read.
        coded = {"customer_id": store.customer_ids(), "product_id": list(catalog.ids)}
        columns = ["id", "customer_id", "product_id"]
        (one,) = store.read_columns("events", columns, codes=coded)
        many = list(store.read_columns("events", columns, codes=coded, chunk_rows=997))
        for column in columns:
            assert np.concatenate([c[column] for c in many]).tolist() == one[column].tolist()
        assert (one["customer_id"] >= 0).all() and (one["product_id"] >= 0).all()
        # Rows written out of time order still come back ordered by (ts, id).
        with store.transaction() as db:
            db.execute("UPDATE events SET ts = 0 WHERE id = (SELECT max(id) FROM events)")
        data = TrainingData.from_store(store, catalog)
        assert_matches(data, reference(store, catalog))
    assert data.events.ts[0] == 0


@pytest.mark.parametrize(("table", "columns"), [
    ("events", ["id; DROP TABLE events"]),
    ("customers", ["tags"]),
    ("sqlite_master", ["sql"]),
    ("events", []),
])
def test_read_columns_refuses_what_it_does_not_serve(workspace: Workspace, table: str,
                                                     columns: list[str]) -> None:
    with workspace.store() as store, pytest.raises(ValueError, match="read_columns: cannot read"):
        list(store.read_columns(table, columns))
    with workspace.store() as store:
        assert store.count("events") > 0  # nothing was dropped


def test_attributes_are_read_in_bulk_and_odd_ones_survive(workspace: Workspace) -> None:
    catalog = workspace.catalog()
    with workspace.store() as store:
        if not store.attribute_kinds():
            store.set_attribute_kinds({"arpu": "numeric", "plan": "categorical"})
        with store.transaction() as db:
            db.executemany("INSERT INTO customers (id, value_tier, lifecycle, tenure_months, "
                           "attributes) VALUES (?, 'mid', 'steady', 0, ?)",
                           [("attr-a", '{"arpu": 12.5, "plan": "x,y]"}'), ("attr-b", None),
                            ("attr-c", "")])  # '' is no JSON: decoded row by row as {}
        expected = reference(store, catalog)
        assert expected["attributes"] is not None
        assert_matches(TrainingData.from_store(store, catalog), expected)


def test_an_unknown_value_tier_is_named(workspace: Workspace) -> None:
    with workspace.store() as store:
        with store.transaction() as db:
            db.execute("INSERT INTO customers (id, value_tier, lifecycle, tenure_months) "
                       "VALUES ('x', 'platinum', 'steady', 1)")
        with pytest.raises(ValueError, match="customers.value_tier: unknown value 'platinum'"):
            TrainingData.from_store(store, workspace.catalog())


def test_an_empty_store_reads_as_empty_arrays(tmp_path: Path, catalog: Catalog) -> None:
    with Store(tmp_path / "empty.sqlite") as store:
        data = TrainingData.from_store(store, catalog)
    assert data.n_customers == 0 and len(data.events) == 0
    assert data.holdings.shape == (0, len(catalog))
