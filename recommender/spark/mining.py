"""Association rules on Spark: MLlib FP-Growth's frequent itemsets, the local miner's rules.

FP-Growth counts the frequent itemsets on the cluster; only the itemsets (a few hundred
thousand at most, under the itemset cap) reach the driver, where the rules are built by the
local miner's own code (``recommender.mining``), so supports, confidences, lifts, their
order and every threshold are exactly those of ``recommender rules`` and the association
strategy. Spark's ``minSupport`` is set so that its basket count is the local one
(``ceil(min_support * n)``, with the same tolerance).

Limits: FP-Growth has no maximum length, so itemsets longer than ``max_len`` are counted and
dropped. The itemset cap (``max_itemsets``) is applied to the itemsets of at most ``max_len``
items, as locally, so the support is raised to the same value; the memory budget is charged
for the same itemsets at the same bytes per item, without the local miner's scratch space, so
on dense data where that scratch decides, the local miner may raise the support further.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..context import Moment
from ..mining import (
    _ITEM_BYTES,
    BoundedRules,
    MiningLimitError,
    Rule,
    _budget,
    _Levels,
    _min_count,
    _rule_settings,
    _rules,
    raise_support_until_it_fits,
)
from ..training import MOMENTS
from .tables import InputError, SparkData, TableSource, read_table

HOUR = 3600


@dataclass(frozen=True)
class Baskets:
    """Baskets on the cluster (a DataFrame with one ``items`` array of distinct strings per
    basket, empty baskets included) and how many there are."""

    frame: Any
    n: int


def text_baskets(spark: Any, path: str, delimiter: str = ",") -> Baskets:
    """A basket file as ``recommender.mining.read_baskets`` reads it: one basket per line,
    items kept verbatim (spaces included), empty fields dropped, empty lines empty baskets."""
    from pyspark.sql import functions as F

    lines = spark.read.option("lineSep", "\n").text(path)
    line = F.regexp_replace("value", "\r$", "")
    items = F.array_distinct(F.filter(F.split(line, _regex_literal(delimiter), -1),
                                      lambda item: item != ""))
    frame = lines.select(items.alias("items")).cache()
    return Baskets(frame, frame.count())


def _regex_literal(text: str) -> str:
    """A Java regular expression matching ``text`` literally."""
    return "\\Q" + text.replace("\\E", "\\E\\\\E\\Q") + "\\E"


def list_baskets(spark: Any, baskets: list[list[str]]) -> Baskets:
    """Baskets held on the driver (``Store.holding_baskets``), shipped to the cluster."""
    from pyspark.sql import functions as F

    frame = spark.createDataFrame([(b,) for b in baskets], "items array<string>") \
        .select(F.array_distinct("items").alias("items")).cache()
    return Baskets(frame, len(baskets))


def table_baskets(spark: Any, sources: Mapping[str, TableSource]) -> Baskets:
    """Each customer's holdings as one basket, customers holding nothing included (what
    ``recommender rules --dir`` mines, ``Store.holding_baskets``), straight from the
    ``--input`` tables: every product id held is an item, no catalog needed."""
    from pyspark.sql import functions as F

    if "customers" not in sources or "holdings" not in sources:
        raise InputError("mining the holdings needs the customers and holdings tables")
    customers = read_table(spark, sources["customers"]).select("id").distinct()
    held = read_table(spark, sources["holdings"]).groupBy(F.col("customer_id").alias("id")) \
        .agg(F.collect_set("product_id").alias("items"))
    frame = customers.join(held, "id", "left") \
        .select(F.coalesce("items", F.array().cast("array<string>")).alias("items")).cache()
    return Baskets(frame, frame.count())


def customer_baskets(data: SparkData) -> Baskets:
    """``plugins.association.customer_baskets``: current holdings plus every business ordered
    successfully, one basket per customer with any."""
    from pyspark.sql import functions as F

    success = data.events.where(F.col("kind") == MOMENTS.index(Moment.SUCCESS)) \
        .select("customer", "product")
    pairs = data.holdings.select("customer", "product").unionByName(success)
    return _grouped(data, pairs, "customer")


def session_baskets(data: SparkData, gap_hours: float) -> Baskets:
    """``plugins.association.session_baskets``: a customer's transactions and orders with no
    gap over ``gap_hours`` between consecutive events form one basket."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    kinds = [MOMENTS.index(Moment.TRANSACTION), MOMENTS.index(Moment.SUCCESS)]
    ev = data.events.where(F.col("kind").isin(kinds)).select("customer", "product", "ts")
    by_customer = Window.partitionBy("customer").orderBy("ts")
    gap = F.col("ts") - F.lag("ts").over(by_customer)
    starts = F.when(gap.isNull() | (gap > gap_hours * HOUR), 1).otherwise(0)
    sessions = ev.withColumn("_new", starts) \
        .withColumn("session", F.sum("_new").over(
            by_customer.rowsBetween(Window.unboundedPreceding, Window.currentRow)))
    return _grouped(data, sessions.select("customer", "session", "product"),
                    "customer", "session")


