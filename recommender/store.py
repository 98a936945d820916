"""The embedded store: customers, terminals, holdings, interaction log and feedback in SQLite.

One file, no server. WAL mode and a busy timeout let a serving process read while a loader
writes; each thread gets its own connection. It is the default context provider (see
``plugins/store_provider.py``) and the default source of training data.

SQLite lets one writer in at a time. Bulk loads go through :meth:`Store.add_rows_paced`, which
commits every ``MAX_TRANSACTION_S`` of writing and then pauses ``PAUSE_S``, so a feedback write
waiting for the lock gets in within its budget (:meth:`Store.busy_timeout`). Failures of the
file itself (missing folder, read-only file or folder, full disk, lock held too long) are raised
as :class:`StoreError` naming the file and the cause, never as a raw ``sqlite3`` message.

The engine, training, the reports and the console read and write through :class:`Store`'s
methods, never its SQL, so a server database can take SQLite's place by providing the same
methods; database failures reach them as :class:`StoreError`. Two parts are SQLite's own: the
CSV import and export (``recommender.csvimport``, on the connection and its transactions) and
the quickstart's tour, which finds its example customers in the sample data by SQL.
``tests/test_store_interface.py`` fails on any other code that runs SQL.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .attributes import decode as decode_attributes
from .attributes import encode as encode_attributes
from .contact_policy import Response
from .context import Customer, Moment, Terminal
from .errors import RecommenderError

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    id TEXT PRIMARY KEY,
    value_tier TEXT NOT NULL,
    persona TEXT,
    lifecycle TEXT NOT NULL,
    tenure_months INTEGER NOT NULL,
    vip_level INTEGER NOT NULL DEFAULT 0,
    tags TEXT NOT NULL DEFAULT '',
    attributes TEXT
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
    failure_reason TEXT,
    event_key TEXT
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
    strategies TEXT,
    experiment TEXT,
    arm TEXT
);
CREATE INDEX IF NOT EXISTS feedback_by_customer
    ON feedback (customer_id, ts, action, product_id, channel);
CREATE TABLE IF NOT EXISTS contacts (
    customer_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    product_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    request_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS contacts_by_customer
    ON contacts (customer_id, ts, product_id, channel);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS console_sessions (
    id TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    seen REAL NOT NULL
);
"""

#: Meta keys of :meth:`Store.shared_secret`.
SECRET_PREFIX = "secret:"
EVENT_KEY_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS events_by_key ON events (event_key)"
#: The feedback table's columns in order: older stores lack the last two until migrated.
FEEDBACK_COLUMNS = ("event_id", "ts", "request_id", "product_id", "action", "customer_id",
                    "channel", "moment", "strategies", "experiment", "arm")
#: Feedback columns added after the first release (nullable; ``Store._migrate`` adds them).
ADDED_FEEDBACK_COLUMNS = ("experiment", "arm")
#: The customers table's columns in order; ``attributes`` (JSON, ``recommender.attributes``)
#: came after the first release.
CUSTOMER_COLUMNS = ("id", "value_tier", "persona", "lifecycle", "tenure_months", "vip_level",
                    "tags", "attributes")
#: Meta key of the stored attribute kinds (JSON object name -> numeric/categorical).
ATTRIBUTE_KINDS_KEY = "attribute_kinds"

TAG_SEPARATOR = ";"
#: Page cache of each connection (KiB): bounded, per thread that reads the store.
CACHE_KIB = 8192

#: The id, tag and name rules the API applies (``api/schemas.py``), shared by the CSV import.
MAX_ID_LENGTH = 128
MAX_TAGS = 64
#: A client-chosen event id (feedback ``event_id``, the events CSV's ``event_id`` column).
EVENT_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
#: Largest value of an integer column written from outside (SQLite's own limit is 2**63 - 1).
MAX_INTEGER = 2**31 - 1

#: Default wait for the write lock before a write gives up (seconds).
DEFAULT_TIMEOUT_S = 10.0
#: Longest a paced bulk write holds the write lock in one transaction (seconds).
MAX_TRANSACTION_S = 0.25
#: Pause between two paced transactions. SQLite's busy handler polls every 100 ms once a
#: writer has waited a while, so a pause longer than that always lets a waiting writer in.
PAUSE_S = 0.15
#: Page cache of a connection while it bulk-writes (KiB); SQLite's default is 2 MiB.
BULK_CACHE_KIB = 64 * 1024


def text_problem(value: str, max_length: int = MAX_ID_LENGTH) -> str | None:
    """Why ``value`` cannot be an id, tag or name, or None if it can.

    The API's rule: 1 to ``max_length`` characters, no control characters (so no newlines or
    terminal escape sequences), valid Unicode.
    """
    if not value:
        return "is empty"
    if len(value) > max_length:
        return f"is longer than {max_length} characters"
    for ch in value:
        if ord(ch) < 32 or ord(ch) == 127:
            return f"must not contain control characters (found {ch!r})"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text"
    return None


class StoreError(RecommenderError):
    """The store file cannot be opened or written; names the file and the cause."""

    def __init__(self, path: str | Path, cause: str, *, code: str | None = None):
        self.path = str(path)
        self.cause = cause
        self.code = code
        super().__init__(f"{path}: {cause}")


class StoreBusyError(StoreError):
    """Another writer held the store's write lock for longer than this write's budget."""

    def __init__(self, path: str | Path, waited_s: float, *, code: str | None = None):
        self.waited_s = waited_s
        super().__init__(path, f"busy: another writer held the write lock for more than "
                               f"{waited_s:g} s", code=code)


_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_ENVIRONMENT = _BUSY | {
    sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_PERM,
    sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOLFS,
}


def _primary_code(error: sqlite3.Error) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def writable_problem(path: Path) -> str | None:
    """Why SQLite cannot write ``path`` and its -wal/-shm files, or None if nothing is seen."""
    folder = path.parent
    if not folder.exists():
        return f"the folder {folder} does not exist"
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if path.is_dir():
        return "is a folder, not a store file"
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return "the file is read-only (no write permission)"
    if not os.access(folder, os.W_OK | os.X_OK):
        return (f"the folder {folder} is read-only (the store's -wal, -shm and import lock "
                f"files are written beside it)")
    return None


