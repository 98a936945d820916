"""The product catalog: businesses, their eligibility, prerequisites, conflicts and upgrades.

Loaded from TOML and validated as a whole on load. Besides the per-product records it keeps the
same facts as NumPy arrays indexed by product position, so eligibility for a request is a few
vector operations over the catalog, not a Python loop over products.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .context import (
    CHANNEL_IDS,
    OS,
    Customer,
    Lifecycle,
    Network,
    Persona,
    RequestContext,
    Terminal,
    ValueTier,
)
from .errors import CatalogError, UnknownProductError
from .i18n import join, ptr, tr


class ProductKind(StrEnum):
    """An orderable business is a candidate; a query service (bill, balance) never is.

    A ``service`` is orderable but not marketing (a SIM replacement, a loss report): the
    contact policy's caps and do-not-disturb leave it alone.
    """

    BUSINESS = "business"
    SERVICE = "service"
    QUERY = "query"


class Exclusion(IntEnum):
    """Why a customer cannot take a business. 0 means they can."""

    OK = 0
    UNKNOWN_PRODUCT = 1
    NOT_ORDERABLE = 2
    CURRENT_PRODUCT = 3
    HELD = 4
    CONFLICT = 5
    MISSING_PREREQUISITE = 6
    SUPERSEDED = 7
    TERMINAL_NETWORK = 8
    TERMINAL_SMARTPHONE = 9
    TERMINAL_OS = 10
    CHANNEL = 11
    CUSTOMER_TIER = 12
    CUSTOMER_PERSONA = 13
    CUSTOMER_LIFECYCLE = 14
    CUSTOMER_TENURE = 15

    @property
    def code(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Eligibility:
    """Conditions a customer and terminal must meet; an empty set means no condition."""

    min_network: Network | None = None
    smartphone: bool = False
    os: frozenset[OS] = frozenset()
    value_tiers: frozenset[ValueTier] = frozenset()
    personas: frozenset[Persona] = frozenset()
    lifecycles: frozenset[Lifecycle] = frozenset()
    min_tenure_months: int = 0

    def describe(self) -> list[str]:
        """Plain-language conditions, for a front-end to say "needs a 5G phone"."""
        out = []
        if self.min_network is not None:
            out.append(f"needs a {self.min_network.value} terminal")
        if self.smartphone:
            out.append("needs a smartphone")
        if self.os:
            out.append("needs " + " or ".join(sorted(o.value for o in self.os)))
        if self.value_tiers:
            out.append("for " + "/".join(sorted(t.value for t in self.value_tiers)) + " value")
        if self.personas:
            out.append("for " + "/".join(sorted(p.value for p in self.personas)) + " personas")
        if self.lifecycles:
            out.append("in lifecycle " + "/".join(sorted(s.value for s in self.lifecycles)))
        if self.min_tenure_months:
            out.append(f"needs {self.min_tenure_months} months of tenure")
        return out


@dataclass(frozen=True, slots=True)
class TerminalSpec:
    """The terminal a device business gives the customer (a 5G smartphone), so a business
    that failed on the customer's terminal can be offered with the phone that meets it."""

    network: Network
    smartphone: bool = True
    os: OS | None = None

    def meets(self, e: Eligibility) -> bool:
        """Whether this terminal meets the terminal conditions of ``e``."""
        return ((e.min_network is None or self.network.rank >= e.min_network.rank)
                and (self.smartphone or not e.smartphone)
                and (not e.os or self.os in e.os))


#: Names a talking-point template may use (see ``Product.talking_point``).
TALKING_POINT_FIELDS = frozenset({"name", "price", "plan", "terminal", "network"})


@dataclass(frozen=True, slots=True)
class Product:
    """One business (业务) of the catalog."""

    id: str
    name: str
    category: str
    kind: ProductKind = ProductKind.BUSINESS
    price: float = 0.0
    channels: frozenset[str] = frozenset(CHANNEL_IDS)
    eligibility: Eligibility = field(default_factory=Eligibility)
    requires: frozenset[str] = frozenset()
    requires_any: frozenset[str] = frozenset()
    conflicts: frozenset[str] = frozenset()
    upgrades: frozenset[str] = frozenset()
    name_en: str | None = None
    description: str | None = None
    #: What taking it is worth to the operator (a margin, a lifetime value) for arbitration;
    #: None: its price.
    value: float | None = None
    #: Marketing's business weight in arbitration (1: none), applied from ``priority_start``
    #: to ``priority_end`` (dates or datetimes, either optional; see recommender.arbitration).
    priority: float = 1.0
    priority_start: date | datetime | None = None
    priority_end: date | datetime | None = None
    #: A device business: the terminal it gives the customer.
    terminal: TerminalSpec | None = None
    #: The hotline agent's one line about it, in the catalog's language and in English;
    #: ``{name}``, ``{price}``, ``{plan}``, ``{terminal}`` and ``{network}`` are filled in.
    talking_point: str | None = None
    talking_point_en: str | None = None

    @property
    def orderable(self) -> bool:
        return self.kind is not ProductKind.QUERY

    def display_name(self, locale: str) -> str:
        """``name_en`` for English when the catalog has it, else ``name``."""
        return self.name_en if locale == "en" and self.name_en else self.name


