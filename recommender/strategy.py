"""The strategy contract every built-in and third-party strategy implements.

A strategy proposes scored candidates with a human-readable reason; the engine merges them,
removes what the customer cannot take and trims to the channel's slots. Strategies never need
to filter eligibility themselves, but may skip obvious misses (e.g. held products) to save work.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from .context import Moment, RequestContext

if TYPE_CHECKING:
    from .training import TrainingData


@dataclass(frozen=True, slots=True)
class Candidate:
    """One proposed business: its id, a score (higher is better) and why it was proposed."""

    product: str
    score: float
    reason: str

    def __post_init__(self) -> None:
        if not isinstance(self.product, str) or not self.product:
            raise TypeError(f"Candidate.product must be a non-empty str, got {self.product!r}")
        if isinstance(self.score, bool) or not isinstance(self.score, int | float):
            raise TypeError(f"Candidate.score must be a number, got {self.score!r}")
        if not math.isfinite(self.score):
            raise ValueError(f"Candidate.score must be finite, got {self.score!r}")
        if not isinstance(self.reason, str):
            raise TypeError(f"Candidate.reason must be a str, got {self.reason!r}")


ALL_MOMENTS = frozenset(Moment)


class Strategy(ABC):
    """Base class for recommendation strategies.

    Subclasses set ``name`` (unique across plugins) and ``moments`` (those they serve), and
    implement ``candidates``. Learned strategies also implement ``fit``, ``save`` and ``load``
    and report ``is_fitted``. Settings come from the ``[strategies.<name>]`` table of the
    workspace configuration and are passed to the constructor by the registering plugin.
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

    def fit(self, data: TrainingData) -> Self:
        """Learn from the training data; returns ``self``. Stateless strategies keep this."""
        return self

    @property
    def is_fitted(self) -> bool:
        """Whether the strategy can serve (has learned, or needs no learning)."""
        return True

    @abstractmethod
    def candidates(self, context: RequestContext, n: int) -> list[Candidate]:
        """Return up to ``n`` candidates for ``context``, best first.

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
    part = np.argpartition(-masked, count - 1)[:count] if count < len(masked) else \
        np.arange(len(masked))
    order = np.lexsort((part, -masked[part]))
    return part[order][:count]
