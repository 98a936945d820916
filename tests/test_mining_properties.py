"""The miner as a property: random baskets against brute force, and its memory bounds held.

The reference counts every subset of every basket (exhaustive, obviously right, slow) and
derives the rules from those counts with the thresholds the module documents. Hypothesis draws
basket sets with planted long itemsets, empty baskets, repeated items, odd labels (spaces,
Chinese, integers past 2**64) and thresholds on the exact boundaries (a support of exactly k
baskets, a confidence or lift the data reaches exactly).

The memory bounds are checked where the miner allocates: the batches of classes it seeds
(``_BATCH_ENTRIES`` basket entries, ``_BATCH_KEYS`` pair-table keys), the bitset pieces it
seeds and splits (``_FRONTIER_BYTES``), the compaction of deeper prefixes, and the scratch
block of one intersection step (``_BLOCK_BYTES``, measured with tracemalloc). Each is checked
both on the helper alone, with drawn inputs, and on every call a real mining run makes, by
wrapping the helper and recomputing the bound from the data on the test's side.

Runs are derandomized and bounded (``PROPERTY``), so CI sees the same examples every time.
"""

from __future__ import annotations

import gc
import itertools
import math
import os
import tempfile
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from recommender import mining
from recommender.mining import BasketMatrix, Rule, frequent_itemsets, mine_rules, read_baskets

# Under mutation testing (mutmut sets MUTANT_UNDER_TEST) the tests run once per mutant and only
# "it fails" counts: a third of the examples, and no minutes spent shrinking a failure.
MUTATING = bool(os.environ.get("MUTANT_UNDER_TEST"))
PROPERTY = settings(
    derandomize=True,  # the same examples on every run and machine
    database=None,
    max_examples=100 if MUTATING else 300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    phases=[Phase.explicit, Phase.reuse, Phase.generate] if MUTATING else list(Phase),
)
SUPPORT_SLACK = 1e-9  # documented in mining.py: 0.07 * 100 baskets means 7 baskets
RATIO_SLACK = 1e-12  # documented in mining.py: slack on confidence and lift


# --------------------------------------------------------------------------------------------
# The reference: every subset of every basket
# --------------------------------------------------------------------------------------------


def subset_counts(baskets: list[list[str]], max_len: int | None) -> Counter[frozenset[str]]:
    counts: Counter[frozenset[str]] = Counter()
    for basket in baskets:
        items = sorted(set(basket))
        for k in range(1, min(len(items), max_len or len(items)) + 1):
            counts.update(frozenset(c) for c in itertools.combinations(items, k))
    return counts


def reference_itemsets(
    baskets: list[list[str]], min_support: float, max_len: int | None
) -> dict[frozenset[str], int]:
    threshold = min_support * len(baskets) - SUPPORT_SLACK
    return {s: c for s, c in subset_counts(baskets, max_len).items() if c >= threshold}


def reference_rules(
    itemsets: dict[frozenset[str], int], n: int, min_confidence: float, min_lift: float
) -> dict[tuple[tuple[str, ...], str], tuple[int, float, float]]:
    """(antecedents, consequent) -> (count, confidence, lift), one consequent per rule."""
    rules = {}
    for itemset, count in itemsets.items():
        if len(itemset) < 2:
            continue
        for consequent in itemset:
            antecedents = itemset - {consequent}
            confidence = count / itemsets[antecedents]
            lift = confidence / (itemsets[frozenset([consequent])] / n)
            if confidence >= min_confidence - RATIO_SLACK and lift >= min_lift * (1 - RATIO_SLACK):
                rules[tuple(sorted(antecedents)), consequent] = (count, confidence, lift)
    return rules


def all_rule_ratios(itemsets: dict[frozenset[str], int], n: int) -> tuple[list, list]:
    """Every confidence and lift the data reaches, to draw thresholds right on them."""
    everything = reference_rules(itemsets, n, 0.0, 0.0).values()
    return sorted({c for _, c, _ in everything}), sorted({lift for _, _, lift in everything})


