"""Collaborative filtering ("customers like you took these") and item-to-item similarity.

``cf`` factorises the customers x businesses interaction matrix with ``implicit`` (ALS by
default, BPR as an option) and keeps only the item factors. A customer's vector is folded in
at request time from what they hold now (plus the business being acted on), so a customer who
joined after training is served, and serving memory does not grow with the customer base.

``item_similarity`` answers "related to the business being acted on": the cosine between
businesses over which customers interacted with both, kept as the top neighbours per business.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from recommender import (
    Candidate,
    Candidates,
    Catalog,
    Config,
    ModelError,
    Moment,
    RequestContext,
    Strategy,
    TrainingData,
    hookimpl,
)
from recommender.artifacts import load_arrays, save_arrays
from recommender.i18n import tr
from recommender.strategy import top_n
from recommender.strategy_settings import build_strategy

MODELS = ("als", "bpr")
EVENT_KINDS = tuple(m.value for m in Moment)
DEFAULT_EVENT_WEIGHTS = {"success": 1.0, "transaction": 0.3, "query": 0.1, "failure": 0.0}
SIMILARITY_EVENT_WEIGHTS = {"success": 1.0, "transaction": 1.0, "query": 1.0, "failure": 0.0}
#: At most this many held businesses are named in a reason.
REASON_DRIVERS = 2
#: Drivers are first solved for this many times the channel's slots of the best candidates.
REASON_HEAD = 2
BPR_FOLD_STEPS = 10  # gradient steps of the BPR fold-in (each of size 1/L: never overshoots)
WEIGHTINGS = ("none", "bm25")
#: BM25's term-frequency saturation and length normalisation (implicit's ``bm25_weight``).
BM25_K1 = 100.0
BM25_B = 0.8


def _check_number(name: str, value: Any, *, minimum: float, integer: bool = False,
                  strict: bool = False) -> Any:
    """Return ``value`` if it is a finite number above ``minimum``; else ValueError naming it."""
    kind = int if integer else int | float
    ok = (not isinstance(value, bool) and isinstance(value, kind) and math.isfinite(value)
          and (value > minimum if strict else value >= minimum))
    if not ok:
        what = "an integer" if integer else "a number"
        sign = ">" if strict else ">="
        raise ValueError(f"{name} must be {what} {sign} {minimum}, got {value!r}")
    return value


def _check_event_weights(name: str, weights: Any) -> dict[str, float]:
    """Validate a ``{kind: weight}`` table; kinds left out weigh 0."""
    if not isinstance(weights, Mapping):
        raise ValueError(f"{name} must be a table of event kind to weight, got {weights!r}")
    out = dict.fromkeys(EVENT_KINDS, 0.0)
    for kind, weight in weights.items():
        if kind not in EVENT_KINDS:
            raise ValueError(f"{name}.{kind}: unknown event kind; known: "
                             f"{', '.join(EVENT_KINDS)}")
        out[kind] = float(_check_number(f"{name}.{kind}", weight, minimum=0))
    return out


def _names(catalog: Catalog, indices: np.ndarray, locale: str) -> list[str]:
    return [catalog.products[i].display_name(locale) for i in indices]


def bm25_statistics(matrix: sp.csr_matrix) -> tuple[np.ndarray, float]:
    """Each business's idf over the customers (never below 0) and the mean number of
    businesses of a customer (over customers with any), from a customers x businesses matrix
    without zeros.

    A customer's length is the number of businesses, not the sum of weights: at request time
    only holdings are known, not the events that added to the weights in training.
    """
    lengths = np.diff(matrix.indptr)
    customers = int((lengths > 0).sum())
    held_by = np.bincount(matrix.indices, minlength=matrix.shape[1])
    idf = np.maximum(np.log(max(customers, 1)) - np.log1p(held_by), 0.0)
    return idf, float(lengths.sum() / customers) if customers else 1.0


def bm25_weights(weights: np.ndarray, idf: np.ndarray, mean_length: float) -> np.ndarray:
    """One customer's interaction weights (one per business), BM25-weighted: saturated,
    normalised by the customer's number of businesses against ``mean_length``, times each
    business's ``idf``."""
    norm = (1.0 - BM25_B) + BM25_B * len(weights) / mean_length
    return weights * (BM25_K1 + 1.0) / (BM25_K1 * norm + weights) * idf


