"""Training data as arrays: customers, terminals, holdings and the event log, by position.

Strategies learn from this, not from the store directly, so the same strategy trains on the
embedded store, on CSV files or on a generated benchmark operator.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
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

        Columns are read in bulk and ids mapped to positions by hash lookups over whole
        chunks (``Store.read_columns``), never a Python tuple per row.
        """
        kinds = store.attribute_kinds()
        enums = {"value_tier": _values(TIERS), "persona": _values(PERSONAS),
                 "lifecycle": _values(LIFECYCLES)}
        (table,) = store.read_columns("customers", [
            c for c in store.BULK_COLUMNS["customers"] if kinds or c != "attributes"],
            codes=enums)
        ids = np.array(table["id"], dtype=object)
        # The store hands customers in id order already (checked, as it is not promised).
        in_order = len(ids) < 2 or bool((ids[1:] > ids[:-1]).all())
        by_id = np.arange(len(ids)) if in_order else np.argsort(ids, kind="stable")
        customers = ids[by_id]
        n = len(customers)
        for name in ("value_tier", "lifecycle"):
            if (table[name] < 0).any():
                value = store.unknown_value(name, enums[name])
                raise ValueError(f"customers.{name}: unknown value {value!r}")
        value_tier = table["value_tier"][by_id].astype(np.int8)
        lifecycle = table["lifecycle"][by_id].astype(np.int8)
        persona = table["persona"][by_id].astype(np.int8)
        tenure = table["tenure_months"][by_id].astype(np.int32)
        # Building the attribute arrays is Python work; the reads below mostly run outside
        # the GIL (SQLite, pyarrow), so the two overlap.
        pool = ThreadPoolExecutor(1, thread_name_prefix="attributes")
        attributes = pool.submit(AttributeTable.from_mappings, [
            table["attributes"][i] for i in by_id.tolist()], n, kinds) if kinds else None
        pool.shutdown(wait=False)
        del table, ids
        by_position = {"customer_id": customers.tolist()}
        products = {"product_id": list(catalog.ids)}

        network = np.full(n, Network.G4.rank, dtype=np.int8)
        smartphone = np.ones(n, dtype=bool)
        os = np.full(n, -1, dtype=np.int8)
        (table,) = store.read_columns("terminals", store.BULK_COLUMNS["terminals"],
                                      codes={**by_position, "os": _values(OSES)})
        rows = table["customer_id"]
        known = rows >= 0
        rows = rows[known]
        # The generation is the first character ("4G" is 4), as Network.rank reads it.
        network[rows] = np.array(table["network"], dtype="U1").astype(np.int8)[known]
        smartphone[rows] = table["smartphone"][known] != 0
        os[rows] = table["os"][known].astype(np.int8)
        del table

        (table,) = store.read_columns("holdings", store.BULK_COLUMNS["holdings"],
                                      codes={**by_position, **products})
        h_rows, h_cols = table["customer_id"], table["product_id"]
        known = (h_rows >= 0) & (h_cols >= 0)
        del table
        holdings = sp.csr_matrix(
            (np.ones(int(known.sum()), dtype=np.float32), (h_rows[known], h_cols[known])),
            shape=(n, len(catalog)))
        holdings.sum_duplicates()

        coded = {**by_position, **products, "channel": CHANNEL_IDS, "kind": _values(MOMENTS)}
        names = ("ts", "customer_id", "product_id", "channel", "kind")
        types = (np.int64, np.int32, np.int32, np.int8, np.int8)
        parts: list[list[np.ndarray]] = [[] for _ in types]
        # Chunks come in id order, so a stable sort by time gives ORDER BY ts, id.
        for chunk in store.read_columns("events", names, codes=coded, chunk_rows=1 << 21):
            keep = (chunk["customer_id"] >= 0) & (chunk["product_id"] >= 0) & \
                (chunk["channel"] >= 0) & (chunk["kind"] >= 0)
            for part, name, kind in zip(parts, names, types, strict=True):
                part.append(chunk[name][keep].astype(kind))
            del chunk
        arrays = [np.concatenate(part) if part else np.zeros(0, kind)
                  for part, kind in zip(parts, types, strict=True)]
        del parts
        if not (np.diff(arrays[0]) >= 0).all():  # a log appended in time order is sorted
            order = np.argsort(arrays[0], kind="stable")
            arrays = [a[order] for a in arrays]
            del order
        ts, customer, product, channel, kind_ = arrays
        events = EventLog(customer, product, channel, kind_, ts)
        del arrays
        return cls(catalog=catalog, customers=customers, holdings=holdings, events=events,
                   value_tier=value_tier, persona=persona, lifecycle=lifecycle, tenure=tenure,
                   network=network, smartphone=smartphone, os=os,
                   attributes=None if attributes is None else attributes.result())


def _values(members: tuple) -> list[str]:
    """The stored values of enum members, in position order."""
    return [m.value for m in members]
