"""The strategy contract every built-in and third-party strategy implements.

A strategy proposes scored candidates with a human-readable reason; the engine merges them,
removes what the customer cannot take and trims to the channel's slots. Strategies never need
to filter eligibility themselves, but may skip obvious misses (e.g. held products) to save work.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self, overload

from .context import Moment, RequestContext

if TYPE_CHECKING:
    from .catalog import Catalog
    from .training import TrainingData


#: A candidate's reason: the sentence, or a zero-argument callable that writes it. The engine
#: asks for the sentence only of the candidates a channel shows (a pool of 50 per strategy
#: against at most 12 slots), so a strategy whose reasons cost something passes a callable.
Reason = str | Callable[[], str]


class Candidate:
    """One proposed business: its id, a score (higher is better) and why it was proposed.

    ``reason`` may be given as a zero-argument callable; reading ``candidate.reason`` calls it
    once and keeps the sentence.
    """

    __slots__ = ("product", "score", "_reason")
    product: str
    score: float

    def __init__(self, product: str, score: float, reason: Reason):
        if not isinstance(product, str) or not product:
            raise TypeError(f"Candidate.product must be a non-empty str, got {product!r}")
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise TypeError(f"Candidate.score must be a number, got {score!r}")
        if not math.isfinite(score):
            raise ValueError(f"Candidate.score must be finite, got {score!r}")
        if not isinstance(reason, str) and not callable(reason):
            raise TypeError(f"Candidate.reason must be a str (or a callable returning one), "
                            f"got {reason!r}")
        set_ = object.__setattr__
        set_(self, "product", product)
        set_(self, "score", score)
        set_(self, "_reason", reason)

    @property
    def reason(self) -> str:
        """Why it was proposed, in the request's language."""
        reason = self._reason
        if not isinstance(reason, str):
            reason = reason()
            if not isinstance(reason, str):
                raise TypeError(f"the reason of candidate {self.product!r} is "
                                f"{type(reason).__name__}, not a str")
            object.__setattr__(self, "_reason", reason)
        return reason

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Candidate is immutable: cannot set {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Candidate):
            return NotImplemented
        return (self.product, self.score, self.reason) == (other.product, other.score,
                                                           other.reason)

    def __hash__(self) -> int:
        return hash((self.product, self.score, self.reason))

    def __repr__(self) -> str:
        return f"Candidate(product={self.product!r}, score={self.score!r}, reason={self.reason!r})"


class Candidates(Sequence[Candidate]):
    """A strategy's candidates as arrays: catalog rows and scores, best first, with the reasons
    written only for the candidates the engine shows.

    What a vectorised strategy returns instead of a list of :class:`Candidate`: the engine
    blends it without building an object per candidate. It is still a sequence of Candidate
    (for tests and offline scripts). ``reason`` is one sentence for all, or a function of the
    candidate's catalog row returning its sentence.

    :raises TypeError: for rows that are not a 1-d array of integers, or a bad ``reason``.
    :raises ValueError: for rows outside the catalog or repeated, or scores that are not
        finite or not one per row.
    """

    __slots__ = ("catalog", "rows", "scores", "_reason")

    def __init__(self, catalog: Catalog, rows: Any, scores: Any,
                 reason: str | Callable[[int], str]):
        import numpy as np

        rows = np.asarray(rows)
        scores = np.asarray(scores, dtype=np.float64)
        if rows.ndim != 1 or (len(rows) and rows.dtype.kind not in "iu"):
            raise TypeError(f"Candidates rows must be a 1-d array of catalog rows (integers), "
                            f"got {rows.dtype} of shape {rows.shape}")
        if scores.shape != rows.shape:
            raise ValueError(f"Candidates: {len(scores)} scores for {len(rows)} rows")
        if len(rows):
            if rows.min() < 0 or rows.max() >= len(catalog):
                raise ValueError(f"Candidates rows must be in [0, {len(catalog)}), got "
                                 f"{int(rows.min())} .. {int(rows.max())}")
            if not np.isfinite(scores).all():
                raise ValueError("Candidates scores must be finite")
            if len(rows) > 1:
                ordered = np.sort(rows)
                if (ordered[1:] == ordered[:-1]).any():
                    raise ValueError("Candidates rows must not repeat a business")
        if not isinstance(reason, str) and not callable(reason):
            raise TypeError(f"Candidates reason must be a str or a callable, got {reason!r}")
        self.catalog = catalog
        self.rows = rows.astype(np.int64, copy=False)
        self.scores = scores
        self._reason = reason

    def reason_of(self, row: int) -> str:
        """The reason for the business at catalog row ``row``."""
        reason = self._reason
        return reason if isinstance(reason, str) else reason(row)

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, i: int) -> Candidate: ...

    @overload
    def __getitem__(self, i: slice) -> list[Candidate]: ...

    def __getitem__(self, i: int | slice) -> Candidate | list[Candidate]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        row = int(self.rows[i])
        return Candidate(self.catalog.ids[row], float(self.scores[i]),
                         lambda: self.reason_of(row))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Candidates({list(self)!r})"


ALL_MOMENTS = frozenset(Moment)


