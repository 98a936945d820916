"""Association-rule mining checked against published figures, mlxtend and brute force."""

from __future__ import annotations

import csv
import itertools
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import dataset

from recommender import mining
from recommender.mining import BasketMatrix, Rule, frequent_itemsets, mine_rules, read_baskets

RETAIL_N = 88_162


@pytest.fixture(scope="module")
def groceries() -> BasketMatrix:
    return BasketMatrix.from_baskets(read_baskets(dataset("groceries", "groceries.csv")))


@pytest.fixture(scope="module")
def retail() -> BasketMatrix:
    return BasketMatrix.from_baskets(
        read_baskets(dataset("fimi_retail", "retail.dat"), delimiter=" ")
    )


def generated(seed: int, n: int, n_items: int, empty: int = 0) -> list[list[str]]:
    """Random baskets with skewed item popularity and two planted co-purchase patterns."""
    rng = np.random.default_rng(seed)
    popularity = np.geomspace(0.45, 0.01, n_items)
    dense = rng.random((n, n_items)) < popularity
    for pattern, rate in (([1, 4, 7, 9], 0.15), ([2, 3, 11], 0.1)):
        chosen = rng.random(n) < rate
        dense[np.ix_(chosen, [i % n_items for i in pattern])] = True
    baskets = [[f"i{j:02d}" for j in np.flatnonzero(row)] for row in dense]
    return baskets + [[] for _ in range(empty)]


def brute_force_rules(
    baskets: list[list[str]], min_support: float, min_confidence: float, max_len: int | None
) -> dict[tuple[tuple[str, ...], str], tuple[int, float, float]]:
    """Every rule by exhaustive enumeration of each basket's subsets."""
    n = len(baskets)
    counts: Counter[frozenset[str]] = Counter()
    for basket in baskets:
        items = sorted(set(basket))
        for k in range(1, min(len(items), max_len or len(items)) + 1):
            counts.update(frozenset(c) for c in itertools.combinations(items, k))
    threshold = min_support * n - 1e-9
    rules = {}
    for itemset, count in counts.items():
        if len(itemset) < 2 or count < threshold:
            continue
        for consequent in itemset:
            antecedent = itemset - {consequent}
            confidence = count / counts[antecedent]
            if confidence >= min_confidence:
                lift = confidence / (counts[frozenset([consequent])] / n)
                rules[tuple(sorted(antecedent)), consequent] = (count, confidence, lift)
    return rules


def as_table(rules: list[Rule]) -> dict[tuple[tuple[str, ...], str], tuple[int, float, float]]:
    table = {(r.antecedents, r.consequent): (r.count, r.confidence, r.lift) for r in rules}
    assert len(table) == len(rules)
    return table


def assert_same_rules(mine: dict, reference: dict, tol: float = 1e-9) -> None:
    assert mine.keys() == reference.keys()
    for key, (count, confidence, lift) in reference.items():
        assert mine[key][0] == count, key
        assert mine[key][1] == pytest.approx(confidence, abs=tol, rel=0), key
        assert mine[key][2] == pytest.approx(lift, abs=tol, rel=0), key


# --------------------------------------------------------------------------- Groceries