def store_error(path: str | Path, error: sqlite3.Error, busy_timeout_s: float) -> StoreError:
    """The clear error for a ``sqlite3`` failure of the file at ``path``."""
    path = Path(path)
    code = _primary_code(error)
    name = getattr(error, "sqlite_errorname", None)
    if code in _BUSY:
        return StoreBusyError(path, busy_timeout_s, code=name)
    if code == sqlite3.SQLITE_FULL:
        cause = "the disk is full (or the store reached its size limit); nothing of the " \
                "failed transaction was written"
    elif code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM):
        seen = writable_problem(path)
        if seen is not None:
            cause = f"cannot open for writing: {seen}"
        elif code == sqlite3.SQLITE_CANTOPEN:
            cause = "cannot open the file"
        else:
            cause = "read-only (read-only file system, mount or file attributes)"
    elif code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        cause = "not a SQLite store, or damaged"
    elif code == sqlite3.SQLITE_IOERR:
        cause = f"input/output error ({name or 'SQLITE_IOERR'})"
    else:
        cause = f"{name or type(error).__name__}: {error}"
    return StoreError(path, cause, code=name)


def is_environment_error(error: BaseException) -> bool:
    """True if ``error`` is SQLite failing on the file (lock, disk, permissions), not our SQL."""
    return isinstance(error, sqlite3.Error) and _primary_code(error) in _ENVIRONMENT


@dataclass(frozen=True, slots=True)
class PacedWrite:
    """What :meth:`Store.add_rows_paced` did: rows changed, transactions, longest one."""

    rows: int
    changed: int
    transactions: int
    longest_transaction_s: float
    seconds: float


@dataclass(frozen=True, slots=True)
class CustomerEvent:
    """One stored event of a customer: when, which business, on which channel, at which
    moment (``kind``: ``query``, ``transaction``, ``success``, ``failure``), and why an order
    failed."""

    ts: int
    product: str
    channel: str
    kind: str
    failure_reason: str | None = None


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
    #: The experiment and arm that served the suggestion (``recommender.experiments``).
    experiment: str | None = None
    arm: str | None = None


