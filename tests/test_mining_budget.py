"""Bounded mining: the memory budget and itemset cap stop the miner, or raise the support."""

from __future__ import annotations

import json
import logging
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from plugins.association import AssociationStrategy
from recommender import Catalog, TrainingData
from recommender.errors import RecommenderError
from recommender.mining import (
    BasketMatrix,
    MiningLimitError,
    default_memory_budget,
    frequent_itemsets,
    mine_rules,
    mine_rules_bounded,
)

MiB = 1 << 20


def dense_baskets(n_baskets: int = 400, n_items: int = 60, fill: float = 0.7,
                  seed: int = 1) -> BasketMatrix:
    """Each item in each basket with probability ``fill``: billions of itemsets at low support."""
    rng = np.random.default_rng(seed)
    matrix = sparse.csr_matrix(rng.random((n_baskets, n_items)) < fill)
    return BasketMatrix(matrix, [f"i{j:02d}" for j in range(n_items)])


@pytest.fixture(scope="module")
def groceries_like() -> BasketMatrix:
    """A sparse input whose itemsets at 2% support are few and quick to count."""
    rng = np.random.default_rng(5)
    matrix = sparse.csr_matrix(rng.random((2000, 40)) < rng.random(40) * 0.3)
    return BasketMatrix(matrix, [f"p{j:02d}" for j in range(40)])


def test_dense_input_stops_within_its_budget_with_the_documented_message() -> None:
    baskets = dense_baskets()
    budget = 48 * MiB
    tracemalloc.start()
    try:
        with pytest.raises(MiningLimitError) as caught:
            mine_rules(baskets, min_support=0.05, min_confidence=0.5, memory_budget=budget)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    error = caught.value
    assert peak < budget, f"peak {peak / MiB:.1f} MiB over a {budget / MiB:.0f} MiB budget"
    assert error.limit == "memory_budget" and error.value == budget
    assert isinstance(error, RecommenderError)  # the CLI shows it as a one-line error
    message = str(error)
    assert message.startswith("mining stopped before exhausting memory: at min_support 0.05 ")
    assert "exceed the memory budget of 48 MiB" in message
    assert "raise min_support or lower max_len, or raise memory_budget" in message


def test_the_itemset_cap_is_exact(groceries_like: BasketMatrix) -> None:
    found = frequent_itemsets(groceries_like, 0.02)
    assert len(found) > 50
    assert frequent_itemsets(groceries_like, 0.02, max_itemsets=len(found)) == found
    with pytest.raises(MiningLimitError, match="the cap of") as caught:
        frequent_itemsets(groceries_like, 0.02, max_itemsets=len(found) - 1)
    assert caught.value.limit == "max_itemsets"
    assert caught.value.itemsets == len(found)  # stopped at the first itemset over the cap


def test_limits_not_reached_change_nothing(groceries_like: BasketMatrix) -> None:
    plain = mine_rules(groceries_like, min_support=0.02, min_confidence=0.2)
    assert plain
    bounded = mine_rules(groceries_like, min_support=0.02, min_confidence=0.2,
                         memory_budget=64 * MiB, max_itemsets=10**6)
    assert bounded == plain
    result = mine_rules_bounded(groceries_like, min_support=0.02, min_confidence=0.2)
    assert result.rules == plain and not result.raised and result.notice() is None
    assert result.min_support == result.requested_support == 0.02


@pytest.mark.parametrize("cap", [300, 2000])
def test_support_is_raised_to_fit_the_cap_and_said(cap: int) -> None:
    baskets = dense_baskets(n_baskets=200, n_items=30, fill=0.5)
    result = mine_rules_bounded(baskets, min_support=0.01, min_confidence=0.3, max_len=3,
                                max_itemsets=cap)
    assert result.raised and result.limit == "max_itemsets"
    assert result.min_support > 0.01 and result.min_count == round(result.min_support * 200)
    # What was served is exactly what mining at the raised support gives, and it fits.
    assert result.rules == mine_rules(baskets, min_support=result.min_support,
                                      min_confidence=0.3, max_len=3)
    assert len(frequent_itemsets(baskets, result.min_support, 3)) <= cap
    # Within 5% of the lowest support that fits: a count 5% lower does not.
    lower = int(result.min_count * 0.95) - 1
    assert len(frequent_itemsets(baskets, lower / 200, 3)) > cap
    assert result.notice() == (
        f"min_support raised from 0.01 to {result.min_support:.6g} (itemsets in at least "
        f"{result.min_count} of 200 baskets) to stay within the itemset cap")


