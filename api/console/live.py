"""The live view: requests per second, latency percentiles, plugin faults and the feedback
funnel (impression -> click -> accept) per channel and moment, refreshed in the browser.

The numbers are the ones ``/metrics`` exposes (every worker's, pooled, under ``recommender
serve``), read as cumulative counters; the page polls :func:`data` and draws the change between
two polls, so a rate or a percentile covers the last few seconds whichever worker answers. The
funnel is counted from the store's feedback log over a chosen window.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from flask import Blueprint, g, jsonify, render_template, request
from prometheus_client import CollectorRegistry, multiprocess
from werkzeug.wrappers import Response

from recommender.context import CHANNEL_IDS, Moment

from ..state import ServiceState, service
from .i18n import gettext, term

#: Feedback actions in funnel order.
FUNNEL_ACTIONS = ("impression", "click", "accept", "dismiss")

blp = Blueprint("live", __name__, url_prefix="/live")

#: Only the API's own endpoints count as traffic (not the console, /metrics or probes).
API_PREFIX = "/v1/"
REQUESTS = "recommender_http_requests_total"
LATENCY = "recommender_http_request_duration_seconds"
FAULTS = "recommender_plugin_faults_total"
RELOADS = "recommender_model_reloads_total"
#: Funnel windows the page offers, in seconds (None: the whole log).
WINDOWS: dict[str, int | None] = {"1h": 3600, "24h": 86400, "7d": 7 * 86400,
                                   "30d": 30 * 86400, "90d": 90 * 86400, "all": None}
DEFAULT_WINDOW = "7d"
#: Seconds between the page's polls, and how long a counted funnel is reused.
POLL_SECONDS = 2.0
FUNNEL_TTL_SECONDS = 2.0
QUANTILES = (0.5, 0.95, 0.99)


def registry(state: ServiceState) -> Any:
    """Where the samples are: every worker's files under ``recommender serve``, else this
    app's own registry (as ``/metrics`` reads them)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        pooled = CollectorRegistry()
        multiprocess.MultiProcessCollector(pooled)
        return pooled
    return state.metrics.registry


def quantile(buckets: Sequence[tuple[float, float]], q: float) -> float | None:
    """The ``q`` quantile of a histogram given as cumulative ``(upper bound, count)`` pairs,
    interpolated within its bucket as Prometheus' ``histogram_quantile`` does; None when
    empty. A quantile in the open last bucket is the highest finite bound."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    total = ordered[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def read(samples: Iterable[Any]) -> dict[str, Any]:
    """The cumulative numbers the page needs from metric families (``registry.collect()``)."""
    by_endpoint: dict[str, float] = {}
    buckets: dict[float, float] = {}
    latency_count = latency_sum = 0.0
    faults: dict[tuple[str, str], float] = {}
    reloads: dict[str, float] = {}
    for family in samples:
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            endpoint = labels.get("endpoint", "")
            if name == REQUESTS and endpoint.startswith(API_PREFIX):
                by_endpoint[endpoint] = by_endpoint.get(endpoint, 0.0) + value
            elif name == LATENCY + "_bucket" and endpoint.startswith(API_PREFIX):
                bound = float(labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + value
            elif name == LATENCY + "_count" and endpoint.startswith(API_PREFIX):
                latency_count += value
            elif name == LATENCY + "_sum" and endpoint.startswith(API_PREFIX):
                latency_sum += value
            elif name == FAULTS:
                key = (labels.get("plugin", ""), labels.get("stage", ""))
                faults[key] = faults.get(key, 0.0) + value
            elif name == RELOADS:
                reloads[labels.get("outcome", "")] = reloads.get(labels.get("outcome", ""),
                                                                 0.0) + value
    pairs = sorted(buckets.items())
    return {
        "requests": {"total": sum(by_endpoint.values()),
                     "by_endpoint": dict(sorted(by_endpoint.items()))},
        "latency": {"buckets": [[_bound(b), c] for b, c in pairs], "count": latency_count,
                    "sum": latency_sum,
                    **{f"p{round(q * 100)}": quantile(pairs, q) for q in QUANTILES}},
        "faults": [{"plugin": p, "stage": s, "count": c} for (p, s), c in sorted(faults.items())],
        "reloads": reloads,
    }


def _bound(value: float) -> float | str:
    return "+Inf" if math.isinf(value) else value


_funnels: dict[tuple[str, str], tuple[float, list[dict[str, Any]]]] = {}
_funnels_lock = threading.Lock()


def funnel(state: ServiceState, window: str, now: float) -> list[dict[str, Any]]:
    """Feedback counts per channel and moment over ``window`` (counted at most every
    :data:`FUNNEL_TTL_SECONDS` per process, however many pages poll)."""
    store = state.slot.engine.store
    key = (str(store.path) if store is not None else "", window)
    with _funnels_lock:
        cached = _funnels.get(key)
        if cached is not None and now - cached[0] < FUNNEL_TTL_SECONDS:
            return cached[1]
    seconds = WINDOWS[window]
    since = 0 if seconds is None else int(now) - seconds
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for (channel, moment, action), count in (
            store.feedback_counts(since) if store is not None else {}).items():
        counts.setdefault((channel, moment), dict.fromkeys(FUNNEL_ACTIONS, 0))[action] = count
    rows = [{"channel": channel, "moment": moment, **actions}
            for (channel, moment), actions in sorted(counts.items())]
    with _funnels_lock:
        _funnels[key] = (now, rows)
    return rows


def snapshot(state: ServiceState, window: str) -> dict[str, Any]:
    """Everything the live page shows, as of now."""
    now = time.time()
    out = read(registry(state).collect())
    out.update(t=now, window=window, funnel=funnel(state, window, now),
               model_version=state.slot.engine.model_version)
    return out


def chosen_window() -> str:
    window = request.args.get("window", DEFAULT_WINDOW)
    return window if window in WINDOWS else DEFAULT_WINDOW


@blp.route("/")
def index() -> str:
    window = chosen_window()
    locale = g.locale
    names = {"channel": {c: term(locale, "channel", c) for c in CHANNEL_IDS},
             "moment": {m.value: gettext(locale, m.value) for m in Moment}}
    return render_template("live.html", data=snapshot(service(), window), window=window,
                           windows=list(WINDOWS), poll=POLL_SECONDS, names=names)


@blp.route("/data")
def data() -> Response:
    """The numbers of :func:`snapshot` as JSON, for the page's charts."""
    return jsonify(snapshot(service(), chosen_window()))
