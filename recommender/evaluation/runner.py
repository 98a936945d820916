"""Run strategies and blends through the engine, as served, and score them.

Each strategy is fitted once on the training data; each strategy or blend is then asked, for
every evaluated customer, through ``Engine.recommend``: the same eligibility filtering, moment
and channel handling as in production. Popularity is always included as the baseline, twice:
as configured (time-decayed) and as plain counts of orders (``popularity_count``), so that no
ratio against a baseline rests on the decay alone. On public data, which comes with no
configuration, the settings the run does not fix are first chosen by validation inside the
training data (``tuning``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pluggy

from ..config import Config
from ..context import CHANNEL_IDS, Moment
from ..engine import Engine
from ..plugin_manager import make_plugin_manager
from . import metrics as m
from .data import EvalData
from .holdout import context_for
from .splits import Split, make_split
from .tuning import SEARCHES, Tuned
from .tuning import tune as tune_settings

BASELINE = "popularity"
#: The plain-count baseline: the popularity strategy without time decay.
COUNT_BASELINE = "popularity_count"
SERVABLE_MOMENTS = (Moment.QUERY, Moment.SUCCESS)


def offline_tables(top_k: int, most_held: int) -> dict[str, Any]:
    """The ``[engine]`` and ``[channels]`` tables of an offline run: lists as long as the cut,
    no call cut off and none sent to the pool for being slow (no live request to protect,
    and a warning per slow call would only bury the report)."""
    return {"engine": {"strategy_timeout_ms": 600_000, "context_timeout_ms": 600_000,
                       "fast_strategy_ms": 600_000, "candidate_pool": max(50, top_k),
                       "workers": 2, "max_holdings": max(500, most_held)},
            "channels": dict.fromkeys(CHANNEL_IDS, min(top_k, 100))}


@dataclass(frozen=True)
class Blend:
    """A strategy, or several with weights: ``cf``, ``cf+association``, ``cf:0.7+association:0.3``.
    """

    name: str
    weights: Mapping[str, float]

    @classmethod
    def parse(cls, spec: str) -> Blend:
        weights: dict[str, float] = {}
        for part in spec.split("+"):
            name, _, weight = part.strip().partition(":")
            if not name:
                raise ValueError(f"empty strategy name in {spec!r}")
            try:
                weights[name] = float(weight) if weight else 1.0
            except ValueError:
                raise ValueError(f"weight of {name!r} in {spec!r} is not a number") from None
            if weights[name] <= 0:
                raise ValueError(f"weight of {name!r} in {spec!r} must be positive")
        return cls(spec.strip(), weights)


@dataclass
class EvaluationResult:
    """Scores per strategy or blend, with their protocol, intervals, slices and timings."""

    protocol: dict[str, Any]
    ks: tuple[int, ...]
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    intervals: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    slices: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    fitted: dict[str, dict[str, Any]] = field(default_factory=dict)
    online: list[dict[str, Any]] = field(default_factory=list)
    #: What a reader must know to trust the numbers: settings changed to fit, empty rows.
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, dict[str, float]]:
        """Each strategy name -> its metrics by name and k (``ndcg@10``), flat: intervals as
        ``ndcg@10_ci_low``/``_ci_high``, slices as ``ndcg@10[channel=app]``. Each experiment
        arm of the online funnel is an entry ``experiment:<name>/<arm>`` (see ``arm_json``)."""
        out: dict[str, dict[str, float]] = {}
        for name, values in self.metrics.items():
            row = dict(values)
            for key, (low, high) in self.intervals.get(name, {}).items():
                row[f"{key}_ci_low"], row[f"{key}_ci_high"] = low, high
            for slice_name, slice_values in self.slices.get(name, {}).items():
                for key, value in slice_values.items():
                    row[f"{key}[{slice_name}]"] = value
            for key, value in self.fitted.get(name, {}).items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    row[f"fit_{key}"] = value
            out[name] = row
        for row in self.online:
            if row["by"] == "strategy" and row["value"] in out:
                out[row["value"]]["online_ctr"] = row["ctr"]
                out[row["value"]]["online_acceptance_rate"] = row["acceptance_rate"]
            elif row["by"] == "arm":
                out[f"experiment:{row['value']}"] = arm_json(row)
        return out


def arm_json(row: Mapping[str, Any]) -> dict[str, float]:
    """An experiment arm's funnel row as ``to_json`` flattens it: ``online_<count>``,
    ``online_ctr`` with ``_ci_low``/``_ci_high`` and, except for the baseline (first) arm,
    ``_p_value`` against it; the same for ``online_acceptance_rate``."""
    out: dict[str, float] = {f"online_{key}": row[key] for key in (
        "impressions", "clicks", "accepts", "dismissals", "customers")}
    for rate in ("ctr", "acceptance_rate"):
        out[f"online_{rate}"] = row[rate]
        out[f"online_{rate}_ci_low"], out[f"online_{rate}_ci_high"] = row[f"{rate}_ci"]
        if row.get(f"{rate}_p_value") is not None:
            out[f"online_{rate}_p_value"] = row[f"{rate}_p_value"]
    return out


def evaluate(source: EvalData, split: Split, strategies: Iterable[str], *,
             ks: Sequence[int] = (10,), moments: Sequence[str] = ("query",),
             bootstrap_samples: int = 1000, seed: int = 0, max_users: int | None = None,
             plugin_manager: pluggy.PluginManager | None = None,
             progress: Callable[[str, int, int], None] | None = None,
             tune: bool | None = None) -> EvaluationResult:
    """Fit, recommend through the engine, and score every strategy or blend in ``strategies``.

    :param ks: cut-offs; recommendations are asked for ``max(ks)``.
    :param moments: the moments to ask at (``query`` and/or ``success``); the first is the
        headline, the others appear as slices.
    :param max_users: evaluate a seeded random sample of at most this many customers.
    :param progress: called with (stage, done, total) on long loops.
    :param tune: choose the settings the configuration does not fix by validation inside the
        training data (``tuning``); default: for public data, which comes with no configuration.
    """
    blends = [Blend.parse(s) for s in strategies]
    for baseline in (COUNT_BASELINE, BASELINE):
        if baseline not in {b.name for b in blends}:
            blends.insert(0, Blend(baseline, {baseline: 1.0}))
    ks = tuple(sorted(set(int(k) for k in ks)))
    if not ks or ks[0] < 1:
        raise ValueError(f"k must be at least 1, got {ks}")
    moment_list = [Moment(x) for x in moments]
    for moment in moment_list:
        if moment not in SERVABLE_MOMENTS:
            raise ValueError(f"moment {moment} needs the business being acted on; evaluate at "
                             f"{' or '.join(SERVABLE_MOMENTS)}")
    top_k = max(ks)
    train = split.train
    users, relevant, channels = split.users, split.relevant, split.channel
    if max_users is not None and len(users) > max_users:
        pick = np.sort(np.random.default_rng(seed).choice(len(users), max_users, replace=False))
        users, relevant, channels = users[pick], relevant[pick], channels[pick]

    pm = plugin_manager or make_plugin_manager()
    base = source.config
    raw = {"strategies": dict(base.raw.get("strategies", {})),
           **offline_tables(top_k, int(np.diff(train.holdings.indptr).max(initial=0)))}
    # The final ranking is evaluated as served: the workspace's arbitration and exploration.
    for section in ("arbitration", "exploration"):
        if section in base.raw:
            raw[section] = base.raw[section]
    needed = sorted({name for b in blends for name in b.weights})
    tuned = _tune(source, split, needed, raw, pm, seed, progress) if (
        source.tune_settings if tune is None else tune) else []
    engine = Engine(train.catalog, Config.from_dict(raw, root=base.root), store=None,
                    plugin_manager=pm, model_version="evaluation")
    result = EvaluationResult(protocol={}, ks=ks)
    result.notes += [t.note() for t in tuned]
    try:
        if COUNT_BASELINE not in engine.strategies and BASELINE in engine.strategies:
            engine.strategies[COUNT_BASELINE] = _count_baseline(engine.strategies[BASELINE],
                                                                train)
        unknown = [n for n in needed if n not in engine.strategies]
        if unknown:
            raise ValueError(f"unknown strategy {unknown[0]!r}; registered: "
                             f"{', '.join(sorted(engine.strategies))}")
        for name in needed:
            started = time.perf_counter()
            engine.strategies[name].fit(train)
            result.fitted[name] = {"seconds": round(time.perf_counter() - started, 3),
                                   **engine.strategies[name].describe()}
            if result.fitted[name].get("notice"):
                result.notes.append(f"{name}: {result.fitted[name]['notice']}")
        popularity = np.asarray((train.holdings > 0).sum(axis=0)).ravel() / max(
            train.n_customers, 1)
        orderable = int(train.catalog.orderable.sum())
        segments = None if source.segments is None else source.segments[users]
        n_rel = np.diff(relevant.indptr)
        for blend in blends:
            for moment in moment_list:
                config = Config.from_dict({**raw, "blend": {moment.value: dict(blend.weights)}},
                                          root=base.root)
                engine.config = config
                recommended, violations = _recommend_all(
                    engine, train, users, channels, moment, top_k,
                    lambda done, total, b=blend.name, mo=moment: progress and progress(
                        f"{b} @ {mo}", done, total))
                if len(users) and not (recommended >= 0).any():
                    result.notes.append(_empty_note(blend, moment, engine))
                hits = m.hit_matrix(recommended, relevant)
                scores = {f"{metric}@{k}": values for k in ks
                          for metric, values in m.per_user(hits, n_rel, k).items()}
                summary = {key: float(v.mean()) if len(v) else 0.0
                           for key, v in scores.items()}
                for k in ks:
                    summary[f"coverage@{k}"] = m.coverage(recommended, k, orderable)
                    summary[f"popularity_bias@{k}"] = m.popularity_bias(recommended, k,
                                                                        popularity)
                    served = int((recommended[:, :k] >= 0).sum())
                    summary[f"eligibility_violations@{k}"] = (
                        float(violations[:, :k].sum()) / served if served else 0.0)
                if moment == moment_list[0]:
                    result.metrics[blend.name] = summary
                    result.intervals[blend.name] = m.bootstrap(
                        scores, samples=bootstrap_samples, seed=seed)
                    result.slices[blend.name] = _slices(scores, channels, segments, ks)
                else:
                    result.slices.setdefault(blend.name, {})[f"moment={moment}"] = summary
        result.protocol = {
            "source": source.source, "split": split.protocol,
            "orders": source.n_orders, "held_out_orders": split.held_out_orders,
            "customers_evaluated": int(len(users)),
            "customers_skipped_cold": split.cold_users,
            "targets": int(relevant.nnz), "catalog": train.n_products,
            "moments": [str(x) for x in moment_list], "k": list(ks),
            "served_as": "Engine.recommend: eligibility filtered, held businesses excluded, "
                         "channel of the customer's first held-out order",
            "bootstrap": f"{bootstrap_samples} resamples of customers, 95% percentile interval",
            "skipped_input_rows": source.skipped_rows,
        }
    finally:
        engine.close()
    return result


def _tune(source: EvalData, split: Split, needed: Sequence[str], raw: dict[str, Any],
          pm: pluggy.PluginManager, seed: int,
          progress: Callable[[str, int, int], None] | None) -> list[Tuned]:
    """Choose, for each tunable strategy asked, the settings ``raw`` does not fix, and write
    them into ``raw``'s strategy tables."""
    names = [n for n in needed if n in SEARCHES]
    if not names or not split.recipe:
        return []
    probe = Engine(split.train.catalog, Config.from_dict(raw, root=source.config.root),
                   store=None, plugin_manager=pm, model_version="tuning")
    try:
        classes = {n: type(probe.strategies[n]) for n in names if n in probe.strategies}
    finally:
        probe.close()
    recipe = {**split.recipe, "seed": int(split.recipe["seed"]) + 1}
    out = []
    stage = f"tuning {', '.join(classes)}"
    for i, name in enumerate(classes):
        if progress:
            progress(stage, i, len(classes))
        fixed = dict(raw["strategies"].get(name, {}))
        found = tune_settings(classes[name], name, fixed, split,
                              lambda data: make_split(data, **recipe), seed=seed)
        if found is not None:
            raw["strategies"][name] = {**fixed, **found.chosen}
            out.append(found)
    if progress and classes:
        progress(stage, len(classes), len(classes))
    return out


