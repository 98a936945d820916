"""Customer attributes: optional known columns, typed attribute columns, bad files refused
whole, attributes in the store, the context and inline requests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from recommender import Catalog, ContextError, Customer, ImportRowError, TrainingData
from recommender.attributes import MAX_ATTRIBUTES, MAX_CUSTOMER_ATTRIBUTES, declared_kinds
from recommender.context import customer_from_mapping
from recommender.csvimport import import_file
from recommender.errors import ConfigError
from recommender.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "s.sqlite") as s:
        yield s


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def snapshot(store: Store) -> tuple:
    rows = store.db.execute("SELECT * FROM customers ORDER BY id").fetchall()
    return rows, store.attribute_kinds()


def test_only_id_is_required_and_known_columns_default(
    store: Store, catalog: Catalog, tmp_path: Path
) -> None:
    import_file(store, catalog, "customers", write(tmp_path / "c.csv", "id\nA\nB\n"))
    a = store.customer("A")
    assert (a.value_tier.value, a.lifecycle.value, a.tenure_months, a.vip_level) == (
        "mid",
        "steady",
        0,
        0,
    )
    assert a.attributes == {}


def test_other_columns_become_typed_attributes(
    store: Store, catalog: Catalog, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "c.csv",
        "id,value_tier,age,region,spend,code\n"
        "A,high,31,north,1.5e2,7\nB,,,south,-2,\nC,low,40,3x,,8\n",
    )
    import_file(store, catalog, "customers", path)
    assert store.attribute_kinds() == {
        "age": "numeric",
        "region": "categorical",
        "spend": "numeric",
        "code": "numeric",
    }
    assert store.customer("A").attributes == {
        "age": 31.0,
        "region": "north",
        "spend": 150.0,
        "code": 7.0,
    }
    assert store.customer("B").attributes == {"region": "south", "spend": -2.0}
    assert store.customer("B").value_tier.value == "mid"
    data = TrainingData.from_store(store, catalog)
    table = data.attributes
    assert table.numeric_names == ("age", "spend", "code")
    assert np.isnan(table.numeric[1, 0]) and table.numeric[0, 1] == 150.0
    assert table.categories["region"] == ("3x", "north", "south")
    assert table.codes[:, 0].tolist() == [1, 2, 0]


def test_declared_kind_keeps_number_like_codes_categorical(
    store: Store, catalog: Catalog, tmp_path: Path
) -> None:
    path = write(tmp_path / "c.csv", "id,postcode\nA,01234\nB,99\nC,A1\n")
    import_file(store, catalog, "customers", path, attribute_kinds={"postcode": "categorical"})
    assert store.customer("A").attributes == {"postcode": "01234"}
    assert store.attribute_kinds() == {"postcode": "categorical"}


@pytest.mark.parametrize(
    ("text", "declared", "line", "column", "message"),
    [
        # numbers and text mixed, no kind declared: both lines named, nothing written
        (
            "id,age\nA,31\nB,40\nC,forty\n",
            {},
            4,
            "age",
            "mixes numbers (line 2: '31') and text (line 4: 'forty')",
        ),
        ("id,age\nA,old\nB,40\n", {}, 3, "age", "declare its kind"),
        (
            "id,age\nA,31\nB,forty\n",
            {"age": "numeric"},
            3,
            "age",
            "'forty' is not a number (declared numeric)",
        ),
        ("id,age\nA,nan\n", {"age": "numeric"}, 2, "age", "is not a number"),
        ("id,age\nA,1e999\n", {"age": "numeric"}, 2, "age", "is not a number"),
        ("id,region\nA,\x1b[2Jnorth\n", {}, 2, "region", "control characters"),
        ("id,region\nA," + "x" * 129 + "\n", {}, 2, "region", "longer than 128 characters"),
        ("id,2fast\nA,1\n", {}, 1, "2fast", "is not an attribute name"),
        ("id,age,age\nA,1,2\n", {}, 1, "age", "a column appears twice"),
        ("id\n", {}, 2, None, "no customer rows after the header"),
        ("id\n\n\n", {}, 2, None, "no customer rows after the header"),
        ("", {}, 1, None, "empty file"),
        ("value_tier,age\nhigh,3\n", {}, 1, "id", "required column missing"),
    ],
)
def test_bad_attribute_files_are_refused_whole(
    store: Store,
    catalog: Catalog,
    tmp_path: Path,
    text: str,
    declared: dict,
    line: int,
    column: str | None,
    message: str,
) -> None:
    import_file(store, catalog, "customers", write(tmp_path / "ok.csv", "id,other\nZ,50\n"))
    before = snapshot(store)
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(ImportRowError) as caught:
        import_file(store, catalog, "customers", path, attribute_kinds=declared)
    error = caught.value
    assert (error.path, error.line, error.column) == (str(path), line, column)
    assert message in str(error)
    assert snapshot(store) == before


def test_a_10000_column_file_is_refused_naming_the_first_column_too_many(
    store: Store, catalog: Catalog, tmp_path: Path
) -> None:
    names = [f"c{i}" for i in range(10_000)]
    path = write(
        tmp_path / "wide.csv",
        "id," + ",".join(names) + "\nA," + ",".join("1" for _ in names) + "\n",
    )
    with pytest.raises(ImportRowError) as caught:
        import_file(store, catalog, "customers", path)
    assert caught.value.line == 1 and caught.value.column == names[MAX_ATTRIBUTES]
    assert "10,000 attribute columns" in str(caught.value)
    assert f"at most {MAX_ATTRIBUTES}" in str(caught.value)
    assert store.count("customers") == 0 and store.attribute_kinds() == {}


def test_the_limit_counts_attributes_already_stored(
    store: Store, catalog: Catalog, tmp_path: Path
) -> None:
    first = [f"a{i}" for i in range(MAX_ATTRIBUTES - 1)]
    import_file(
        store,
        catalog,
        "customers",
        write(
            tmp_path / "a.csv",
            "id," + ",".join(first) + "\nA," + ",".join("1" for _ in first) + "\n",
        ),
    )
    with pytest.raises(ImportRowError, match="at most"):
        import_file(store, catalog, "customers", write(tmp_path / "b.csv", "id,b1,b2\nB,1,2\n"))
    assert store.count("customers") == 1


def test_a_later_file_must_agree_with_the_stored_kind(
    store: Store, catalog: Catalog, tmp_path: Path
) -> None:
    import_file(store, catalog, "customers", write(tmp_path / "a.csv", "id,age\nA,31\n"))
    with pytest.raises(ImportRowError, match=r"'old' is not a number \(stored as numeric\)"):
        import_file(store, catalog, "customers", write(tmp_path / "b.csv", "id,age\nB,old\n"))
    with pytest.raises(
        ImportRowError, match="declared categorical in .attributes. but stored as numeric"
    ):
        import_file(
            store,
            catalog,
            "customers",
            write(tmp_path / "c.csv", "id,age\nC,3\n"),
            attribute_kinds={"age": "categorical"},
        )
    assert store.customer_ids() == ["A"]


def test_other_tables_still_refuse_unknown_columns(
    store: Store, catalog: Catalog, tmp_path: Path
) -> None:
    import_file(store, catalog, "customers", write(tmp_path / "c.csv", "id\nA\n"))
    with pytest.raises(ImportRowError, match="unknown column"):
        import_file(
            store,
            catalog,
            "terminals",
            write(tmp_path / "t.csv", "customer_id,network,smartphone,age\nA,4G,true,3\n"),
        )


def test_reimport_replaces_attributes_and_is_idempotent(
    store: Store, catalog: Catalog, tmp_path: Path
) -> None:
    path = write(tmp_path / "c.csv", "id,age\nA,31\n")
    import_file(store, catalog, "customers", path)
    first = snapshot(store)
    import_file(store, catalog, "customers", path)
    assert snapshot(store) == first
    import_file(store, catalog, "customers", write(tmp_path / "d.csv", "id,age\nA,32\n"))
    assert store.customer("A").attributes == {"age": 32.0}


def test_a_store_from_before_attributes_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE customers (id TEXT PRIMARY KEY, value_tier TEXT NOT NULL, "
        "persona TEXT, lifecycle TEXT NOT NULL, tenure_months INTEGER NOT NULL, "
        "vip_level INTEGER NOT NULL DEFAULT 0, tags TEXT NOT NULL DEFAULT '') "
        "WITHOUT ROWID; INSERT INTO customers VALUES "
        "('A','high',NULL,'steady',3,0,'');"
    )
    db.close()
    with Store(path) as store:
        assert store.customer("A").attributes == {}
        store.add_customers([Customer("B", attributes={"age": 3})])
        assert store.customer("B").attributes == {"age": 3.0}


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        ({"1x": 3}, "customer.attributes.1x"),
        ({"x": float("nan")}, "customer.attributes.x"),
        ({"x": float("inf")}, "customer.attributes.x"),
        ({"x": True}, "customer.attributes.x"),
        ({"x": ""}, "customer.attributes.x"),
        ({"x": "a" * 129}, "customer.attributes.x"),
        ({"x": "\x07"}, "customer.attributes.x"),
        ({"x": [1]}, "customer.attributes.x"),
        ({f"a{i}": i for i in range(MAX_CUSTOMER_ATTRIBUTES + 1)}, "customer.attributes"),
        (["age", 3], "customer.attributes"),
    ],
)
def test_customer_attributes_are_validated(attributes: object, field: str) -> None:
    with pytest.raises(ContextError) as caught:
        Customer("A", attributes=attributes)
    assert caught.value.field == field


def test_inline_attributes_override_stored_ones_by_name() -> None:
    stored = Customer("A", attributes={"age": 30, "region": "north"})
    merged = customer_from_mapping(
        {"id": "A", "attributes": {"age": 31, "plan": "gold"}}, base=stored
    )
    assert merged.attributes == {"age": 31.0, "region": "north", "plan": "gold"}
    assert stored.attributes == {"age": 30.0, "region": "north"}


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"attributes": {"age": "number"}}, "attributes.age"),
        ({"attributes": {"9x": "numeric"}}, "attributes.9x"),
        ({"attributes": ["age"]}, "attributes"),
    ],
)
def test_declared_kinds_are_checked(table: dict, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        declared_kinds(table, "config.toml")
    assert caught.value.key == key


def test_a_customer_with_every_stored_attribute_is_served(
    store: Store, catalog: Catalog, tmp_path: Path
) -> None:
    names = [f"a{i}" for i in range(MAX_ATTRIBUTES)]
    path = write(
        tmp_path / "c.csv",
        "id," + ",".join(names) + "\nA," + ",".join(str(i) for i in range(MAX_ATTRIBUTES)) + "\n",
    )
    import_file(store, catalog, "customers", path)
    customer = store.customer("A")
    assert len(customer.attributes) == MAX_ATTRIBUTES
    merged = customer_from_mapping({"id": "A", "attributes": {"extra": 1}}, base=customer)
    assert len(merged.attributes) == MAX_ATTRIBUTES + 1
