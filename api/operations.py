"""Probes and metrics for the platform running the service: liveness, readiness, Prometheus."""

from __future__ import annotations

from typing import Any

from flask import Response

from .problems import problem
from .schemas import HealthSchema, ReadinessSchema
from .state import Blueprint, service

blp = Blueprint("operations", __name__, description="Liveness, readiness and metrics.")


@blp.route("/healthz", methods=["GET"])
@blp.response(200, HealthSchema)
def healthz() -> dict[str, Any]:
    """Alive: the process answers. Restart it if this fails."""
    return {"status": "ok"}


@blp.route("/readyz", methods=["GET"])
@blp.response(200, ReadinessSchema)
@blp.alt_response(503, description="Not ready; ``checks`` says what failed.")
def readyz() -> Any:
    """Ready: a model is loaded for every enabled strategy and the store answers.

    Route traffic here only while this answers 200.
    """
    engine = service().slot.engine
    checks: dict[str, str] = {}
    try:
        if engine.store is None:
            raise RuntimeError("no store")
        engine.store.db.execute("SELECT 1").fetchone()
        checks["store"] = "ok"
    except Exception as e:
        checks["store"] = f"unreachable: {type(e).__name__}"
    enabled = engine.config.enabled_strategies()
    untrained = sorted(name for name, s in engine.strategies.items()
                       if name in enabled and not s.is_fitted)
    checks["models"] = ("ok" if not untrained and engine.model_version != "untrained"
                        else "not loaded: " + (", ".join(untrained) or "no model version"))
    if all(v == "ok" for v in checks.values()):
        return {"status": "ready", "model_version": engine.model_version, "checks": checks}
    return problem(503, "not ready: " + "; ".join(f"{k} {v}" for k, v in checks.items()
                                                 if v != "ok"), checks=checks)


@blp.route("/metrics", methods=["GET"])
@blp.doc(responses={"200": {"description": "Prometheus text exposition format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}}}})
def metrics() -> Response:
    """Prometheus metrics: requests and latency by endpoint and status, plugin faults."""
    body, headers = service().metrics.exposition()
    return Response(body, headers=headers)
