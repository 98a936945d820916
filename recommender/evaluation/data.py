"""Evaluation inputs: the project's store, or public data in common formats, as TrainingData.

Every input becomes the same thing: a ``TrainingData`` whose successful-order events are the
interactions to split, plus a configuration for the strategies. Public data has no catalog, so
one is synthesised (every item an orderable business, on every channel, with no conditions),
which lets the very engine that serves channels rank it.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..catalog import Catalog, Eligibility, Product, ProductKind
from ..config import Config
from ..context import CHANNEL_IDS, Lifecycle, Moment, ValueTier
from ..errors import ImportRowError
from ..training import LIFECYCLES, MOMENTS, TIERS, EventLog, TrainingData

SUCCESS = MOMENTS.index(Moment.SUCCESS)
FORMATS = ("csv", "movielens", "baskets")


@dataclass(frozen=True)
class EvalData:
    """What an evaluation runs on.

    :param data: everything known, with successful orders as ``events`` of kind success.
    :param config: strategy settings (the workspace's, or defaults for public data).
    :param source: where it came from, for the protocol.
    :param segments: a segment name per customer (value tier for the store), or None.
    """

    data: TrainingData
    config: Config
    source: str
    segments: np.ndarray | None = None
    skipped_rows: int = 0
    #: One basket per customer (a basket file): no time order between baskets or their items.
    baskets: bool = False
    #: Ratings (a MovieLens file): the time is when a rating was entered, not an order's.
    ratings: bool = False
    #: No configuration came with the data: strategy settings the run does not fix are chosen
    #: by validation inside the training data (``recommender.evaluation.tuning``).
    tune_settings: bool = False

    @property
    def n_orders(self) -> int:
        return int((self.data.events.kind == SUCCESS).sum())


def from_workspace(root: Path, csv_dir: Path | None = None) -> EvalData:
    """The project's store: customers, terminals, holdings and the event log; or, with
    ``csv_dir``, the project's CSV files (customers.csv, holdings.csv, events.csv...) read
    against the workspace's catalog."""
    from ..workspace import Workspace, _from_csv

    ws = Workspace(root)
    catalog = ws.catalog()
    if csv_dir is not None:
        data, _ = _from_csv(csv_dir, catalog, lambda message: None)
        source = f"csv files {csv_dir}"
    else:
        with ws.store() as store:
            data = TrainingData.from_store(store, catalog)
        source = f"store {ws.store_path}"
    segments = np.array([TIERS[t].value for t in data.value_tier], dtype=object) \
        if len(data.value_tier) else None
    return EvalData(data, ws.config(), source, segments)


def from_long_csv(path: Path, *, user: str = "user", item: str = "item",
                  timestamp: str = "timestamp", weight: str | None = "weight",
                  root: Path | None = None) -> EvalData:
    """A long-format interaction log: one row per (user, item, timestamp[, weight]).

    Timestamps may be Unix seconds or ISO 8601 dates. Rows with an empty user or item, or a
    weight of zero or less (returns, cancellations), are skipped and counted.
    """
    rows = _read_csv(path)
    header = next(rows, None)
    if header is None:
        raise ImportRowError(str(path), 1, None, "the file is empty")
    columns = {name: i for i, name in enumerate(header)}
    for needed in (user, item, timestamp):
        if needed not in columns:
            raise ImportRowError(str(path), 1, needed, f"no such column; the header has "
                                 f"{', '.join(header)}")
    wcol = columns.get(weight) if weight else None
    ui, ii, ti = columns[user], columns[item], columns[timestamp]
    users, items, times = [], [], []
    skipped = 0
    for line, row in enumerate(rows, start=2):
        try:
            u, it, t = row[ui].strip(), row[ii].strip(), row[ti].strip()
        except IndexError:
            raise ImportRowError(str(path), line, None, f"expected {len(header)} columns, "
                                 f"got {len(row)}") from None
        if not u or not it:
            skipped += 1
            continue
        if wcol is not None:
            try:
                if float(row[wcol]) <= 0:
                    skipped += 1
                    continue
            except (ValueError, IndexError):
                raise ImportRowError(str(path), line, weight, f"not a number: "
                                     f"{row[wcol] if wcol < len(row) else ''!r}") from None
        users.append(u.removesuffix(".0"))
        items.append(it)
        times.append(_timestamp(t, path, line, timestamp))
    return _from_pairs(users, items, np.array(times, dtype=np.int64), f"csv {path}",
                       root or path.parent, skipped)


def from_movielens(path: Path) -> EvalData:
    """MovieLens ``u.data``: tab-separated user, item, rating, Unix timestamp (``::`` for the
    1M format). Every rating counts as an interaction, whatever its value: a low rating still
    says the customer took the item."""
    users, items, times = [], [], []
    for line, row in enumerate(_read_lines(path), start=1):
        parts = row.split("\t") if "\t" in row else row.split("::")
        if len(parts) < 4:
            if not row.strip():
                continue
            raise ImportRowError(str(path), line, None, "expected user, item, rating, time")
        users.append(parts[0])
        items.append(parts[1])
        try:
            times.append(int(parts[3]))
        except ValueError:
            raise ImportRowError(str(path), line, "timestamp", f"not a Unix time: "
                                 f"{parts[3]!r}") from None
    source = _from_pairs(users, items, np.array(times, dtype=np.int64), f"movielens {path}",
                         path.parent, 0)
    return replace(source, ratings=True)


def from_baskets(path: Path, separator: str | None = None) -> EvalData:
    """One basket per line: comma-separated (items kept verbatim), or whitespace-separated when
    the file has no comma (FIMI). The line number is the basket's time, so temporal splits
    keep the file's order."""
    lines = list(_read_lines(path))
    if separator is None:
        separator = "," if any("," in line for line in lines[:1000]) else None
    users, items, times = [], [], []
    for line, row in enumerate(lines, start=1):
        fields = row.rstrip("\r\n").split(separator)
        for x in dict.fromkeys(f for f in fields if f):
            users.append(f"basket{line}")
            items.append(x)
            times.append(line)
    source = _from_pairs(users, items, np.array(times, dtype=np.int64), f"baskets {path}",
                         path.parent, 0)
    return replace(source, baskets=True)


def load(path: Path, fmt: str, **csv_options: str | None) -> EvalData:
    """Load ``path`` in one of ``FORMATS``."""
    if fmt == "csv":
        return from_long_csv(path, **csv_options)  # type: ignore[arg-type]
    if fmt == "movielens":
        return from_movielens(path)
    if fmt == "baskets":
        return from_baskets(path)
    raise ValueError(f"input format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def synthetic_catalog(item_ids: list[str]) -> Catalog:
    """Every item an orderable business on every channel, with no conditions."""
    channels = frozenset(CHANNEL_IDS)
    return Catalog([Product(id=i, name=i, category="item", kind=ProductKind.BUSINESS,
                            price=0.0, channels=channels, eligibility=Eligibility())
                    for i in item_ids], source="<synthesised from the interactions>")


# -- internals --------------------------------------------------------------------------------

def _from_pairs(users: list[str], items: list[str], ts: np.ndarray, source: str, root: Path,
                skipped: int) -> EvalData:
    user_ids, user = np.unique(np.array(users, dtype=object), return_inverse=True)
    item_ids, item = np.unique(np.array(items, dtype=object), return_inverse=True)
    catalog = synthetic_catalog([str(i) for i in item_ids])
    order = np.argsort(ts, kind="stable")
    events = EventLog(customer=user[order].astype(np.int32), product=item[order].astype(np.int32),
                      channel=np.zeros(len(ts), np.int8),
                      kind=np.full(len(ts), SUCCESS, np.int8), ts=ts[order])
    holdings = sp.csr_matrix((np.ones(len(user), np.float32), (user, item)),
                             shape=(len(user_ids), len(item_ids)))
    holdings.data[:] = 1.0
    holdings.sum_duplicates()
    holdings.data[:] = 1.0
    n = len(user_ids)
    data = TrainingData(  # public data knows nothing of the customer: the engine's defaults
        catalog=catalog, customers=user_ids, holdings=holdings, events=events,
        value_tier=np.full(n, TIERS.index(ValueTier.MID), np.int8),
        persona=np.full(n, -1, np.int8),
        lifecycle=np.full(n, LIFECYCLES.index(Lifecycle.STEADY), np.int8),
        tenure=np.zeros(n, np.int32), network=np.full(n, 4, np.int8),
        smartphone=np.ones(n, bool), os=np.full(n, -1, np.int8))
    return EvalData(data, Config.from_dict({}, root=root), source, None, skipped,
                    tune_settings=True)


def _read_csv(path: Path) -> Iterator[list[str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as f:  # type: ignore[operator]
        yield from csv.reader(f)


def _read_lines(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:  # type: ignore[operator]
        yield from io.TextIOWrapper(f, encoding="utf-8", errors="replace")


def _timestamp(text: str, path: Path, line: int, column: str) -> int:
    try:
        return int(float(text))
    except ValueError:
        pass
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except ValueError:
        raise ImportRowError(str(path), line, column, f"not a Unix time or ISO date: "
                             f"{text!r}") from None