def bm25_rows(matrix: sp.csr_matrix, idf: np.ndarray, mean_length: float) -> sp.csr_matrix:
    """``bm25_weights`` applied to every row of ``matrix`` (without zeros)."""
    out = matrix.astype(np.float64, copy=True)
    lengths = np.repeat(np.diff(out.indptr), np.diff(out.indptr))
    norm = (1.0 - BM25_B) + BM25_B * lengths / mean_length
    out.data = out.data * (BM25_K1 + 1.0) / (BM25_K1 * norm + out.data) * idf[out.indices]
    out.eliminate_zeros()
    return out.astype(np.float32)


class CFStrategy(Strategy):
    """Matrix-factorisation collaborative filtering with request-time fold-in.

    Training fits ``implicit``'s ALS (or BPR) on ``data.interactions(event_weights,
    holding_weight=holding_weight)``. Serving keeps the item factors ``Y`` (products x factors),
    ``YtY`` and the regularisation, and computes the customer's vector from the businesses they
    hold (each weighing ``holding_weight``) plus the current business (``context_weight``) by
    the exact ALS least-squares step, the same as ``implicit``'s ``recalculate_user``::

        c = alpha * w                       (confidence per interacted business)
        (YtY + Yu^T diag(c - 1) Yu + reg I) x = Yu^T c

    BPR is folded in by its own objective instead: the customer vector ``x`` maximising
    ``mean log sigmoid((y_i - y_j) x + b_i - b_j) - reg/2 |x|^2`` over their businesses ``i``
    against every other ``j`` (``b``: implicit's item-bias column), by ``BPR_FOLD_STEPS``
    gradient steps of size ``1/L`` from zero, ``L`` bounding the curvature. The least-squares
    step on BPR's factors ranks far worse (P@10 0.09 against 0.33 on MovieLens 100k, 64
    factors, BENCHMARKS.md section 9), as BPR factors are not fitted to reproduce 1s and 0s.
    Every business with a positive weight is a positive, whatever the weight; the reasons still
    come from the least-squares shares, which then name the businesses most aligned with the
    suggestion rather than summing to its score.

    :param model: ``"als"`` or ``"bpr"``.
    :param factors: latent dimensions; keep it well below the number of businesses (with
        nearly one factor per business the model only reproduces what is held).
    :param regularization: L2 regularisation, in fitting and in fold-in; default 0.1 for ALS,
        0.01 for BPR.
    :param iterations: ALS sweeps (default 15) or BPR epochs (default 100).
    :param alpha: confidence per unit of interaction weight (implicit's ``alpha``: the
        confidence of an interaction of weight ``w`` is ``alpha * w``, of no interaction 1).
    :param weighting: ALS only: ``"none"``, or ``"bm25"`` to weigh each interaction by how
        rare its business is (idf over customers) and how many the customer has (length
        normalisation), in fitting and in fold-in alike (``bm25_weights``).
    :param learning_rate: BPR's SGD step.
    :param event_weights: weight per event kind when building the interaction matrix.
    :param holding_weight: weight of a current holding, in training and when folding in.
    :param context_weight: weight of the business being acted on when folding in.
    :param num_threads: fitting threads, 0 for all cores. ALS results do not depend on it;
        BPR's parallel SGD is only reproducible with 1.
    :param random_state: seed of the factor initialisation, for repeatable models.
    """

    name = "cf"
    blocks = False  # computes on the loaded model only

    def __init__(self, catalog: Catalog, *, model: str = "als", factors: int = 8,
                 regularization: float | None = None, iterations: int | None = None,
                 alpha: float = 1.0, weighting: str = "none", learning_rate: float = 0.05,
                 event_weights: Mapping[str, float] | None = None,
                 holding_weight: float = 1.0, context_weight: float = 1.0,
                 num_threads: int = 0, random_state: int | None = 42):
        if model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got "
                             f"{weighting!r}")
        if weighting != "none" and model != "als":
            raise ValueError(f"weighting {weighting!r} applies to ALS only: BPR takes every "
                             f"interaction as one positive, whatever its weight")
        if regularization is None:
            regularization = 0.1 if model == "als" else 0.01
        if iterations is None:
            iterations = 15 if model == "als" else 100
        _check_number("factors", factors, minimum=1, integer=True)
        # Strictly positive: it keeps every fold-in system positive definite.
        _check_number("regularization", regularization, minimum=0, strict=True)
        _check_number("iterations", iterations, minimum=1, integer=True)
        _check_number("alpha", alpha, minimum=0, strict=True)
        _check_number("learning_rate", learning_rate, minimum=0, strict=True)
        _check_number("holding_weight", holding_weight, minimum=0)
        _check_number("context_weight", context_weight, minimum=0)
        _check_number("num_threads", num_threads, minimum=0, integer=True)
        if random_state is not None:
            _check_number("random_state", random_state, minimum=0, integer=True)
        self.catalog = catalog
        self.model = model
        self.factors = factors
        self.regularization = float(regularization)
        self.iterations = iterations
        self.alpha = float(alpha)
        self.weighting = weighting
        self.learning_rate = float(learning_rate)
        self.event_weights = _check_event_weights(
            "event_weights", DEFAULT_EVENT_WEIGHTS if event_weights is None else event_weights)
        self.holding_weight = float(holding_weight)
        self.context_weight = float(context_weight)
        self.num_threads = num_threads
        self.random_state = random_state
        self.item_factors: np.ndarray | None = None  # products x factors
        self.yty: np.ndarray | None = None           # factors x factors, float64
        self._y64: np.ndarray | None = None          # item factors as float64, for serving
        self.item_bias: np.ndarray | None = None     # BPR's item bias; None for ALS
        self._bias64: np.ndarray | None = None
        #: With BM25: each business's idf and the mean interaction weight of a customer.
        self.item_idf: np.ndarray | None = None
        self.mean_length: float | None = None

    @property
    def is_fitted(self) -> bool:
        return self.item_factors is not None

    # -- training -----------------------------------------------------------------------------

    def fit(self, data: TrainingData) -> Self:
        from threadpoolctl import threadpool_limits

        matrix = data.interactions(self.event_weights, holding_weight=self.holding_weight)
        matrix.eliminate_zeros()
        if self.weighting == "bm25":
            self.item_idf, self.mean_length = bm25_statistics(matrix)
            matrix = bm25_rows(matrix, self.item_idf, self.mean_length)
        # implicit parallelises over customers itself; a BLAS thread pool inside each of its
        # threads oversubscribes the cores (implicit warns and recommends exactly this limit).
        with threadpool_limits(1, "blas"):
            estimator = self._estimator()
            estimator.fit(matrix, show_progress=False)
        factors = estimator.item_factors
        factors = np.asarray(factors.to_numpy() if hasattr(factors, "to_numpy") else factors,
                             dtype=np.float32)
        bias = None
        if self.model == "bpr":  # implicit's BPR item-bias column (see the class docstring)
            factors, bias = factors[:, :-1], factors[:, -1]
        self._set_state(factors, bias)
        return self

    def _estimator(self) -> Any:
        if self.model == "bpr":
            from implicit.bpr import BayesianPersonalizedRanking
            return BayesianPersonalizedRanking(
                factors=self.factors, learning_rate=self.learning_rate,
                regularization=self.regularization, iterations=self.iterations,
                num_threads=self.num_threads, random_state=self.random_state, use_gpu=False)
        from implicit.als import AlternatingLeastSquares
        return AlternatingLeastSquares(
            factors=self.factors, regularization=self.regularization, alpha=self.alpha,
            iterations=self.iterations, num_threads=self.num_threads,
            random_state=self.random_state, use_gpu=False)

    def _set_state(self, item_factors: np.ndarray, item_bias: np.ndarray | None = None) -> None:
        if item_factors.shape[0] != len(self.catalog):
            raise ModelError(f"cf: {item_factors.shape[0]} item factors for a catalog of "
                             f"{len(self.catalog)} products")
        self.item_factors = np.ascontiguousarray(item_factors, dtype=np.float32)
        y = self.item_factors.astype(np.float64)
        self.yty = y.T @ y
        self._y64 = y
        self.item_bias = None if item_bias is None else np.asarray(item_bias, np.float32)
        self._bias64 = None if item_bias is None else self.item_bias.astype(np.float64)

    def _bpr_vector(self, products: np.ndarray) -> np.ndarray:
        """The customer vector maximising BPR's objective for these positives (docstring)."""
        from scipy.special import expit

        y, bias, reg = self._y64, self._bias64, self.regularization
        positive = np.zeros(len(y), dtype=bool)
        positive[products] = True
        p, n = y[positive], y[~positive]
        bp, bn = bias[positive], bias[~positive]
        ptp = p.T @ p
        curvature = 0.5 * (np.linalg.eigvalsh(ptp / len(p))[-1] + (
            np.linalg.eigvalsh((self.yty - ptp) / len(n))[-1] if len(n) else 0.0)) + reg
        x = np.zeros(y.shape[1])
        for _ in range(BPR_FOLD_STEPS):
            g = expit((n @ x + bn)[None, :] - (p @ x + bp)[:, None])  # sigmoid(-(s_i - s_j))
            x += (g.sum(axis=1) @ p - g.sum(axis=0) @ n) / max(g.size, 1) / curvature \
                - reg / curvature * x
        return x

    def _score(self, x: np.ndarray) -> np.ndarray:
        return self._y64 @ x if self._bias64 is None else self._y64 @ x + self._bias64

    # -- serving ------------------------------------------------------------------------------

    def _system(self, products: np.ndarray, weights: np.ndarray
                ) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray] | None:
        """The factorised fold-in system of one customer, or None without interactions.

        :returns: (Cholesky factor of A, interacted positions, their factors Yu, confidences).
        """
        if self.yty is None:
            raise ModelError("cf: the model is not fitted")
        products = np.asarray(products, dtype=np.int64)
        weights = np.asarray(weights, dtype=np.float64)
        keep = weights > 0
        products, weights = products[keep], weights[keep]
        if not len(products):
            return None
        # Repeated products add up, as duplicate entries do in a CSR row.
        products, inverse = np.unique(products, return_inverse=True)
        weights = np.bincount(inverse, weights=weights)
        if self.item_idf is not None:
            weights = bm25_weights(weights, self.item_idf[products], self.mean_length)
            keep = weights > 0
            products, weights = products[keep], weights[keep]
            if not len(products):
                return None
        confidence = self.alpha * weights
        yu = self._y64[products]
        a = self.yty + (yu.T * (confidence - 1.0)) @ yu
        a[np.diag_indices_from(a)] += self.regularization
        return scipy.linalg.cho_factor(a, check_finite=False), products, yu, confidence

    def fold_in(self, products: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The customer vector for interactions ``weights`` with catalog positions ``products``.

        The ALS least-squares step with the item factors held fixed; zero without interactions.

        :param products: catalog positions the customer interacted with.
        :param weights: the interaction weight of each (before ``alpha``).
        :returns: a float64 vector of length ``factors``.
        """
        system = self._system(products, weights)
        if system is None:
            return np.zeros(self.yty.shape[0])
        chol, used, yu, confidence = system
        if self._bias64 is not None:
            return self._bpr_vector(used)
        return scipy.linalg.cho_solve(chol, yu.T @ confidence, check_finite=False)

    def _interactions(self, context: RequestContext) -> tuple[np.ndarray, np.ndarray]:
        held = self.catalog.indices(context.customer.holdings)
        weights = np.full(len(held), self.holding_weight)
        if context.product is not None and context.product in self.catalog.index:
            held = np.append(held, self.catalog.index[context.product])
            weights = np.append(weights, self.context_weight)
        return held, weights

    def scores(self, context: RequestContext) -> np.ndarray:
        """Scores of every catalog product for this request (before exclusions).

        :raises ModelError: the model is not fitted.
        """
        products, weights = self._interactions(context)
        x = self.fold_in(products, weights)
        return self._score(x)

    def candidates(self, context: RequestContext, n: int) -> Sequence[Candidate]:
        if self.item_factors is None:
            return []
        products, weights = self._interactions(context)
        system = self._system(products, weights)
        if system is None:
            return []
        chol, used, yu, confidence = system
        x = self._bpr_vector(used) if self._bias64 is not None else \
            scipy.linalg.cho_solve(chol, yu.T @ confidence, check_finite=False)
        scores = self._score(x)
        catalog = self.catalog
        exclude = np.concatenate([
            catalog.unorderable_rows,
            catalog.indices(context.holdings_after),
            products,
        ])
        best = top_n(scores, n, exclude=exclude)
        if not len(best):
            return []
        column = {row: col for col, row in enumerate(best.tolist())}
        drivers: list[tuple[np.ndarray, np.ndarray]] = []
        locale = context.locale
        first = min(len(best), REASON_HEAD * context.limit)

        def reason(row: int) -> str:
            col = column[row]
            # On the first reason asked for, for the head of the list at once (what is shown
            # comes from there, mostly); for every candidate if one further down is asked.
            if not drivers or col >= drivers[0][0].shape[1]:
                upto = len(best) if drivers or col >= first else first
                drivers[:] = [self._drivers(chol, used, yu, confidence, best[:upto])]
            top, positive = drivers[0]
            return self._reason(used, top[:, col][positive[:, col]], locale)

        return Candidates(catalog, best, scores[best], reason)

    def _drivers(self, chol: Any, used: np.ndarray, yu: np.ndarray, confidence: np.ndarray,
                 best: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per candidate (column), the interacted businesses that push its score most (rows
        of ``used``, best first) and whether each pushes it up at all.

        Each interacted business's share of a score is c_j * y_j^T A^-1 y_i (implicit's
        explain); these shares sum to the score exactly.
        """
        driven = yu @ scipy.linalg.cho_solve(chol, self._y64[best].T, check_finite=False)
        driven *= confidence[:, None]
        k = min(REASON_DRIVERS, len(used))
        top = np.argsort(-driven, axis=0, kind="stable")[:k]
        return top, np.take_along_axis(driven, top, axis=0) > 0

    def _reason(self, used: np.ndarray, rows: np.ndarray, locale: str) -> str:
        """The sentence naming the interacted businesses ``used[rows]`` as the drivers."""
        if not len(rows):
            return tr(locale, "customers with similar holdings took this")
        catalog = self.catalog
        names = _names(catalog, used[rows], locale)
        query = (~catalog.orderable[used[rows]]).tolist()
        also = tr(locale, " and ")
        held = also.join(name for name, q in zip(names, query, strict=True) if not q)
        checked = also.join(name for name, q in zip(names, query, strict=True) if q)
        if held and checked:
            return tr(locale, "customers who hold {held} and check {checked} also took this",
                      held=held, checked=checked)
        if held:
            return tr(locale, "customers who hold {held} also took this", held=held)
        return tr(locale, "customers who check {checked} also took this", checked=checked)

    # -- persistence --------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        if self.item_factors is None:
            raise ModelError("cf: cannot save an unfitted model")
        extra = {} if self.item_bias is None else {"item_bias": self.item_bias}
        if self.item_idf is not None:
            extra |= {"item_idf": self.item_idf,
                      "mean_length": np.array([self.mean_length], dtype=np.float64)}
        save_arrays(directory, "cf.npz", {"item_factors": self.item_factors, "yty": self.yty,
                                          **extra},
                    self.describe())

    def load(self, directory: Path) -> Self:
        arrays, settings = load_arrays(directory, "cf.npz", "cf", ("item_factors", "yty"))
        path = directory / "cf.npz"
        factors, yty = arrays["item_factors"], arrays["yty"]
        n = len(self.catalog)
        if factors.ndim != 2 or factors.shape[0] != n:
            raise ModelError(f"cf: item factors of shape {factors.shape} do not match the "
                             f"catalog of {n} products")
        k = factors.shape[1]
        if yty.shape != (k, k):
            raise ModelError(f"cf: YtY of shape {yty.shape} does not match item factors of "
                             f"shape {factors.shape}")
        try:
            # The fold-in must use the confidence scaling the factors were trained with.
            model, alpha, reg = settings["model"], settings["alpha"], settings["regularization"]
            holding = settings["holding_weight"]
            weighting = settings.get("weighting", "none")  # absent: saved before weighting
            _check_number("alpha", alpha, minimum=0, strict=True)
            _check_number("regularization", reg, minimum=0, strict=True)
            _check_number("holding_weight", holding, minimum=0)
        except (KeyError, ValueError) as e:
            raise ModelError(f"cf: {directory / 'settings.json'} is incomplete: {e}") from e
        if model not in MODELS:
            raise ModelError(f"cf: {directory / 'settings.json'} names unknown model {model!r}")
        if weighting not in WEIGHTINGS:
            raise ModelError(f"cf: {directory / 'settings.json'} names unknown weighting "
                             f"{weighting!r}")
        idf, mean_length = None, None
        if weighting == "bm25":
            stats = load_arrays(directory, "cf.npz", "cf", ("item_idf", "mean_length"))[0]
            idf, mean_length = stats["item_idf"], stats["mean_length"]
            if idf.shape != (n,) or mean_length.shape != (1,) or not (
                    np.isfinite(idf).all() and (idf >= 0).all() and mean_length[0] > 0):
                raise ModelError(f"cf: {path} holds no valid BM25 statistics for a catalog "
                                 f"of {n} products")
        y = factors.astype(np.float64)
        if not np.allclose(yty, y.T @ y, rtol=1e-4, atol=1e-6):
            raise ModelError(f"cf: {path} is inconsistent (YtY does not match the factors)")
        self.model, self.alpha, self.regularization = model, float(alpha), float(reg)
        self.holding_weight = float(holding)
        self.weighting = weighting
        self.item_idf = None if idf is None else idf.astype(np.float64)
        self.mean_length = None if mean_length is None else float(mean_length[0])
        self.factors = k
        bias = None
        if model == "bpr":
            try:
                bias = load_arrays(directory, "cf.npz", "cf", ("item_bias",))[0]["item_bias"]
            except ModelError:  # saved before BPR kept its bias: the least-squares fold-in
                bias = None
            if bias is not None and bias.shape != (n,):
                raise ModelError(f"cf: item bias of shape {bias.shape} does not match the "
                                 f"catalog of {n} products")
        self._set_state(factors, bias)
        return self

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model, "factors": self.factors, "regularization": self.regularization,
            "iterations": self.iterations, "event_weights": self.event_weights,
            "alpha": self.alpha, "weighting": self.weighting,
            "holding_weight": self.holding_weight,
            "context_weight": self.context_weight, "random_state": self.random_state,
        }
        if self.model == "bpr":
            out["learning_rate"] = self.learning_rate
        return out


