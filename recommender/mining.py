"""Exact association-rule mining over baskets: frequent itemsets and single-consequent rules.

Itemsets are counted exactly with a vectorised Eclat. Items are ranked by ascending frequency
and every itemset is grown from its least frequent item: pairs are counted from that item's
baskets, and longer itemsets by intersecting packed ``uint64`` bitsets indexed by those baskets
only (a row-wise AND plus popcount, all extensions of a prefix in one 2D numpy operation).
Deeper prefixes drop the bitset words they never use, and prefixes are processed in pieces of
bounded memory.

Mining is bounded: the itemsets kept (and the rules they will become) are charged against a
memory budget and an optional cap on itemsets, and mining stops with ``MiningLimitError`` as
soon as either would be exceeded. ``mine_rules_bounded`` raises the support instead, until the
result fits, and says by how much.
"""

from __future__ import annotations

import gc
import math
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from numbers import Real
from os import PathLike
from typing import Any

import numpy as np
from scipy import sparse

from .errors import RecommenderError

__all__ = ["BasketMatrix", "BoundedRules", "MiningLimitError", "Rule", "default_memory_budget",
           "frequent_itemsets", "mine_rules", "mine_rules_bounded", "read_baskets"]

_EPS = 1e-9  # slack on min_support * n_baskets: 0.07 * 100 is 7.000000000000001 but means 7
_RATIO_EPS = 1e-12  # slack on confidence and lift, far below the gap between distinct ratios
_BLOCK_BYTES = 32 << 20  # scratch memory for one vectorised intersection step
_FRONTIER_BYTES = 256 << 20  # bitsets kept alive for one batch of prefixes
_BATCH_ENTRIES = 4 << 20  # basket-item pairs gathered when seeding a batch of classes
_BATCH_KEYS = 4 << 20  # dense pair-count table size when seeding a batch of classes
# Projected peak bytes per item of a kept itemset: an itemset of k items becomes up to k rules,
# about 270 bytes each as Python objects, held twice while they are sorted and built.
_ITEM_BYTES = 640
_MAX_DEFAULT_BUDGET = 2 << 30  # the default budget never exceeds this, however large the machine
_MIN_BUDGET = 16 << 20


@dataclass(frozen=True)
class Rule:
    """An association rule ``antecedents => consequent`` with its support, confidence and lift."""

    antecedents: tuple[str, ...]
    consequent: str
    support: float
    confidence: float
    lift: float
    count: int

    def to_dict(self) -> dict:
        return {
            "antecedents": list(self.antecedents),
            "consequent": self.consequent,
            "support": self.support,
            "confidence": self.confidence,
            "lift": self.lift,
            "count": self.count,
        }


class MiningLimitError(RecommenderError):
    """Mining stopped before exceeding its memory budget or itemset cap; names the setting.

    :param limit: ``"memory_budget"`` or ``"max_itemsets"``, the limit that was reached.
    :param names: how the caller spells each setting (``min_support``, ``max_len``,
        ``memory_budget``, ``max_itemsets``), for the message.
    """

    def __init__(self, limit: str, value: int, min_support: float, itemsets: int,
                 names: dict[str, str] | None = None):
        self.limit, self.value = limit, value
        self.min_support, self.itemsets = min_support, itemsets
        self.names = {"min_support": "min_support", "max_len": "max_len",
                      "memory_budget": "memory_budget", "max_itemsets": "max_itemsets",
                      **(names or {})}
        if limit == "memory_budget":
            reached = f"the memory budget of {value / 2**20:.0f} MiB"
        else:
            reached = f"the cap of {value:,} itemsets"
        super().__init__(
            f"mining stopped before exhausting memory: at min_support {min_support:.6g} the "
            f"frequent itemsets ({itemsets:,} found so far) exceed {reached}; raise "
            f"{self.names['min_support']} or lower {self.names['max_len']}, or raise "
            f"{self.names[limit]}")

    def named(self, **names: str) -> MiningLimitError:
        """The same error, naming the settings as the caller spells them."""
        return MiningLimitError(self.limit, self.value, self.min_support, self.itemsets,
                                {**self.names, **names})