def read_reference(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["lhs", "rhs", "support", "confidence", "lift", "count"]
        return [
            {
                "antecedents": tuple(sorted(row["lhs"].strip("{}").split(","))),
                "consequent": row["rhs"].strip("{}"),
                "support": float(row["support"]),
                "confidence": float(row["confidence"]),
                "lift": float(row["lift"]),
                "count": int(row["count"]),
            }
            for row in reader
        ]


def test_groceries_matches_reference_rules(groceries: BasketMatrix) -> None:
    reference = read_reference(dataset("groceries", "reference_rules_supp0.001_conf0.5.csv"))
    rules = mine_rules(groceries, min_support=0.001, min_confidence=0.5)
    assert len(rules) == len(reference) == 5668
    mine = {(r.antecedents, r.consequent): r for r in rules}
    for ref in reference:
        rule = mine[ref["antecedents"], ref["consequent"]]
        assert rule.count == ref["count"]
        assert rule.support == pytest.approx(ref["count"] / groceries.n_baskets, abs=1e-15)
        assert rule.support == pytest.approx(ref["support"], abs=1e-9, rel=0)
        assert rule.confidence == pytest.approx(ref["confidence"], abs=1e-9, rel=0)
        # The reference file prints 9 significant digits, so lifts near 19 carry ~5e-8 rounding.
        assert rule.lift == pytest.approx(ref["lift"], rel=1e-8, abs=1e-9)
    top = rules[0]
    assert (top.antecedents, top.consequent) == (
        ("Instant food products", "soda"),
        "hamburger meat",
    )
    assert top.lift == pytest.approx(18.9957, abs=1e-4)


def test_groceries_rule_lengths(groceries: BasketMatrix) -> None:
    rules = mine_rules(groceries, min_support=0.001, min_confidence=0.5)
    lengths = Counter(len(r.antecedents) + 1 for r in rules)
    assert dict(lengths) == {2: 11, 3: 1461, 4: 3211, 5: 939, 6: 46}
    assert min(r.lift for r in rules) == pytest.approx(1.957, abs=1e-3)


@pytest.mark.parametrize(
    ("min_support", "min_confidence", "expected"), [(0.001, 0.8, 410), (0.005, 0.5, 120)]
)
def test_groceries_published_counts(
    groceries: BasketMatrix, min_support: float, min_confidence: float, expected: int
) -> None:
    rules = mine_rules(groceries, min_support=min_support, min_confidence=min_confidence)
    assert len(rules) == expected


def test_groceries_keeps_trailing_space_label(groceries: BasketMatrix) -> None:
    assert "cream cheese " in groceries.items
    assert "cream cheese" not in groceries.items
    assert groceries.n_baskets == 9835
    assert groceries.matrix.nnz == 43367
    assert len(groceries.items) == 169


def test_rules_sorted_by_lift_then_confidence(groceries: BasketMatrix) -> None:
    rules = mine_rules(groceries, min_support=0.002, min_confidence=0.3)
    keys = [(-r.lift, -r.confidence, r.antecedents, r.consequent) for r in rules]
    assert keys == sorted(keys)
    assert all(list(r.antecedents) == sorted(r.antecedents) for r in rules)


# --------------------------------------------------------------------------- FIMI retail


def test_retail_itemsets_at_1000(retail: BasketMatrix) -> None:
    assert retail.n_baskets == RETAIL_N
    assert len(retail.items) == 16470
    itemsets = frequent_itemsets(retail, 1000 / RETAIL_N)
    assert len(itemsets) == 135
    assert Counter(len(items) for items, _ in itemsets) == {1: 56, 2: 49, 3: 24, 4: 6}
    assert all(count >= 1000 for _, count in itemsets)
    top = max(itemsets, key=lambda pair: pair[1])
    assert ([retail.items[i] for i in top[0]], top[1]) == (["39"], 50675)


def test_retail_itemsets_at_5000_and_half_percent(retail: BasketMatrix) -> None:
    assert len(frequent_itemsets(retail, 5000 / RETAIL_N)) == 15
    by_length = Counter(len(items) for items, _ in frequent_itemsets(retail, 0.005))
    assert by_length == {1: 221, 2: 237, 3: 102, 4: 19, 5: 1}


def test_retail_counts_are_exact(retail: BasketMatrix) -> None:
    dense_columns = {}
    for items, count in frequent_itemsets(retail, 2000 / RETAIL_N):
        for i in items:
            if i not in dense_columns:
                dense_columns[i] = retail.matrix[:, i].toarray().ravel()
        assert np.logical_and.reduce([dense_columns[i] for i in items]).sum() == count


# --------------------------------------------------------------------------- mlxtend


@pytest.mark.parametrize(
    ("seed", "n", "n_items", "min_support", "min_confidence", "max_len"),
    [
        (1, 997, 20, 0.02, 0.3, None),
        (2, 1499, 30, 0.011, 0.6, None),
        (3, 613, 15, 0.05, 0.0, 3),
        (4, 1201, 12, 0.1, 0.45, None),
    ],
)
def test_agrees_with_mlxtend(
    seed: int, n: int, n_items: int, min_support: float, min_confidence: float, max_len: int | None
) -> None:
    pytest.importorskip("mlxtend")
    pd = pytest.importorskip("pandas")
    from mlxtend.frequent_patterns import association_rules, fpgrowth

    baskets = generated(seed, n, n_items, empty=3)
    labels = sorted({item for basket in baskets for item in basket})
    frame = pd.DataFrame(
        [[label in set(basket) for label in labels] for basket in baskets], columns=labels
    )
    itemsets = fpgrowth(frame, min_support=min_support, use_colnames=True, max_len=max_len)
    reference = association_rules(
        itemsets,
        num_itemsets=len(frame),
        metric="confidence",
        min_threshold=max(min_confidence - 1e-9, 0.0),
    )
    reference = reference[reference["consequents"].map(len) == 1]
    expected = {
        (tuple(sorted(row.antecedents)), next(iter(row.consequents))): (
            round(row.support * len(frame)),
            row.confidence,
            row.lift,
        )
        for row in reference.itertuples()
    }
    rules = mine_rules(
        baskets, min_support=min_support, min_confidence=min_confidence, max_len=max_len
    )
    assert len(rules) > 20
    assert_same_rules(as_table(rules), expected)
    mine_supports = {(r.antecedents, r.consequent): r.support for r in rules}
    for row in reference.itertuples():
        key = (tuple(sorted(row.antecedents)), next(iter(row.consequents)))
        assert mine_supports[key] == pytest.approx(row.support, abs=1e-9, rel=0)

    mine_sets = {
        frozenset(labels[i] for i in items): count / len(baskets)
        for items, count in frequent_itemsets(
            BasketMatrix.from_baskets(baskets), min_support, max_len
        )
    }
    ref_sets = dict(zip(itemsets["itemsets"], itemsets["support"], strict=True))
    assert mine_sets.keys() == ref_sets.keys()
    assert all(mine_sets[k] == pytest.approx(v, abs=1e-9, rel=0) for k, v in ref_sets.items())


# --------------------------------------------------------------------------- brute force


@pytest.mark.parametrize(
    ("seed", "min_support", "min_confidence", "max_len"),
    [(5, 0.03, 0.2, None), (6, 0.01, 0.5, 4), (7, 0.08, 0.0, 2)],
)
def test_agrees_with_brute_force(
    seed: int, min_support: float, min_confidence: float, max_len: int | None
) -> None:
    baskets = generated(seed, 401, 14, empty=5)
    rules = mine_rules(
        baskets, min_support=min_support, min_confidence=min_confidence, max_len=max_len
    )
    assert rules
    assert_same_rules(
        as_table(rules), brute_force_rules(baskets, min_support, min_confidence, max_len)
    )


def test_tiny_memory_budgets_give_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    baskets = generated(8, 1500, 25, empty=2)
    expected = mine_rules(baskets, min_support=0.01, min_confidence=0.2)
    for name, value in [
        ("_BLOCK_BYTES", 64),
        ("_FRONTIER_BYTES", 256),
        ("_BATCH_ENTRIES", 50),
        ("_BATCH_KEYS", 30),
    ]:
        monkeypatch.setattr(mining, name, value)
    assert mine_rules(baskets, min_support=0.01, min_confidence=0.2) == expected


def test_many_items_and_long_itemsets() -> None:
    # 40,000 distinct frequent items make a 5-item antecedent too wide for one 64-bit key.
    long = ["x1", "x2", "x3", "x4", "x5", "x6"]
    baskets = [long, long[:5], [f"u{i}" for i in range(3)]] + [[f"s{i}"] for i in range(40_000)]
    rules = mine_rules(baskets, min_support=1e-6, min_confidence=0.0)
    assert_same_rules(as_table(rules), brute_force_rules(baskets, 1e-6, 0.0, None))
    assert max(len(r.antecedents) for r in rules) == 5


def test_itemset_keys_past_2_to_the_53_keep_their_precision() -> None:
    # 12,000 frequent items: a 4-item antecedent's key (ranks in base 12,007) still fits 64 bits
    # but not a float's 53, where neighbouring keys collide and a rule takes another
    # antecedent's count. Seven items with varied overlaps make those counts differ.
    rng = np.random.default_rng(19)
    labels = [f"L{i}" for i in range(7)]
    baskets = [sorted(rng.choice(labels, size=int(rng.integers(4, 8)), replace=False).tolist())
               for _ in range(60)]
    baskets += [[f"s{i}"] for i in range(12_000)]
    rules = mine_rules(baskets, min_support=1e-9, min_confidence=0.0)
    assert max(len(r.antecedents) for r in rules) == 6
    assert_same_rules(as_table(rules), brute_force_rules(baskets, 1e-9, 0.0, None), tol=0)


def test_counts_are_plain_integers() -> None:
    baskets = [["a", "b"], ["a", "b", "c"], ["a"], ["c"]]
    itemsets = frequent_itemsets(BasketMatrix.from_baskets(baskets), 0.25)
    assert itemsets[:3] == [((0,), 3), ((1,), 2), ((2,), 2)]
    assert all(type(count) is int for _, count in itemsets)
    rules = mine_rules(baskets, min_support=0.25, min_confidence=0.0)
    assert rules and all(type(r.count) is int for r in rules)


def test_lift_threshold_and_metrics() -> None:
    baskets = [["a", "b"], ["a", "b"], ["a"], ["c"], ["b", "c"], []]
    rules = mine_rules(baskets, min_support=0.3, min_confidence=0.5)
    assert [r.to_dict() for r in rules] == [
        {
            "antecedents": ["a"],
            "consequent": "b",
            "support": 2 / 6,
            "confidence": 2 / 3,
            "lift": (2 / 3) / (3 / 6),
            "count": 2,
        },
        {
            "antecedents": ["b"],
            "consequent": "a",
            "support": 2 / 6,
            "confidence": 2 / 3,
            "lift": (2 / 3) / (3 / 6),
            "count": 2,
        },
    ]
    assert mine_rules(baskets, min_support=0.3, min_confidence=0.5, min_lift=4 / 3) == rules
    assert mine_rules(baskets, min_support=0.3, min_confidence=0.5, min_lift=1.34) == []


# --------------------------------------------------------------------------- behaviour


def test_duplicates_in_a_basket_count_once() -> None:
    baskets = [["a", "a", "b"], ["a", "b", "b"], ["a"], ["b"]]
    matrix = BasketMatrix.from_baskets(baskets)
    assert matrix.matrix.nnz == 6
    assert dict(frequent_itemsets(matrix, 0.5)) == {(0,): 3, (1,): 3, (0, 1): 2}
    pairs = BasketMatrix.from_pairs(np.array([7, 7, 7, 9, 9]), np.array([3, 3, 4, 4, 4]))
    assert pairs.items == ["3", "4"]
    assert pairs.matrix.toarray().tolist() == [[True, True], [False, True]]


def test_empty_baskets_count_in_denominator() -> None:
    rules = mine_rules([["a", "b"], ["a", "b"], [], []], min_support=0.5, min_confidence=1.0)
    assert [(r.antecedents, r.consequent, r.support, r.lift) for r in rules] == [
        (("a",), "b", 0.5, 2.0),
        (("b",), "a", 0.5, 2.0),
    ]
    assert mine_rules([["a", "b"], ["a", "b"], [], []], min_support=0.51, min_confidence=0) == []


@pytest.mark.parametrize(
    "baskets",
    [[], [[]], [[], []], [["a"]], [["a"], ["b"]]],
    ids=["none", "one-empty", "empties", "one", "disjoint"],
)
def test_no_rules_from_trivial_input(baskets: list[list[str]]) -> None:
    assert mine_rules(baskets, min_support=0.1, min_confidence=0.0) == []
    assert mine_rules(BasketMatrix.from_baskets(baskets), min_support=1.0, min_confidence=0.0) == []


@pytest.mark.parametrize("max_len", [2, 3, 4])
def test_max_len_is_respected(max_len: int) -> None:
    baskets = generated(9, 500, 12)
    rules = mine_rules(baskets, min_support=0.01, min_confidence=0.0, max_len=max_len)
    assert max(len(r.antecedents) for r in rules) == max_len - 1
    unlimited = mine_rules(baskets, min_support=0.01, min_confidence=0.0)
    assert rules == [r for r in unlimited if len(r.antecedents) < max_len]
    itemsets = frequent_itemsets(BasketMatrix.from_baskets(baskets), 0.01, max_len=max_len)
    assert max(len(items) for items, _ in itemsets) == max_len
    assert len(frequent_itemsets(BasketMatrix.from_baskets(baskets), 0.01, max_len=1)) == 12


def test_support_threshold_is_tolerance_safe() -> None:
    # 0.07 * 100 evaluates to 7.000000000000001; an itemset in exactly 7 baskets is frequent.
    baskets = [["a", "b"]] * 7 + [["c"]] * 93
    assert dict(frequent_itemsets(BasketMatrix.from_baskets(baskets), 0.07)) == {
        (0,): 7,
        (1,): 7,
        (2,): 93,
        (0, 1): 7,
    }
    assert len(mine_rules(baskets, min_support=0.07, min_confidence=1.0)) == 2
    assert len(mine_rules(baskets, min_support=0.0701, min_confidence=1.0)) == 0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"min_support": 0}, "min_support"),
        ({"min_support": -0.1}, "min_support"),
        ({"min_support": 1.5}, "min_support"),
        ({"min_support": float("nan")}, "min_support"),
        ({"min_support": "0.1"}, "min_support"),
        ({"min_support": True}, "min_support"),
        ({"min_confidence": -0.01}, "min_confidence"),
        ({"min_confidence": 1.01}, "min_confidence"),
        ({"min_confidence": None}, "min_confidence"),
        ({"max_len": 1}, "max_len"),
        ({"max_len": 0}, "max_len"),
        ({"max_len": 2.5}, "max_len"),
        ({"min_lift": -1.0}, "min_lift"),
        ({"min_lift": float("nan")}, "min_lift"),
        ({"min_lift": "1.0"}, "min_lift"),
        ({"min_lift": True}, "min_lift"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict, name: str) -> None:
    arguments = {"min_support": 0.1, "min_confidence": 0.5, **kwargs}
    with pytest.raises(ValueError, match=rf"^{name} must be ") as error:
        mine_rules([["a", "b"]], **arguments)
    assert repr(kwargs[name]) in str(error.value)
    interval = {"min_support": "in (0, 1]", "min_confidence": "in [0, 1]"}.get(name, "")
    assert interval in str(error.value)


