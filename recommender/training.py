"""Training data as arrays: customers, terminals, holdings and the event log, by position.

Strategies learn from this, not from the store directly, so the same strategy trains on the
embedded store, on CSV files or on a generated benchmark operator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

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
        """Read the whole store into arrays. Rows naming unknown products are skipped."""
        db = store.db
        rows = db.execute(
            "SELECT id, value_tier, persona, lifecycle, tenure_months FROM customers ORDER BY id"
        ).fetchall()
        customers = np.array([r[0] for r in rows], dtype=object)
        position = {cid: i for i, cid in enumerate(customers)}
        tier_code = {t.value: i for i, t in enumerate(TIERS)}
        persona_code = {p.value: i for i, p in enumerate(PERSONAS)}
        life_code = {s.value: i for i, s in enumerate(LIFECYCLES)}
        value_tier = np.array([tier_code[r[1]] for r in rows], dtype=np.int8)
        persona = np.array([persona_code.get(r[2], -1) for r in rows], dtype=np.int8)
        lifecycle = np.array([life_code[r[3]] for r in rows], dtype=np.int8)
        tenure = np.array([r[4] for r in rows], dtype=np.int32)
        del rows

        n = len(customers)
        network = np.full(n, Network.G4.rank, dtype=np.int8)
        smartphone = np.ones(n, dtype=bool)
        os = np.full(n, -1, dtype=np.int8)
        os_code = {o.value: i for i, o in enumerate(OSES)}
        for cid, net, smart, os_name in db.execute(
                "SELECT customer_id, network, smartphone, os FROM terminals"):
            i = position.get(cid)
            if i is not None:
                network[i] = int(net[0])
                smartphone[i] = bool(smart)
                os[i] = os_code.get(os_name, -1)

        index = catalog.index
        h_rows, h_cols = [], []
        for cid, pid in db.execute("SELECT customer_id, product_id FROM holdings"):
            i, j = position.get(cid), index.get(pid)
            if i is not None and j is not None:
                h_rows.append(i)
                h_cols.append(j)
        holdings = sp.csr_matrix(
            (np.ones(len(h_rows), dtype=np.float32), (h_rows, h_cols)),
            shape=(n, len(catalog)))
        holdings.sum_duplicates()

        channel_code = {c: i for i, c in enumerate(CHANNEL_IDS)}
        kind_code = {m.value: i for i, m in enumerate(MOMENTS)}
        ev = [(position.get(c), index.get(p), channel_code.get(ch), kind_code.get(k), ts)
              for ts, c, p, ch, k in db.execute(
                  "SELECT ts, customer_id, product_id, channel, kind FROM events ORDER BY ts, id")]
        ev = [e for e in ev if None not in e]
        arr = np.array(ev, dtype=np.int64).reshape(-1, 5)
        events = EventLog(arr[:, 0].astype(np.int32), arr[:, 1].astype(np.int32),
                          arr[:, 2].astype(np.int8), arr[:, 3].astype(np.int8), arr[:, 4])
        return cls(catalog=catalog, customers=customers, holdings=holdings, events=events,
                   value_tier=value_tier, persona=persona, lifecycle=lifecycle, tenure=tenure,
                   network=network, smartphone=smartphone, os=os)
