"""Propensity: per business, the probability that a customer takes it, from who they are.

One regularised logistic regression (scikit-learn) per business that enough customers took,
over the customer's attributes (``recommender.attributes``: numbers standardised, categories
one-hot), segment (value tier, lifecycle, persona, tenure), terminal and holdings of the other
businesses. Trained on log-loss, its scores are probabilities; when negatives are sampled
down (``max_negatives``) the intercept is corrected by the sampling rate, so they stay
calibrated. The reason names the features that pushed the score up most for this customer.

It serves inbound requests like any strategy (give it a weight in ``[blend.<moment>]``) and is
the backbone of outbound targeting (``recommender target``, ``recommender batch``), which
score whole customer arrays at once through :meth:`PropensityStrategy.score_rows`.

Settings (``[strategies.propensity]``)::

    c = 0.01               # inverse regularisation strength (smaller: simpler models)
    min_positives = 10     # customers who took a business before it gets a model
    max_negatives = 50000  # negatives sampled per business (0: all)
    max_categories = 30    # most frequent values one-hot encoded per categorical attribute
    attributes = ["*"]     # attribute names used (shell patterns)
    segment = true         # value tier, lifecycle, persona, tenure and terminal as features
    holdings = true        # holdings of the other businesses as features
    seed = 0               # seed of the negative sampling
"""

from __future__ import annotations