@pytest.mark.parametrize(("min_support", "max_len"), [(0.0, None), (2.0, None), (0.5, 0)])
def test_frequent_itemsets_bad_arguments(min_support: float, max_len: int | None) -> None:
    with pytest.raises(ValueError, match="min_support" if max_len is None else "max_len"):
        frequent_itemsets(BasketMatrix.from_baskets([["a"]]), min_support, max_len)


def test_bad_baskets() -> None:
    for not_baskets in ("ab", b"ab", 7, None):
        with pytest.raises(ValueError, match="^baskets must be a BasketMatrix or an iterable"):
            mine_rules(not_baskets, min_support=0.5, min_confidence=0.5)
    with pytest.raises(ValueError, match="baskets"):
        BasketMatrix.from_baskets(["ab", "cd"])
    with pytest.raises(ValueError, match="baskets must be a BasketMatrix, got list"):
        frequent_itemsets([["a"]], 0.5)
    with pytest.raises(ValueError, match="basket_ids, items"):
        BasketMatrix.from_pairs(np.array([1, 2]), np.array(["a"]))
    with pytest.raises(ValueError, match="basket_ids, items"):
        BasketMatrix.from_pairs(np.array([[1], [2]]), np.array(["a", "b"]))
    with pytest.raises(ValueError, match="^items: 2 labels for a matrix with 3 columns$"):
        BasketMatrix(np.ones((2, 3)), ["a", "b"])
    with pytest.raises(ValueError, match="^items: labels must be unique$"):
        BasketMatrix(np.ones((2, 2)), ["a", "a"])