def assert_rules_equal(rules: list[Rule], expected: dict, n: int) -> None:
    got = {(r.antecedents, r.consequent): r for r in rules}
    assert len(got) == len(rules), "a rule is listed twice"
    assert got.keys() == expected.keys()
    for key, (count, confidence, lift) in expected.items():
        rule = got[key]
        assert type(rule.count) is int and rule.count == count, key
        assert rule.support == count / n, key
        assert math.isclose(rule.confidence, confidence, rel_tol=1e-12, abs_tol=0), key
        assert math.isclose(rule.lift, lift, rel_tol=1e-12, abs_tol=0), key
    # Sorted by lift, then confidence (both descending), then antecedents and consequent.
    order = [(-r.lift, -r.confidence, r.antecedents, r.consequent) for r in rules]
    assert order == sorted(order)


# --------------------------------------------------------------------------------------------
# Random basket sets
# --------------------------------------------------------------------------------------------

LABELS = st.one_of(
    st.sampled_from(["a", "b", "milk", "cream cheese ", " soda", "国际漫游", "5G升级包", "XX"]),
    st.integers(0, 2**70).map(str),  # large item ids, as text
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=4),
)


@st.composite
def basket_sets(draw) -> list[list[str]]:
    labels = draw(st.lists(LABELS, min_size=1, max_size=9, unique=True))
    item = st.sampled_from(labels)
    baskets = draw(st.lists(st.lists(item, max_size=6), max_size=25))
    # A planted long itemset, repeated with noise, so long rules exist.
    long = (
        draw(st.lists(item, min_size=2, max_size=len(labels), unique=True))
        if len(labels) > 1
        else []
    )
    for _ in range(draw(st.integers(0, 6))):
        baskets.append(long + draw(st.lists(item, max_size=2)))
    return draw(st.permutations(baskets))


def thresholds(n: int) -> st.SearchStrategy[float]:
    """Supports: exactly k of n baskets, tiny (every item frequent) or anything in (0, 1]."""
    exact = st.integers(1, n).map(lambda k: k / n) if n else st.nothing()
    return exact | st.just(1e-9) | st.floats(1e-6, 1.0)


# --------------------------------------------------------------------------------------------
# Itemsets and rules against brute force
# --------------------------------------------------------------------------------------------


@PROPERTY
@given(baskets=basket_sets(), data=st.data())
def test_frequent_itemsets_are_exactly_the_counted_subsets(baskets, data) -> None:
    n = len(baskets)
    min_support = data.draw(thresholds(n), label="min_support")
    max_len = data.draw(st.none() | st.integers(1, 6), label="max_len")
    matrix = BasketMatrix.from_baskets(baskets)
    result = frequent_itemsets(matrix, min_support, max_len)
    expected = reference_itemsets(baskets, min_support, max_len)
    got = {frozenset(matrix.items[i] for i in columns): count for columns, count in result}
    assert len(got) == len(result)
    assert got == expected
    for columns, count in result:  # plain Python ints, sorted column tuples
        assert type(count) is int and all(type(c) is int for c in columns)
        assert list(columns) == sorted(set(columns))
    # Ordered by length, then lexicographically.
    assert [c for c, _ in result] == sorted((c for c, _ in result), key=lambda c: (len(c), c))


@PROPERTY
@given(baskets=basket_sets(), data=st.data())
def test_rules_are_exactly_the_brute_force_rules(baskets, data) -> None:
    n = len(baskets)
    min_support = data.draw(thresholds(n), label="min_support")
    max_len = data.draw(st.none() | st.integers(2, 6), label="max_len")
    itemsets = reference_itemsets(baskets, min_support, max_len)
    confidences, lifts = all_rule_ratios(itemsets, n)
    # Thresholds the data reaches exactly, or reaches within the documented slack.
    confidences += [c + RATIO_SLACK for c in confidences if c + RATIO_SLACK <= 1]
    lifts += [lift / (1 - RATIO_SLACK) for lift in lifts]
    min_confidence = data.draw(
        st.sampled_from([0.0, 1.0, *confidences]) | st.floats(0, 1), label="min_confidence"
    )
    min_lift = data.draw(st.sampled_from([0.0, *lifts]) | st.floats(0, 10), label="min_lift")
    rules = mine_rules(
        baskets,
        min_support=min_support,
        min_confidence=min_confidence,
        max_len=max_len,
        min_lift=min_lift,
    )
    assert_rules_equal(rules, reference_rules(itemsets, n, min_confidence, min_lift), n)
    # The same from a prepared matrix.
    assert (
        mine_rules(
            BasketMatrix.from_baskets(baskets),
            min_support=min_support,
            min_confidence=min_confidence,
            max_len=max_len,
            min_lift=min_lift,
        )
        == rules
    )


