"""Targeting: which customers to offer a business to, best first ("the 800 for the caravan
policy").

Every customer (or those of a file) is scored for the business by a bulk scorer (the
propensity strategy), page by page; customers who cannot take it (``audience.eligible``) or
whom the contact policy holds back (``audience.blocked``) are left out, and a running top-N
is kept, so memory follows the page size and N, not the customer base. Ties keep id order.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .audience import DEFAULT_PAGE, BulkScorer, blocked, eligible, page_data, pages, tags_of
from .catalog import Catalog
from .config import Config
from .csvimport import ImportFileError, read_rows
from .errors import ImportRowError, RecommenderError, UnknownProductError
from .store import Store
from .training import TrainingData

#: Columns of a target file, one row per (business, customer).
TARGET_COLUMNS = ("product", "rank", "customer_id", "score", "strategies", "reasons")
#: Most customers one target run returns per business.
MAX_TOP = 10_000_000


class TargetError(RecommenderError, ValueError):
    """A targeting request cannot be answered as asked (a query service, nothing trained)."""


@dataclass
class Audience:
    """The ranked audience of one business and what was left out on the way."""

    product: str
    customers: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    strategies: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    scanned: int = 0
    ineligible: int = 0
    held_back: int = 0

    def rows(self) -> Iterator[tuple[str, int, str, float, str, str]]:
        for rank, (c, s, st, r) in enumerate(
            zip(self.customers, self.scores, self.strategies, self.reasons, strict=True), 1
        ):
            yield self.product, rank, c, s, st, r

    def to_dict(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "scanned": self.scanned,
            "ineligible": self.ineligible,
            "held_back": self.held_back,
            "count": len(self.customers),
            "customers": [
                {
                    "rank": rank,
                    "customer_id": c,
                    "score": round(s, 6),
                    "strategies": st.split(","),
                    "reason": r,
                }
                for _, rank, c, s, st, r in self.rows()
            ],
        }


@dataclass(frozen=True)
class GivenCustomers:
    """Customers read from a file to be scored as given (``read_customers``), not the store's."""

    data: TrainingData
    tags: list[frozenset[str]]


