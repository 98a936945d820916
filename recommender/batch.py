"""Next-best offers for every customer, for one channel and moment, written to CSV or Parquet.

The overnight job behind a home-screen banner or an SMS send: every customer (or those of an
id list) gets their top-k businesses, scored by the propensity strategy, among those they can
take on the channel (``recommender.audience.eligible``) and the contact policy lets through
(suppression, do-not-disturb). Customers are read, scored and written one page at a time,
so memory follows the page size, not the customer base.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from .audience import (
    DEFAULT_PAGE,
    BulkScorer,
    blocked,
    eligible,
    pages,
    remaining_contacts,
    tags_of,
)
from .catalog import Catalog
from .config import Config
from .errors import RecommenderError
from .store import Store

#: Columns of a batch file, one row per (customer, offer).
BATCH_COLUMNS = ("customer_id", "rank", "product", "score", "strategies", "reasons")


class OutputError(RecommenderError):
    """An output file cannot be written (unknown format, missing library, folder)."""


class OfferWriter:
    """Rows to ``.csv`` or ``.parquet``, appended a page at a time (Parquet row groups), so
    a file of millions of rows never sits in memory."""

    def __init__(self, path: Path, columns: Sequence[str], types: Sequence[str]):
        self.path = Path(path)
        self.columns = tuple(columns)
        self.types = tuple(types)
        self.rows = 0
        self.check(self.path)
        self._parquet = self.path.suffix.lower() == ".parquet"
        if self._parquet:
            import pyarrow as pa
            import pyarrow.parquet as pq

            kinds = {"str": pa.string(), "int": pa.int32(), "float": pa.float32()}
            self._schema = pa.schema(
                [(c, kinds[t]) for c, t in zip(self.columns, self.types, strict=True)]
            )
            self._writer: Any = pq.ParquetWriter(self.path, self._schema)
        else:
            self._file = self.path.open("w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(self.columns)

    @staticmethod
    def check(path: Path) -> None:
        """Refuse ``path`` before any work is spent on what it is to hold: a format other than
        CSV or Parquet, Parquet without pyarrow, a missing or unwritable folder, a folder."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".parquet"):
            raise OutputError(f"{path}: the output must end in .csv or .parquet")
        if not path.parent.is_dir():
            raise OutputError(f"{path}: the folder {path.parent} does not exist")
        if path.is_dir():
            raise OutputError(f"{path}: is a folder")
        if not os.access(path if path.exists() else path.parent, os.W_OK):
            raise OutputError(f"{path}: cannot be written here")
        if suffix == ".parquet":
            try:
                import pyarrow  # noqa: F401
                import pyarrow.parquet  # noqa: F401
            except ImportError:
                raise OutputError(f"{path}: Parquet output needs pyarrow "
                                  f"(pip install 'recommender[parquet]')") from None

    def write(self, columns: Sequence[Sequence[Any]]) -> None:
        """Append rows given column by column (equal lengths)."""
        n = len(columns[0]) if columns else 0
        if not n:
            return
        if self._parquet:
            import pyarrow as pa

            self._writer.write_table(
                pa.table(
                    [
                        pa.array(list(c) if not isinstance(c, np.ndarray) else c, type=f.type)
                        for c, f in zip(columns, self._schema, strict=True)
                    ],
                    schema=self._schema,
                )
            )
        else:
            formatted = [
                np.char.mod("%.6g", c).tolist()
                if t == "float"
                else (c.tolist() if isinstance(c, np.ndarray) else c)
                for c, t in zip(columns, self.types, strict=True)
            ]
            self._writer.writerows(zip(*formatted, strict=True))
        self.rows += n

    def close(self) -> None:
        if self._parquet:
            self._writer.close()
        else:
            self._file.close()

    def __enter__(self) -> OfferWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        if error is not None:  # never leave half a file that looks complete
            self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class BatchResult:
    customers: int
    offers: int
    without_offer: int
    seconds: float
    path: str


def batch(
    store: Store,
    catalog: Catalog,
    config: Config,
    strategy: BulkScorer,
    out: Path,
    *,
    channel: str,
    moment: str = "query",
    k: int = 3,
    ids: Sequence[str] | None = None,
    page: int = DEFAULT_PAGE,
    now: float | None = None,
    reasons: bool = True,
    progress: Callable[[int], None] | None = None,
    locale: str | None = None,
) -> BatchResult:
    """Write the top ``k`` offers of every customer (or of ``ids``) for ``channel`` to ``out``.

    :param progress: told how many customers each finished page held.
    :param locale: the reasons' language; default the channel's (``[locale]`` in config.toml).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k!r}")
    started = time.perf_counter()
    now = time.time() if now is None else now
    customers = offers = empty = 0
    ids_of = np.array(catalog.ids, dtype=object)
    with OfferWriter(out, BATCH_COLUMNS, ("str", "int", "str", "float", "str", "str")) as writer:
        for data, rows in pages(store, catalog, page=page, ids=ids):
            n = data.n_customers
            scores = strategy.score_rows(data, slice(None))
            allowed = eligible(catalog, data, channel)
            allowed &= ~blocked(
                config.contact_policy,
                store,
                catalog,
                data,
                tags_of(rows),
                channel=channel,
                moment=moment,
                now=now,
            )
            scores[~allowed] = -np.inf
            top = min(k, scores.shape[1])
            pick = np.argpartition(-scores, top - 1, axis=1)[:, :top]
            picked = np.take_along_axis(scores, pick, axis=1)
            order = np.argsort(-picked, axis=1, kind="stable")
            pick = np.take_along_axis(pick, order, axis=1)
            picked = np.take_along_axis(picked, order, axis=1)
            valid = np.isfinite(picked) & (picked > 0)
            if config.contact_policy.caps and moment not in config.contact_policy.exempt_moments:
                left = remaining_contacts(config.contact_policy, store, catalog, data, channel,
                                          now)
                valid &= np.arange(top)[None, :] < left[:, None]  # the channel caps
            row, rank = np.nonzero(valid)
            product = pick[row, rank]
            score = picked[row, rank]
            why = strategy.reasons(data, row, product, score,
                                   locale or config.locale(channel)) if reasons \
                else [""] * len(row)
            writer.write(
                [
                    data.customers[row],
                    (rank + 1).astype(np.int32),
                    ids_of[product],
                    score.astype(np.float32),
                    strategy.sources(product),
                    why,
                ]
            )
            customers += n
            offers += len(row)
            empty += int((~valid.any(axis=1)).sum())
            if progress is not None:
                progress(n)
    return BatchResult(
        customers=customers,
        offers=offers,
        without_offer=empty,
        seconds=time.perf_counter() - started,
        path=str(out),
    )