@PROPERTY
@given(
    pairs=st.lists(
        st.tuples(st.integers(0, 30), st.integers(2**40, 2**63 - 1) | st.integers(0, 40)),
        max_size=80,
    ),
    min_support=st.floats(0.01, 0.5),
)
def test_long_format_with_large_integer_ids_mines_the_same(pairs, min_support) -> None:
    """Integer item ids up to 2**63 - 1 keep their identity through ``from_pairs``."""
    basket_ids = np.array([b for b, _ in pairs], dtype=np.int64)
    items = np.array([i for _, i in pairs], dtype=np.int64)
    by_basket: dict[int, list[str]] = {}
    for b, i in sorted(pairs):
        by_basket.setdefault(b, []).append(str(i))
    baskets = list(by_basket.values())
    matrix = BasketMatrix.from_pairs(basket_ids, items)
    assert matrix.n_baskets == len(baskets)
    assert sorted(matrix.items) == sorted({str(i) for _, i in pairs})
    rules = mine_rules(matrix, min_support=min_support, min_confidence=0.0)
    assert rules == mine_rules(baskets, min_support=min_support, min_confidence=0.0)
    expected = reference_itemsets(baskets, min_support, None)
    got = {
        frozenset(matrix.items[i] for i in columns): count
        for columns, count in frequent_itemsets(matrix, min_support)
    }
    assert got == expected
    assert_rules_equal(rules, reference_rules(expected, len(baskets), 0.0, 0.0), len(baskets))


@PROPERTY
@given(
    data=st.data(),
    width=st.integers(1, 6),
    n_ranks=st.sampled_from([2, 3, 50, 12_007, 2**20, 2**31 - 1]),
)
def test_itemset_lookup_finds_each_row(data, width, n_ranks) -> None:
    """Rows of a level, in any order, found by content: with one 64-bit key per row where the
    ranks fit (past 2**53 too), by sorting rows where they do not."""
    rank = st.integers(0, n_ranks - 1) | st.integers(max(0, n_ranks - 8), n_ranks - 1)
    table = data.draw(
        st.lists(st.tuples(*[rank] * width), min_size=1, max_size=40, unique=True), label="table"
    )
    picks = data.draw(
        st.lists(st.integers(0, len(table) - 1), min_size=1, max_size=60), label="queries"
    )
    table_array = np.array(table, dtype=np.int32)
    found = mining._lookup(table_array, table_array[picks], n_ranks)
    assert found.tolist() == picks


def test_itemset_lookup_never_wraps_a_key() -> None:
    """65,536 ranks and 5-item rows: a base-2**16 key would need 80 bits, and wrapped at 64 the
    first rank would vanish from it; such rows are found by sorting, not by a key."""
    table = np.array([[first, 1, 2, 3, 4] for first in range(0, 70, 7)], dtype=np.int32)
    picks = [9, 0, 3, 3, 5]
    assert mining._lookup(table, table[picks], 2**16).tolist() == picks


# --------------------------------------------------------------------------------------------
# Basket files
# --------------------------------------------------------------------------------------------