class _Best:
    """The running best ``top`` customers of one business: scores, scan positions (ties go
    to the earlier) and ids; never more than ``top`` plus one page."""

    def __init__(self, top: int | None, min_score: float | None):
        self.top, self.min_score = top, min_score
        self.scores = np.zeros(0, np.float32)
        self.where = np.zeros(0, np.int64)
        self.ids = np.zeros(0, dtype=object)

    def add(self, scores: np.ndarray, where: np.ndarray, ids: np.ndarray) -> None:
        keep = np.isfinite(scores) & (scores > 0)
        if self.min_score is not None:
            keep &= scores >= self.min_score
        scores = np.concatenate([self.scores, scores[keep]])
        where = np.concatenate([self.where, where[keep]])
        ids = np.concatenate([self.ids, ids[keep]])
        if self.top is not None and len(scores) > self.top:
            order = np.lexsort((where, -scores))[: self.top]
            scores, where, ids = scores[order], where[order], ids[order]
        self.scores, self.where, self.ids = scores, where, ids

    def ranked(self) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids, best first."""
        order = np.lexsort((self.where, -self.scores))
        return self.scores[order], self.ids[order]


def check_products(catalog: Catalog, products: Sequence[str]) -> list[int]:
    """Catalog positions of ``products``; unknown ids and query services are errors."""
    if not products:
        raise TargetError("name at least one business to target")
    out = []
    for product in products:
        if product not in catalog:
            raise UnknownProductError(product)
        if not catalog[product].orderable:
            raise TargetError(f"product: {product!r} is a query service, nothing to offer")
        out.append(catalog.index[product])
    return out


def target(
    store: Store,
    catalog: Catalog,
    config: Config,
    scorer: BulkScorer,
    products: Sequence[str],
    *,
    top: int | None = None,
    min_score: float | None = None,
    customers: Sequence[str] | GivenCustomers | None = None,
    channel: str | None = None,
    moment: str = "query",
    page: int = DEFAULT_PAGE,
    now: float | None = None,
    progress: Callable[[int], None] | None = None,
    locale: str | None = None,
) -> list[Audience]:
    """The eligible customers for each of ``products``, best first: the ``top`` best, or all
    scoring at least ``min_score`` (both: the best ``top`` of those).

    :param customers: only these stored ids, or these customers as arrays (a customers file
        read by :func:`read_customers`); default every stored customer.
    :param channel: leave out customers who cannot take it on this channel; None: on any.
    :param locale: the reasons' language; default the channel's (``[locale]`` in config.toml).
    :raises UnknownProductError: a business is not in the catalog.
    """
    if top is None and min_score is None:
        raise TargetError("give top or min_score (or both)")
    if top is not None and not 1 <= top <= MAX_TOP:
        raise TargetError(f"top must be 1 to {MAX_TOP:,}, got {top!r}")
    columns = np.array(check_products(catalog, products), np.int64)
    now = time.time() if now is None else now
    audiences = [Audience(p) for p in products]
    best = [_Best(top, min_score) for _ in products]
    offset = 0
    for data, tags in _population(store, catalog, customers, page):
        n = data.n_customers
        scores = scorer.score_rows(data, slice(None), columns)
        ok = eligible(catalog, data, channel)[:, columns]
        held = blocked(
            config.contact_policy,
            store,
            catalog,
            data,
            tags,
            channel=channel,
            moment=moment,
            now=now,
        )[:, columns]
        where = np.arange(offset, offset + n)
        for j, audience in enumerate(audiences):
            audience.scanned += n
            audience.ineligible += int((~ok[:, j]).sum())
            audience.held_back += int((ok[:, j] & held[:, j]).sum())
            best[j].add(
                np.where(ok[:, j] & ~held[:, j], scores[:, j], -np.inf), where, data.customers
            )
        offset += n
        if progress is not None:
            progress(n)
    explain = _explainer(store, catalog, scorer, customers,
                         locale or config.locale(channel or ""))
    for j, audience in enumerate(audiences):
        scores, ids = best[j].ranked()
        audience.customers = ids.tolist()
        audience.scores = scores.astype(float).tolist()
        product = np.full(len(ids), columns[j])
        audience.strategies = scorer.sources(product).tolist()
        audience.reasons = explain(audience.customers, product, scores)
    return audiences


def _population(
    store: Store, catalog: Catalog, customers: Sequence[str] | GivenCustomers | None, page: int
) -> Iterator[tuple[TrainingData, list[frozenset[str]]]]:
    if isinstance(customers, GivenCustomers):
        for start in range(0, customers.data.n_customers, page):
            yield (
                _slice(customers.data, slice(start, start + page)),
                customers.tags[start : start + page],
            )
        return
    for data, rows in pages(store, catalog, page=page, ids=customers):
        yield data, tags_of(rows)


def _slice(data: TrainingData, rows: slice) -> TrainingData:
    """Rows of a TrainingData (customers only; the event log is not sliced)."""
    from dataclasses import replace

    from .attributes import AttributeTable

    table = data.attributes
    if table is not None:
        table = AttributeTable(
            table.numeric_names,
            table.numeric[rows],
            table.categorical_names,
            table.codes[rows],
            table.categories,
        )
    return replace(
        data,
        customers=data.customers[rows],
        holdings=data.holdings[rows],
        value_tier=data.value_tier[rows],
        persona=data.persona[rows],
        lifecycle=data.lifecycle[rows],
        tenure=data.tenure[rows],
        network=data.network[rows],
        smartphone=data.smartphone[rows],
        os=data.os[rows],
        attributes=table,
    )


def _explainer(
    store: Store,
    catalog: Catalog,
    scorer: BulkScorer,
    customers: Sequence[str] | GivenCustomers | None,
    locale: str = "en",
) -> Callable[[list[str], np.ndarray, np.ndarray], list[str]]:
    """Reasons for the chosen customers only, reading them again by id (N, not the base),
    in the channel's ``locale``."""

    def explain(ids: list[str], products: np.ndarray, scores: np.ndarray) -> list[str]:
        if not ids:
            return []
        if isinstance(customers, GivenCustomers):
            data = customers.data
            position = {c: i for i, c in enumerate(data.customers.tolist())}
            rows = np.array([position[c] for c in ids], np.int64)
        else:
            out: list[str] = []
            for start in range(0, len(ids), DEFAULT_PAGE):
                part = ids[start : start + DEFAULT_PAGE]
                data, _ = next(iter(pages(store, catalog, page=len(part), ids=part)))
                position = {c: i for i, c in enumerate(data.customers.tolist())}
                rows = np.array([position[c] for c in part], np.int64)
                out += scorer.reasons(
                    data,
                    rows,
                    products[start : start + len(part)],
                    scores[start : start + len(part)],
                    locale,
                )
            return out
        return scorer.reasons(data, rows, products, scores, locale)

    return explain


def read_customers(
    path: Path, store: Store, catalog: Catalog, declared: Mapping[str, str] | None = None
) -> list[str] | GivenCustomers:
    """A ``--customers`` file: a list of ids (a single ``id`` column), or customers with
    their own columns (the ``customers.csv`` format, attributes included) scored as given,
    with the holdings and terminal the store has for them, if any.

    :raises ImportRowError: a bad row, naming file, line and column (nothing is scored).
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            header = next(csv.reader(f), None)
    except OSError as e:
        raise ImportFileError(str(path), f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ImportRowError(str(path), 1, None, "not UTF-8 text") from None
    if header is None:
        raise ImportRowError(str(path), 1, None, "empty file: a header row is required")
    if [h.strip() for h in header] in (["id"], ["customer_id"]):
        ids = [row[0] for row in _id_rows(path)]
        if not ids:
            raise ImportRowError(str(path), 2, None, "no customer ids after the header")
        return ids
    kinds = store.attribute_kinds()
    rows, found = read_rows(
        path, "customers", catalog, lambda _: True, declared=declared, stored=kinds
    )
    stored = {r[0]: r for r in store.customers_by_id([r[0] for r in rows])}
    page_rows = [
        (
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[6],
            r[7],
            *(stored[r[0]][7:10] if r[0] in stored else (None, None, None)),
        )
        for r in rows
    ]
    order = sorted(range(len(page_rows)), key=lambda i: page_rows[i][0])
    page_rows = [page_rows[i] for i in order]
    holdings = store.holdings_for([r[0] for r in page_rows])
    data = page_data(page_rows, holdings, catalog, {**kinds, **found})
    return GivenCustomers(data, tags_of(page_rows))


def _id_rows(path: Path) -> Iterator[list[str]]:
    from .csvimport import _rows

    rows = _rows(path)
    next(rows)
    for line, fields in rows:
        if not fields:
            continue
        if len(fields) != 1 or not fields[0].strip():
            raise ImportRowError(str(path), line, "id", "expected one customer id per line")
        yield [fields[0].strip()]
