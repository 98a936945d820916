"""Spark fits of the built-in strategies, keyed by strategy name, and how each strategy is
trained by ``recommender train --engine spark``.

Each fit computes on the cluster what the strategy's local ``fit`` computes on one machine
and leaves the strategy in the same state, so its own ``save`` writes the same arrays:

- ``popularity``: time-decayed order counts per value tier, channel and business, and holding
  counts per tier, as aggregations; the shrinkage towards the parents is the local one;
- ``item_similarity``: customers per business and per pair of businesses (a self-join of the
  binarised interactions by customer), then the local cosine and top neighbours;
- ``cf``: MLlib ALS with implicit preferences on the same interaction weights (ALS only, not
  BPR); only the item factors are kept, for the request-time fold-in;
- ``association``: MLlib FP-Growth's frequent itemsets at the same thresholds, then the local
  miner's rule filtering (``recommender.spark.mining``): identical rules.

A strategy of another plugin says how it is trained with ``Strategy.spark_training`` and, for
``"spark"``, implements ``Strategy.fit_spark(data: SparkData)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from ..context import CHANNEL_IDS, Moment
from ..strategy import Strategy
from ..training import MOMENTS, TIERS
from .tables import SparkData, _numpy

log = logging.getLogger("plugins.association")
DAY = 86400
SPARK, NO_DATA, LOCAL = "spark", "no_data", "local"
#: MLlib ALS's regParam for a strategy's ``regularization``: MLlib multiplies it by the
#: interactions of each customer and business (ALS-WR), so the same number regularises far
#: more; this factor keeps the served quality at the local fit's (tests/test_spark_parity.py).
SPARK_REGULARIZATION = 0.1
#: Built-in strategies that learn nothing from customers: their ``fit`` gets empty data.
NO_DATA_BUILT_INS = {"cross_sell": "plugins.cross_sell", "alternatives": "plugins.alternatives",
                     "adaptive": "plugins.adaptive"}


def _cf_settings_problem(strategy: Any) -> str | None:
    if strategy.model != "als":
        return (f"cf.model = {strategy.model!r}: MLlib has ALS only; set model = \"als\" or "
                f"train cf locally")
    if getattr(strategy, "weighting", "none") != "none":
        return (f"cf.weighting = {strategy.weighting!r}: the Spark fit weighs no "
                f"interactions; set weighting = \"none\" or train cf locally")
    return None


def fit_popularity(strategy: Any, data: SparkData) -> None:
    """``PopularityStrategy.fit`` with the counts aggregated on the cluster."""
    from pyspark.sql import functions as F

    n_tiers, n_channels, n_products = len(TIERS), len(CHANNEL_IDS), data.n_products
    success = data.events.where(F.col("kind") == MOMENTS.index(Moment.SUCCESS))
    if strategy.half_life_days is None:
        weight = F.lit(1.0)
    else:
        age_days = (F.lit(data.now) - F.col("ts")).cast("double") / DAY
        weight = F.pow(F.lit(0.5), age_days / strategy.half_life_days)
    tiers = data.customers.select("customer", "value_tier")
    cells = _numpy(success.join(tiers, "customer")
                   .groupBy("value_tier", "channel", "product").agg(F.sum(weight).alias("w")))
    counts = np.zeros(n_tiers * n_channels * n_products)
    np.add.at(counts, (cells["value_tier"].astype(np.int64) * n_channels + cells["channel"])
              * n_products + cells["product"], cells["w"])
    counts = counts.reshape(n_tiers, n_channels, n_products)
    held = _numpy(data.holdings.join(tiers, "customer").groupBy("value_tier", "product")
                  .count())
    holding_counts = np.zeros((n_tiers, n_products))
    holding_counts[held["value_tier"].astype(np.int64), held["product"]] = held["count"]
    strategy.set_counts(counts + strategy.holding_weight * holding_counts[:, None, :])


def interaction_pairs(data: SparkData, event_weights: dict[str, float],
                      holding_weight: float) -> Any:
    """Distinct (customer, product) with a positive interaction: an event of a kind weighing
    more than 0, or a holding when ``holding_weight`` is above 0 (the nonzeros of
    ``TrainingData.interactions``)."""
    from pyspark.sql import functions as F

    kinds = [MOMENTS.index(Moment(k)) for k, w in event_weights.items() if w > 0]
    pairs = data.events.where(F.col("kind").isin(kinds)).select("customer", "product")
    if holding_weight > 0:
        pairs = pairs.unionByName(data.holdings.select("customer", "product"))
    return pairs.distinct()


def fit_item_similarity(strategy: Any, data: SparkData) -> None:
    """``ItemSimilarityStrategy.fit`` with co-occurrences counted on the cluster."""
    from pyspark.sql import functions as F

    pairs = interaction_pairs(data, strategy.event_weights, strategy.holding_weight).cache()
    try:
        per_product = _numpy(pairs.groupBy("product").count())
        left = pairs.withColumnRenamed("product", "a")
        right = pairs.withColumnRenamed("product", "b")
        co = _numpy(left.join(right, "customer").where(F.col("a") != F.col("b"))
                    .groupBy("a", "b").count()
                    .where(F.col("count") >= strategy.min_cooccurrence))
    finally:
        pairs.unpersist()
    # The local fit's arithmetic, in its float32: counts of customers are exact integers.
    column_sums = np.zeros(data.n_products, np.float32)
    column_sums[per_product["product"]] = per_product["count"]
    norms = np.sqrt(column_sums)
    row, col = co["a"].astype(np.int32), co["b"].astype(np.int32)
    count = co["count"].astype(np.float32)
    cosine = count / (norms[row] * norms[col])
    strategy.similarity = strategy._top_neighbours(row, col, cosine, data.n_products)


def cf_ratings(data: SparkData, event_weights: dict[str, float], holding_weight: float) -> Any:
    """``TrainingData.interactions`` on the cluster: (customer, product, weight > 0)."""
    from pyspark.sql import functions as F

    weight = F.lit(0.0)
    for kind, w in event_weights.items():
        weight = F.when(F.col("kind") == MOMENTS.index(Moment(kind)), F.lit(float(w))) \
            .otherwise(weight)
    events = data.events.select("customer", "product", weight.cast("float").alias("weight"))
    held = data.holdings.select("customer", "product",
                                F.lit(float(holding_weight)).cast("float").alias("weight"))
    return events.unionByName(held).groupBy("customer", "product") \
        .agg(F.sum("weight").alias("weight")).where(F.col("weight") > 0)


def fit_cf(strategy: Any, data: SparkData) -> None:
    """``CFStrategy.fit`` with MLlib ALS (implicit preferences) instead of ``implicit``.

    MLlib's confidence of an interaction of weight ``w`` is ``1 + alpha * w`` where
    ``implicit``'s is ``alpha * w``, and it scales the regularisation by each customer's and
    business's number of interactions. The fold-in keeps the strategy's own settings; the
    item factors are what serving uses (NDCG@10 within 2% of the local fit, see
    tests/test_spark_parity.py).
    """
    from pyspark.ml.recommendation import ALS

    problem = _cf_settings_problem(strategy)
    if problem:
        raise ValueError(problem)
    ratings = cf_ratings(data, strategy.event_weights, strategy.holding_weight).cache()
    try:
        als = ALS(rank=strategy.factors, maxIter=strategy.iterations,
                  regParam=strategy.regularization * SPARK_REGULARIZATION,
                  alpha=strategy.alpha, implicitPrefs=True, nonnegative=False,
                  userCol="customer", itemCol="product", ratingCol="weight",
                  seed=strategy.random_state if strategy.random_state is not None else 0)
        model = als.fit(ratings)
        found = model.itemFactors.toArrow()
    finally:
        ratings.unpersist()
    factors = np.zeros((data.n_products, strategy.factors), np.float32)
    ids = found.column("id").to_numpy()
    if len(ids):
        factors[ids] = np.stack(found.column("features").to_pylist()).astype(np.float32)
    strategy._set_state(factors)



def fit_association(strategy: Any, data: SparkData) -> None:
    """``AssociationStrategy.fit`` with FP-Growth on the cluster: identical rules."""
    from ..mining import MiningLimitError
    from .mining import customer_baskets, mine_rules_bounded_spark, session_baskets

    baskets = customer_baskets(data) if strategy.baskets == "customers" else \
        session_baskets(data, strategy.session_gap_hours)
    budget = None if strategy.memory_budget_mb is None else \
        int(strategy.memory_budget_mb * 2**20)
    try:
        mined = mine_rules_bounded_spark(
            baskets, min_support=strategy.min_support, min_confidence=strategy.min_confidence,
            max_len=strategy.max_len, min_lift=strategy.min_lift, memory_budget=budget,
            max_itemsets=strategy.max_itemsets, raise_support=strategy.on_limit != "error")
    except MiningLimitError as e:
        key = "strategies.association."
        raise e.named(min_support=key + "min_support", max_len=key + "max_len",
                      max_itemsets=key + "max_itemsets",
                      memory_budget=key + "memory_budget_mb") from None
    strategy.mined_min_support, strategy.notice = mined.min_support, mined.notice()
    if strategy.notice:
        log.warning("association: %s", strategy.notice)
    strategy._set_rules(mined.rules)


#: Strategy name -> (the module of its class, its Spark fit).
BUILT_IN: dict[str, tuple[str, Callable[[Any, SparkData], None]]] = {
    "popularity": ("plugins.popularity", fit_popularity),
    "item_similarity": ("plugins.cf", fit_item_similarity),
    "cf": ("plugins.cf", fit_cf),
    "association": ("plugins.association", fit_association),
}


def _built_in(strategy: Strategy) -> Callable[[Any, SparkData], None] | None:
    entry = BUILT_IN.get(strategy.name)
    if entry is not None and type(strategy).__module__ == entry[0]:
        return entry[1]
    return None


def training_kind(strategy: Strategy) -> tuple[str, str | None]:
    """How ``--engine spark`` trains ``strategy``: ``("spark", None)``, ``("no_data", None)``,
    or ``("local", why)``: only its local ``fit`` can, on a sample of customers."""
    fit = _built_in(strategy)
    if fit is fit_cf:
        problem = _cf_settings_problem(strategy)
        if problem:
            return LOCAL, problem
    if fit is not None:
        return SPARK, None
    if NO_DATA_BUILT_INS.get(strategy.name) == type(strategy).__module__:
        return NO_DATA, None
    kind = getattr(type(strategy), "spark_training", LOCAL)
    if kind == SPARK:
        if type(strategy).fit_spark is Strategy.fit_spark:
            return LOCAL, "it declares spark_training = 'spark' but does not define fit_spark"
        return SPARK, None
    if kind == NO_DATA:
        return NO_DATA, None
    return LOCAL, "it has no Spark fit (Strategy.spark_training)"


def spark_fit(strategy: Strategy, data: SparkData) -> None:
    """Fit ``strategy`` on the cluster (its ``training_kind`` must be ``"spark"``)."""
    fit = _built_in(strategy)
    if fit is not None:
        fit(strategy, data)
    else:
        strategy.fit_spark(data)