class ItemSimilarityStrategy(Strategy):
    """Businesses most often taken by the same customers as the one being acted on.

    Fitting binarises ``data.interactions(event_weights)`` (any interaction counts once) and
    keeps, per business, its ``neighbours`` best cosine neighbours with at least
    ``min_cooccurrence`` customers in common, as a sparse products x products matrix. Serving
    reads one row.

    :param neighbours: how many neighbours to keep per business.
    :param min_cooccurrence: fewer shared customers than this is noise, not a relation.
    :param event_weights: which event kinds count as an interaction (weight above 0).
    :param holding_weight: whether current holdings count (above 0) as an interaction.
    """

    name = "item_similarity"
    blocks = False  # computes on the loaded model only
    moments = frozenset({Moment.QUERY, Moment.TRANSACTION})

    def __init__(self, catalog: Catalog, *, neighbours: int = 50, min_cooccurrence: int = 2,
                 event_weights: Mapping[str, float] | None = None,
                 holding_weight: float = 1.0):
        _check_number("neighbours", neighbours, minimum=1, integer=True)
        _check_number("min_cooccurrence", min_cooccurrence, minimum=1, integer=True)
        _check_number("holding_weight", holding_weight, minimum=0)
        self.catalog = catalog
        self.neighbours = neighbours
        self.min_cooccurrence = min_cooccurrence
        self.event_weights = _check_event_weights(
            "event_weights",
            SIMILARITY_EVENT_WEIGHTS if event_weights is None else event_weights)
        self.holding_weight = float(holding_weight)
        self.similarity: sp.csr_matrix | None = None

    @property
    def is_fitted(self) -> bool:
        return self.similarity is not None

    def fit(self, data: TrainingData) -> Self:
        matrix = data.interactions(self.event_weights, holding_weight=self.holding_weight)
        matrix.data = (matrix.data > 0).astype(np.float32)
        matrix.eliminate_zeros()
        co = (matrix.T @ matrix).tocoo()
        norms = np.sqrt(np.asarray(matrix.sum(axis=0)).ravel())
        keep = (co.row != co.col) & (co.data >= self.min_cooccurrence)
        row, col, count = co.row[keep], co.col[keep], co.data[keep]
        cosine = count / (norms[row] * norms[col])
        self.similarity = self._top_neighbours(row, col, cosine, data.n_products)
        return self

    def _top_neighbours(self, row: np.ndarray, col: np.ndarray, value: np.ndarray,
                        n: int) -> sp.csr_matrix:
        """Keep each row's ``neighbours`` largest values (ties by column), as CSR."""
        order = np.lexsort((col, -value, row))
        row, col, value = row[order], col[order], value[order]
        starts = np.searchsorted(row, np.arange(n))
        rank = np.arange(len(row)) - starts[row]
        keep = rank < self.neighbours
        return sp.csr_matrix((value[keep].astype(np.float32), (row[keep], col[keep])),
                             shape=(n, n))

    def candidates(self, context: RequestContext, n: int) -> Sequence[Candidate]:
        if self.similarity is None or context.product is None:
            return []
        catalog = self.catalog
        current = catalog.index.get(context.product)
        if current is None:
            return []
        sim = self.similarity
        start, end = sim.indptr[current], sim.indptr[current + 1]
        scores = np.zeros(len(catalog))
        scores[sim.indices[start:end]] = sim.data[start:end]
        exclude = np.concatenate([catalog.unorderable_rows,
                                  catalog.indices(context.holdings_after), [current]])
        reason = tr(context.locale, "often taken together with {name}",
                    name=catalog.products[current].display_name(context.locale))
        best = top_n(scores, n, exclude=exclude)
        return Candidates(catalog, best, scores[best], reason)

    def save(self, directory: Path) -> None:
        if self.similarity is None:
            raise ModelError("item_similarity: cannot save an unfitted model")
        sim = self.similarity
        save_arrays(directory, "similarity.npz",
                    {"indptr": sim.indptr, "indices": sim.indices, "data": sim.data},
                    self.describe())

    def load(self, directory: Path) -> Self:
        arrays, _ = load_arrays(directory, "similarity.npz", "item_similarity",
                                ("indptr", "indices", "data"))
        path = directory / "similarity.npz"
        indptr, indices, data = arrays["indptr"], arrays["indices"], arrays["data"]
        n = len(self.catalog)
        ok = (indptr.ndim == indices.ndim == data.ndim == 1 and len(indptr) == n + 1
              and indptr[0] == 0 and indptr[-1] == len(indices) == len(data)
              and (np.diff(indptr) >= 0).all()
              and (not len(indices) or (indices.min() >= 0 and indices.max() < n)))
        if not ok:
            raise ModelError(f"item_similarity: {path} does not hold a {n} x {n} "
                             f"similarity matrix for this catalog")
        self.similarity = sp.csr_matrix((data.astype(np.float32), indices, indptr),
                                        shape=(n, n))
        return self

    def describe(self) -> dict[str, Any]:
        return {"neighbours": self.neighbours, "min_cooccurrence": self.min_cooccurrence,
                "event_weights": self.event_weights, "holding_weight": self.holding_weight}


@hookimpl
def register_strategies(config: Config, catalog: Catalog) -> list[Strategy]:
    return [build_strategy(CFStrategy, config, catalog),
            build_strategy(ItemSimilarityStrategy, config, catalog)]