def default_memory_budget() -> int:
    """Bytes mining may use by default: a quarter of the memory available now, at most 2 GiB."""
    available = None
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if available is None:
        try:
            available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            available = 4 * _MAX_DEFAULT_BUDGET
    return max(_MIN_BUDGET, min(_MAX_DEFAULT_BUDGET, available // 4))


class _Budget:
    """Itemsets kept so far, charged at their projected bytes, against the two limits."""

    def __init__(self, memory_budget: int, max_itemsets: int | None, min_support: float):
        self.memory_budget, self.max_itemsets = memory_budget, max_itemsets
        self.min_support = min_support
        self.itemsets = 0
        self.nbytes = 0
        self.frontier_bytes = 0  # bitsets waiting on the depth-first stack

    def check(self, itemsets: int = 0, length: int = 0, scratch: int = 0) -> None:
        """Raise if ``itemsets`` more of ``length`` items and ``scratch`` bytes would not fit."""
        total = self.itemsets + itemsets
        if self.max_itemsets is not None and total > self.max_itemsets:
            raise MiningLimitError("max_itemsets", self.max_itemsets, self.min_support, total)
        used = self.nbytes + itemsets * length * _ITEM_BYTES + scratch + self.frontier_bytes
        if used > self.memory_budget:
            raise MiningLimitError("memory_budget", self.memory_budget, self.min_support, total)

    def charge(self, itemsets: int, length: int) -> None:
        self.check(itemsets, length)
        self.itemsets += itemsets
        self.nbytes += itemsets * length * _ITEM_BYTES


class BasketMatrix:
    """Baskets as a CSR boolean matrix, one row per basket and one column per labelled item."""

    def __init__(self, matrix: sparse.spmatrix | sparse.sparray, items: Iterable[str]) -> None:
        items = [str(item) for item in items]
        matrix = sparse.csr_matrix(matrix, dtype=bool)
        if matrix.shape[1] != len(items):
            raise ValueError(
                f"items: {len(items)} labels for a matrix with {matrix.shape[1]} columns"
            )
        if len(set(items)) != len(items):
            raise ValueError("items: labels must be unique")
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        self.matrix: sparse.csr_matrix = matrix
        self.items: list[str] = items

    @property
    def n_baskets(self) -> int:
        return int(self.matrix.shape[0])

    def __len__(self) -> int:
        return self.n_baskets

    def __repr__(self) -> str:
        return (
            f"BasketMatrix({self.n_baskets} baskets, {len(self.items)} items, "
            f"{self.matrix.nnz} entries)"
        )

    @classmethod
    def from_baskets(cls, baskets: Iterable[Iterable[str]]) -> BasketMatrix:
        """One row per basket, in order; a repeated item counts once; empty baskets are kept."""
        rows = []
        for basket in baskets:
            if isinstance(basket, str | bytes):
                raise ValueError(
                    f"baskets: each basket must be an iterable of items, got {basket!r}"
                )
            rows.append(basket if isinstance(basket, list | tuple) else list(basket))
        flat = list(chain.from_iterable(rows))
        labels = sorted(dict.fromkeys(flat), key=str)
        column = {label: i for i, label in enumerate(labels)}
        indices = np.fromiter(map(column.__getitem__, flat), dtype=np.int64, count=len(flat))
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, rows), dtype=np.int64, count=len(rows)), out=indptr[1:])
        matrix = sparse.csr_matrix(
            (np.ones(len(indices), dtype=bool), indices, indptr), shape=(len(rows), len(labels))
        )
        return cls(matrix, labels)

    @classmethod
    def from_pairs(cls, basket_ids: np.ndarray, items: np.ndarray) -> BasketMatrix:
        """Baskets from long-format pairs ``(basket_ids[i], items[i])``, rows in basket-id order."""
        basket_ids = np.asarray(basket_ids)
        items = np.asarray(items)
        if basket_ids.ndim != 1 or items.ndim != 1 or len(basket_ids) != len(items):
            raise ValueError(
                f"basket_ids, items: need two 1-D arrays of equal length, got shapes "
                f"{basket_ids.shape} and {items.shape}"
            )
        baskets, rows = np.unique(basket_ids, return_inverse=True)
        labels, columns = np.unique(items, return_inverse=True)
        matrix = sparse.csr_matrix(
            (np.ones(len(rows), dtype=bool), (rows.ravel(), columns.ravel())),
            shape=(len(baskets), len(labels)),
        )
        return cls(matrix, [str(label) for label in labels.tolist()])


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Suspend the cyclic garbage collector while building many acyclic containers.

    Otherwise each batch of new tuples or lists triggers a collection that rescans them all.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_baskets(path: str | PathLike, delimiter: str = ",") -> list[list[str]]:
    """One basket per line, items split on ``delimiter`` and kept verbatim (spaces included).

    Only line endings are stripped; empty fields (e.g. from a trailing delimiter) are not items,
    and an empty line is an empty basket.
    """
    if not delimiter:
        raise ValueError(f"delimiter must be a non-empty string, got {delimiter!r}")
    with open(path, encoding="utf-8", newline="") as handle, _gc_paused():
        return [[item for item in line.rstrip("\r\n").split(delimiter) if item] for line in handle]


