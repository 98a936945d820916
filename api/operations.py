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
    """Ready: the store answers, this worker serves the published model and files, and a
    model is loaded for every enabled strategy.

    Route traffic here only while this answers 200. A worker that serves another model
    version or other files than the ones published to every worker (it could not follow a
    reload, say) is not ready, and ``checks.serving`` says what it serves and why.
    """
    slot = service().slot
    slot.follow()
    engine = slot.engine
    checks: dict[str, str] = {}
    record = None
    try:
        record = slot.published()
        checks["store"] = "ok"
    except Exception as e:
        checks["store"] = f"unreachable: {type(e).__name__}"
    own = slot.record
    if slot.problem:
        checks["serving"] = slot.problem
    elif record is not None and record.key != own.key:
        checks["serving"] = (f"serves model {own.version} (files {own.snapshot[:12]}), "
                             f"published is {record.version} (files {record.snapshot[:12]})")
    else:
        checks["serving"] = "ok"
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