@PROPERTY
@given(
    data=st.data(),
    delimiter=st.sampled_from([",", " ", "\t", ";", "::"]),
    ending=st.sampled_from(["\n", "\r\n"]),
    trailing=st.booleans(),
)
def test_read_baskets_gives_back_every_item_verbatim(data, delimiter, ending, trailing) -> None:
    """Items keep every character (spaces, X, Chinese...); only line endings are removed."""
    alphabet = st.sampled_from([c for c in "aXx 国é\t;:.-" if c not in delimiter]) | st.characters(
        codec="utf-8", exclude_characters="\r\n" + delimiter
    )
    item = st.text(alphabet, min_size=1, max_size=6) | st.sampled_from(
        [s for s in ["X", "boX", "a X ", "国X", "XX"] if delimiter not in s]
    )
    baskets = data.draw(st.lists(st.lists(item, max_size=4), max_size=6), label="baskets")
    lines = [delimiter.join(b) + (delimiter if trailing and b else "") for b in baskets]
    content = "".join(line + ending for line in lines)
    if baskets and baskets[-1] and data.draw(st.booleans(), label="no final newline"):
        content = content[: -len(ending)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "baskets.txt"
        path.write_bytes(content.encode("utf-8"))
        assert read_baskets(path, delimiter=delimiter) == baskets
        assert read_baskets(str(path), delimiter=delimiter) == baskets


# --------------------------------------------------------------------------------------------
# Memory bounds: the helpers alone, with drawn inputs
# --------------------------------------------------------------------------------------------


def check_batches(
    batches: list[tuple[int, int]],
    entries: np.ndarray,
    n_ranks: int,
    max_entries: int,
    max_keys: int,
) -> None:
    """Consecutive rank ranges covering every class that has a later item; each gathers at most
    ``max_entries`` basket entries and a pair table of at most ``max_keys`` keys, unless it is
    one class alone; and each is as long as the bounds allow (no needless extra batch)."""
    assert [b for b, _ in batches] == [0] + [e for _, e in batches[:-1]]
    assert batches[-1][1] == n_ranks - 1
    for i, (begin, end) in enumerate(batches):
        assert end > begin
        gathered, keys = int(entries[begin:end].sum()), (end - begin) * n_ranks
        assert end - begin == 1 or (gathered <= max_entries and keys <= max_keys), (
            begin,
            end,
            gathered,
            keys,
        )
        if i + 1 < len(batches):
            more, more_keys = int(entries[begin : end + 1].sum()), (end + 1 - begin) * n_ranks
            assert more > max_entries or more_keys > max_keys, ("could have grown", begin, end)


@PROPERTY
@given(
    entries=st.lists(st.integers(0, 60), min_size=2, max_size=40),
    keys_per_rank=st.floats(0.0, 6.0),
    data=st.data(),
)
def test_batches_hold_their_bounds(entries, keys_per_rank, data) -> None:
    n_ranks = len(entries)
    # Budgets anywhere, or exactly what a run of classes gathers (the boundary).
    sums = sorted({sum(entries[i:j]) for i in range(n_ranks) for j in range(i + 1, n_ranks)})
    max_entries = data.draw(
        st.integers(1, 200) | st.sampled_from([s for s in sums if s] or [1]), label="max_entries"
    )
    max_keys = int(keys_per_rank * n_ranks)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mining, "_BATCH_ENTRIES", max_entries)
        patch.setattr(mining, "_BATCH_KEYS", max_keys)
        batches = list(mining._batches(np.array(entries, dtype=np.int64), n_ranks))
    check_batches(batches, np.array(entries), n_ranks, max_entries, max_keys)