def _grouped(data: SparkData, pairs: Any, *keys: str) -> Baskets:
    from pyspark.sql import functions as F

    frame = pairs.join(F.broadcast(_product_ids(data)), "product").groupBy(*keys) \
        .agg(F.collect_set("product_id").alias("items")).select("items").cache()
    return Baskets(frame, frame.count())


def _product_ids(data: SparkData) -> Any:
    return data.spark.createDataFrame([(i, p) for i, p in enumerate(data.catalog.ids)],
                                      "product int, product_id string")


def frequent_itemsets(baskets: Baskets, min_count: int, max_len: int | None,
                      max_itemsets: int | None, memory_budget: int
                      ) -> tuple[list[str], _Levels]:
    """The itemsets of at most ``max_len`` items in at least ``min_count`` baskets, counted
    by FP-Growth, as the local miner's levels over the frequent items (sorted labels).

    :raises MiningLimitError: more than ``max_itemsets`` itemsets, or more than the memory
        budget for them, as the local miner charges them.
    """
    from pyspark import StorageLevel
    from pyspark.ml.fpm import FPGrowth
    from pyspark.sql import functions as F

    n = baskets.n
    # Spark keeps itemsets in at least ceil(minSupport * n) baskets: half a basket below
    # min_count makes that min_count exactly.
    support = min(1.0, (min_count - 0.5) / n)
    model = FPGrowth(itemsCol="items", minSupport=support, minConfidence=1.0).fit(baskets.frame)
    found = model.freqItemsets.where(F.col("freq") >= min_count)
    if max_len is not None:
        found = found.where(F.size("items") <= max_len)
    found = found.persist(StorageLevel.MEMORY_AND_DISK)  # counted, then collected: mined once
    try:
        totals = found.agg(F.count(F.lit(1)), F.sum(F.size("items"))).first()
        itemsets, items_total = int(totals[0]), int(totals[1] or 0)
        min_support = min_count / n
        if max_itemsets is not None and itemsets > max_itemsets:
            raise MiningLimitError("max_itemsets", max_itemsets, min_support, itemsets)
        if items_total * _ITEM_BYTES > memory_budget:
            raise MiningLimitError("memory_budget", memory_budget, min_support, itemsets)
        table = found.toArrow()
    finally:
        found.unpersist()
    sets = table.column("items").to_pylist()
    counts = table.column("freq").to_numpy().astype(np.int64)
    labels = sorted({item for itemset in sets for item in itemset})
    rank = {label: i for i, label in enumerate(labels)}
    levels = _Levels(order=np.arange(len(labels)), rows={}, counts={})
    by_length: dict[int, list[int]] = {}
    for i, itemset in enumerate(sets):
        by_length.setdefault(len(itemset), []).append(i)
    for length in sorted(by_length):
        chosen = by_length[length]
        rows = np.sort(np.array([[rank[x] for x in sets[i]] for i in chosen], np.int32),
                       axis=1)
        if length == 1:  # level 1 in rank order: the rules read single counts by rank
            order = np.argsort(rows[:, 0])
            rows, chosen = rows[order], [chosen[i] for i in order]
        levels.add(rows, counts[chosen])
    return labels, levels


@dataclass(frozen=True)
class _Labels:
    """What the local rule builder reads of a basket matrix: the items and the basket count."""

    items: list[str]
    n_baskets: int


def mine_rules_spark(baskets: Baskets, *, min_support: float, min_confidence: float,
                     max_len: int | None = None, min_lift: float = 0.0,
                     memory_budget: int | None = None,
                     max_itemsets: int | None = None) -> list[Rule]:
    """``recommender.mining.mine_rules`` with the itemsets counted by FP-Growth on Spark."""
    return mine_rules_bounded_spark(
        baskets, min_support=min_support, min_confidence=min_confidence, max_len=max_len,
        min_lift=min_lift, memory_budget=memory_budget, max_itemsets=max_itemsets,
        raise_support=False).rules


def mine_rules_bounded_spark(baskets: Baskets, *, min_support: float, min_confidence: float,
                             max_len: int | None = None, min_lift: float = 0.0,
                             memory_budget: int | None = None,
                             max_itemsets: int | None = None,
                             raise_support: bool = True) -> BoundedRules:
    """``recommender.mining.mine_rules_bounded`` on Spark: the same search of the support
    (doubling the basket count until the itemsets fit, then bisecting), each attempt one
    FP-Growth run. Without ``raise_support`` a limit reached is the MiningLimitError."""
    min_support, min_confidence, max_len, min_lift = _rule_settings(
        min_support, min_confidence, max_len, min_lift)
    budget = _budget(memory_budget, max_itemsets, min_support).memory_budget
    n = baskets.n
    if n == 0:
        return BoundedRules([], min_support, min_support, 0, 0)
    requested = _min_count(min_support, n)

    def attempt(count: int) -> tuple[list[str], _Levels] | MiningLimitError:
        try:
            return frequent_itemsets(baskets, count, max_len, max_itemsets, budget)
        except MiningLimitError as error:
            return error

    def rules(found: tuple[list[str], _Levels]) -> list[Rule]:
        labels, levels = found
        return _rules(_Labels(labels, n), levels, min_confidence, min_lift)

    return raise_support_until_it_fits(attempt, rules, min_support, requested, n,
                                       raise_support=raise_support)