class Strategy(ABC):
    """Base class for recommendation strategies.

    Subclasses set ``name`` (unique across plugins) and ``moments`` (those they serve), and
    implement ``candidates``. Learned strategies also implement ``fit``, ``save`` and ``load``
    and report ``is_fitted``. Settings come from the ``[strategies.<name>]`` table of the
    workspace configuration and are passed to the constructor by the registering plugin.

    ``candidates`` runs in the engine's thread pool, so a call that hangs never holds a
    request past its budget. A strategy that only computes on what it holds in memory (no
    network, database or lock) sets ``blocks = False``: once its calls are fast it runs on
    the request's own thread, without the hand-off to the pool.
    """

    name: ClassVar[str] = ""
    moments: ClassVar[frozenset[Moment]] = ALL_MOMENTS
    #: Version of what ``save`` writes: raise it when a release changes the saved state's
    #: meaning, and a model saved in another format is refused at load ("retrain") instead of
    #: being misread. Recorded per strategy in the model manifest.
    state_format: ClassVar[int] = 1
    #: A marshmallow ``Schema`` class for the ``[strategies.<name>]`` table, or None. When set,
    #: the engine checks the table with it when it is built (an unknown key or a bad value is
    #: a ConfigError naming the file and key), and ``config.strategy_settings(name,
    #: cls.settings_schema)`` gives the checked settings with defaults filled in.
    settings_schema: ClassVar[Any] = None
    #: How ``recommender train --engine spark`` fits the strategy (``recommender.spark``):
    #: ``"spark"``, on the cluster, with ``fit_spark``; ``"no_data"``, it learns nothing from
    #: customers (``fit`` gets empty training data); ``"local"``, only ``fit`` can, so the
    #: training fits it on a sample of customers (``--sample N``) or refuses, naming it.
    #: The built-in strategies' Spark fits live in ``recommender.spark.fits``.
    spark_training: ClassVar[str] = "local"
    #: Whether ``candidates`` may wait: on the network, a database, a lock, another service.
    #: Such a call runs in the engine's thread pool, so a hang never holds a request past
    #: its budget. A strategy that only computes on what it holds in memory sets False: once
    #: its calls have a record of speed (``[engine] fast_strategy_ms``) it runs on the
    #: request's own thread, which saves the hand-off to the pool (about 0.1 ms a request);
    #: a call that gets slow sends it back to the pool until it earns the record again.
    blocks: ClassVar[bool] = True

    def fit_spark(self, data: Any) -> Self:
        """Learn on Spark from ``recommender.spark.tables.SparkData`` (customers, holdings
        and events as DataFrames of positions and codes), leaving the state ``save`` writes;
        returns ``self``. Only for ``spark_training = "spark"``."""
        raise NotImplementedError(f"strategy {self.name!r} has no Spark fit")

    def fit(self, data: TrainingData) -> Self:
        """Learn from the training data; returns ``self``. Stateless strategies keep this."""
        return self

    @property
    def is_fitted(self) -> bool:
        """Whether the strategy can serve (has learned, or needs no learning)."""
        return True

    @abstractmethod
    def candidates(self, context: RequestContext, n: int) -> Sequence[Candidate]:
        """Return up to ``n`` candidates for ``context``, best first: a list of
        :class:`Candidate`, or a :class:`Candidates` built from arrays (faster to blend).

        :param context: the full TCPC context of the request, already enriched by providers;
            write reasons in ``context.locale`` (``zh-CN`` or ``en``, see ``recommender.i18n``).
        :param n: how many candidates the engine wants; return fewer when there are no more.
        :returns: candidates; ineligible ones are removed by the engine afterwards.
        """

    def save(self, directory: Path) -> None:  # noqa: B027 - stateless strategies save nothing
        """Write the learned state into ``directory`` (arrays and JSON, never pickle)."""

    def load(self, directory: Path) -> Self:
        """Read the state ``save`` wrote; returns ``self``. Raises ModelError when unusable."""
        return self

    def describe(self) -> dict[str, Any]:
        """Settings and facts worth showing in ``GET /v1/strategies`` and the model manifest."""
        return {}

    def serves(self, moment: Moment) -> bool:
        return moment in self.moments


def top_n(scores: Any, n: int, exclude: Iterable[int] = ()) -> Any:
    """Indices of the ``n`` highest positive finite scores, best first, ties by index.

    Scores of zero or below mean "no evidence" and are never returned.
    """
    import numpy as np

    scores = np.asarray(scores, dtype=np.float64).copy()
    excluded = np.fromiter(exclude, dtype=np.int64)
    if len(excluded):
        scores[excluded] = -np.inf
    valid = np.isfinite(scores) & (scores > 0)
    count = min(n, int(valid.sum()))
    if count == 0:
        return np.empty(0, dtype=np.int64)
    masked = np.where(valid, scores, -np.inf)
    if count < len(masked):  # those as high as the count-th: ties at the cut go by index too
        cut = -np.partition(-masked, count - 1)[count - 1]
        part = np.flatnonzero(masked >= cut)
    else:
        part = np.arange(len(masked))
    order = np.lexsort((part, -masked[part]))
    return part[order][:count]


def ranking(scores: Any) -> Any:
    """Indices of the positive finite ``scores``, best first, ties by index: computed once for
    a score vector that serves many requests, then cut with :func:`first_n`."""
    import numpy as np

    scores = np.asarray(scores, dtype=np.float64)
    rows = np.flatnonzero(np.isfinite(scores) & (scores > 0))
    return rows[np.lexsort((rows, -scores[rows]))]


def first_n(order: Any, n: int, exclude: Any = ()) -> Any:
    """The first ``n`` of ``order`` (a :func:`ranking`) not in ``exclude``: the same indices as
    ``top_n(scores, n, exclude)``, without a pass over every score."""
    import numpy as np

    excluded = np.asarray(exclude, dtype=np.int64)
    head = order[:n + len(excluded)]
    if 0 < len(excluded) <= 32:  # a few holdings: a comparison table beats np.isin's set-up
        head = head[(head[:, None] != excluded).all(axis=1)]
    elif len(excluded):
        head = head[~np.isin(head, excluded)]
    return head[:n]