def test_basket_matrices_are_boolean_whatever_they_are_built_from() -> None:
    counts = BasketMatrix(np.array([[2, 0, 1], [0, 3, 0]]), ["a", "b", "c"])
    assert counts.matrix.dtype == bool and counts.matrix.nnz == 3
    # Baskets may be any iterables (sets, generators) and items any values, kept as text.
    lazy = BasketMatrix.from_baskets([iter(["a", 10]), {"b"}, (x for x in [9, "a"])])
    assert lazy.items == ["10", "9", "a", "b"]  # sorted as text
    assert lazy.matrix.toarray().tolist() == [
        [True, False, True, False], [False, False, False, True], [False, True, True, False]]


def test_read_baskets_keeps_spaces_and_strips_only_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "baskets.csv"
    path.write_bytes(b"cream cheese ,whole milk\r\n\n soda,a b\r\nx,\n")
    assert read_baskets(path) == [["cream cheese ", "whole milk"], [], [" soda", "a b"], ["x"]]
    spaced = tmp_path / "retail.dat"
    spaced.write_text("1 2 3 \n4 \n")
    assert read_baskets(spaced, delimiter=" ") == [["1", "2", "3"], ["4"]]
    with pytest.raises(ValueError, match="^delimiter must be a non-empty string, got ''"):
        read_baskets(spaced, delimiter="")


