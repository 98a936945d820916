"""Training data as arrays: customers, terminals, holdings and the event log, by position.

Strategies learn from this, not from the store directly, so the same strategy trains on the
embedded store, on CSV files or on a generated benchmark operator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from .attributes import AttributeTable
from .catalog import Catalog
from .context import CHANNEL_IDS, OS, Lifecycle, Moment, Network, Persona, ValueTier

if TYPE_CHECKING:
    from .store import Store

MOMENTS = tuple(Moment)
TIERS = tuple(ValueTier)
PERSONAS = tuple(Persona)
LIFECYCLES = tuple(Lifecycle)
OSES = tuple(OS)


@dataclass(frozen=True)
class EventLog:
    """The interaction log as parallel arrays, one row per event, in time order."""

    customer: np.ndarray  # int32 position in TrainingData.customers
    product: np.ndarray   # int32 position in the catalog
    channel: np.ndarray   # int8 position in CHANNEL_IDS
    kind: np.ndarray      # int8 position in MOMENTS (query, transaction, success, failure)
    ts: np.ndarray        # int64 unix seconds

    def __len__(self) -> int:
        return len(self.ts)

    def select(self, mask: np.ndarray) -> EventLog:
        return EventLog(self.customer[mask], self.product[mask], self.channel[mask],
                        self.kind[mask], self.ts[mask])


@dataclass(frozen=True)
class TrainingData:
    """Everything a strategy may learn from, indexed by customer and product position.

    Categorical attributes are small integer codes: the position in the matching enum
    (``TIERS``, ``PERSONAS`` with -1 for none, ``LIFECYCLES``, ``OSES`` with -1 for unknown);
    ``network`` is the generation number (2 to 5).
    """

    catalog: Catalog
    customers: np.ndarray            # customer ids (str objects)
    holdings: sp.csr_matrix          # customers x products, 1.0 where held
    events: EventLog
    value_tier: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    persona: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    lifecycle: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    tenure: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    network: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    smartphone: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    os: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    #: The customers' own attributes (``recommender.attributes``); None: none known.
    attributes: AttributeTable | None = None

    @property
    def n_customers(self) -> int:
        return len(self.customers)

    @property
    def n_products(self) -> int:
        return len(self.catalog)

    @property
    def now(self) -> int:
        """The time of the latest event: the reference point for time decay."""
        return int(self.events.ts.max()) if len(self.events) else 0

    def interactions(self, weights: dict[str, float], *, holding_weight: float = 1.0
                     ) -> sp.csr_matrix:
        """Customers x products implicit-feedback matrix: holdings plus weighted events.

        :param weights: weight per event kind (``query``, ``transaction``, ``success``,
            ``failure``); kinds not named count 0.
        :param holding_weight: weight of a current holding.
        """
        kind_weight = np.array([weights.get(m.value, 0.0) for m in MOMENTS], dtype=np.float32)
        w = kind_weight[self.events.kind]
        keep = w > 0
        shape = (self.n_customers, self.n_products)
        events = sp.csr_matrix(
            (w[keep], (self.events.customer[keep], self.events.product[keep])), shape=shape,
            dtype=np.float32)
        matrix = events + self.holdings.astype(np.float32) * holding_weight
        matrix.sum_duplicates()
        return matrix.tocsr()

    @classmethod
    def from_store(cls, store: Store, catalog: Catalog) -> TrainingData:
        """Read the whole store into arrays. Rows naming unknown products are skipped.

        Columns are read in bulk and mapped to codes with arrays, not row by row.
        """
        kinds = store.attribute_kinds()
        (table,) = store.read_columns("customers", [
            c for c in store.BULK_COLUMNS["customers"] if kinds or c != "attributes"])
        ids = np.array(table["id"], dtype=object)
        # The store hands customers in id order already (checked, as it is not promised).
        by_id = np.arange(len(ids)) if len(ids) < 2 or (ids[1:] > ids[:-1]).all() else \
            np.argsort(ids, kind="stable")
        customers = ids[by_id]
        n = len(customers)
        position = dict(zip(customers.tolist(), range(n), strict=True))

        def codes(values: list[str], values_of: tuple, missing: int) -> np.ndarray:
            table_ = {v.value: i for i, v in enumerate(values_of)}
            return np.fromiter(map(table_.get, values, repeat(missing)), np.int64,
                               count=len(values))

        tier = codes(table["value_tier"], TIERS, -2)
        life = codes(table["lifecycle"], LIFECYCLES, -2)
        for name, column, values in (("value_tier", tier, table["value_tier"]),
                                     ("lifecycle", life, table["lifecycle"])):
            if (column == -2).any():
                raise ValueError(f"customers.{name}: unknown value "
                                 f"{values[int(np.argmax(column == -2))]!r}")
        value_tier = tier[by_id].astype(np.int8)
        lifecycle = life[by_id].astype(np.int8)
        persona = codes(table["persona"], PERSONAS, -1)[by_id].astype(np.int8)
        tenure = table["tenure_months"][by_id].astype(np.int32)
        attributes = AttributeTable.from_mappings(
            (table["attributes"][i] for i in by_id.tolist()), n, kinds) if kinds else None
        del table, ids

        network = np.full(n, Network.G4.rank, dtype=np.int8)
        smartphone = np.ones(n, dtype=bool)
        os = np.full(n, -1, dtype=np.int8)
        (table,) = store.read_columns("terminals", store.BULK_COLUMNS["terminals"])
        rows = _positions(table["customer_id"], position)
        known = rows >= 0
        rows = rows[known]
        network[rows] = np.array([v[:1] for v in table["network"]], dtype=np.int8)[known]
        smartphone[rows] = table["smartphone"][known] != 0
        os[rows] = codes(table["os"], OSES, -1)[known].astype(np.int8)
        del table

        index = catalog.index
        (table,) = store.read_columns("holdings", store.BULK_COLUMNS["holdings"])
        h_rows = _positions(table["customer_id"], position)
        h_cols = _positions(table["product_id"], index)
        known = (h_rows >= 0) & (h_cols >= 0)
        del table
        holdings = sp.csr_matrix(
            (np.ones(int(known.sum()), dtype=np.float32), (h_rows[known], h_cols[known])),
            shape=(n, len(catalog)))
        holdings.sum_duplicates()

        coded = {"channel": CHANNEL_IDS, "kind": [m.value for m in MOMENTS]}
        types = (np.int64, np.int32, np.int32, np.int8, np.int8)
        parts: list[list[np.ndarray]] = [[] for _ in types]
        # Chunks come in id order, so a stable sort by time gives ORDER BY ts, id.
        for chunk in store.read_columns("events", ("ts", "customer_id", "product_id",
                                                   "channel", "kind"), codes=coded):
            cols = (chunk["ts"], _positions(chunk["customer_id"], position),
                    _positions(chunk["product_id"], index), chunk["channel"], chunk["kind"])
            keep = (cols[1] >= 0) & (cols[2] >= 0) & (cols[3] >= 0) & (cols[4] >= 0)
            for part, column, kind in zip(parts, cols, types, strict=True):
                part.append(column[keep].astype(kind))
            del chunk, cols
        arrays = [np.concatenate(part) if part else np.zeros(0, kind)
                  for part, kind in zip(parts, types, strict=True)]
        del parts
        order = np.argsort(arrays[0], kind="stable")
        ts, customer, product, channel, kind_ = (a[order] for a in arrays)
        events = EventLog(customer, product, channel, kind_, ts)
        del arrays, order
        return cls(catalog=catalog, customers=customers, holdings=holdings, events=events,
                   value_tier=value_tier, persona=persona, lifecycle=lifecycle, tenure=tenure,
                   network=network, smartphone=smartphone, os=os, attributes=attributes)


def _positions(values: list[str], position: Mapping[str, int]) -> np.ndarray:
    """Each value's position in ``position``, -1 where it has none."""
    return np.fromiter(map(position.get, values, repeat(-1)), np.int64, count=len(values))