def runs_of(groups: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of equal values, computed plainly."""
    out, start = [], 0
    for i in range(1, len(groups) + 1):
        if i == len(groups) or groups[i] != groups[start]:
            out.append((start, i))
            start = i
    return out


def check_split(frontier: tuple, pieces: list[tuple], budget: int) -> None:
    """Pieces are the frontier cut between prefixes, each within ``budget`` bytes unless it is
    one prefix alone, each as large as the budget allows."""
    for part in range(4):
        assert np.array_equal(np.concatenate([p[part] for p in pieces]), frontier[part])
    for i, (_, _, bits, groups) in enumerate(pieces):
        assert len(groups)
        prefixes = len(runs_of(groups))
        assert bits.nbytes <= budget or prefixes == 1, (bits.nbytes, budget)
        if i + 1 < len(pieces):
            following = pieces[i + 1]
            assert following[3][0] != groups[-1], "a prefix was cut in two"
            first_run = runs_of(following[3])[0]
            extra = (first_run[1] - first_run[0]) * following[2].shape[1] * 8
            assert bits.nbytes + extra > budget, "a piece could have taken the next prefix"


@st.composite
def frontiers(draw, *, max_groups: int = 10) -> tuple[tuple, np.ndarray]:
    """A frontier of sibling itemsets (groups of >= 2 rows sharing a prefix) and the prefixes'
    bitsets; a child's bitset is its prefix's AND something, so zero where the prefix is."""
    sizes = draw(st.lists(st.integers(2, 5), min_size=1, max_size=max_groups))
    width = draw(st.integers(1, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_parents = len(sizes) + draw(st.integers(0, 3))
    parent_rows = np.sort(rng.choice(n_parents, size=len(sizes), replace=False))
    used = np.zeros((n_parents, width), dtype=bool)
    for p in range(n_parents):
        used[p, draw(st.lists(st.integers(0, width - 1), min_size=1, unique=True))] = True
    parent_bits = np.where(
        used, rng.integers(1, 2**63, size=used.shape, dtype=np.uint64), np.uint64(0)
    ).astype(np.uint64)
    groups = np.repeat(parent_rows, sizes).astype(np.int64)
    m = len(groups)
    bits = rng.integers(0, 2**63, size=(m, width), dtype=np.uint64) & parent_bits[groups]
    rows = np.stack([groups, np.arange(m)], axis=1).astype(np.int32)
    counts = np.bitwise_count(bits).sum(axis=1, dtype=np.int64)
    return (rows, counts, bits, groups), parent_bits


@PROPERTY
@given(case=frontiers(), data=st.data())
def test_split_pieces_hold_the_frontier_budget(case, data) -> None:
    frontier, _ = case
    row_bytes = frontier[2].shape[1] * 8  # budgets anywhere, or a whole number of rows
    budget = data.draw(
        st.integers(8, 600) | st.integers(1, 30).map(lambda r: r * row_bytes), label="budget"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mining, "_FRONTIER_BYTES", budget)
        pieces = mining._split(frontier)
    check_split(frontier, pieces, budget)


def check_compact(frontier: tuple, parent_bits: np.ndarray, pieces: list[tuple]) -> None:
    """Each row keeps exactly its prefix's non-empty words, in order, then zero padding; the
    groups are bucketed by power-of-two width (so one dense prefix does not widen all); and
    the frontier is only repacked when that at least halves it, never growing memory."""
    rows, counts, bits, groups = frontier
    runs = runs_of(groups)
    used = {int(groups[s]): np.flatnonzero(parent_bits[groups[s]]) for s, _ in runs}
    needed = sum((e - s) * len(used[int(groups[s])]) for s, e in runs)
    if len(pieces) == 1 and pieces[0][2] is bits:
        assert 2 * needed > bits.size, "worth compacting, yet left as it was"
        return
    assert 2 * needed <= bits.size, "compacted although it saves less than half"
    assert sum(p[2].size for p in pieces) <= bits.size
    where = {tuple(r): i for i, r in enumerate(rows.tolist())}  # itemsets are unique
    seen = []
    widths = []
    for piece_rows, piece_counts, piece_bits, piece_groups in pieces:
        width = piece_bits.shape[1]
        widths.append(width)
        for k, row in enumerate(piece_rows):
            i = where[tuple(row.tolist())]
            words = used[int(piece_groups[k])]
            assert len(words) <= width < 2 * len(words)
            assert np.array_equal(piece_bits[k, : len(words)], bits[i, words])
            assert not piece_bits[k, len(words) :].any()
            assert piece_counts[k] == counts[i] and piece_groups[k] == groups[i]
            seen.append(i)
    assert sorted(seen) == list(range(len(rows)))
    buckets = [math.ceil(math.log2(w)) for w in widths]
    assert len(set(buckets)) == len(buckets), "two pieces of the same width class"


@PROPERTY
@given(case=frontiers())
def test_compaction_keeps_every_used_word_and_saves_memory(case) -> None:
    frontier, parent_bits = case
    check_compact(frontier, parent_bits, mining._compact(frontier, parent_bits))


def grow_peak(m: int, *, width: int, count: int, block: int, seed: int
              ) -> tuple[int, mining._Levels]:
    """Peak traced allocation of one ``_grow`` step over ``m`` random sibling bitsets of
    ``width`` words, with ``_BLOCK_BYTES = block``. No pair reaches the count, so nothing is
    kept: what is allocated is scratch. Returns the peak and the levels grown into."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2**63, size=(m, width), dtype=np.uint64)
    frontier = (
        np.zeros((m, 2), dtype=np.int32),
        np.full(m, count, dtype=np.int64),
        bits,
        np.zeros(m, dtype=np.int64),
    )
    out = mining._Levels(order=np.arange(m), rows={}, counts={})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mining, "_BLOCK_BYTES", block)
        tracemalloc.start()
        try:
            assert mining._grow(frontier, 10**9, None, out) == []
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return peak, out