class Store:
    """A SQLite file holding everything the context providers and training read.

    :param timeout_s: how long a write waits for another writer's lock before it fails with
        :class:`StoreBusyError` (see also :meth:`busy_timeout`).
    :raises StoreError: the file cannot be opened or its schema cannot be brought up to date.
    """

    def __init__(self, path: str | Path, *, timeout_s: float = DEFAULT_TIMEOUT_S):
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._writer = threading.RLock()
        try:
            with self._translated():
                self.db.executescript(SCHEMA)  # its statements are idempotent; it commits
            self._migrate()
        except BaseException:
            self.close()
            raise

    def _migrate(self) -> None:
        """Bring a store written by an older version up to date (idempotent, race-safe)."""
        db = self.db
        if not self._has_column("events", "event_key"):
            with self.transaction() as tx:
                if not self._has_column("events", "event_key"):
                    tx.execute("ALTER TABLE events ADD COLUMN event_key TEXT")
        if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = "
                      "'events_by_key'").fetchone() is None:
            with self.transaction() as tx:
                tx.execute(EVENT_KEY_INDEX)
        if not self._has_column("customers", "attributes"):
            with self.transaction() as tx:
                if not self._has_column("customers", "attributes"):
                    tx.execute("ALTER TABLE customers ADD COLUMN attributes TEXT")
        for column in ADDED_FEEDBACK_COLUMNS:
            if not self._has_column("feedback", column):
                with self.transaction() as tx:
                    if not self._has_column("feedback", column):
                        tx.execute(f"ALTER TABLE feedback ADD COLUMN {column} TEXT")

    def _has_column(self, table: str, column: str) -> bool:
        return any(row[1] == column for row in self.db.execute(f"PRAGMA table_info({table})"))

    # -- connections --------------------------------------------------------------------------

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection (created on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if not self.path.parent.is_dir():
                raise StoreError(self.path, f"cannot open: {writable_problem(self.path)}")
            with self._translated():
                conn = sqlite3.connect(
                    self.path, timeout=self.timeout_s, isolation_level=None,
                    check_same_thread=False,
                )
                try:
                    self._enter_wal(conn)
                    conn.execute("PRAGMA synchronous=FULL")
                    conn.execute(f"PRAGMA busy_timeout={int(self.timeout_s * 1000)}")
                    # The B-trees' inner pages stay cached: a request's lookups of one
                    # customer among a million took 42 us with SQLite's 2 MiB, 19 with 8.
                    conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
                except BaseException:
                    conn.close()
                    raise
            self._local.conn = conn
            self._local.busy_s = self.timeout_s
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Re-raise SQLite's failures of the file as StoreError naming it and the cause."""
        try:
            yield
        except sqlite3.Error as e:
            if not is_environment_error(e):
                raise
            raise store_error(self.path, e, getattr(self._local, "busy_s", self.timeout_s)
                              ) from e

    @contextmanager
    def busy_timeout(self, seconds: float) -> Iterator[None]:
        """Within the block, this thread's writes wait at most ``seconds`` for the lock.

        Used by writes with a latency budget (an API request) so that they fail fast with
        :class:`StoreBusyError` instead of holding a request thread for ``timeout_s``.
        """
        db = self.db
        previous = self._local.busy_s
        db.execute(f"PRAGMA busy_timeout={max(0, int(seconds * 1000))}")
        self._local.busy_s = seconds
        try:
            yield
        finally:
            db.execute(f"PRAGMA busy_timeout={int(previous * 1000)}")
            self._local.busy_s = previous

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed durably on success, rolled back on any error.

        Writers of one process take turns on an in-process lock first, so they queue instead
        of polling SQLite's lock together; the whole wait stays within this thread's busy
        timeout.

        :raises StoreBusyError: the write lock was not free within the busy timeout.
        :raises StoreError: the file cannot be written (read-only, disk full, I/O error).
        """
        db = self.db
        budget = self._local.busy_s
        began = time.monotonic()
        if not self._writer.acquire(timeout=budget):
            raise StoreBusyError(self.path, budget, code="SQLITE_BUSY")
        try:
            with self._translated():
                waited = time.monotonic() - began
                if waited > 0.001:
                    db.execute(f"PRAGMA busy_timeout={max(0, int((budget - waited) * 1000))}")
                    try:
                        db.execute("BEGIN IMMEDIATE")
                    finally:
                        db.execute(f"PRAGMA busy_timeout={int(budget * 1000)}")
                else:
                    db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    # SQLite may have rolled back already (disk full, I/O error): only roll
                    # back what is still open; a failed rollback must not hide the first error.
                    if db.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            db.execute("ROLLBACK")
                    raise
        finally:
            self._writer.release()

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
                         TAG_SEPARATOR.join(sorted(c.tags)), encode_attributes(c.attributes)))
            holdings.extend((c.id, p, None) for p in c.holdings)
        with self._maybe_transaction(db) as tx:
            tx.executemany(_insert_sql("customers"), rows)
            tx.executemany("INSERT OR IGNORE INTO holdings VALUES (?,?,?)", holdings)

    def add_terminals(self, terminals: Iterable[tuple[str, Terminal]],
                      db: sqlite3.Connection | None = None) -> None:
        rows = [(cid, t.network.value, int(t.smartphone), t.os and t.os.value, t.model)
                for cid, t in terminals]
        with self._maybe_transaction(db) as tx:
            tx.executemany("INSERT OR REPLACE INTO terminals VALUES (?,?,?,?,?)", rows)

    def add_rows(self, table: str, rows: Iterable[tuple[Any, ...]],
                 db: sqlite3.Connection | None = None) -> int:
        """Bulk-insert raw rows (already validated) into one of the store's tables.

        Events are ``(ts, customer_id, product_id, channel, kind, failure_reason)``, optionally
        followed by an event key: a row whose key is already stored is skipped, so loading the
        same keyed events twice stores them once. Feedback rows are in ``FEEDBACK_COLUMNS``
        order; a row without the last two (experiment, arm) stores them as NULL. Returns the
        rows inserted or replaced.
        """
        sql = _insert_sql(table)
        if table == "events":
            rows = (row if len(row) == 7 else (*row, None) for row in rows)
        elif table == "feedback":  # rows written before experiments: no experiment, no arm
            rows = (row if len(row) == len(FEEDBACK_COLUMNS) else (*row, None, None)
                    for row in rows)
        elif table == "customers":  # rows without attributes
            rows = (row if len(row) == len(CUSTOMER_COLUMNS) else (*row, None) for row in rows)
        with self._maybe_transaction(db) as tx:
            before = tx.total_changes
            tx.executemany(sql, rows)
            return tx.total_changes - before

    def add_rows_paced(self, table: str, rows: Sequence[tuple[Any, ...]], *,
                       max_transaction_s: float = MAX_TRANSACTION_S, pause_s: float = PAUSE_S,
                       progress: Callable[[int, int], None] | None = None) -> PacedWrite:
        """Insert ``rows`` like :meth:`add_rows`, in transactions of at most about
        ``max_transaction_s`` of writing each, pausing ``pause_s`` between two.

        Other writers (feedback, a reload) therefore never wait much longer than
        ``max_transaction_s``, where one big transaction would hold them for the whole load.
        A failure leaves the transactions already committed in place; write keyed or
        replace-on-conflict rows so that running the load again completes it.

        :param progress: called with (rows done, rows total) after each transaction.
        """
        started = time.monotonic()
        total, done, changed, transactions = len(rows), 0, 0, 0
        longest = 0.0
        commit_s = max_transaction_s / 5  # until the first commit is measured
        chunk = 256
        db = self.db
        # Checkpoint between transactions, with the lock free, rather than inside COMMIT.
        autocheckpoint = db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        cache = db.execute("PRAGMA cache_size").fetchone()[0]
        db.execute("PRAGMA wal_autocheckpoint=0")
        db.execute(f"PRAGMA cache_size={-BULK_CACHE_KIB}")
        try:
            while done < total:
                with self.transaction() as tx:
                    began = time.monotonic()
                    while done < total:
                        part = rows[done:done + chunk]
                        t0 = time.monotonic()
                        changed += self.add_rows(table, part, db=tx)
                        done += len(part)
                        per_row = max((time.monotonic() - t0) / len(part), 1e-7)
                        chunk = max(16, min(50_000, int(max_transaction_s / 16 / per_row)))
                        elapsed = time.monotonic() - began
                        if elapsed + 1.25 * commit_s + per_row * chunk >= max_transaction_s:
                            break
                    committing = time.monotonic()
                released = time.monotonic()
                commit_s = max(commit_s * 0.8, released - committing)
                transactions += 1
                longest = max(longest, released - began)
                if progress is not None:
                    progress(done, total)
                if done < total:
                    self._checkpoint_until(released + pause_s)
                    time.sleep(max(0.0, released + pause_s - time.monotonic()))
        finally:
            with contextlib.suppress(sqlite3.Error):
                db.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint}")
                db.execute(f"PRAGMA cache_size={cache}")
        self._checkpoint_until(time.monotonic() + 5 * pause_s)
        return PacedWrite(rows=total, changed=changed, transactions=transactions,
                          longest_transaction_s=longest, seconds=time.monotonic() - started)

    def _checkpoint_until(self, deadline: float) -> bool:
        """Copy the write-ahead log into the store file without blocking anyone, retrying
        until ``deadline`` while readers of older snapshots hold frames back; True when all
        is copied (then the next writer starts the log afresh instead of growing it)."""
        while True:
            with self._translated():
                _, logged, copied = self.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if copied >= logged or time.monotonic() + 0.01 > deadline:
                return copied >= logged
            time.sleep(0.01)

    def add_feedback(self, event: FeedbackEvent) -> bool:
        """Store a feedback event durably; False if its event id was already stored."""
        with self.transaction() as db:
            cur = db.execute(
                _insert_sql("feedback"),
                (event.event_id, event.ts, event.request_id, event.product, event.action,
                 event.customer_id, event.channel, event.moment, ",".join(event.strategies),
                 event.experiment, event.arm),
            )
            return cur.rowcount == 1

    def feedback_event(self, event_id: str) -> FeedbackEvent | None:
        """The stored feedback event of ``event_id``, or None."""
        found = self._feedback_events(self.db.execute(self._FEEDBACK_SQL + "WHERE event_id = ?",
                                                      (event_id,)))
        return found[0] if found else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def shared_secret(self, name: str) -> bytes:
        """32 random bytes every process on this store shares, made on first use and kept: a
        key all workers agree on that is derived from nothing a user of the server holds."""
        key = SECRET_PREFIX + name
        value = self.meta(key)
        if value is None:
            with self.transaction() as db:
                db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                           (key, secrets.token_hex(32)))
                value = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0]
        return bytes.fromhex(value)

    # -- console sessions: kept here so signing out ends a session on every worker ----------

    #: A session's last use is written at most this often (s): a page view seldom writes.
    SESSION_TOUCH_S = 60.0
    #: Open console sessions kept at most; a sign-in beyond ends the least recently used.
    MAX_CONSOLE_SESSIONS = 1000

    def open_console_session(self, role: str, *, now: float, idle_s: float) -> str:
        """A new console session with ``role``: its random id. Sessions idle for more than
        ``idle_s``, and the least recently used beyond :attr:`MAX_CONSOLE_SESSIONS`, are
        dropped on the way (scripted sign-ins cannot grow the table)."""
        session_id = secrets.token_urlsafe(32)
        with self.transaction() as db:
            db.execute("DELETE FROM console_sessions WHERE seen < ?", (now - idle_s,))
            db.execute("INSERT INTO console_sessions VALUES (?, ?, ?)", (session_id, role, now))
            db.execute("DELETE FROM console_sessions WHERE id IN (SELECT id FROM "
                       "console_sessions ORDER BY seen DESC LIMIT -1 OFFSET ?)",
                       (self.MAX_CONSOLE_SESSIONS,))
        return session_id

    def console_session_role(self, session_id: str, *, now: float, idle_s: float
                             ) -> str | None:
        """The role of an open session used within ``idle_s``, marked used now; None for a
        session signed out, idle too long, or never opened."""
        row = self.db.execute("SELECT role, seen FROM console_sessions WHERE id = ?",
                              (session_id,)).fetchone()
        if row is None or row[1] < now - idle_s:
            return None
        if now - row[1] > self.SESSION_TOUCH_S:
            try:
                with self.busy_timeout(0.2), self.transaction() as db:
                    db.execute("UPDATE console_sessions SET seen = ? WHERE id = ?",
                               (now, session_id))
            except StoreError:  # busy with an import: the next page view marks it
                pass
        return row[0]

    def close_console_session(self, session_id: str) -> bool:
        """End a console session; False if it was not open."""
        with self.transaction() as db:
            return db.execute("DELETE FROM console_sessions WHERE id = ?",
                              (session_id,)).rowcount == 1

    def _enter_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to write-ahead logging (once per file; a no-op after). The switch
        fails at once, without SQLite's busy wait, while another connection holds the file:
        several workers opening a new or older store together. It is retried for up to
        ``timeout_s``."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

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
            "SELECT id, value_tier, persona, lifecycle, tenure_months, vip_level, tags, "
            "attributes FROM customers WHERE id = ?", (customer_id,)).fetchone()
        if row is None:
            return None
        return Customer(
            id=row[0], value_tier=row[1], persona=row[2], lifecycle=row[3],
            tenure_months=row[4], vip_level=row[5],
            tags=frozenset(t for t in row[6].split(TAG_SEPARATOR) if t),
            holdings=self.holdings(customer_id), attributes=decode_attributes(row[7]),
        )

    # -- bulk reads for outbound targeting (recommender.targeting, recommender.batch) --------

    def attribute_kinds(self) -> dict[str, str]:
        """The kind (numeric, categorical) of each customer attribute stored, in import order."""
        text = self.meta(ATTRIBUTE_KINDS_KEY)
        return {} if text is None else json.loads(text)

    def set_attribute_kinds(self, kinds: Mapping[str, str]) -> None:
        self.set_meta(ATTRIBUTE_KINDS_KEY, json.dumps(dict(kinds)))

    def customer_attributes(self) -> Iterator[tuple[str, str | None]]:
        """(customer id, attributes as stored JSON or None) of every customer, by id."""
        return iter(self.db.execute("SELECT id, attributes FROM customers ORDER BY id"))

    #: Columns of :meth:`customer_page` and :meth:`customers_by_id` rows.
    PAGE_COLUMNS = ("id", "value_tier", "persona", "lifecycle", "tenure_months", "tags",
                    "attributes", "network", "smartphone", "os")
    _PAGE_SQL = ("SELECT c.id, c.value_tier, c.persona, c.lifecycle, c.tenure_months, c.tags, "
                 "c.attributes, t.network, t.smartphone, t.os FROM customers c "
                 "LEFT JOIN terminals t ON t.customer_id = c.id ")

    def customer_page(self, after: str | None, limit: int) -> list[tuple[Any, ...]]:
        """Up to ``limit`` customers with ids after ``after`` (None: from the first), in id
        order, with their terminal (``PAGE_COLUMNS``): one page of an audience scan, so a
        scan over every customer holds one page at a time."""
        if after is None:
            return self.db.execute(self._PAGE_SQL + "ORDER BY c.id LIMIT ?",
                                   (int(limit),)).fetchall()
        return self.db.execute(self._PAGE_SQL + "WHERE c.id > ? ORDER BY c.id LIMIT ?",
                               (after, int(limit))).fetchall()

    def customers_by_id(self, ids: Sequence[str]) -> list[tuple[Any, ...]]:
        """The stored customers among ``ids`` (``PAGE_COLUMNS``), in id order."""
        return self.db.execute(self._PAGE_SQL + "WHERE c.id IN (SELECT value FROM "
                               "json_each(?)) ORDER BY c.id", (json.dumps(list(ids)),)
                               ).fetchall()

    def holdings_of(self, first: str, last: str) -> list[tuple[str, str]]:
        """(customer, product) of every holding of customers with ids from first to last."""
        return self.db.execute("SELECT customer_id, product_id FROM holdings WHERE "
                               "customer_id BETWEEN ? AND ?", (first, last)).fetchall()

    def holdings_for(self, ids: Sequence[str]) -> list[tuple[str, str]]:
        """(customer, product) of every holding of the customers ``ids``."""
        return self.db.execute("SELECT customer_id, product_id FROM holdings WHERE customer_id "
                               "IN (SELECT value FROM json_each(?))", (json.dumps(list(ids)),)
                               ).fetchall()

    def dismissals_of(self, first: str, last: str, since: int
                      ) -> list[tuple[str, str, int, str | None]]:
        """Dismissals since ``since`` of customers with ids from first to last:
        (customer, product, ts, channel), by customer, product and time."""
        return self.db.execute(
            "SELECT customer_id, product_id, ts, channel FROM feedback WHERE customer_id "
            "BETWEEN ? AND ? AND ts >= ? AND action = 'dismiss' ORDER BY customer_id, "
            "product_id, ts", (first, last, int(since))).fetchall()

    def contacts_of(self, first: str, last: str, since: int
                    ) -> list[tuple[str, str, int, str]]:
        """Marketing contacts (suggestions served under caps) since ``since`` of customers
        with ids from first to last: (customer, product, ts, channel)."""
        return self.db.execute(
            "SELECT customer_id, product_id, ts, channel FROM contacts WHERE customer_id "
            "BETWEEN ? AND ? AND ts >= ?", (first, last, int(since))).fetchall()

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

    def customer_ids(self, limit: int | None = None, *, prefix: str = "",
                     after: str | None = None) -> list[str]:
        """Customer ids in id order: those starting with ``prefix``, after ``after``, at most
        ``limit`` (one page of a listing; a range scan of the primary key)."""
        # One lower bound, so the scan starts there: the later of the prefix and ``after``.
        if after is not None and after >= prefix:
            sql, args = "SELECT id FROM customers WHERE id > ? ", [after]
        else:
            sql, args = "SELECT id FROM customers WHERE id >= ? ", [prefix]
        if prefix:
            sql += "AND id < ? "
            args.append(prefix + "\U0010ffff")
        sql += "ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return [r[0] for r in self.db.execute(sql, args)]

    def spread_customer_ids(self, size: int) -> list[str]:
        """``size`` customer ids spread evenly over the id order (every ``n // size``-th from
        the first): the same ones every time, so two dry runs compare the same customers."""
        total = self.count("customers")
        if total == 0 or size <= 0:
            return []
        rows = self.db.execute(
            "SELECT id FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) - 1 AS position "
            "FROM customers) WHERE position % ? = 0 ORDER BY id LIMIT ?",
            (max(1, total // size), int(size)))
        return [r[0] for r in rows]

    def unknown_value(self, column: str, known: Sequence[str]) -> str | None:
        """A customer's ``column`` value outside ``known`` (NULL included), or None: what an
        error names when training meets a value it cannot code."""
        if column not in {"value_tier", "persona", "lifecycle"}:
            raise ValueError(f"column: not a coded customer column: {column!r}")
        row = self.db.execute(
            f"SELECT {column} FROM customers WHERE {column} NOT IN "
            f"({', '.join('?' * len(known))}) OR {column} IS NULL LIMIT 1", list(known)
        ).fetchone()
        return None if row is None else row[0]

    def holding_baskets(self) -> list[list[str]]:
        """Each customer's holdings as one basket (customers holding nothing are included)."""
        baskets: dict[str, list[str]] = {cid: [] for cid in self.customer_ids()}
        for cid, pid in self.db.execute("SELECT customer_id, product_id FROM holdings"):
            baskets.setdefault(cid, []).append(pid)
        return list(baskets.values())

    #: Columns ``read_columns`` may read, by table; those read as integers are listed in
    #: ``BULK_INTEGERS``.
    BULK_COLUMNS: Mapping[str, tuple[str, ...]] = {
        "customers": ("id", "value_tier", "persona", "lifecycle", "tenure_months",
                      "attributes"),
        "terminals": ("customer_id", "network", "smartphone", "os"),
        "holdings": ("customer_id", "product_id"),
        "events": ("id", "ts", "customer_id", "product_id", "channel", "kind"),
    }
    BULK_INTEGERS: Mapping[str, frozenset[str]] = {
        "customers": frozenset({"tenure_months"}), "terminals": frozenset({"smartphone"}),
        "holdings": frozenset(), "events": frozenset({"id", "ts"})}
    #: Columns of JSON text (NULL: None), read as parsed values.
    BULK_JSON = frozenset({"attributes"})
    #: ``codes`` lists up to this long are mapped by SQLite (a CASE per row); longer ones
    #: (ids) by a hash lookup: per chunk on the reading threads up to ``HASHED_PER_CHUNK``
    #: values (product ids), else once per ``LOOKUP_ROWS`` rows (customer ids: building the
    #: table of millions of ids for every chunk would cost more than the lookups).
    SQL_CODES = 64
    HASHED_PER_CHUNK = 1 << 16
    LOOKUP_ROWS = 1 << 24
    #: Threads reading event chunks, each on its own connection.
    BULK_READERS = 2

    def read_columns(self, table: str, columns: Sequence[str], *,
                     codes: Mapping[str, Sequence[str]] | None = None,
                     chunk_rows: int = 1 << 20) -> Iterator[dict[str, Any]]:
        """Every row of ``table`` in chunks of about ``chunk_rows`` rows (events in ``id``
        order): the bulk read behind training. Each column comes as one aggregated string per
        chunk, not a Python tuple per row: integer columns (``BULK_INTEGERS``) and those given
        ``codes`` (the value's position in the list, -1 for any other) as int64 arrays, JSON
        columns (``BULK_JSON``) as lists of parsed values (NULL as None), the others as lists
        of str (NULL as ''). Long ``codes`` lists (ids) are looked up in C++ by pyarrow when
        it is installed, else through a dict; with a list longer than ``HASHED_PER_CHUNK``,
        chunks are merged up to ``LOOKUP_ROWS`` rows and looked up together. Event chunks are
        read ahead by ``BULK_READERS`` threads while the caller works on earlier ones."""
        codes = dict(codes or {})
        allowed = self.BULK_COLUMNS.get(table, ())
        bad = [c for c in [*columns, *codes] if c not in allowed]
        if not columns or bad:
            raise ValueError(f"read_columns: cannot read {bad or 'no columns'} of {table!r}")
        lookups = {c: self._position_table(v) for c, v in codes.items()
                   if len(v) > self.SQL_CODES}
        deferred = {c: t for c, t in lookups.items() if len(codes[c]) > self.HASHED_PER_CHUNK}
        integers = self.BULK_INTEGERS[table] | (set(codes) - set(lookups))
        args: list[Any] = []
        parts = []
        for c in columns:
            if c in lookups:
                parts.append(f"CAST(group_concat(coalesce({c}, ''), char(31)) AS BLOB)")
            elif c in codes and not codes[c]:
                parts.append("group_concat(-1, ',')")
            elif c in codes:
                parts.append(f"group_concat(CASE {c} "
                             + " ".join("WHEN ? THEN ?" for _ in codes[c])
                             + " ELSE -1 END, ',')")
                for i, value in enumerate(codes[c]):
                    args += [value, i]
            elif c in integers:
                parts.append(f"group_concat({c}, ',')")
            elif c in self.BULK_JSON:
                parts.append(f"'[' || group_concat(coalesce({c}, 'null'), ',') || ']'")
            else:
                parts.append(f"group_concat(coalesce({c}, ''), char(31))")
        select = f"SELECT count(*), {', '.join(parts)} FROM {table}"
        plain = f"SELECT {', '.join(columns)} FROM {table}"
        shape = (columns, integers, codes, lookups, frozenset(deferred))
        if table != "events":  # a few million rows at most: one chunk
            yield self._looked_up([self._column_chunk(select, plain, args, (), *shape)],
                                  deferred)
            return
        low, high = self.db.execute("SELECT min(id), max(id) FROM events").fetchone()
        if low is None:
            return
        where = " WHERE id >= ? AND id < ?"
        starts = range(low, high + 1, chunk_rows)

        def read(start: int) -> dict[str, Any]:
            return self._column_chunk(select + where, plain + where, args,
                                      (start, start + chunk_rows), *shape)

        # SQLite and pyarrow run without the GIL: the next chunks are read and looked up (on
        # each thread's own connection) while the caller works on this one.
        group: list[dict[str, Any]] = []
        with ThreadPoolExecutor(self.BULK_READERS, thread_name_prefix="store-read") as pool:
            ahead = [pool.submit(read, start) for start in starts[:self.BULK_READERS]]
            for i in range(len(starts)):
                group.append(ahead.pop(0).result())
                if i + self.BULK_READERS < len(starts):
                    ahead.append(pool.submit(read, starts[i + self.BULK_READERS]))
                rows = sum(len(chunk[columns[0]]) for chunk in group)
                if not deferred or rows >= self.LOOKUP_ROWS or i + 1 == len(starts):
                    yield self._looked_up(group, deferred)
                    group = []

    @staticmethod
    def _position_table(values: Sequence[str]) -> Any:
        """What :meth:`_positions_of` looks ``values`` up in: a pyarrow array (hashed in C++)
        when pyarrow is installed, else a dict. The values are distinct (ids, enum values)."""
        try:
            import pyarrow as pa
        except ImportError:
            return {v: i for i, v in enumerate(values)}
        return pa.array(values, pa.binary())

    @staticmethod
    def _split(joined: bytes | None, n: int, table: Any) -> Any:
        """The ``n`` values joined by char(31) in ``joined``: a pyarrow array, or a list of
        str for a dict ``table``; None when they do not split into ``n`` (a value holds the
        separator)."""
        if not n:
            return []
        if isinstance(table, dict):
            values = joined.decode().split("\x1f")
            return values if len(values) == n else None
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        whole = pa.Array.from_buffers(pa.binary(), 1, [
            None, pa.py_buffer(np.array([0, len(joined)], np.int32)), pa.py_buffer(joined)])
        values = pc.split_pattern(whole, b"\x1f").flatten()
        return values if len(values) == n else None

    @staticmethod
    def _positions_of(parts: Sequence[Any], table: Any) -> Any:
        """Each value's position in ``table``, -1 for those not in it, as an int64 array:
        ``parts`` are what :meth:`_split` gave (or lists of str), looked up together so that
        the table is hashed once."""
        import numpy as np

        n = sum(len(p) for p in parts)
        if not n:
            return np.zeros(0, np.int64)
        if isinstance(table, dict):
            from itertools import chain, repeat

            return np.fromiter(map(table.get, chain.from_iterable(parts), repeat(-1)),
                               np.int64, count=n)
        import pyarrow as pa
        import pyarrow.compute as pc

        values = pa.chunked_array([p if isinstance(p, pa.Array) else pa.array(p, pa.binary())
                                   for p in parts if len(p)], pa.binary())
        found = pc.index_in(values, value_set=table).fill_null(-1)
        return found.to_numpy().astype(np.int64)

    def _looked_up(self, chunks: list[dict[str, Any]], deferred: Mapping[str, Any]
                   ) -> dict[str, Any]:
        """Chunks as one, with the ``deferred`` columns' values turned into positions."""
        import numpy as np

        out: dict[str, Any] = {}
        for c in chunks[0]:
            parts = [chunk[c] for chunk in chunks]
            if c in deferred:
                out[c] = self._positions_of(parts, deferred[c])
            elif len(parts) == 1:
                out[c] = parts[0]
            elif isinstance(parts[0], np.ndarray):
                out[c] = np.concatenate(parts)
            else:
                out[c] = [v for part in parts for v in part]
        return out

    def _column_chunk(self, sql: str, plain_sql: str, args: list[Any], bounds: tuple[int, ...],
                      columns: Sequence[str], integers: set[str] | frozenset[str],
                      codes: Mapping[str, Sequence[str]], lookups: Mapping[str, Any],
                      deferred: frozenset[str]) -> dict[str, Any]:
        """One chunk's columns; those in ``deferred`` as raw values (see ``_split``)."""
        import numpy as np

        row = self.db.execute(sql, (*args, *bounds)).fetchone()
        n = row[0]
        out: dict[str, Any] = {}
        for c, text in zip(columns, row[1:], strict=True):
            if c in lookups:
                values = self._split(text, n, lookups[c])
                out[c] = values if c in deferred or values is None else \
                    self._positions_of([values], lookups[c])
            elif c in integers:
                try:
                    out[c] = np.fromstring(text, dtype=np.int64, sep=",") if n else \
                        np.zeros(0, np.int64)
                except ValueError:  # not an integer after all: the row-by-row read says
                    out[c] = []
            elif c in self.BULK_JSON:
                try:
                    out[c] = json.loads(text) if n else []
                except ValueError:  # a malformed value: decoded row by row, where it fails
                    out[c] = None
            else:
                out[c] = [] if text is None else text.split("\x1f")
        if all(values is not None and len(values) == n for values in out.values()):
            return out
        # A value holds the separator itself: read this chunk row by row instead.
        rows = self.db.execute(plain_sql, bounds).fetchall()
        for i, c in enumerate(columns):
            values = [r[i] for r in rows]
            if c in deferred:
                out[c] = ["" if v is None else str(v) for v in values]
            elif c in codes:
                where = {v: k for k, v in enumerate(codes[c])}
                out[c] = np.array([where.get(v, -1) for v in values], dtype=np.int64)
            elif c in integers:
                out[c] = np.array(values, dtype=np.int64)
            elif c in self.BULK_JSON:
                out[c] = [None if v is None else decode_attributes(v) for v in values]
            else:
                out[c] = ["" if v is None else str(v) for v in values]
        return out

    def count(self, table: str) -> int:
        if table not in {"customers", "terminals", "holdings", "events", "feedback"}:
            raise ValueError(f"table: unknown table {table!r}")
        return self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    def counts(self) -> dict[str, int]:
        return {t: self.count(t) for t in ("customers", "terminals", "holdings", "events",
                                           "feedback")}

    _FEEDBACK_SQL = ("SELECT event_id, request_id, product_id, action, ts, customer_id, "
                     "channel, moment, strategies, experiment, arm FROM feedback ")

    @staticmethod
    def _feedback_events(rows: Iterable[tuple[Any, ...]]) -> list[FeedbackEvent]:
        return [FeedbackEvent(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
                              tuple(s for s in (r[8] or "").split(",") if s), r[9], r[10])
                for r in rows]

    def feedback(self) -> list[FeedbackEvent]:
        """Every feedback event, oldest first."""
        return self._feedback_events(self.db.execute(self._FEEDBACK_SQL
                                                     + "ORDER BY ts, event_id"))

    def feedback_of(self, customer_id: str, limit: int = 10) -> list[FeedbackEvent]:
        """The customer's latest feedback events, newest first (what they did with the
        suggestions they were shown)."""
        return self._feedback_events(self.db.execute(
            self._FEEDBACK_SQL + "WHERE customer_id = ? ORDER BY ts DESC, event_id DESC "
            "LIMIT ?", (customer_id, int(limit))))

    def feedback_counts(self, since: int) -> dict[tuple[str, str, str], int]:
        """Feedback events at or after ``since`` (unix seconds) counted by (channel, moment,
        action), '' for a channel or moment the event did not name: the funnel."""
        rows = self.db.execute(
            "SELECT COALESCE(channel, ''), COALESCE(moment, ''), action, COUNT(*) FROM feedback "
            "WHERE ts >= ? GROUP BY 1, 2, 3", (int(since),))
        return {(channel, moment, action): count for channel, moment, action, count in rows}

    def recent_dismissals(self, customer_id: str, since: int) -> list[Response]:
        """The customer's dismissals since ``since`` (unix seconds), oldest first: one range
        scan of a covering index, for the contact policy."""
        rows = self.db.execute(
            "SELECT ts, product_id, action, channel FROM feedback "
            "WHERE customer_id = ? AND ts >= ? AND action = 'dismiss' ORDER BY ts",
            (customer_id, since))
        return [Response(*row) for row in rows]

    def recent_failures(self, customer_id: str, since: int, until: int | None = None
                        ) -> list[tuple[int, str, str, str]]:
        """The customer's failed orders from ``since`` to ``until`` (unix seconds; no upper
        bound when None), newest first, as ``(ts, product, channel, failure_reason)``: what a
        hotline agent should know of."""
        rows = self.db.execute(
            "SELECT ts, product_id, channel, COALESCE(failure_reason, 'other') FROM events "
            "WHERE customer_id = ? AND ts BETWEEN ? AND ? AND kind = 'failure' "
            "ORDER BY ts DESC LIMIT 5",
            (customer_id, since, 2**63 - 1 if until is None else until))
        return [tuple(row) for row in rows]

    def recent_events(self, customer_id: str, *, since: int | None = None, limit: int = 20,
                      kinds: Iterable[str] | None = None) -> list[CustomerEvent]:
        """The customer's latest events (views, orders, failures...), newest first: the read
        API for plugins (``extra_context`` gets the store, strategies get it when registered).

        :param since: only events at or after this unix time.
        :param limit: at most this many (1 to 1,000: one request reads a page, not a history).
        :param kinds: only these event kinds (the moments: ``query``, ``transaction``,
            ``success``, ``failure``).
        :raises ValueError: for a limit out of range or an unknown kind.
        """
        known = tuple(m.value for m in Moment)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ValueError(f"limit must be an integer from 1 to 1,000, got {limit!r}")
        sql = ("SELECT ts, product_id, channel, kind, failure_reason FROM events "
               "WHERE customer_id = ?")
        args: list[Any] = [customer_id]
        if since is not None:
            sql += " AND ts >= ?"
            args.append(int(since))
        if kinds is not None:
            kinds = sorted(set(kinds))
            unknown = [k for k in kinds if k not in known]
            if unknown:
                raise ValueError(f"unknown event kind {unknown[0]!r}; known: "
                                 f"{', '.join(known)}")
            sql += f" AND kind IN ({', '.join('?' * len(kinds))})"
            args += kinds
        sql += " ORDER BY ts DESC, id DESC LIMIT ?"
        args.append(limit)
        return [CustomerEvent(*row) for row in self.db.execute(sql, args)]

    def record_contacts(self, customer_id: str, channel: str, now: int, request_id: str,
                        choose: Callable[[list[Response]], list[str]],
                        keep_seconds: int = 8 * 86400) -> list[str]:
        """Read the customer's contacts of the last ``keep_seconds``, let ``choose`` pick what
        to serve from them, and log those, all in one write transaction: concurrent requests
        for one customer, on any worker, see each other's contacts (caps hold exactly).
        Older contacts of the customer are dropped, so the log stays bounded."""
        with self.transaction() as db:
            db.execute("DELETE FROM contacts WHERE customer_id = ? AND ts < ?",
                       (customer_id, now - keep_seconds))
            rows = db.execute(
                "SELECT ts, product_id, 'contact', channel FROM contacts "
                "WHERE customer_id = ? ORDER BY ts", (customer_id,)).fetchall()
            chosen = choose([Response(*row) for row in rows])
            db.executemany("INSERT INTO contacts VALUES (?,?,?,?,?)",
                           [(customer_id, now, p, channel, request_id) for p in chosen])
        return chosen

    def feedback_since(self, rowid: int, limit: int, *, window_s: int = 86400
                       ) -> list[tuple[Any, ...]]:
        """Feedback rows stored after position ``rowid``, in the order they were stored, at
        most ``limit`` of them: one bounded query for readers that follow the log as it grows
        (the adaptive strategy, in every server process).

        Each row is ``(rowid, ts, product_id, action, customer_id, channel, moment,
        value_tier, persona, lifecycle, earlier)``. ``value_tier``, ``persona`` and
        ``lifecycle`` are the customer's current attributes (``value_tier`` is None when the
        event names no stored customer). For a response (click, accept, dismiss), ``earlier``
        is a bit mask of the actions already stored for the same suggestion (same request,
        business and customer, within ``window_s`` seconds): 1 impression, 2 click, 4 accept,
        8 dismiss; it is 0 for impressions and for events without a customer. A reader resumes
        after the last rowid it read: feedback rows are never deleted and SQLite writes one
        transaction at a time, so rowids grow in commit order and each row is read once.

        :raises StoreError: the store cannot be read (any database failure: a reader that
            follows the log in the background keeps what it has and tries again).
        """
        try:
            return self._feedback_rows(window_s, rowid, limit)
        except sqlite3.Error as e:
            raise store_error(self.path, e, self.timeout_s) from e

    def _feedback_rows(self, window_s: int, rowid: int, limit: int) -> list[tuple[Any, ...]]:
        return self.db.execute(
            "SELECT f.rowid, f.ts, f.product_id, f.action, f.customer_id, f.channel, f.moment, "
            "c.value_tier, c.persona, c.lifecycle, CASE WHEN f.action = 'impression' THEN 0 "
            "ELSE (SELECT COALESCE(MAX(p.action = 'impression') + 2 * MAX(p.action = 'click') "
            "+ 4 * MAX(p.action = 'accept') + 8 * MAX(p.action = 'dismiss'), 0) "
            "FROM feedback p WHERE p.customer_id = f.customer_id "
            "AND p.ts BETWEEN f.ts - ?1 AND f.ts + ?1 AND p.product_id = f.product_id "
            "AND p.rowid < f.rowid AND p.request_id = f.request_id) END "
            "FROM feedback f LEFT JOIN customers c ON c.id = f.customer_id "
            "WHERE f.rowid > ?2 ORDER BY f.rowid LIMIT ?3",
            (int(window_s), int(rowid), int(limit))).fetchall()

    def fingerprint(self) -> str:
        """A cheap identity of the data: row counts and the latest event time."""
        counts = self.counts()
        last = self.db.execute("SELECT COALESCE(MAX(ts), 0) FROM events").fetchone()[0]
        return "-".join(f"{k[0]}{v}" for k, v in counts.items() if k != "feedback") + f"-t{last}"


def _insert_sql(table: str) -> str:
    if table == "events":
        return ("INSERT OR IGNORE INTO events (ts, customer_id, product_id, channel, kind, "
                "failure_reason, event_key) VALUES (?,?,?,?,?,?,?)")
    if table == "feedback":  # named: a store's columns follow the order they were added in
        return (f"INSERT OR IGNORE INTO feedback ({', '.join(FEEDBACK_COLUMNS)}) "
                f"VALUES ({','.join('?' * len(FEEDBACK_COLUMNS))})")
    if table == "customers":
        return (f"INSERT OR REPLACE INTO customers ({', '.join(CUSTOMER_COLUMNS)}) "
                f"VALUES ({','.join('?' * len(CUSTOMER_COLUMNS))})")
    columns = {"terminals": 5, "holdings": 3}
    if table not in columns:
        raise ValueError(f"table: unknown table {table!r}")
    verb = "INSERT OR IGNORE" if table == "holdings" else "INSERT OR REPLACE"
    return f"{verb} INTO {table} VALUES ({','.join('?' * columns[table])})"


def now() -> int:
    return int(time.time())