def test_a_limit_that_nothing_fits_is_an_error() -> None:
    baskets = dense_baskets(n_baskets=50, n_items=20, fill=1.0)  # every item in every basket
    with pytest.raises(MiningLimitError, match="max_itemsets"):
        mine_rules_bounded(baskets, min_support=0.1, min_confidence=0.1, max_itemsets=5)


@pytest.mark.parametrize("name", ["memory_budget", "max_itemsets"])
@pytest.mark.parametrize("value", [0, -1, 1.5, True, "1000"])
def test_bad_limits_are_refused(groceries_like: BasketMatrix, name: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"{name} must be None or a positive integer"):
        mine_rules(groceries_like, min_support=0.1, min_confidence=0.5, **{name: value})
    with pytest.raises(ValueError, match=name):
        frequent_itemsets(groceries_like, 0.1, **{name: value})
    with pytest.raises(ValueError, match=name):
        mine_rules_bounded(groceries_like, min_support=0.1, min_confidence=0.5, **{name: value})


def test_the_default_budget_follows_available_memory() -> None:
    budget = default_memory_budget()
    meminfo = Path("/proc/meminfo").read_text()
    available = int(next(line for line in meminfo.splitlines()
                          if line.startswith("MemAvailable:")).split()[1]) * 1024
    assert 16 * MiB <= budget <= 2048 * MiB
    assert budget <= max(16 * MiB, available // 4 + 64 * MiB)  # memory moves a little


def test_error_names_the_callers_settings() -> None:
    error = MiningLimitError("memory_budget", 8 * MiB, 0.01, 123).named(
        memory_budget="--memory-budget-mb", min_support="--min-support")
    assert "raise --min-support or lower max_len, or raise --memory-budget-mb" in str(error)


# -- the association strategy -----------------------------------------------------------------

def test_strategy_raises_support_and_says_so_in_log_and_manifest(
        catalog: Catalog, sample_data: TrainingData, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    free = AssociationStrategy(catalog, min_support=0.002, max_itemsets=None).fit(sample_data)
    capped = AssociationStrategy(catalog, min_support=0.002, max_itemsets=60)
    with caplog.at_level(logging.WARNING, logger="plugins.association"):
        capped.fit(sample_data)
    described = capped.describe()
    assert described["mined_min_support"] > 0.002 == described["min_support"]
    assert described["notice"].startswith("min_support raised from 0.002 to ")
    assert described["notice"] in caplog.text
    assert 0 < capped.n_rules < free.n_rules
    assert free.describe()["mined_min_support"] == 0.002 and "notice" not in free.describe()
    capped.save(tmp_path)
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert settings["notice"] == described["notice"]
    loaded = AssociationStrategy(catalog, min_support=0.002, max_itemsets=60).load(tmp_path)
    assert loaded.describe() == described


def test_strategy_on_limit_error_names_the_setting(catalog: Catalog,
                                                   sample_data: TrainingData) -> None:
    strategy = AssociationStrategy(catalog, min_support=0.002, max_itemsets=60,
                                   on_limit="error")
    with pytest.raises(MiningLimitError) as caught:
        strategy.fit(sample_data)
    message = str(caught.value)
    assert ("raise strategies.association.min_support or lower strategies.association.max_len, "
            "or raise strategies.association.max_itemsets") in message
    assert not strategy.is_fitted  # nothing half-built


def test_strategy_memory_budget_in_mib(catalog: Catalog, sample_data: TrainingData) -> None:
    strategy = AssociationStrategy(catalog, min_support=0.002, memory_budget_mb=0.05,
                                   max_itemsets=None, on_limit="error")
    with pytest.raises(MiningLimitError, match="strategies.association.memory_budget_mb"):
        strategy.fit(sample_data)


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("on_limit", "ignore", "on_limit must be one of raise_support, error"),
    ("max_itemsets", 0, "max_itemsets must be a positive integer or unset"),
    ("max_itemsets", 2.5, "max_itemsets must be a positive integer or unset"),
    ("memory_budget_mb", -5, "memory_budget_mb must be a positive number or unset"),
    ("memory_budget_mb", "big", "memory_budget_mb must be a positive number or unset"),
])
def test_strategy_refuses_bad_limit_settings(catalog: Catalog, setting: str, value: object,
                                             message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AssociationStrategy(catalog, **{setting: value})