def test_one_intersection_step_stays_within_its_scratch_block() -> None:
    """1,200 siblings make 719,400 pairs of 64-byte bitsets: 46 MB in one step. With a 64 KiB
    block the step's peak allocation stays near a few blocks, whatever the number of pairs."""
    m, block = 1200, 64 << 10
    peak, out = grow_peak(m, width=8, count=512, block=block, seed=19)
    # Two blocks (the AND and its operand) plus the pair index arrays, O(m) each.
    assert peak <= 3 * block + 64 * m + (64 << 10), peak
    assert not out.rows


# --------------------------------------------------------------------------------------------
# Memory bounds: every call of a real mining run
# --------------------------------------------------------------------------------------------


def clustered_baskets(seed: int, n: int = 2100) -> tuple[list[list[str]], dict[str, int]]:
    """Baskets where every item has its own count (so the frequency ranks are unambiguous):
    nested "r" items (each one's baskets hold the previous one's), so classes of every bitset
    width have many extensions; and "a" spread over many baskets but taken with the "b" items
    only early on, so the prefixes (a, b) leave most bitset words empty and get compacted."""
    rng = np.random.default_rng(seed)
    member = {"a": np.arange(0, 1600, 2)}
    for k in range(5):
        early = rng.choice(500, size=450 + 7 * k, replace=False)
        member[f"b{k}"] = np.concatenate([early, np.arange(1600, 2000 + 11 * k)])
    nested = rng.permutation(n)
    for j in range(10):
        member[f"r{j}"] = nested[: 40 + 71 * j]
    member["c"] = rng.choice(n, size=640, replace=False)  # exactly ten 64-bit words
    baskets: list[list[str]] = [[] for _ in range(n)]
    for label, where in member.items():
        for row in where.tolist():
            baskets[row].append(label)
    counts = {label: len(where) for label, where in member.items()}
    assert len(set(counts.values())) == len(counts)
    return baskets, counts


class Recorder:
    """Wraps the miner's helpers to keep every call's arguments and results."""

    def __init__(self, patch: pytest.MonkeyPatch):
        self.seeds: list[tuple[int, int, list[tuple]]] = []
        self.splits: list[tuple[tuple, list[tuple]]] = []
        self.compactions: list[tuple[tuple, np.ndarray, list[tuple]]] = []
        seed, split, compact = mining._seed_frontiers, mining._split, mining._compact

        def seed_frontiers(a0, a1, *args) -> Iterator[tuple]:
            pieces: list[tuple] = []
            self.seeds.append((a0, a1, pieces))
            for piece in seed(a0, a1, *args):
                pieces.append(piece)
                yield piece

        def split_(frontier):
            pieces = split(frontier)
            self.splits.append((frontier, pieces))
            return pieces

        def compact_(frontier, parent_bits):
            pieces = compact(frontier, parent_bits)
            self.compactions.append((frontier, parent_bits, pieces))
            return pieces

        patch.setattr(mining, "_seed_frontiers", seed_frontiers)
        patch.setattr(mining, "_split", split_)
        patch.setattr(mining, "_compact", compact_)