def test_read_baskets_keeps_the_last_item_whole(tmp_path: Path) -> None:
    path = tmp_path / "baskets.csv"
    path.write_bytes(b"box,XX\r\nmilk X\nXX\n\rX\n")
    assert read_baskets(path) == [["box", "XX"], ["milk X"], ["XX"], [], ["X"]]


def test_basket_files_are_utf8_whatever_the_locale(tmp_path: Path) -> None:
    """A basket file is read as UTF-8 even where the locale's encoding is ASCII."""
    path = tmp_path / "baskets.csv"
    path.write_bytes("国际漫游,流量日包\ncafé\n".encode())
    assert read_baskets(path) == [["国际漫游", "流量日包"], ["café"]]  # here, and in ASCII:
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0",
           "PYTHONCOERCECLOCALE": "0", "PYTHONIOENCODING": "utf-8",
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # this process's code
    code = ("import locale, sys; from recommender.mining import read_baskets; "
            "print(locale.getpreferredencoding(False)); print(read_baskets(sys.argv[1]))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], env=env, check=True,
                         capture_output=True, text=True, encoding="utf-8").stdout.splitlines()
    assert out[0].lower().replace("-", "") in {"ascii", "ansi_x3.41968"}, out  # really ASCII
    assert out[1] == str([["国际漫游", "流量日包"], ["café"]])
