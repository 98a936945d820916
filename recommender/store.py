"""The embedded store: customers, terminals, holdings, interaction log and feedback in SQLite.

One file, no server. WAL mode and a busy timeout let a serving process read while a loader
writes; each thread gets its own connection. It is the default context provider (see
``plugins/store_provider.py``) and the default source of training data.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .context import Customer, Terminal

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    id TEXT PRIMARY KEY,
    value_tier TEXT NOT NULL,
    persona TEXT,
    lifecycle TEXT NOT NULL,
    tenure_months INTEGER NOT NULL,
    vip_level INTEGER NOT NULL DEFAULT 0,
    tags TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS terminals (
    customer_id TEXT PRIMARY KEY,
    network TEXT NOT NULL,
    smartphone INTEGER NOT NULL,
    os TEXT,
    model TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS holdings (
    customer_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    since INTEGER,
    PRIMARY KEY (customer_id, product_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    customer_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    failure_reason TEXT
);
CREATE INDEX IF NOT EXISTS events_by_customer ON events (customer_id, ts);
CREATE TABLE IF NOT EXISTS feedback (
    event_id TEXT PRIMARY KEY,
    ts INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    action TEXT NOT NULL,
    customer_id TEXT,
    channel TEXT,
    moment TEXT,
    strategies TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

TAG_SEPARATOR = ";"


@dataclass(frozen=True, slots=True)
class FeedbackEvent:
    """What a channel reports about a suggestion: impression, click, accept or dismiss."""

    event_id: str
    request_id: str
    product: str
    action: str
    ts: int
    customer_id: str | None = None
    channel: str | None = None
    moment: str | None = None
    strategies: tuple[str, ...] = ()


class Store:
    """A SQLite file holding everything the context providers and training read."""

    def __init__(self, path: str | Path, *, timeout_s: float = 10.0):
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.db.executescript(SCHEMA)  # its statements are idempotent; it commits itself

    # -- connections --------------------------------------------------------------------------

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection (created on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=self.timeout_s, isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout_s * 1000)}")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed durably on success, rolled back on any error."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------------

    def add_customers(self, customers: Iterable[Customer], db: sqlite3.Connection | None = None
                      ) -> None:
        """Insert or replace customers and their holdings."""
        rows, holdings = [], []
        for c in customers:
            rows.append((c.id, c.value_tier.value, c.persona and c.persona.value,
                         c.lifecycle.value, c.tenure_months, c.vip_level,
                         TAG_SEPARATOR.join(sorted(c.tags))))
            holdings.extend((c.id, p, None) for p in c.holdings)
        with self._maybe_transaction(db) as tx:
            tx.executemany("INSERT OR REPLACE INTO customers VALUES (?,?,?,?,?,?,?)", rows)
            tx.executemany("INSERT OR IGNORE INTO holdings VALUES (?,?,?)", holdings)

    def add_terminals(self, terminals: Iterable[tuple[str, Terminal]],
                      db: sqlite3.Connection | None = None) -> None:
        rows = [(cid, t.network.value, int(t.smartphone), t.os and t.os.value, t.model)
                for cid, t in terminals]
        with self._maybe_transaction(db) as tx:
            tx.executemany("INSERT OR REPLACE INTO terminals VALUES (?,?,?,?,?)", rows)

    def add_rows(self, table: str, rows: Iterable[tuple[Any, ...]],
                 db: sqlite3.Connection | None = None) -> int:
        """Bulk-insert raw rows (already validated) into one of the store's tables."""
        columns = {"customers": 7, "terminals": 5, "holdings": 3, "events": 6, "feedback": 9}
        if table not in columns:
            raise ValueError(f"table: unknown table {table!r}")
        n = columns[table]
        if table == "events":
            sql = ("INSERT INTO events (ts, customer_id, product_id, channel, kind, "
                   "failure_reason) VALUES (?,?,?,?,?,?)")
        else:
            verb = "INSERT OR IGNORE" if table in ("holdings", "feedback") else \
                "INSERT OR REPLACE"
            sql = f"{verb} INTO {table} VALUES ({','.join('?' * n)})"
        with self._maybe_transaction(db) as tx:
            before = tx.total_changes
            tx.executemany(sql, rows)
            return tx.total_changes - before

    def add_feedback(self, event: FeedbackEvent) -> bool:
        """Store a feedback event durably; False if its event id was already stored."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO feedback VALUES (?,?,?,?,?,?,?,?,?)",
                (event.event_id, event.ts, event.request_id, event.product, event.action,
                 event.customer_id, event.channel, event.moment, ",".join(event.strategies)),
            )
            return cur.rowcount == 1

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    @contextmanager
    def _maybe_transaction(self, db: sqlite3.Connection | None) -> Iterator[sqlite3.Connection]:
        if db is not None:
            yield db
        else:
            with self.transaction() as tx:
                yield tx

    # -- reading ------------------------------------------------------------------------------

    def customer(self, customer_id: str) -> Customer | None:
        """The stored customer with current holdings, or None."""
        row = self.db.execute(
            "SELECT id, value_tier, persona, lifecycle, tenure_months, vip_level, tags "
            "FROM customers WHERE id = ?", (customer_id,)).fetchone()
        if row is None:
            return None
        return Customer(
            id=row[0], value_tier=row[1], persona=row[2], lifecycle=row[3],
            tenure_months=row[4], vip_level=row[5],
            tags=frozenset(t for t in row[6].split(TAG_SEPARATOR) if t),
            holdings=self.holdings(customer_id),
        )

    def holdings(self, customer_id: str) -> frozenset[str]:
        rows = self.db.execute(
            "SELECT product_id FROM holdings WHERE customer_id = ?", (customer_id,))
        return frozenset(r[0] for r in rows)

    def terminal(self, customer_id: str) -> Terminal | None:
        row = self.db.execute(
            "SELECT network, smartphone, os, model FROM terminals WHERE customer_id = ?",
            (customer_id,)).fetchone()
        if row is None:
            return None
        return Terminal(network=row[0], smartphone=bool(row[1]), os=row[2], model=row[3])

    def customer_ids(self, limit: int | None = None) -> list[str]:
        sql = "SELECT id FROM customers ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [r[0] for r in self.db.execute(sql)]

    def holding_baskets(self) -> list[list[str]]:
        """Each customer's holdings as one basket (customers holding nothing are included)."""
        baskets: dict[str, list[str]] = {cid: [] for cid in self.customer_ids()}
        for cid, pid in self.db.execute("SELECT customer_id, product_id FROM holdings"):
            baskets.setdefault(cid, []).append(pid)
        return list(baskets.values())

    def count(self, table: str) -> int:
        if table not in {"customers", "terminals", "holdings", "events", "feedback"}:
            raise ValueError(f"table: unknown table {table!r}")
        return self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    def counts(self) -> dict[str, int]:
        return {t: self.count(t) for t in ("customers", "terminals", "holdings", "events",
                                           "feedback")}

    def feedback(self) -> list[FeedbackEvent]:
        rows = self.db.execute(
            "SELECT event_id, request_id, product_id, action, ts, customer_id, channel, moment, "
            "strategies FROM feedback ORDER BY ts, event_id")
        return [FeedbackEvent(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
                              tuple(s for s in (r[8] or "").split(",") if s)) for r in rows]

    def fingerprint(self) -> str:
        """A cheap identity of the data: row counts and the latest event time."""
        counts = self.counts()
        last = self.db.execute("SELECT COALESCE(MAX(ts), 0) FROM events").fetchone()[0]
        return "-".join(f"{k[0]}{v}" for k, v in counts.items() if k != "feedback") + f"-t{last}"


def now() -> int:
    return int(time.time())