BASKETS, ITEM_COUNTS = clustered_baskets(seed=5)


def class_entries(min_support: float) -> tuple[np.ndarray, list[int]]:
    """Per frequent item, by rank (ascending frequency), the basket entries its class gathers
    (items ranked after it, per basket), and the 64-bit words of its pairs' bitsets."""
    min_count = math.ceil(min_support * len(BASKETS) - SUPPORT_SLACK)
    frequent = sorted((c, label) for label, c in ITEM_COUNTS.items() if c >= min_count)
    rank = {label: r for r, (_, label) in enumerate(frequent)}
    entries = np.zeros(len(frequent), dtype=np.int64)
    for basket in BASKETS:
        ranks = sorted(rank[i] for i in basket if i in rank)
        for position, r in enumerate(ranks):
            entries[r] += len(ranks) - position - 1
    return entries, [math.ceil(c / 64) for c, _ in frequent]


@settings(PROPERTY, max_examples=15 if MUTATING else 40)
@given(
    max_entries=st.integers(20, 3000) | st.just(10**6),
    keys_per_rank=st.integers(1, 16),
    frontier_bytes=st.sampled_from([8, 64, 256, 1024, 4096]),
    block_bytes=st.sampled_from([256, 4096]),
    min_support=st.sampled_from([0.02, 0.05]),
)
def test_a_mining_run_holds_every_bound(
    max_entries, keys_per_rank, frontier_bytes, block_bytes, min_support
) -> None:
    entries, words = class_entries(min_support)
    n_ranks = len(entries)
    max_keys = keys_per_rank * n_ranks

    expected = mine_rules(BASKETS, min_support=min_support, min_confidence=0.3, max_len=4)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in [
            ("_BATCH_ENTRIES", max_entries),
            ("_BATCH_KEYS", max_keys),
            ("_FRONTIER_BYTES", frontier_bytes),
            ("_BLOCK_BYTES", block_bytes),
        ]:
            patch.setattr(mining, name, value)
        calls = Recorder(patch)
        rules = mine_rules(BASKETS, min_support=min_support, min_confidence=0.3, max_len=4)
    assert rules == expected

    check_batches([(a0, a1) for a0, a1, _ in calls.seeds], entries, n_ranks, max_entries, max_keys)
    for a0, a1, pieces in calls.seeds:
        for i, (rows, _, bits, groups) in enumerate(pieces):
            runs = runs_of(groups)
            assert np.array_equal(rows[:, 0], groups) and a0 <= groups.min() <= groups.max() < a1
            assert all(e - s >= 2 for s, e in runs), "a prefix with one extension was kept"
            first, last = int(groups[0]), int(groups[-1])
            assert bits.dtype == np.uint64 and bits.shape == (len(rows), words[last])
            assert words[last] <= 2 * words[first], "a piece's width more than doubled"
            assert bits.nbytes <= frontier_bytes or len(runs) == 1
            if i + 1 < len(pieces):
                following = pieces[i + 1][3]
                s, e = runs_of(following)[0]
                nxt = int(following[0])
                assert (
                    words[nxt] > 2 * words[first]
                    or (len(rows) + e - s) * words[nxt] * 8 > frontier_bytes
                ), "needless piece"
    for frontier, pieces in calls.splits:
        assert all(e - s >= 2 for s, e in runs_of(frontier[3]))
        check_split(frontier, pieces, frontier_bytes)
    for frontier, parent_bits, pieces in calls.compactions:
        assert all(e - s >= 2 for s, e in runs_of(frontier[3]))
        check_compact(frontier, parent_bits, pieces)
    # The bounds were exercised, not vacuously true.
    assert calls.seeds and calls.splits and calls.compactions


