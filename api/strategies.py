"""``GET /v1/strategies``: which strategies are registered, by whom, and whether they serve."""

from __future__ import annotations

from typing import Any

from recommender.context import CHANNEL_IDS, Moment

from .schemas import StrategyListSchema
from .state import Blueprint, service

blp = Blueprint("strategies", __name__, url_prefix="/v1",
                description="The registered strategies and their status.")


@blp.route("/strategies", methods=["GET"])
@blp.response(200, StrategyListSchema)
def list_strategies() -> dict[str, Any]:
    """Every registered strategy: its plugin, moments, blend weights and status.

    ``ready`` strategies serve; ``untrained`` ones are enabled but have no model loaded;
    ``disabled`` ones have no weight at any moment or channel. ``weights`` are the
    ``[blend.<moment>]`` tables'; ``effective_weights`` what each channel applies, its own
    ``[blend.<moment>.<channel>]`` table where there is one.
    """
    engine = service().slot.engine
    enabled = engine.config.enabled_strategies()
    out = []
    for name, strategy in sorted(engine.strategies.items()):
        weights = {m.value: float(engine.config.blend.get(m.value, {}).get(name, 0.0))
                   for m in Moment}
        status = ("disabled" if name not in enabled
                  else "ready" if strategy.is_fitted else "untrained")
        effective = {m.value: {c: float(engine.config.weights(m, c).get(name, 0.0))
                               for c in CHANNEL_IDS} for m in Moment}
        out.append({"name": name, "plugin": engine.sources[name],
                    "moments": [m.value for m in Moment if strategy.serves(m)],
                    "model_version": engine.model_version, "status": status,
                    "weights": weights, "effective_weights": effective})
    return {"model_version": engine.model_version, "strategies": out}
