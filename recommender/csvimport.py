"""CSV import and export for the store, all rows or none, errors naming file, line and column.

Formats (a header row first; optional columns may be left out):

- ``customers.csv``: id, value_tier, persona?, lifecycle, tenure_months, vip_level?, tags?
  (tags separated by ``;``)
- ``terminals.csv``: customer_id, network (2G-5G), smartphone (true/false/1/0), os?, model?
- ``holdings.csv``: customer_id, product_id, since? (ISO 8601 or unix seconds)
- ``events.csv``: ts, customer_id, product_id, channel, kind (query, transaction, success,
  failure), failure_reason? (failure events only)
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .catalog import Catalog
from .context import (
    CHANNEL_IDS,
    OS,
    FailureReason,
    Lifecycle,
    Moment,
    Network,
    Persona,
    ValueTier,
    parse_enum,
)
from .errors import ContextError, ImportRowError
from .store import TAG_SEPARATOR, Store

#: Per table: (column, required) in store order.
COLUMNS: dict[str, tuple[tuple[str, bool], ...]] = {
    "customers": (("id", True), ("value_tier", True), ("persona", False),
                  ("lifecycle", True), ("tenure_months", True), ("vip_level", False),
                  ("tags", False)),
    "terminals": (("customer_id", True), ("network", True), ("smartphone", True),
                  ("os", False), ("model", False)),
    "holdings": (("customer_id", True), ("product_id", True), ("since", False)),
    "events": (("ts", True), ("customer_id", True), ("product_id", True), ("channel", True),
               ("kind", True), ("failure_reason", False)),
}
TABLE_ORDER = ("customers", "terminals", "holdings", "events")


class _RowError(Exception):
    def __init__(self, column: str, message: str):
        self.column = column
        self.message = message


def _enum(enum: type, column: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        try:
            return parse_enum(enum, column, value).value
        except ContextError:
            allowed = ", ".join(m.value for m in enum)
            raise _RowError(column, f"{value!r} is not one of {allowed}") from None
    return parse


def _integer(column: str, minimum: int = 0) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise _RowError(column, f"{value!r} is not an integer") from None
        if number < minimum:
            raise _RowError(column, f"{number} is below {minimum}")
        return number
    return parse


def _timestamp(column: str) -> Callable[[str], int]:
    def parse(value: str) -> int:
        if value.lstrip("-").isdigit():
            return int(value)
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise _RowError(column, f"{value!r} is neither ISO 8601 nor unix seconds") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp())
    return parse


def _boolean(column: str) -> Callable[[str], int]:
    def parse(value: str) -> int:
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return 1
        if lowered in ("false", "0", "no"):
            return 0
        raise _RowError(column, f"{value!r} is not true/false/1/0")
    return parse


def _text(column: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if len(value) > 128:
            raise _RowError(column, "is longer than 128 characters")
        return value
    return parse


def _parsers(table: str, catalog: Catalog, known_customers: Callable[[str], bool]
             ) -> dict[str, Callable[[str], Any]]:
    def product(value: str) -> str:
        if value not in catalog:
            raise _RowError("product_id", f"unknown product {value!r}")
        return value

    def customer(value: str) -> str:
        if not known_customers(value):
            raise _RowError("customer_id", f"unknown customer {value!r} (import customers first)")
        return value

    def channel(value: str) -> str:
        if value not in CHANNEL_IDS:
            raise _RowError("channel", f"{value!r} is not one of {', '.join(CHANNEL_IDS)}")
        return value

    def tags(value: str) -> str:
        return TAG_SEPARATOR.join(sorted({t.strip() for t in value.split(TAG_SEPARATOR)
                                          if t.strip()}))

    return {
        "customers": {"id": _text("id"), "value_tier": _enum(ValueTier, "value_tier"),
                      "persona": _enum(Persona, "persona"),
                      "lifecycle": _enum(Lifecycle, "lifecycle"),
                      "tenure_months": _integer("tenure_months"),
                      "vip_level": _integer("vip_level"), "tags": tags},
        "terminals": {"customer_id": customer, "network": _enum(Network, "network"),
                      "smartphone": _boolean("smartphone"), "os": _enum(OS, "os"),
                      "model": _text("model")},
        "holdings": {"customer_id": customer, "product_id": product,
                     "since": _timestamp("since")},
        "events": {"ts": _timestamp("ts"), "customer_id": customer, "product_id": product,
                   "channel": channel, "kind": _enum(Moment, "kind"),
                   "failure_reason": _enum(FailureReason, "failure_reason")},
    }[table]


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(physical line number, fields) per record; a non-UTF-8 line is an error naming it."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, strict=True)
            try:
                for fields in reader:
                    yield reader.line_num, fields
            except csv.Error as e:
                raise ImportRowError(str(path), reader.line_num, None, f"malformed CSV: {e}"
                                     ) from None
    except UnicodeDecodeError as e:
        line = path.read_bytes()[:e.start].count(b"\n") + 1
        raise ImportRowError(str(path), line, None, "not UTF-8 text") from None


def read_table(path: str | Path, table: str, catalog: Catalog,
               known_customers: Callable[[str], bool]) -> list[tuple[Any, ...]]:
    """Parse and validate a whole CSV file into store rows; raises on the first bad row."""
    if table not in COLUMNS:
        raise ValueError(f"table: unknown table {table!r}; known: {', '.join(COLUMNS)}")
    path = Path(path)
    source = str(path)
    columns = COLUMNS[table]
    rows = _rows(path)
    try:
        _, header = next(rows)
    except StopIteration:
        raise ImportRowError(source, 1, None, "empty file: a header row is required") from None
    header = [h.strip() for h in header]
    known = [c for c, _ in columns]
    for column in header:
        if column not in known:
            raise ImportRowError(source, 1, column,
                                 f"unknown column; expected {', '.join(known)}")
    if len(set(header)) != len(header):
        raise ImportRowError(source, 1, None, "a column appears twice")
    for column, required in columns:
        if required and column not in header:
            raise ImportRowError(source, 1, column, "required column missing")
    parsers = _parsers(table, catalog, known_customers)
    position = {c: header.index(c) for c in known if c in header}
    out = []
    for line, fields in rows:
        if not fields:
            continue
        if len(fields) != len(header):
            raise ImportRowError(source, line, None,
                                 f"{len(fields)} fields, the header has {len(header)}")
        record: list[Any] = []
        for column, required in columns:
            raw = fields[position[column]].strip() if column in position else ""
            if not raw:
                if required:
                    raise ImportRowError(source, line, column, "empty, but required")
                record.append(0 if column == "vip_level" else "" if column == "tags" else None)
                continue
            try:
                record.append(parsers[column](raw))
            except _RowError as e:
                raise ImportRowError(source, line, e.column, e.message) from None
        if table == "events" and record[5] is not None and record[4] != "failure":
            raise ImportRowError(source, line, "failure_reason",
                                 "only failure events carry a failure reason")
        out.append(tuple(record))
    return out


def import_csv(store: Store, catalog: Catalog, table: str, path: str | Path) -> int:
    """Import one CSV file into ``table``, in one transaction: all rows or none."""
    if table == "customers":
        rows = read_table(path, table, catalog, lambda _: True)
    else:
        db = store.db

        def known(customer_id: str) -> bool:
            return db.execute("SELECT 1 FROM customers WHERE id = ?",
                              (customer_id,)).fetchone() is not None

        rows = read_table(path, table, catalog, known)
    with store.transaction() as tx:
        store.add_rows(table, rows, db=tx)
    return len(rows)


def import_directory(store: Store, catalog: Catalog, directory: str | Path) -> dict[str, int]:
    """Import ``customers.csv``, ``terminals.csv``, ``holdings.csv`` and ``events.csv`` from
    ``directory`` (those present), in that order."""
    directory = Path(directory)
    return {table: import_csv(store, catalog, table, directory / f"{table}.csv")
            for table in TABLE_ORDER if (directory / f"{table}.csv").exists()}


def export_csv(store: Store, table: str, path: str | Path) -> int:
    """Write ``table`` in the format ``import_csv`` reads; returns the rows written."""
    if table not in COLUMNS:
        raise ValueError(f"table: unknown table {table!r}; known: {', '.join(COLUMNS)}")
    columns = [c for c, _ in COLUMNS[table]]
    source = {"customers": "customers", "terminals": "terminals", "holdings": "holdings",
              "events": "events"}[table]
    order = {"customers": "id", "terminals": "customer_id",
             "holdings": "customer_id, product_id", "events": "ts, id"}[table]
    select = ", ".join(columns)
    n = 0
    with Path(path).open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in store.db.execute(f"SELECT {select} FROM {source} ORDER BY {order}"):
            if table == "terminals":
                row = (*row[:2], "true" if row[2] else "false", *row[3:])
            writer.writerow(["" if v is None else v for v in row])
            n += 1
    return n
