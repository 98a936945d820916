"""Offline evaluation a data scientist can trust: explicit splits, standard metrics, served
the way the engine serves, with intervals, slices and the online funnel.

::

    from recommender import evaluation as ev
    source = ev.from_long_csv(path, user="CustomerID", item="StockCode", timestamp="InvoiceDate")
    split = ev.make_split(source.data, "temporal", test_fraction=0.2)
    result = ev.evaluate(source, split, ["cf", "association", "cf+association"], ks=(5, 10))
    print(ev.table(result))
"""

from .data import EvalData, from_baskets, from_long_csv, from_movielens, from_workspace, load
from .holdout import Holdout, context_for, hit_rates, leave_last_out
from .metrics import METRICS, bootstrap, coverage, hit_matrix, per_user, popularity_bias
from .online import funnel, two_proportion_p, wilson
from .report import html_report, table
from .runner import BASELINE, COUNT_BASELINE, Blend, EvaluationResult, evaluate
from .splits import SPLITS, Split, leave_last, make_split, random, split_source, temporal

__all__ = [
    "BASELINE", "COUNT_BASELINE", "METRICS", "SPLITS", "Blend", "EvalData", "EvaluationResult",
    "Holdout",
    "Split", "bootstrap", "context_for", "coverage", "evaluate", "from_baskets",
    "from_long_csv", "from_movielens", "from_workspace", "funnel", "hit_matrix", "hit_rates",
    "html_report", "leave_last", "leave_last_out", "load", "make_split", "per_user",
    "popularity_bias", "random", "split_source", "table", "temporal", "two_proportion_p", "wilson",
]