# --------------------------------------------------------------------------- validation


def _check_fraction(name: str, value: object, *, open_low: bool) -> float:
    ok = isinstance(value, Real) and not isinstance(value, bool) and not math.isnan(value)
    if ok:
        ok = (0 < value <= 1) if open_low else (0 <= value <= 1)
    if not ok:
        interval = "(0, 1]" if open_low else "[0, 1]"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)


def _check_max_len(value: object, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"max_len must be None or an integer >= {minimum}, got {value!r}")
    return int(value)


def _as_matrix(baskets: object) -> BasketMatrix:
    if isinstance(baskets, BasketMatrix):
        return baskets
    if isinstance(baskets, str | bytes) or not isinstance(baskets, Iterable):
        raise ValueError(
            f"baskets must be a BasketMatrix or an iterable of baskets, got {baskets!r}"
        )
    return BasketMatrix.from_baskets(baskets)


def _min_count(min_support: float, n_baskets: int) -> int:
    return max(1, math.ceil(min_support * n_baskets - _EPS))


# --------------------------------------------------------------------------- mining


@dataclass
class _Levels:
    """Frequent itemsets by length, as rank-sorted rows of item ranks with their counts."""

    order: np.ndarray  # rank -> column of the basket matrix
    rows: dict[int, list[np.ndarray]]
    counts: dict[int, list[np.ndarray]]
    budget: _Budget | None = None

    def add(self, rows: np.ndarray, counts: np.ndarray) -> None:
        if len(rows):
            if self.budget is not None:
                self.budget.charge(len(rows), rows.shape[1])
            self.rows.setdefault(rows.shape[1], []).append(rows)
            self.counts.setdefault(rows.shape[1], []).append(counts)

    def level(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k not in self.rows:
            return np.empty((0, k), dtype=np.int32), np.empty(0, dtype=np.int64)
        return np.concatenate(self.rows[k]), np.concatenate(self.counts[k])

    def lengths(self) -> list[int]:
        return sorted(self.rows)


def _runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end offsets of the runs of equal consecutive values."""
    cut = np.flatnonzero(values[1:] != values[:-1]) + 1
    return np.r_[0, cut], np.r_[cut, len(values)]


def _expand(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for every (s, n)."""
    total = int(lengths.sum())
    offsets = np.repeat(np.cumsum(lengths) - lengths - starts, lengths)
    return np.arange(total, dtype=np.int64) - offsets


def _keep_branching(
    rows: np.ndarray, counts: np.ndarray, bits: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Restrict a frontier to prefixes with two or more extensions (the only ones that can grow)."""
    if len(groups) < 2:
        return None
    starts, ends = _runs(groups)
    sizes = ends - starts
    if (sizes >= 2).all():
        return rows, counts, bits, groups
    keep = np.repeat(sizes >= 2, sizes)
    if not keep.any():
        return None
    return rows[keep], counts[keep], bits[keep], groups[keep]


def _grow(
    frontier: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    min_count: int,
    max_len: int | None,
    out: _Levels,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Extend every itemset of a frontier by each later sibling; return the next frontiers."""
    rows, _, bits, groups = frontier
    m, width = bits.shape
    _, ends = _runs(groups)
    sizes = np.diff(np.r_[0, ends])
    partners = np.repeat(ends, sizes) - np.arange(m) - 1
    done = np.r_[0, np.cumsum(partners)]
    need_bits = max_len is None or rows.shape[1] + 1 < max_len

    step = max(1, _BLOCK_BYTES // (8 * width))
    kept_left, kept_right, kept_counts, kept_bits = [], [], [], []
    pending, pending_bytes = 0, 0
    first = 0
    while first < m:
        last = max(first + 1, int(np.searchsorted(done, done[first] + step, side="right")) - 1)
        nodes = np.arange(first, last)
        left = np.repeat(nodes, partners[first:last])
        right = left + 1 + _expand(np.zeros(len(nodes), dtype=np.int64), partners[first:last])
        first = last
        for s in range(0, len(left), step):
            lo, ro = left[s : s + step], right[s : s + step]
            both = bits[lo]
            np.bitwise_and(both, bits[ro], out=both)
            counts = np.bitwise_count(both).sum(axis=1, dtype=np.int64)
            hit = counts >= min_count
            if hit.any():
                kept_left.append(lo[hit])
                kept_right.append(ro[hit])
                kept_counts.append(counts[hit])
                if need_bits:
                    kept_bits.append(both[hit])
                if out.budget is not None:
                    pending += len(kept_left[-1])
                    pending_bytes += kept_bits[-1].nbytes if need_bits else 0
                    out.budget.check(pending, rows.shape[1] + 1, pending_bytes)
    if not kept_left:
        return []
    lo, ro = np.concatenate(kept_left), np.concatenate(kept_right)
    child_rows = np.concatenate([rows[lo], rows[ro, -1:]], axis=1)
    child_counts = np.concatenate(kept_counts)
    out.add(child_rows, child_counts)
    if not need_bits:
        return []
    child = _keep_branching(child_rows, child_counts, np.concatenate(kept_bits), lo)
    if child is None:
        return []
    return [piece for part in _compact(child, bits) for piece in _split(part)]


def _compact(
    frontier: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], parent_bits: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Drop the bitset words that are empty in each group's prefix, as no extension can use them.

    Groups needing similar widths go to the same piece, so one dense prefix does not widen all.
    """
    rows, counts, bits, groups = frontier
    starts, ends = _runs(groups)
    sizes = ends - starts
    used_words = parent_bits[groups[starts]] != 0
    used = used_words.sum(axis=1)
    if 2 * int(sizes @ used) > bits.size:
        return [frontier]
    buckets = np.ceil(np.log2(used)).astype(np.int64)
    pieces = []
    for bucket in np.unique(buckets).tolist():
        chosen = np.flatnonzero(buckets == bucket)
        width = int(used[chosen].max())
        group_of_word, word = np.nonzero(used_words[chosen])
        slot = _expand(np.zeros(len(chosen), dtype=np.int64), used[chosen])
        source = np.zeros((len(chosen), width), dtype=np.int64)
        source[group_of_word, slot] = word
        member = _expand(starts[chosen], sizes[chosen])
        group_of_member = np.repeat(np.arange(len(chosen)), sizes[chosen])
        packed = bits[member[:, None], source[group_of_member]]
        packed[np.arange(width) >= used[chosen][group_of_member, None]] = 0
        pieces.append((rows[member], counts[member], packed, groups[member]))
    return pieces


def _split(
    frontier: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Cut a frontier at prefix boundaries into pieces of bounded memory."""
    rows, counts, bits, groups = frontier
    if bits.nbytes <= _FRONTIER_BYTES:
        return [frontier]
    starts, ends = _runs(groups)
    per_row = bits.shape[1] * 8
    pieces, begin, size = [], 0, 0
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        if size and size + (end - start) * per_row > _FRONTIER_BYTES:
            pieces.append(slice(begin, start))
            begin, size = start, 0
        size += (end - start) * per_row
    pieces.append(slice(begin, len(groups)))
    return [(rows[p], counts[p], bits[p], groups[p]) for p in pieces]


def _batches(entries: np.ndarray, n_ranks: int) -> Iterator[tuple[int, int]]:
    """Consecutive rank ranges whose gathered basket entries and pair tables stay bounded."""
    max_classes = max(1, _BATCH_KEYS // max(n_ranks, 1))
    begin, total = 0, 0
    for a in range(n_ranks - 1):
        e = int(entries[a])
        if a > begin and (total + e > _BATCH_ENTRIES or a - begin >= max_classes):
            yield begin, a
            begin, total = a, 0
        total += e
    if begin < n_ranks - 1:
        yield begin, n_ranks - 1


@dataclass
class _Vertical:
    """Frequent-item baskets in both layouts, items renamed to ranks.

    Each basket's ranks are sorted, and ``position`` gives, for each (rank, basket) entry of the
    column layout, its offset in the row layout: the items ranked after it follow it directly.
    """

    indptr: np.ndarray
    indices: np.ndarray
    col_ptr: np.ndarray
    col_rows: np.ndarray
    position: np.ndarray


def _vertical(matrix: sparse.csr_matrix, order: np.ndarray) -> _Vertical:
    ranked = matrix[:, order].tocsr()
    ranked.sort_indices()
    numbered = sparse.csr_matrix(
        (np.arange(ranked.nnz, dtype=np.int64), ranked.indices, ranked.indptr), shape=ranked.shape
    )
    columns = numbered.tocsc()
    return _Vertical(
        indptr=ranked.indptr.astype(np.int64),
        indices=ranked.indices.astype(np.int32),
        col_ptr=columns.indptr.astype(np.int64),
        col_rows=columns.indices.astype(np.int64),
        position=columns.data,
    )


def _seed_frontiers(
    a0: int,
    a1: int,
    vertical: _Vertical,
    n_ranks: int,
    min_count: int,
    with_bits: bool,
    out: _Levels,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Frequent pairs whose first (least frequent) item has rank in [a0, a1), with their bitsets.

    A pair's bitset is indexed by position among the baskets of its first item, so its width is
    that item's count, not the number of baskets.
    """
    col_ptr = vertical.col_ptr
    span = slice(col_ptr[a0], col_ptr[a1])
    baskets = vertical.col_rows[span]
    after = vertical.position[span] + 1
    tail = vertical.indptr[baskets + 1] - after
    class_sizes = np.diff(col_ptr[a0 : a1 + 1])
    second = vertical.indices[_expand(after, tail)]
    first = np.repeat(np.repeat(np.arange(a1 - a0, dtype=np.int32), class_sizes), tail)
    keys = first * np.int32(n_ranks) + second
    pair_counts = np.bincount(keys, minlength=(a1 - a0) * n_ranks)
    pair_keys = np.flatnonzero(pair_counts >= min_count)
    if not len(pair_keys):
        return
    pair_first = pair_keys // n_ranks + a0
    pair_rows = np.stack([pair_first, pair_keys % n_ranks], axis=1).astype(np.int32)
    pair_counts = pair_counts[pair_keys]
    out.add(pair_rows, pair_counts)
    if not with_bits:
        return
    class_starts, class_ends = _runs(pair_first)
    branching = class_ends - class_starts >= 2
    if not branching.any():
        return
    keep = np.repeat(branching, class_ends - class_starts)
    pair_rows, pair_keys = pair_rows[keep], pair_keys[keep]
    pair_counts, pair_first = pair_counts[keep], pair_first[keep]
    node_of_key = np.full((a1 - a0) * n_ranks, -1, dtype=np.int64)
    node_of_key[pair_keys] = np.arange(len(pair_keys))
    node = node_of_key[keys]
    local = np.arange(len(baskets), dtype=np.int64) - np.repeat(
        col_ptr[a0:a1] - col_ptr[a0], class_sizes
    )
    local = np.repeat(local, tail)
    hit = node >= 0
    node, local, first = node[hit], local[hit], first[hit]

    class_starts, class_ends = _runs(pair_first)
    pair_bytes = (col_ptr[pair_first + 1] - col_ptr[pair_first] + 63) // 64 * 8
    begin = 0
    while begin < len(class_starts):
        # Classes ascend in frequency, so a piece's last class sets its bitset width; pieces
        # stop before that width doubles, to bound the padding of their first classes.
        stop = begin + 1
        while (
            stop < len(class_starts)
            and pair_bytes[class_ends[stop] - 1] <= 2 * pair_bytes[class_starts[begin]]
            and (class_ends[stop] - class_starts[begin]) * pair_bytes[class_ends[stop] - 1]
            <= _FRONTIER_BYTES
        ):
            stop += 1
        lo, hi = class_starts[begin], class_ends[stop - 1]
        width = int(pair_bytes[hi - 1] // 8)
        inside = slice(*np.searchsorted(first, [pair_first[lo] - a0, pair_first[hi - 1] - a0 + 1]))
        bits = np.zeros((hi - lo, width), dtype=np.uint64)
        positions = local[inside]
        np.bitwise_or.at(
            bits.reshape(-1),
            (node[inside] - lo) * width + (positions >> 6),
            np.left_shift(np.uint64(1), (positions & 63).astype(np.uint64)),
        )
        yield pair_rows[lo:hi], pair_counts[lo:hi], bits, pair_first[lo:hi]
        begin = stop


def _mine(baskets: BasketMatrix, min_count: int, max_len: int | None,
          budget: _Budget | None = None) -> _Levels:
    matrix = baskets.matrix
    item_counts = np.bincount(matrix.indices, minlength=matrix.shape[1]).astype(np.int64)
    frequent = np.flatnonzero(item_counts >= min_count)
    order = frequent[np.argsort(item_counts[frequent], kind="stable")]
    out = _Levels(order=order, rows={}, counts={}, budget=budget)
    n_ranks = len(order)
    if not n_ranks:
        return out
    out.add(np.arange(n_ranks, dtype=np.int32)[:, None], item_counts[order])
    if n_ranks < 2 or max_len == 1:
        return out

    vertical = _vertical(matrix, order)
    tail = vertical.indptr[vertical.col_rows + 1] - vertical.position - 1
    class_entries = np.add.reduceat(tail, vertical.col_ptr[:-1])
    with_bits = max_len is None or max_len > 2
    for a0, a1 in _batches(class_entries, n_ranks):
        for seed in _seed_frontiers(a0, a1, vertical, n_ranks, min_count, with_bits, out):
            stack = [seed]
            while stack:
                frontier = stack.pop()
                if budget is not None:
                    budget.frontier_bytes = sum(piece[2].nbytes for piece in stack)
                stack.extend(reversed(_grow(frontier, min_count, max_len, out)))
    return out


def _validated_support(min_support: object) -> float:
    return _check_fraction("min_support", min_support, open_low=True)


def _budget(memory_budget: object, max_itemsets: object, min_support: float) -> _Budget:
    if memory_budget is None:
        memory_budget = default_memory_budget()
    for name, value in (("memory_budget", memory_budget), ("max_itemsets", max_itemsets)):
        if value is None and name == "max_itemsets":
            continue
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be None or a positive integer, got {value!r}")
    return _Budget(int(memory_budget), None if max_itemsets is None else int(max_itemsets),
                   min_support)


def frequent_itemsets(
    baskets: BasketMatrix, min_support: float, max_len: int | None = None, *,
    memory_budget: int | None = None, max_itemsets: int | None = None,
) -> list[tuple[tuple[int, ...], int]]:
    """All itemsets in at least ``min_support`` of the baskets, as sorted column-index tuples
    with their basket counts, ordered by length then lexicographically.

    Raises ``MiningLimitError`` rather than exceed ``memory_budget`` bytes (default:
    ``default_memory_budget()``) or ``max_itemsets`` itemsets (default: no cap).
    """
    min_support = _validated_support(min_support)
    max_len = _check_max_len(max_len, 1)
    budget = _budget(memory_budget, max_itemsets, min_support)
    if not isinstance(baskets, BasketMatrix):
        raise ValueError(f"baskets must be a BasketMatrix, got {type(baskets).__name__}")
    if baskets.n_baskets == 0:
        return []
    levels = _mine(baskets, _min_count(min_support, baskets.n_baskets), max_len, budget)
    result: list[tuple[tuple[int, ...], int]] = []
    with _gc_paused():
        for k in levels.lengths():
            rows, counts = levels.level(k)
            columns = np.sort(levels.order[rows], axis=1)
            ordering = np.lexsort(columns.T[::-1])
            result.extend(
                zip(map(tuple, columns[ordering].tolist()), counts[ordering].tolist(), strict=True)
            )
    return result


def _lookup(table: np.ndarray, queries: np.ndarray, n_ranks: int) -> np.ndarray:
    """Row index in ``table`` of each row of ``queries`` (every query row is present)."""
    width = table.shape[1]
    if width * math.log2(max(n_ranks, 2)) < 62:
        radix = np.int64(n_ranks) ** np.arange(width - 1, -1, -1, dtype=np.int64)
        table_keys = table.astype(np.int64) @ radix
        query_keys = queries.astype(np.int64) @ radix
        order = np.argsort(table_keys)
        return order[np.searchsorted(table_keys, query_keys, sorter=order)]
    _, inverse = np.unique(np.concatenate([table, queries]), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    where = np.empty(inverse.max() + 1, dtype=np.int64)
    where[inverse[: len(table)]] = np.arange(len(table))
    return where[inverse[len(table) :]]


def mine_rules(
    baskets: Iterable[Iterable[str]] | BasketMatrix,
    *,
    min_support: float,
    min_confidence: float,
    max_len: int | None = None,
    min_lift: float = 0.0,
    memory_budget: int | None = None,
    max_itemsets: int | None = None,
) -> list[Rule]:
    """All rules ``antecedents => consequent`` (one consequent item) over itemsets of at most
    ``max_len`` items meeting the support, confidence and lift thresholds.

    Sorted by lift, then confidence (both descending), then antecedents and consequent.
    Raises ``MiningLimitError`` rather than exceed ``memory_budget`` bytes (default:
    ``default_memory_budget()``) or ``max_itemsets`` itemsets (default: no cap).
    """
    min_support, min_confidence, max_len, min_lift = _rule_settings(
        min_support, min_confidence, max_len, min_lift)
    budget = _budget(memory_budget, max_itemsets, min_support)
    baskets = _as_matrix(baskets)
    n = baskets.n_baskets
    if n == 0:
        return []
    levels = _mine(baskets, _min_count(min_support, n), max_len, budget)
    return _rules(baskets, levels, min_confidence, min_lift)


@dataclass(frozen=True)
class BoundedRules:
    """Rules mined within the limits, and the support that made them fit.

    :param min_support: the support used: ``requested_support``, or higher when a limit was
        reached at it (``limit`` then names which: ``memory_budget`` or ``max_itemsets``).
    :param min_count: the basket count that support stands for.
    """

    rules: list[Rule]
    min_support: float
    requested_support: float
    min_count: int
    n_baskets: int
    limit: str | None = None

    @property
    def raised(self) -> bool:
        return self.limit is not None

    def notice(self) -> str | None:
        """One sentence saying the support was raised, and why; None when it was not."""
        if self.limit is None:
            return None
        what = "memory budget" if self.limit == "memory_budget" else "itemset cap"
        return (f"min_support raised from {self.requested_support:.6g} to "
                f"{self.min_support:.6g} (itemsets in at least {self.min_count:,} of "
                f"{self.n_baskets:,} baskets) to stay within the {what}")


def mine_rules_bounded(
    baskets: Iterable[Iterable[str]] | BasketMatrix,
    *,
    min_support: float,
    min_confidence: float,
    max_len: int | None = None,
    min_lift: float = 0.0,
    memory_budget: int | None = None,
    max_itemsets: int | None = None,
) -> BoundedRules:
    """``mine_rules``, raising the support when a limit is reached at ``min_support``.

    The support is doubled until the itemsets fit, then bisected back down (in basket counts)
    to the lowest one found that fits; each attempt that does not fit stops at the limit, so
    the search costs a few bounded runs.
    """
    min_support, min_confidence, max_len, min_lift = _rule_settings(
        min_support, min_confidence, max_len, min_lift)
    memory_budget = _budget(memory_budget, max_itemsets, min_support).memory_budget
    baskets = _as_matrix(baskets)
    n = baskets.n_baskets
    if n == 0:
        return BoundedRules([], min_support, min_support, 0, 0)
    requested = _min_count(min_support, n)

    def attempt(count: int) -> _Levels | MiningLimitError:
        try:  # every attempt against the same budget, taken once
            return _mine(baskets, count, max_len,
                         _budget(memory_budget, max_itemsets, count / n))
        except MiningLimitError as error:
            return error

    return raise_support_until_it_fits(
        attempt, lambda found: _rules(baskets, found, min_confidence, min_lift),
        min_support, requested, n)


def raise_support_until_it_fits(attempt: Callable[[int], Any],
                                rules: Callable[[Any], list[Rule]], min_support: float,
                                requested: int, n: int, *, raise_support: bool = True
                                ) -> BoundedRules:
    """The search of :func:`mine_rules_bounded`, for any miner: ``attempt(count)`` mines at a
    basket count and returns what ``rules`` turns into rules, or the MiningLimitError it
    reached. The count is doubled until the itemsets fit, then bisected back down to the
    lowest one found that fits. Without ``raise_support`` a limit reached is raised."""
    found = attempt(requested)
    if not isinstance(found, MiningLimitError):
        return BoundedRules(rules(found), min_support, min_support, requested, n)
    if not raise_support:
        raise found
    limit = found.limit
    low = high = requested  # low: the highest count known not to fit
    while isinstance(found, MiningLimitError):
        if high >= n:
            raise found  # not even the itemsets of every basket fit: the limit is too small
        low, high = high, min(2 * high, n)
        found = attempt(high)
    best = found
    for _ in range(8):
        if high - low <= max(1, low // 20):
            break
        middle = (low + high) // 2
        found = attempt(middle)
        if isinstance(found, MiningLimitError):
            low = middle
        else:
            high, best = middle, found
    return BoundedRules(rules(best), high / n, min_support, high, n, limit)


def _rule_settings(min_support: object, min_confidence: object, max_len: object,
                   min_lift: object) -> tuple[float, float, int | None, float]:
    min_support = _validated_support(min_support)
    min_confidence = _check_fraction("min_confidence", min_confidence, open_low=False)
    max_len = _check_max_len(max_len, 2)
    if (
        not isinstance(min_lift, Real)
        or isinstance(min_lift, bool)
        or math.isnan(min_lift)
        or min_lift < 0
    ):
        raise ValueError(f"min_lift must be a number >= 0, got {min_lift!r}")
    return min_support, min_confidence, max_len, float(min_lift)


def _rules(baskets: BasketMatrix, levels: _Levels, min_confidence: float,
           min_lift: float) -> list[Rule]:
    """Single-consequent rules over the mined itemsets, sorted as ``mine_rules`` documents."""
    n = baskets.n_baskets
    if not levels.rows:
        return []
    singles = levels.level(1)[1]
    n_ranks = len(singles)
    labels = [baskets.items[c] for c in levels.order.tolist()]
    label_rank = np.empty(n_ranks, dtype=np.int64)
    label_rank[sorted(range(n_ranks), key=labels.__getitem__)] = np.arange(n_ranks)

    parts: list[tuple[np.ndarray, ...]] = []
    previous, previous_counts = levels.level(1)
    for k in levels.lengths()[1:]:
        rows, counts = levels.level(k)
        for j in range(k):
            antecedents = np.delete(rows, j, axis=1)
            consequent = rows[:, j]
            if k == 2:
                antecedent_counts = singles[antecedents[:, 0]]
            else:
                antecedent_counts = previous_counts[_lookup(previous, antecedents, n_ranks)]
            confidence = counts / antecedent_counts
            lift = confidence / (singles[consequent] / n)
            keep = (confidence >= min_confidence - _RATIO_EPS) & (
                lift >= min_lift * (1 - _RATIO_EPS)
            )
            if keep.any():
                parts.append(
                    (
                        np.sort(label_rank[antecedents[keep]], axis=1),
                        label_rank[consequent[keep]],
                        counts[keep],
                        confidence[keep],
                        lift[keep],
                    )
                )
        previous, previous_counts = rows, counts
    if not parts:
        return []

    # Pad antecedents with -1 so that, as in tuple comparison, a prefix sorts first.
    width = max(part[0].shape[1] for part in parts)
    antecedents = np.full((sum(len(part[1]) for part in parts), width), -1, dtype=np.int64)
    sizes = np.empty(len(antecedents), dtype=np.int64)
    offset = 0
    for part in parts:
        antecedents[offset : offset + len(part[1]), : part[0].shape[1]] = part[0]
        sizes[offset : offset + len(part[1])] = part[0].shape[1]
        offset += len(part[1])
    consequent, counts, confidence, lift = (
        np.concatenate([p[i] for p in parts]) for i in range(1, 5)
    )
    ordering = np.lexsort(
        [consequent, *(antecedents[:, c] for c in reversed(range(width))), -confidence, -lift]
    )
    by_label = sorted(labels)
    name = by_label.__getitem__
    with _gc_paused():
        return [
            Rule(tuple(map(name, ant[:size])), by_label[cons], count / n, conf, lif, count)
            for ant, size, cons, count, conf, lif in zip(
                antecedents[ordering].tolist(),
                sizes[ordering].tolist(),
                consequent[ordering].tolist(),
                counts[ordering].tolist(),
                confidence[ordering].tolist(),
                lift[ordering].tolist(),
                strict=True,
            )
        ]