_PRODUCT_KEYS = {
    "id", "name", "name_en", "description", "category", "kind", "price", "channels",
    "eligibility", "requires", "requires_any", "conflicts", "upgrades",
    "value", "priority", "priority_start", "priority_end", "terminal", "talking_point",
    "talking_point_en",
}
_ELIGIBILITY_KEYS = {
    "min_network", "smartphone", "os", "value_tiers", "personas", "lifecycles",
    "min_tenure_months",
}
#: The longest tenure a customer can have (``customer.tenure_months``), so the most a business
#: can ask for: beyond it no one could ever take the business.
MAX_TENURE_MONTHS = 1200
#: Exclusion codes kept for the last requests' customers (cleared when full).
RECENT_EXCLUSIONS = 256


class Catalog:
    """All products, validated as a whole, with vectorised eligibility.

    Conflicts are made symmetric: if A names B as a conflict, B conflicts with A too. A
    business that upgrades a held one replaces it, so that pair does not count as a conflict.
    """

    def __init__(self, products: Iterable[Product], *, source: str = "<catalog>"):
        self.source = source
        self.products: tuple[Product, ...] = tuple(products)
        self.ids: tuple[str, ...] = tuple(p.id for p in self.products)
        self.index: dict[str, int] = {}
        for i, p in enumerate(self.products):
            if p.id in self.index:
                raise CatalogError(source, p.id, "id", "duplicate product id")
            self.index[p.id] = i
        self._by_id = dict(zip(self.ids, self.products, strict=True))
        self._check_relations()
        self._build_arrays()

    # -- lookup -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.products)

    def __iter__(self) -> Iterator[Product]:
        return iter(self.products)

    def __contains__(self, product_id: object) -> bool:
        return product_id in self._by_id

    def __getitem__(self, product_id: str) -> Product:
        try:
            return self._by_id[product_id]
        except KeyError:
            raise UnknownProductError(product_id) from None

    def get(self, product_id: str) -> Product | None:
        return self._by_id.get(product_id)

    def indices(self, product_ids: Iterable[str]) -> np.ndarray:
        """Positions of known ``product_ids`` (unknown ones are skipped)."""
        index = self.index
        return np.fromiter(
            (index[p] for p in product_ids if p in index), dtype=np.int64
        )

    def order_channels(self, product_id: str) -> tuple[str, ...]:
        """The channels that can transact ``product_id``, in the order of ``CHANNEL_IDS``."""
        return self._order_channels[self[product_id].id]

    def conflicts_of(self, product_id: str) -> frozenset[str]:
        """Every product that conflicts with ``product_id``, in either direction."""
        i = self.index[self[product_id].id]
        return frozenset(self.ids[j] for j in self._conflicts[i])

    def upgrade_paths(self, product_id: str) -> tuple[str, ...]:
        """Products that upgrade (replace) ``product_id``."""
        i = self.index[self[product_id].id]
        return tuple(self.ids[j] for j in self._upgraded_by[i])

    # -- validation ---------------------------------------------------------------------------

    def _check_relations(self) -> None:
        for p in self.products:
            # Products built in code skip _parse_product: the numbers get the same checks.
            if not _valid_price(p.price):
                raise CatalogError(self.source, p.id, "price",
                                   f"must be a finite, non-negative number, got {p.price!r}")
            problem = _arbitration_problem(p)
            if problem is not None:
                raise CatalogError(self.source, p.id, *problem)
            if not _valid_tenure(p.eligibility.min_tenure_months):
                raise CatalogError(self.source, p.id, "eligibility.min_tenure_months",
                                   f"must be a non-negative integer, at most "
                                   f"{MAX_TENURE_MONTHS}, got "
                                   f"{p.eligibility.min_tenure_months!r}")
            for field_name in ("requires", "requires_any", "conflicts", "upgrades"):
                for other in sorted(getattr(p, field_name)):
                    if other not in self.index:
                        raise CatalogError(
                            self.source, p.id, field_name, f"unknown product {other!r}"
                        )
                    if other == p.id:
                        raise CatalogError(self.source, p.id, field_name,
                                           "names the product itself")
            both = (p.requires | p.requires_any) & p.conflicts
            if both:
                raise CatalogError(
                    self.source, p.id, "conflicts",
                    f"{sorted(both)[0]!r} is both a prerequisite and a conflict",
                )
        self._check_prerequisite_cycles()
        self._check_upgrade_cycles()

    def _check_prerequisite_cycles(self) -> None:
        self._check_cycles("requires", "prerequisite cycle",
                           {p.id: sorted(p.requires | p.requires_any) for p in self.products})

    def _check_upgrade_cycles(self) -> None:
        """a upgrades b upgrades a: each would supersede the other, so holding either one
        hides both and neither is the newer business."""
        self._check_cycles("upgrades", "upgrade cycle",
                           {p.id: sorted(p.upgrades) for p in self.products})

    def _check_cycles(self, field_name: str, what: str, graph: Mapping[str, list[str]]
                      ) -> None:
        """Refuse a cycle in ``graph`` (product -> products it names in ``field_name``)."""
        state: dict[str, int] = {}  # 1 visiting, 2 done

        for root in self.ids:
            if state.get(root):
                continue
            path: list[str] = []
            stack: list[tuple[str, Iterator[str]]] = [(root, iter(graph[root]))]
            state[root] = 1
            path.append(root)
            while stack:
                node, children = stack[-1]
                child = next(children, None)
                if child is None:
                    stack.pop()
                    path.pop()
                    state[node] = 2
                elif state.get(child) == 1:
                    cycle = path[path.index(child):] + [child]
                    raise CatalogError(self.source, child, field_name,
                                       f"{what} " + " -> ".join(cycle))
                elif not state.get(child):
                    state[child] = 1
                    path.append(child)
                    stack.append((child, iter(graph[child])))

    # -- vectorised eligibility ---------------------------------------------------------------

    def _build_arrays(self) -> None:
        n = len(self.products)
        self.orderable = np.array([p.orderable for p in self.products], dtype=bool)
        #: Rows of the businesses that cannot be ordered (query services): never proposed.
        self.unorderable_rows = np.flatnonzero(~self.orderable)
        self.min_network = np.array(
            [0 if p.eligibility.min_network is None else p.eligibility.min_network.rank
             for p in self.products], dtype=np.int8)
        self.needs_smartphone = np.array(
            [p.eligibility.smartphone for p in self.products], dtype=bool)
        self.min_tenure = np.array(
            [p.eligibility.min_tenure_months for p in self.products], dtype=np.int32)
        self.os_mask = _bitmask([p.eligibility.os for p in self.products], OS)
        self.tier_mask = _bitmask([p.eligibility.value_tiers for p in self.products], ValueTier)
        self.persona_mask = _bitmask([p.eligibility.personas for p in self.products], Persona)
        self.lifecycle_mask = _bitmask(
            [p.eligibility.lifecycles for p in self.products], Lifecycle)
        self.channel_mask = np.array(
            [sum(1 << CHANNEL_IDS.index(c) for c in p.channels) for p in self.products],
            dtype=np.int64)
        self.price = np.array([p.price for p in self.products], dtype=np.float64)
        self._order_channels = {p.id: tuple(c for c in CHANNEL_IDS if c in p.channels)
                                for p in self.products}

        conflicts: list[set[int]] = [set() for _ in range(n)]
        upgraded_by: list[set[int]] = [set() for _ in range(n)]
        for i, p in enumerate(self.products):
            for other in p.conflicts:
                j = self.index[other]
                conflicts[i].add(j)
                conflicts[j].add(i)
            for other in p.upgrades:
                upgraded_by[self.index[other]].add(i)
        self._conflicts = [np.array(sorted(s), dtype=np.int64) for s in conflicts]
        self._upgraded_by = [np.array(sorted(s), dtype=np.int64) for s in upgraded_by]
        # Products each product supersedes, so "holds the upgrade" marks the old one.
        supersedes: list[set[int]] = [set() for _ in range(n)]
        for i, p in enumerate(self.products):
            supersedes[i] = {self.index[o] for o in p.upgrades}
        self._supersedes = [np.array(sorted(s), dtype=np.int64) for s in supersedes]
        self._requires = [np.array(sorted(self.index[o] for o in p.requires), dtype=np.int64)
                          for p in self.products]
        self._requires_any = [
            np.array(sorted(self.index[o] for o in p.requires_any), dtype=np.int64)
            for p in self.products]
        self._has_prerequisites = np.array(
            [bool(p.requires or p.requires_any) for p in self.products], dtype=bool)
        # The same relations as sparse matrices, so exclusions() is a few mat-vec products:
        # clash[i, j]: holding i rules j out (a conflict, unless j upgrades i);
        # supersede[i, j]: holding i makes j obsolete; needs_all/needs_any[j, i]: j needs i.
        clash = [(i, int(j)) for i in range(n) for j in self._conflicts[i]
                 if j not in set(self._upgraded_by[i].tolist())]
        self._clash = _relation(clash, n)
        self._supersede = _relation([(i, int(j)) for i in range(n)
                                     for j in self._supersedes[i]], n)
        self._needs_all = _relation([(j, int(i)) for j in range(n) for i in self._requires[j]],
                                    n)
        self._needs_any = _relation([(j, int(i)) for j in range(n)
                                     for i in self._requires_any[j]], n)
        self._n_required = np.diff(self._needs_all.indptr)
        self._has_any = np.diff(self._needs_any.indptr) > 0
        # Transposed: for each business, those that need it (a row per holding, counted).
        self._needed_by_all = self._needs_all.T.tocsr()
        self._needed_by_any = self._needs_any.T.tocsr()
        #: What a customer holding nothing lacks; the first, holding-free layer of codes.
        self._needs_something = (self._n_required > 0) | self._has_any
        self._not_orderable = np.where(self.orderable, np.int8(0),
                                       np.int8(Exclusion.NOT_ORDERABLE))
        self._layers: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = {}
        #: The last requests' codes (one request asks for the same ones up to three times).
        self._recent: dict[tuple[Any, ...], np.ndarray] = {}

    def exclusions(self, context: RequestContext, *, channels: bool = True) -> np.ndarray:
        """Per product, the first Exclusion that keeps this customer from taking it (0 = none).

        Checks run from the most specific to the most general, so the reason shown is the one a
        customer would find most useful ("you already have it" before "not on this channel").
        With ``channels=False`` the calling channel is not checked: what is left is whether the
        customer can take the business on a channel that transacts it (a hand-off).
        Returns a new array: the caller may change it.
        """
        customer, terminal = context.customer, context.terminal
        held = context.holdings_after
        key = (held, terminal.network, terminal.smartphone, terminal.os,
               context.channel.id if channels else None, customer.value_tier,
               customer.persona, customer.lifecycle, customer.tenure_months)
        codes = self._recent.get(key)
        if codes is None:
            codes = self._codes(context, held, channels)
            if len(self._recent) >= RECENT_EXCLUSIONS:
                self._recent.clear()
            self._recent[key] = codes
        codes = codes.copy()
        product = context.product
        if product is not None:
            row = self.index.get(product)
            if row is not None and codes[row] != Exclusion.NOT_ORDERABLE:
                codes[row] = Exclusion.CURRENT_PRODUCT
        return codes

    def _codes(self, context: RequestContext, held_ids: frozenset[str],
               channels: bool) -> np.ndarray:
        """:meth:`exclusions` without the business being acted on. Each check writes over the
        more general ones, from the most general to the most specific, so each is one
        assignment (the result is the same as "first failing check, in order")."""
        customer, terminal = context.customer, context.terminal
        codes = np.where(self.min_tenure > customer.tenure_months,
                         np.int8(Exclusion.CUSTOMER_TENURE), np.int8(0))
        layer, failing = self._layer(
            ("request", terminal.network.rank, terminal.smartphone, terminal.os,
             context.channel.id if channels else None, customer.value_tier, customer.persona,
             customer.lifecycle), lambda: self._request_layer(context, channels))
        codes[failing] = layer[failing]
        held = self.indices(held_ids)
        if len(held):
            n = len(self.products)
            missing = _row_counts(self._needed_by_all, held, n) < self._n_required
            missing |= self._has_any & (_row_counts(self._needed_by_any, held, n) == 0)
            codes[missing] = Exclusion.MISSING_PREREQUISITE
            codes[_row_columns(self._supersede, held)] = Exclusion.SUPERSEDED
            codes[_row_columns(self._clash, held)] = Exclusion.CONFLICT
            codes[held] = Exclusion.HELD
        else:
            codes[self._needs_something] = Exclusion.MISSING_PREREQUISITE
        codes[self.unorderable_rows] = Exclusion.NOT_ORDERABLE
        return codes

    def _request_layer(self, context: RequestContext, channels: bool) -> np.ndarray:
        """The checks of terminal, channel (unless ``channels`` is False) and segment, in
        that order: they depend on a few enum values, not on the customer."""
        codes = self._terminal_layer(context.terminal)
        if channels:
            bit = 1 << CHANNEL_IDS.index(context.channel.id)
            codes[(codes == 0) & ((self.channel_mask & bit) == 0)] = Exclusion.CHANNEL
        segment = self._customer_layer(context.customer)
        np.copyto(codes, segment, where=codes == 0)
        return codes

    def _layer(self, key: tuple[Any, ...], build: Callable[[], np.ndarray]
               ) -> tuple[np.ndarray, np.ndarray]:
        """A layer of exclusion codes that depends only on ``key`` (a few enum values: the
        number of layers is bounded by the enums' sizes), built once, with its failing rows."""
        found = self._layers.get(key)
        if found is None:
            layer = build().astype(np.int8)
            found = self._layers[key] = (layer, np.flatnonzero(layer))
        return found

    def _terminal_layer(self, terminal: Terminal) -> np.ndarray:
        """The terminal checks in their order: network, smartphone, operating system."""
        codes = np.zeros(len(self.products), dtype=np.int8)
        codes[self.min_network > terminal.network.rank] = Exclusion.TERMINAL_NETWORK
        if not terminal.smartphone:
            codes[(codes == 0) & self.needs_smartphone] = Exclusion.TERMINAL_SMARTPHONE
        os_bit = 0 if terminal.os is None else 1 << _member_index(OS, terminal.os)
        codes[(codes == 0) & (self.os_mask != 0) & ((self.os_mask & os_bit) == 0)] = \
            Exclusion.TERMINAL_OS
        return codes

    def _customer_layer(self, customer: Customer) -> np.ndarray:
        """The segment checks in their order: value tier, persona, lifecycle."""
        codes = np.zeros(len(self.products), dtype=np.int8)
        _mark_bits(codes, self.tier_mask, ValueTier, customer.value_tier, Exclusion.CUSTOMER_TIER)
        _mark_bits(codes, self.persona_mask, Persona, customer.persona,
                   Exclusion.CUSTOMER_PERSONA)
        _mark_bits(codes, self.lifecycle_mask, Lifecycle, customer.lifecycle,
                   Exclusion.CUSTOMER_LIFECYCLE)
        return codes

    def explain(self, product_id: str, reason: Exclusion, context: RequestContext) -> str:
        """A plain-language sentence for why ``product_id`` was excluded, in the context's
        locale (``recommender.i18n``)."""
        p = self[product_id]
        held = context.holdings_after
        lo = context.locale

        def names(ids: Iterable[str]) -> str:
            return join(lo, [self[c].display_name(lo) for c in sorted(ids)])

        name = p.display_name(lo)
        match reason:
            case Exclusion.NOT_ORDERABLE:
                return tr(lo, "{name} is a query service, not an orderable business", name=name)
            case Exclusion.CURRENT_PRODUCT:
                return tr(lo, "{name} is the business being acted on", name=name)
            case Exclusion.HELD:
                return tr(lo, "the customer already has {name}", name=name)
            case Exclusion.CONFLICT:
                clash = (self.conflicts_of(p.id) & held) - p.upgrades
                return tr(lo, "{name} conflicts with held {held}", name=name, held=names(clash))
            case Exclusion.SUPERSEDED:
                up = set(self.upgrade_paths(p.id)) & held
                return tr(lo, "the customer already holds its upgrade {held}", held=names(up))
            case Exclusion.MISSING_PREREQUISITE:
                missing = p.requires - held
                if not missing and p.requires_any:
                    return tr(lo, "{name} needs one of {others}", name=name,
                              others=names(p.requires_any))
                return tr(lo, "{name} needs {others}", name=name, others=names(missing))
            case Exclusion.TERMINAL_NETWORK:
                return tr(lo, "{name} needs a {network} terminal, the customer's is {current}",
                          name=name, network=p.eligibility.min_network,
                          current=context.terminal.network)
            case Exclusion.TERMINAL_SMARTPHONE:
                return tr(lo, "{name} needs a smartphone", name=name)
            case Exclusion.TERMINAL_OS:
                os_name = context.terminal.os or tr(lo, "this OS")
                return tr(lo, "{name} is not available on {os}", name=name, os=os_name)
            case Exclusion.CHANNEL:
                return tr(lo, "{name} cannot be ordered on the {channel} channel", name=name,
                          channel=ptr(lo, "channel", context.channel.id))
            case Exclusion.CUSTOMER_TIER:
                return tr(lo, "{name} is not offered to {tier}-value customers", name=name,
                          tier=ptr(lo, "tier", context.customer.value_tier))
            case Exclusion.CUSTOMER_PERSONA:
                return tr(lo, "{name} is not offered to this customer persona", name=name)
            case Exclusion.CUSTOMER_LIFECYCLE:
                return tr(lo, "{name} is not offered at lifecycle stage {stage}", name=name,
                          stage=ptr(lo, "lifecycle", context.customer.lifecycle))
            case Exclusion.CUSTOMER_TENURE:
                return tr(lo, "{name} needs {months} months of tenure, the customer has {has}",
                          name=name, months=p.eligibility.min_tenure_months,
                          has=context.customer.tenure_months)
        return tr(lo, "{name} is not available ({code})", name=name, code=reason.code)

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def from_toml(cls, path: str | Path) -> Catalog:
        """Load and validate a catalog file; every error names the file, product and field."""
        path = Path(path)
        source = str(path)
        try:
            with path.open("rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise CatalogError(source, None, None, "file not found") from None
        except tomllib.TOMLDecodeError as e:
            raise CatalogError(source, None, None, f"not valid TOML: {e}") from None
        except UnicodeDecodeError as e:
            raise CatalogError(source, None, None, f"not UTF-8: {e}") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<catalog>") -> Catalog:
        unknown = set(data) - {"product"}
        if unknown:
            raise CatalogError(source, None, sorted(unknown)[0], "unknown top-level key")
        entries = data.get("product")
        if not isinstance(entries, list) or not entries:
            raise CatalogError(source, None, "product", "needs at least one [[product]] table")
        return cls((_parse_product(e, i, source) for i, e in enumerate(entries)), source=source)

    def to_dict(self) -> dict[str, Any]:
        """The catalog as TOML-ready data (round-trips through ``from_dict``)."""
        return {"product": [product_to_dict(p) for p in self.products]}


def product_to_dict(p: Product) -> dict[str, Any]:
    """A product as plain data, for TOML and JSON."""
    e = p.eligibility
    eligibility: dict[str, Any] = {}
    if e.min_network is not None:
        eligibility["min_network"] = e.min_network.value
    if e.smartphone:
        eligibility["smartphone"] = True
    for key in ("os", "value_tiers", "personas", "lifecycles"):
        values = getattr(e, key)
        if values:
            eligibility[key] = sorted(v.value for v in values)
    if e.min_tenure_months:
        eligibility["min_tenure_months"] = e.min_tenure_months
    out: dict[str, Any] = {"id": p.id, "name": p.name}
    if p.name_en:
        out["name_en"] = p.name_en
    if p.description:
        out["description"] = p.description
    out.update(category=p.category, kind=p.kind.value, price=p.price,
               channels=[c for c in CHANNEL_IDS if c in p.channels])
    if p.value is not None:
        out["value"] = p.value
    if p.priority != 1.0 or p.priority_start is not None or p.priority_end is not None:
        out["priority"] = p.priority
    for key in ("priority_start", "priority_end"):
        if getattr(p, key) is not None:
            out[key] = getattr(p, key).isoformat()
    for key in ("requires", "requires_any", "conflicts", "upgrades"):
        if getattr(p, key):
            out[key] = sorted(getattr(p, key))
    if eligibility:
        out["eligibility"] = eligibility
    if p.terminal is not None:
        out["terminal"] = {"network": p.terminal.network.value,
                           "smartphone": p.terminal.smartphone}
        if p.terminal.os is not None:
            out["terminal"]["os"] = p.terminal.os.value
    for key in ("talking_point", "talking_point_en"):
        if getattr(p, key):
            out[key] = getattr(p, key)
    return out


def _relation(pairs: list[tuple[int, int]], n: int) -> sp.csr_matrix:
    """A 0/1 sparse n x n matrix with ones at ``pairs``."""
    rows = np.array([a for a, _ in pairs], dtype=np.int64)
    cols = np.array([b for _, b in pairs], dtype=np.int64)
    matrix = sp.csr_matrix((np.ones(len(pairs), dtype=np.float32), (rows, cols)), shape=(n, n))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def _row_columns(matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """The columns of the ones in ``rows`` (repeats kept): ``rows`` are a customer's holdings."""
    indptr, indices = matrix.indptr, matrix.indices
    parts = [indices[indptr[i]:indptr[i + 1]] for i in rows.tolist()]
    return np.concatenate(parts) if parts else indices[:0]


def _row_counts(matrix: sp.csr_matrix, rows: np.ndarray, n: int) -> np.ndarray:
    """How many of ``rows`` have a one in each column (``matrix[rows].sum(axis=0)`` for a
    0/1 matrix, without SciPy's per-call overhead: ``rows`` are a customer's holdings)."""
    indptr, indices = matrix.indptr, matrix.indices
    parts = [indices[indptr[i]:indptr[i + 1]] for i in rows.tolist()]
    if not parts:
        return np.zeros(n, dtype=np.int64)
    return np.bincount(np.concatenate(parts), minlength=n)


def _bitmask(sets: Sequence[frozenset[Any]], enum: type[StrEnum]) -> np.ndarray:
    members = list(enum)
    return np.array([sum(1 << members.index(v) for v in s) for s in sets], dtype=np.int64)


def _member_index(enum: type[StrEnum], value: Any) -> int:
    return list(enum).index(value)


def _mark_bits(codes: np.ndarray, masks: np.ndarray, enum: type[StrEnum], value: Any,
               reason: Exclusion) -> None:
    bit = 0 if value is None else 1 << _member_index(enum, value)
    codes[(codes == 0) & (masks != 0) & ((masks & bit) == 0)] = reason


def _parse_product(entry: Any, position: int, source: str) -> Product:
    if not isinstance(entry, dict):
        raise CatalogError(source, f"#{position + 1}", None, "each [[product]] must be a table")
    pid = entry.get("id")
    if not isinstance(pid, str) or not pid.strip():
        raise CatalogError(source, f"#{position + 1}", "id",
                           f"must be a non-empty string, got {pid!r}")
    if pid != pid.strip() or any(c.isspace() for c in pid) or "," in pid:
        raise CatalogError(source, pid, "id", "must not contain spaces or commas")

    def err(field_name: str, message: str) -> CatalogError:
        return CatalogError(source, pid, field_name, message)

    unknown = set(entry) - _PRODUCT_KEYS
    if unknown:
        raise err(sorted(unknown)[0], "unknown field")

    def text(key: str, required: bool = False) -> str | None:
        value = entry.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise err(key, f"must be a non-empty string, got {value!r}")
        return value

    def str_list(key: str, data: Mapping[str, Any] = entry, prefix: str = "") -> frozenset[str]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise err(prefix + key, f"must be a list of strings, got {value!r}")
        return frozenset(value)

    def enum_list(key: str, enum: type[StrEnum], data: Mapping[str, Any]) -> frozenset[Any]:
        values = str_list(key, data, "eligibility.")
        try:
            return frozenset(enum(v) for v in values)
        except ValueError:
            allowed = ", ".join(m.value for m in enum)
            raise err("eligibility." + key, f"values must be among {allowed}, got "
                      f"{sorted(values)!r}") from None

    try:
        kind = ProductKind(entry.get("kind", "business"))
    except ValueError:
        raise err("kind", f"must be 'business', 'service' or 'query', got "
                          f"{entry.get('kind')!r}") from None
    price = entry.get("price", 0.0)
    if not _valid_price(price):
        raise err("price", f"must be a finite, non-negative number, got {price!r}")
    value = entry.get("value")
    if value is not None and not _valid_price(value):
        raise err("value", f"must be a finite, non-negative number, got {value!r}")
    priority = entry.get("priority", 1.0)
    if not _valid_priority(priority):
        raise err("priority", f"must be a number above 0, at most {MAX_PRIORITY:g}, got "
                              f"{priority!r}")
    window = {key: _when(entry[key], lambda m, key=key: err(key, m))
              for key in ("priority_start", "priority_end") if key in entry}
    if window and "priority" not in entry:
        raise err(sorted(window)[-1], "a priority window needs a priority")
    channels = str_list("channels") if "channels" in entry else frozenset(CHANNEL_IDS)
    bad = sorted(channels - set(CHANNEL_IDS))
    if bad:
        raise err("channels", f"unknown channel {bad[0]!r}; known: {', '.join(CHANNEL_IDS)}")

    raw = entry.get("eligibility", {})
    if not isinstance(raw, dict):
        raise err("eligibility", "must be a table")
    unknown = set(raw) - _ELIGIBILITY_KEYS
    if unknown:
        raise err("eligibility." + sorted(unknown)[0], "unknown field")
    min_network = raw.get("min_network")
    if min_network is not None:
        try:
            min_network = Network(min_network)
        except ValueError:
            raise err("eligibility.min_network",
                      f"must be one of 2G, 3G, 4G, 5G, got {min_network!r}") from None
    smartphone = raw.get("smartphone", False)
    if not isinstance(smartphone, bool):
        raise err("eligibility.smartphone", f"must be true or false, got {smartphone!r}")
    tenure = raw.get("min_tenure_months", 0)
    if not _valid_tenure(tenure):
        raise err("eligibility.min_tenure_months",
                  f"must be a non-negative integer, at most {MAX_TENURE_MONTHS}, got "
                  f"{tenure!r}")

    terminal = _terminal_spec(entry.get("terminal"), err) if "terminal" in entry else None
    talking_points = {key: text(key) for key in ("talking_point", "talking_point_en")}
    for key, template in talking_points.items():
        if template is not None:
            _check_template(template, TALKING_POINT_FIELDS, lambda m, key=key: err(key, m))

    return Product(
        id=pid,
        name=text("name", required=True),  # type: ignore[arg-type]
        name_en=text("name_en"),
        description=text("description"),
        category=text("category", required=True),  # type: ignore[arg-type]
        kind=kind,
        price=float(price),
        channels=channels,
        eligibility=Eligibility(
            min_network=min_network,
            smartphone=smartphone,
            os=enum_list("os", OS, raw),
            value_tiers=enum_list("value_tiers", ValueTier, raw),
            personas=enum_list("personas", Persona, raw),
            lifecycles=enum_list("lifecycles", Lifecycle, raw),
            min_tenure_months=tenure,
        ),
        requires=str_list("requires"),
        requires_any=str_list("requires_any"),
        conflicts=str_list("conflicts"),
        upgrades=str_list("upgrades"),
        value=None if value is None else float(value),
        priority=float(priority),
        priority_start=window.get("priority_start"),
        priority_end=window.get("priority_end"),
        terminal=terminal,
        **talking_points,
    )


def _terminal_spec(raw: Any, err: Any) -> TerminalSpec:
    """``terminal = { network = "5G", smartphone = true, os = "android" }`` of a device."""
    if not isinstance(raw, dict):
        raise err("terminal", "must be a table like { network = \"5G\", smartphone = true }")
    unknown = sorted(set(raw) - {"network", "smartphone", "os"})
    if unknown:
        raise err("terminal." + unknown[0], "unknown field")
    try:
        network = Network(raw.get("network"))
    except ValueError:
        raise err("terminal.network",
                  f"must be one of 2G, 3G, 4G, 5G, got {raw.get('network')!r}") from None
    smartphone = raw.get("smartphone", True)
    if not isinstance(smartphone, bool):
        raise err("terminal.smartphone", f"must be true or false, got {smartphone!r}")
    os_value = raw.get("os")
    if os_value is not None:
        try:
            os_value = OS(os_value)
        except ValueError:
            raise err("terminal.os", f"must be one of {', '.join(o.value for o in OS)}, got "
                                     f"{os_value!r}") from None
    return TerminalSpec(network=network, smartphone=smartphone, os=os_value)


def _check_template(template: str, allowed: frozenset[str], err: Any) -> None:
    """Refuse a template with a stray brace or a placeholder not in ``allowed``."""
    import string

    try:
        used = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as e:
        raise err(f"is not a valid template: {e}") from None
    unknown = sorted(used - allowed)
    if unknown:
        raise err(f"unknown placeholder {{{unknown[0]}}}; known: "
                  + ", ".join(f"{{{a}}}" for a in sorted(allowed)))


def _valid_price(price: Any) -> bool:
    """A price is a finite number >= 0 (TOML can spell ``inf`` and ``nan``)."""
    if isinstance(price, bool) or not isinstance(price, int | float):
        return False
    try:
        return math.isfinite(float(price)) and price >= 0
    except OverflowError:  # an integer too large for a float
        return False


#: The largest marketing priority a business may have (as a blend weight).
MAX_PRIORITY = 1000.0


def _valid_priority(priority: Any) -> bool:
    """A priority is a finite number above 0, at most MAX_PRIORITY."""
    return (not isinstance(priority, bool) and isinstance(priority, int | float)
            and math.isfinite(priority) and 0 < priority <= MAX_PRIORITY)


def _when(value: Any, err: Any) -> date | datetime:
    """A priority date: a TOML date or date-time, or the same as an ISO 8601 string."""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value) if len(value) == 10 else \
                datetime.fromisoformat(value)
        except ValueError:
            raise err(f"must be a date (2026-12-01) or date-time, got {value!r}") from None
    if not isinstance(value, date):  # a datetime is a date too
        raise err(f"must be a date (2026-12-01) or date-time, got {value!r}")
    return value


def _arbitration_problem(p: Product) -> tuple[str, str] | None:
    """(field, message) for a bad ``value``, ``priority`` or priority window, or None."""
    if p.value is not None and not _valid_price(p.value):
        return "value", f"must be a finite, non-negative number, got {p.value!r}"
    if not _valid_priority(p.priority):
        return "priority", f"must be a number above 0, at most {MAX_PRIORITY:g}, got " \
                           f"{p.priority!r}"
    for key in ("priority_start", "priority_end"):
        when = getattr(p, key)
        if when is not None and not isinstance(when, date):
            return key, f"must be a date or date-time, got {when!r}"
    start, end = p.priority_start, p.priority_end
    if start is not None and end is not None and \
            _day_order(start, 0.0) > _day_order(end, 86400.0):
        return "priority_end", f"is before priority_start ({start.isoformat()})"
    return None


def _day_order(when: date | datetime, whole_day: float) -> tuple[date, float]:
    """A sort key putting dates and (naive or aware) date-times in order, to the second of
    their own clock; a date is its first instant, or with ``whole_day = 86400`` its last."""
    if isinstance(when, datetime):
        return when.date(), when.hour * 3600 + when.minute * 60 + when.second
    return when, whole_day


def _valid_tenure(months: Any) -> bool:
    """Whole months, 0 to MAX_TENURE_MONTHS."""
    return (not isinstance(months, bool) and isinstance(months, int)
            and 0 <= months <= MAX_TENURE_MONTHS)