import fnmatch
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from recommender import (
    Candidate,
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
from recommender.attributes import AttributeTable
from recommender.i18n import N_, join, ptr, tr
from recommender.strategy import top_n
from recommender.strategy_settings import build_strategy
from recommender.training import LIFECYCLES, MOMENTS, OSES, PERSONAS, TIERS

#: Features named in a reason.
REASON_FEATURES = 2
_SEGMENT = (
    [f"value tier {t.value}" for t in TIERS]
    + [f"lifecycle {s.value}" for s in LIFECYCLES]
    + [f"{p.value} persona" for p in PERSONAS]
    + [f"{o.value} terminal" for o in OSES]
    + ["tenure", "network generation", "smartphone"]
)
#: Each segment feature in a reason, as (message id, context, value) for ``recommender.i18n``.
_SEGMENT_WORDS = (
    [(N_("{value}-value customer"), "tier", t.value) for t in TIERS]
    + [(N_("lifecycle: {value}"), "lifecycle", s.value) for s in LIFECYCLES]
    + [(N_("persona: {value}"), "", p.value) for p in PERSONAS]
    + [(N_("{value} terminal"), "", o.value) for o in OSES]
)
_N_SEGMENT = len(_SEGMENT)


def _number(
    name: str, value: Any, minimum: float, *, integer: bool = False, strict: bool = False
) -> Any:
    kind = int if integer else int | float
    if (
        isinstance(value, bool)
        or not isinstance(value, kind)
        or not math.isfinite(value)
        or (value <= minimum if strict else value < minimum)
    ):
        what = "an integer" if integer else "a number"
        raise ValueError(
            f"propensity: {name} must be {what} {'>' if strict else '>='} {minimum}, got {value!r}"
        )
    return value


class PropensityStrategy(Strategy):
    """Per-business logistic regression over attributes, segment, terminal and holdings."""

    name = "propensity"
    blocks = False  # computes on the loaded model only

    def __init__(
        self,
        catalog: Catalog,
        *,
        c: float = 0.01,
        min_positives: int = 10,
        max_negatives: int = 50_000,
        max_categories: int = 30,
        attributes: Sequence[str] = ("*",),
        segment: bool = True,
        holdings: bool = True,
        seed: int = 0,
    ):
        self.catalog = catalog
        self.c = float(_number("c", c, 0, strict=True))
        self.min_positives = _number("min_positives", min_positives, 1, integer=True)
        self.max_negatives = _number("max_negatives", max_negatives, 0, integer=True)
        self.max_categories = _number("max_categories", max_categories, 1, integer=True)
        if isinstance(attributes, str) or not all(isinstance(a, str) for a in attributes):
            raise ValueError(
                f"propensity: attributes must be a list of name patterns, got {attributes!r}"
            )
        for key, flag in (("segment", segment), ("holdings", holdings)):
            if not isinstance(flag, bool):
                raise ValueError(f"propensity: {key} must be true or false, got {flag!r}")
        self.attributes = tuple(attributes)
        self.segment = segment
        self.holdings = holdings
        self.seed = int(seed)
        self._reset()

    def _reset(self) -> None:
        self.numeric_names: tuple[str, ...] = ()
        self.means = np.zeros(0, np.float32)
        self.scales = np.ones(0, np.float32)
        self.categories: dict[str, tuple[str, ...]] = {}
        self.holding_scale = np.zeros(len(self.catalog), np.float32)
        self.coef: np.ndarray | None = None  # models x features
        self.intercept = np.zeros(0, np.float32)
        self.model_of = np.full(len(self.catalog), -1, np.int32)  # product -> model row
        self.base_rate = np.zeros((len(TIERS), len(self.catalog)), np.float32)
        self.skipped: dict[str, int] = {}

    # -- features -----------------------------------------------------------------------------

    @property
    def is_fitted(self) -> bool:
        return self.coef is not None

    @property
    def n_dense(self) -> int:
        return (
            len(self.numeric_names)
            + sum(len(v) for v in self.categories.values())
            + (_N_SEGMENT if self.segment else 0)
        )

    @property
    def n_features(self) -> int:
        return self.n_dense + (len(self.catalog) if self.holdings else 0)

    def _wanted(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.attributes)

    def _learn_features(self, data: TrainingData) -> None:
        table = data.attributes or AttributeTable.empty(data.n_customers)
        keep = [i for i, n in enumerate(table.numeric_names) if self._wanted(n)]
        self.numeric_names = tuple(table.numeric_names[i] for i in keep)
        values = table.numeric[:, keep].astype(np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column
            means = (
                np.nan_to_num(np.nanmean(values, axis=0)) if len(values) else np.zeros(len(keep))
            )
            stds = np.nan_to_num(np.nanstd(values, axis=0)) if len(values) else np.ones(len(keep))
        self.means = means.astype(np.float32)
        self.scales = np.where(stds > 1e-9, 1 / np.maximum(stds, 1e-9), 0.0).astype(np.float32)
        self.categories = {}
        for j, name in enumerate(table.categorical_names):
            if not self._wanted(name):
                continue
            codes = table.codes[:, j]
            counts = np.bincount(codes[codes >= 0], minlength=len(table.categories[name]))
            top = np.argsort(-counts, kind="stable")[: self.max_categories]
            top = top[counts[top] > 0]
            self.categories[name] = tuple(table.categories[name][i] for i in sorted(top))
        if self.holdings:
            share = np.asarray(data.holdings.mean(axis=0)).ravel()
            std = np.sqrt(share * (1 - share))
            self.holding_scale = np.where(std > 1e-9, 1 / np.maximum(std, 1e-9), 0.0).astype(
                np.float32
            )

    def dense(self, data: TrainingData, rows: np.ndarray | slice) -> np.ndarray:
        """The dense features of customers ``rows`` (standardised numbers, one-hot codes,
        segment), customers x ``n_dense``, float32."""
        table = data.attributes
        n = len(data.customers[rows])
        parts = []
        if self.numeric_names:
            values = np.full((n, len(self.numeric_names)), np.nan, np.float32)
            if table is not None:
                where = {name: i for i, name in enumerate(table.numeric_names)}
                for j, name in enumerate(self.numeric_names):
                    if name in where:
                        values[:, j] = table.numeric[rows, where[name]]
            values = (values - self.means) * self.scales
            parts.append(np.nan_to_num(values, nan=0.0))
        for name, vocab in self.categories.items():
            block = np.zeros((n, len(vocab)), np.float32)
            if table is not None and name in table.categorical_names:
                column = table.codes[rows, table.categorical_names.index(name)]
                stored = table.categories[name]
                # The table's codes index its own vocabulary; map them onto the model's.
                mapping = np.full(len(stored) + 1, -1, np.int64)
                position = {v: i for i, v in enumerate(vocab)}
                mapping[:-1] = [position.get(v, -1) for v in stored]
                code = mapping[column]
                hit = code >= 0
                block[np.nonzero(hit)[0], code[hit]] = 1.0
            parts.append(block)
        if self.segment:
            block = np.zeros((n, _N_SEGMENT), np.float32)
            at = np.arange(n)
            offset = 0
            for codes, size in (
                (data.value_tier[rows], len(TIERS)),
                (data.lifecycle[rows], len(LIFECYCLES)),
                (data.persona[rows], len(PERSONAS)),
                (data.os[rows], len(OSES)),
            ):
                codes = np.asarray(codes, np.int64)
                ok = codes >= 0
                block[at[ok], offset + codes[ok]] = 1.0
                offset += size
            block[:, offset] = np.asarray(data.tenure[rows], np.float32) / 120.0
            block[:, offset + 1] = np.asarray(data.network[rows], np.float32) - 4.0
            block[:, offset + 2] = np.asarray(data.smartphone[rows], np.float32)
            parts.append(block)
        return np.hstack(parts) if parts else np.zeros((n, 0), np.float32)

    def features(self, data: TrainingData, rows: np.ndarray | slice) -> sp.csr_matrix:
        """All features of customers ``rows``: :meth:`dense` then scaled holdings."""
        dense = sp.csr_matrix(self.dense(data, rows))
        if not self.holdings:
            return dense
        held = data.holdings[rows].astype(np.float32) @ sp.diags(self.holding_scale)
        return sp.hstack([dense, held], format="csr", dtype=np.float32)

    # -- learning -----------------------------------------------------------------------------

    def fit(self, data: TrainingData) -> Self:
        from sklearn.linear_model import LogisticRegression

        self._reset()
        self._learn_features(data)
        n, n_products = data.n_customers, data.n_products
        took = data.holdings.astype(bool).tocsc()
        ev = data.events
        success = ev.kind == MOMENTS.index(Moment.SUCCESS)
        ordered = sp.csc_matrix(
            (np.ones(int(success.sum()), bool), (ev.customer[success], ev.product[success])),
            shape=(n, n_products),
        )
        took = (took + ordered).astype(bool).tocsc()
        tiers = np.asarray(data.value_tier, np.int64)
        tier_size = np.maximum(np.bincount(tiers, minlength=len(TIERS)), 1)
        x = self.features(data, slice(None)) if n else None
        rng = np.random.default_rng(self.seed)
        coefs, intercepts = [], []
        orderable = data.catalog.orderable
        for j in range(n_products):
            positive_rows = took.indices[took.indptr[j] : took.indptr[j + 1]]
            self.base_rate[:, j] = (
                np.bincount(tiers[positive_rows], minlength=len(TIERS)) / tier_size
            )
            n_pos = len(positive_rows)
            if not orderable[j]:
                continue
            if n_pos < self.min_positives or n - n_pos < self.min_positives:
                self.skipped[data.catalog.ids[j]] = n_pos
                continue
            y = np.zeros(n, np.int8)
            y[positive_rows] = 1
            rows = np.arange(n)
            correction = 0.0
            negatives = rows[y == 0]
            if self.max_negatives and len(negatives) > self.max_negatives:
                kept = rng.choice(negatives, self.max_negatives, replace=False)
                correction = math.log(self.max_negatives / len(negatives))
                rows = np.sort(np.concatenate([positive_rows, kept]))
            xj = x[rows]
            if self.holdings:  # holding the business itself is the label, not a feature
                column = self.n_dense + j
                xj = xj @ sp.diags(
                    np.where(np.arange(xj.shape[1]) == column, 0.0, 1.0).astype(np.float32)
                )
            model = LogisticRegression(C=self.c, max_iter=500, tol=1e-4)
            model.fit(xj, y[rows])
            self.model_of[j] = len(coefs)
            coefs.append(model.coef_[0].astype(np.float32))
            intercepts.append(float(model.intercept_[0]) + correction)
        self.coef = np.array(coefs, np.float32).reshape(len(coefs), self.n_features)
        self.intercept = np.array(intercepts, np.float32)
        return self

    # -- scoring ------------------------------------------------------------------------------

    def score_rows(
        self, data: TrainingData, rows: np.ndarray | slice, products: np.ndarray | None = None
    ) -> np.ndarray:
        """Probabilities customers ``rows`` x ``products`` (catalog positions; all if None),
        float32; a business without a model gets its take rate in the customer's value tier.
        """
        if self.coef is None:
            raise ModelError("propensity: not trained")
        products = np.arange(len(self.catalog)) if products is None else np.asarray(products)
        tiers = np.asarray(data.value_tier[rows], np.int64)
        models = self.model_of[products]
        has = models >= 0
        if not has.any():
            return np.take(self.base_rate[:, products], tiers, axis=0)
        coef = self.coef[models[has]]
        # Dense features through BLAS, holdings as a sparse product: no dense n x F copy.
        logits = self.dense(data, rows) @ coef[:, : self.n_dense].T
        if self.holdings:
            held = data.holdings[rows].astype(np.float32) @ sp.diags(self.holding_scale)
            logits += np.asarray(held @ coef[:, self.n_dense :].T, np.float32)
        logits += self.intercept[models[has]]
        expit(logits, out=logits)
        if has.all():
            return logits
        out = np.empty((len(tiers), len(products)), np.float32)
        out[:, has] = logits
        out[:, ~has] = np.take(self.base_rate[:, products[~has]], tiers, axis=0)
        return out

    def sources(self, products: np.ndarray) -> np.ndarray:
        """``propensity`` for a business with a model, ``propensity:base_rate`` without."""
        return np.where(
            self.model_of[np.asarray(products)] >= 0, self.name, f"{self.name}:base_rate"
        )

    def reasons(
        self, data: TrainingData, rows: np.ndarray, products: np.ndarray, scores: np.ndarray,
        locale: str = "en",
    ) -> list[str]:
        """The reason of each (customer ``rows[i]``, business ``products[i]``) offer, in
        ``locale``."""
        drivers = self.drivers(data, rows, products, locale=locale)
        tiers = np.asarray(data.value_tier)[np.asarray(rows, np.int64)]
        modelled = self.model_of[np.asarray(products, np.int64)] >= 0
        return [
            reason(s, d, locale) if m else tr(
                locale, "taken by {share} of {tier}-value customers", share=f"{s:.1%}",
                tier=ptr(locale, "tier", TIERS[t].value))
            for s, d, m, t in zip(
                np.asarray(scores).tolist(), drivers, modelled.tolist(), tiers.tolist(), strict=True
            )
        ]

    def drivers(
        self, data: TrainingData, rows: np.ndarray, products: np.ndarray,
        k: int = REASON_FEATURES, locale: str = "en",
    ) -> list[list[str]]:
        """For each (customer ``rows[i]``, business ``products[i]``), the ``k`` features that
        raise its score most, as short phrases (empty for a business without a model)."""
        out: list[list[str]] = [[] for _ in range(len(rows))]
        if self.coef is None or not len(rows):
            return out
        rows, products = np.asarray(rows), np.asarray(products)
        models = self.model_of[products]
        modelled = np.nonzero(models >= 0)[0]
        if not len(modelled):
            return out
        who, model = rows[modelled], models[modelled]
        # Dense features: contributions of every feature; holdings: only the held ones.
        dense = self.dense(data, who) * self.coef[model, : self.n_dense]
        feature = np.argsort(-dense, axis=1)[:, :k]
        value = np.take_along_axis(dense, feature, axis=1)
        if self.holdings:
            held = data.holdings[who].tocoo()
            gain = (
                self.holding_scale[held.col] * self.coef[model[held.row], self.n_dense + held.col]
            )
            gain[held.col == products[modelled][held.row]] = 0.0  # the label itself
            # The k held businesses adding most per pair: sort by (pair, -gain), rank in pair.
            order = np.lexsort((-gain, held.row))
            pair, column, gain = held.row[order], held.col[order], gain[order]
            rank = np.arange(len(pair)) - np.searchsorted(pair, pair)
            keep = (rank < k) & (gain > 0)
            top_feature = np.zeros((len(who), k), np.int64)
            top_value = np.full((len(who), k), -np.inf)
            top_feature[pair[keep], rank[keep]] = self.n_dense + column[keep]
            top_value[pair[keep], rank[keep]] = gain[keep]
            feature = np.hstack([feature, top_feature])
            value = np.hstack([value, top_value])
            order = np.argsort(-value, axis=1, kind="stable")[:, :k]
            feature = np.take_along_axis(feature, order, axis=1)
            value = np.take_along_axis(value, order, axis=1)
        raw = data.attributes
        for i, (row, feats, gains) in enumerate(
            zip(who.tolist(), feature.tolist(), value.tolist(), strict=True)
        ):
            out[modelled[i]] = [
                self._phrase(f, data, row, raw, locale)
                for f, g in zip(feats, gains, strict=True) if g > 0
            ]
        return out

    def _phrase(
        self, feature: int, data: TrainingData, row: int, table: AttributeTable | None,
        locale: str = "en",
    ) -> str:
        """A feature in words: "high age (52)", "region = north", "holds Broadband"."""
        n_numeric = len(self.numeric_names)
        if feature < n_numeric:
            name = self.numeric_names[feature]
            value = np.nan
            if table is not None and name in table.numeric_names:
                value = float(table.numeric[row, table.numeric_names.index(name)])
            if math.isnan(value):
                return tr(locale, "{name} unknown", name=name)
            if value >= self.means[feature]:
                return tr(locale, "high {name} ({value})", name=name, value=f"{value:g}")
            return tr(locale, "low {name} ({value})", name=name, value=f"{value:g}")
        feature -= n_numeric
        for name, vocab in self.categories.items():
            if feature < len(vocab):
                return f"{name} = {vocab[feature]}"
            feature -= len(vocab)
        if self.segment:
            if feature < _N_SEGMENT:
                label = _SEGMENT[feature]
                if label == "tenure":
                    return tr(locale, "tenure {months} months", months=int(data.tenure[row]))
                if label == "network generation":
                    return tr(locale, "{value} terminal", value=f"{int(data.network[row])}G")
                if label == "smartphone":
                    return tr(locale, "smartphone")
                message, context, value = _SEGMENT_WORDS[feature]
                return tr(locale, message, value=ptr(locale, context, value) if context
                          else value)
            feature -= _N_SEGMENT
        return tr(locale, "holds {name}",
                  name=self.catalog.products[feature].display_name(locale))

    def candidates(self, context: RequestContext, n: int) -> list[Candidate]:
        if self.coef is None:
            return []
        data = one_customer(context, self.catalog)
        scores = self.score_rows(data, np.array([0]))[0]
        scores[self.model_of < 0] = 0.0  # base rates serve targeting, not inbound ranking
        exclude = self.catalog.indices(context.holdings_after)
        picked = top_n(scores, n, exclude=exclude)
        drivers = self.drivers(data, np.zeros(len(picked), np.int64), picked,
                               locale=context.locale)
        ids = self.catalog.ids
        return [
            Candidate(ids[j], float(scores[j]), reason(float(scores[j]), why, context.locale))
            for j, why in zip(picked.tolist(), drivers, strict=True)
        ]

    # -- persistence --------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        if self.coef is None:
            raise ModelError("propensity: cannot save an unfitted model")
        settings = {
            **self.describe(),
            "numeric_names": list(self.numeric_names),
            "categories": {k: list(v) for k, v in self.categories.items()},
        }
        save_arrays(
            directory,
            "propensity.npz",
            {
                "coef": self.coef,
                "intercept": self.intercept,
                "model_of": self.model_of,
                "means": self.means,
                "scales": self.scales,
                "holding_scale": self.holding_scale,
                "base_rate": self.base_rate,
            },
            settings,
        )

    def load(self, directory: Path) -> Self:
        keys = ("coef", "intercept", "model_of", "means", "scales", "holding_scale", "base_rate")
        arrays, settings = load_arrays(directory, "propensity.npz", "propensity", keys)
        self._reset()
        try:
            self.numeric_names = tuple(str(n) for n in settings["numeric_names"])
            self.categories = {
                str(k): tuple(str(v) for v in values)
                for k, values in settings["categories"].items()
            }
        except (KeyError, TypeError, AttributeError) as e:
            raise ModelError(
                f"propensity: {directory}/settings.json lacks the feature description ({e})"
            ) from None
        coef, model_of = arrays["coef"], arrays["model_of"].astype(np.int32)
        n_products = len(self.catalog)
        problems = [
            (arrays["means"].shape, (len(self.numeric_names),), "means"),
            (arrays["scales"].shape, (len(self.numeric_names),), "scales"),
            (arrays["holding_scale"].shape, (n_products,), "holding_scale"),
            (arrays["base_rate"].shape, (len(TIERS), n_products), "base_rate"),
            (model_of.shape, (n_products,), "model_of"),
            (coef.shape, (len(arrays["intercept"]), self.n_features), "coef"),
        ]
        for got, expected, key in problems:
            if got != expected:
                raise ModelError(
                    f"propensity: {key} has shape {got}, expected {expected} for "
                    f"this catalog and these settings"
                )
        if model_of.max(initial=-1) >= len(coef) or model_of.min(initial=-1) < -1:
            raise ModelError("propensity: model_of names a model that is not there")
        self.means, self.scales = arrays["means"], arrays["scales"]
        self.holding_scale, self.base_rate = arrays["holding_scale"], arrays["base_rate"]
        self.coef, self.intercept, self.model_of = coef, arrays["intercept"], model_of
        return self

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "c": self.c,
            "min_positives": self.min_positives,
            "max_negatives": self.max_negatives,
            "max_categories": self.max_categories,
            "attributes": list(self.attributes),
            "segment": self.segment,
            "holdings": self.holdings,
            "seed": self.seed,
        }
        if self.coef is not None:
            out["models"] = int(len(self.coef))
        return out


def reason(score: float, drivers: Sequence[str], locale: str = "en") -> str:
    """The sentence a propensity suggestion carries, in ``locale``."""
    chance = f"{score:.0%}" if score >= 0.01 else "<1%"
    if not drivers:
        return tr(locale, "customers like this one take it ({chance} chance)", chance=chance)
    return tr(locale, "likely to take it ({chance} chance): {drivers}", chance=chance,
              drivers=join(locale, drivers))


def one_customer(context: RequestContext, catalog: Catalog) -> TrainingData:
    """The request's customer as one-row training arrays, so inbound scoring and targeting
    build features by the same code."""
    from recommender.training import EventLog

    customer, terminal = context.customer, context.terminal
    kinds = {
        name: "categorical" if isinstance(v, str) else "numeric"
        for name, v in customer.attributes.items()
    }
    held = catalog.indices(context.holdings_after)
    holdings = sp.csr_matrix(
        (np.ones(len(held), np.float32), (np.zeros(len(held), int), held)), shape=(1, len(catalog))
    )
    empty = np.zeros(0, np.int32)
    return TrainingData(
        catalog=catalog,
        customers=np.array([customer.id], dtype=object),
        holdings=holdings,
        events=EventLog(
            empty, empty, empty.astype(np.int8), empty.astype(np.int8), empty.astype(np.int64)
        ),
        value_tier=np.array([TIERS.index(customer.value_tier)], np.int8),
        persona=np.array(
            [-1 if customer.persona is None else PERSONAS.index(customer.persona)], np.int8
        ),
        lifecycle=np.array([LIFECYCLES.index(customer.lifecycle)], np.int8),
        tenure=np.array([customer.tenure_months], np.int32),
        network=np.array([terminal.network.rank], np.int8),
        smartphone=np.array([terminal.smartphone], bool),
        os=np.array([-1 if terminal.os is None else OSES.index(terminal.os)], np.int8),
        attributes=AttributeTable.from_mappings([customer.attributes], 1, kinds),
    )


@hookimpl
def register_strategies(config: Config, catalog: Catalog) -> list[Strategy]:
    return [build_strategy(PropensityStrategy, config, catalog)]