def _count_baseline(popularity: Any, train: Any) -> Any:
    """The popularity strategy with the same settings but no time decay: plain counts."""
    settings = {key: value for key, value in popularity.describe().items()
                if key != "half_life_days"}
    strategy = type(popularity)(train.catalog, **settings, half_life_days=None)
    strategy.name = COUNT_BASELINE
    return strategy


def _empty_note(blend: Blend, moment: Moment, engine: Engine) -> str:
    """Why a row of zeros is not a measurement."""
    idle = [name for name in blend.weights if not engine.strategies[name].serves(moment)]
    if idle:
        why = f"{', '.join(idle)} does not serve the {moment} moment"
    else:
        why = ("it needs something offline contexts do not carry (item_similarity needs the "
               "business being acted on, e.g. the product page a query comes from)")
    return (f"{blend.name} served nothing to any customer at {moment}: its zeros are not a "
            f"measurement; {why}")


def _recommend_all(engine: Engine, train: Any, users: np.ndarray, channels: np.ndarray,
                   moment: Moment, top_k: int, progress: Callable[[int, int], Any]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Ask the engine for every customer; -1 pads short lists. Also flags, per slot, whether
    the catalog says the customer could not take it (must never happen): on no channel, or
    not on the calling one without a hand-off to one that can."""
    index = train.catalog.index
    recommended = np.full((len(users), top_k), -1, dtype=np.int64)
    violations = np.zeros((len(users), top_k), dtype=bool)
    step = max(1, len(users) // 100)
    for row, (user, channel) in enumerate(zip(users.tolist(), channels.tolist(), strict=True)):
        context = context_for(train, user, moment=moment, channel=CHANNEL_IDS[channel],
                              slots=min(top_k, 100))
        shown = engine.recommend(context).suggestions[:top_k]
        served = [index[s.product] for s in shown]
        recommended[row, :len(served)] = served
        if served:
            anywhere = engine.catalog.exclusions(context, channels=False)[served] != 0
            here = engine.catalog.exclusions(context)[served] == 0
            handed = np.array([s.handoff is not None for s in shown], dtype=bool)
            violations[row, :len(served)] = anywhere | (~here & ~handed)
        if row % step == 0:
            progress(row, len(users))
    progress(len(users), len(users))
    return recommended, violations


def _slices(scores: Mapping[str, np.ndarray], channels: np.ndarray,
            segments: np.ndarray | None, ks: Sequence[int]) -> dict[str, dict[str, float]]:
    """Headline metrics per channel and per customer segment."""
    out: dict[str, dict[str, float]] = {}
    groups: list[tuple[str, np.ndarray]] = [
        (f"channel={CHANNEL_IDS[c]}", channels == c) for c in np.unique(channels)]
    if segments is not None:
        groups += [(f"segment={s}", segments == s) for s in sorted(set(segments.tolist()))]
    keys = [f"{metric}@{k}" for k in ks for metric in ("ndcg", "recall", "hit_rate")]
    for name, mask in groups:
        if mask.sum() == 0:
            continue
        out[name] = {key: float(scores[key][mask].mean()) for key in keys}
        out[name]["customers"] = float(mask.sum())
    return out


__all__ = ["BASELINE", "COUNT_BASELINE", "Blend", "EvaluationResult", "arm_json", "evaluate"]