def test_every_entry_budget_is_held_by_the_batches_of_a_real_run() -> None:
    """Budgets from a few classes' worth to all of them, the key table unbounded: each batch
    gathers at most the budget (unless one class alone exceeds it), and no fewer classes than
    the budget allows."""
    entries, _ = class_entries(0.02)
    matrix = BasketMatrix.from_baskets(BASKETS)
    for max_entries in range(int(entries.max()) // 2, int(entries.sum()) + 50, 211):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(mining, "_BATCH_ENTRIES", max_entries)
            patch.setattr(mining, "_BATCH_KEYS", 10**9)
            calls = Recorder(patch)
            frequent_itemsets(matrix, 0.02, max_len=2)
        batches = [(a0, a1) for a0, a1, _ in calls.seeds]
        check_batches(batches, entries, len(entries), max_entries, 10**9)


def test_a_row_wider_than_the_block_is_intersected_alone() -> None:
    """Bitsets of 64 KiB (an item in half a million baskets) and a 96 KiB block: one pair per
    step, so the scratch is that pair's AND and operand, not a block's worth of rows or two."""
    m, width, block = 40, 8192, 96 << 10
    peak, _ = grow_peak(m, width=width, count=10, block=block, seed=7)
    row = width * 8
    assert peak <= 2 * row + 64 * m + (32 << 10), peak


def test_the_bounds_were_exercised_at_tiny_budgets() -> None:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in [
            ("_BATCH_ENTRIES", 3000),
            ("_BATCH_KEYS", 8 * 16),
            ("_FRONTIER_BYTES", 64),
            ("_BLOCK_BYTES", 8),
        ]:
            patch.setattr(mining, name, value)
        calls = Recorder(patch)
        mine_rules(BASKETS, min_support=0.02, min_confidence=0.3, max_len=4)
    assert len(calls.seeds) > 2
    assert any(len(pieces) > 1 for *_, pieces in calls.seeds)
    assert any(len(pieces) > 1 for _, pieces in calls.splits)
    assert any(pieces[0][2] is not frontier[2] for frontier, _, pieces in calls.compactions)


def test_a_seeded_piece_takes_a_class_that_fits_exactly() -> None:
    """The frontier budget is inclusive: a class whose pairs fill the budget to the byte joins
    the piece; one byte less and it starts the next."""
    min_count = math.ceil(0.02 * len(BASKETS) - SUPPORT_SLACK)
    frequent = sorted((c, label) for label, c in ITEM_COUNTS.items() if c >= min_count)
    labels = [label for _, label in frequent]  # by rank: ascending frequency
    dense = np.array([[label in set(b) for label in labels] for b in BASKETS])
    together = dense.T.astype(np.int64) @ dense.astype(np.int64)
    # Pairs seeded per class (first item = lower rank), for classes with two or more.
    sizes = {r: int((together[r, r + 1 :] >= min_count).sum()) for r in range(len(labels))}
    first, second = [r for r in sorted(sizes) if sizes[r] >= 2][:2]
    words = [math.ceil(c / 64) for c, _ in frequent]
    assert words[second] <= 2 * words[first]
    exact = (sizes[first] + sizes[second]) * words[second] * 8
    for budget, together_expected in [(exact, True), (exact - 1, False)]:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in [
                ("_BATCH_ENTRIES", 10**9),
                ("_BATCH_KEYS", 10**9),
                ("_FRONTIER_BYTES", budget),
            ]:
                patch.setattr(mining, name, value)
            calls = Recorder(patch)
            mine_rules(BASKETS, min_support=0.02, min_confidence=0.3, max_len=3)
        ((_, _, pieces),) = calls.seeds  # one batch
        opening = pieces[0][3]
        assert opening[0] == first
        assert (second in opening) is together_expected, (budget, exact)


# --------------------------------------------------------------------------------------------
# Housekeeping the results depend on
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("enabled", [True, False])
def test_the_garbage_collector_is_left_as_it_was(tmp_path: Path, enabled: bool) -> None:
    path = tmp_path / "baskets.csv"
    path.write_text("a,b\nb,c\n", encoding="utf-8")
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        read_baskets(path)
        frequent_itemsets(BasketMatrix.from_baskets([["a", "b"]]), 0.5)
        mine_rules([["a", "b"], ["a"]], min_support=0.5, min_confidence=0.0)
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()
