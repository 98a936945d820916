"""Prometheus metrics: requests and latency by endpoint and status, plugin faults, feedback,
and per experiment arm the requests, suggestions and feedback served.

Every label value comes from a bounded set (the app's routes, known methods and statuses,
plugin names, the experiment and arm names of ``config.toml``), never from raw client input,
so no client can grow the number of series: feedback naming an experiment or arm that is not
configured is stored but not counted per arm.

Each app gets its own registry. Under a multi-worker server (``recommender serve`` sets
``PROMETHEUS_MULTIPROC_DIR``) every worker writes its samples to that folder and a scrape of any
worker reports the sum over all of them, as prometheus_client documents for gunicorn.
"""

from __future__ import annotations

import os
import time
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from recommender.contact_policy import RULES as POLICY_RULES
from recommender.hookspecs import hookimpl

#: Label values come only from these sets: a request's method or status is client input.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
KNOWN_STATUSES = frozenset(str(s.value) for s in HTTPStatus)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0)


class Metrics:
    """The app's metrics, and a plugin that counts every fault the engine reports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("recommender_http_requests_total", "HTTP requests answered.",
                                ["endpoint", "method", "status"], registry=r)
        self.latency = Histogram("recommender_http_request_duration_seconds",
                                 "Time to answer an HTTP request.", ["endpoint", "status"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.faults = Counter("recommender_plugin_faults_total",
                              "Strategy and plugin faults: errors, timeouts, bad output.",
                              ["plugin", "stage"], registry=r)
        self.feedback = Counter("recommender_feedback_events_total",
                                "Feedback events received, by action and outcome.",
                                ["action", "outcome"], registry=r)
        self.reloads = Counter("recommender_model_reloads_total", "Model reload attempts.",
                               ["outcome"], registry=r)
        self.policy = Counter("recommender_contact_policy_exclusions_total",
                              "Suggestions the contact policy held back, by rule.", ["rule"],
                              registry=r)
        self.model = Gauge("recommender_model_info", "The model version served (value 1).",
                           ["version"], registry=r, multiprocess_mode="livemax")
        self.experiment_requests = Counter(
            "recommender_experiment_requests_total",
            "Recommendation requests served in an experiment, by experiment and arm.",
            ["experiment", "arm"], registry=r)
        self.experiment_suggestions = Counter(
            "recommender_experiment_suggestions_total",
            "Suggestions served in an experiment, by experiment and arm.",
            ["experiment", "arm"], registry=r)
        self.experiment_feedback = Counter(
            "recommender_experiment_feedback_total",
            "Feedback events stored for a configured experiment arm, by action.",
            ["experiment", "arm", "action"], registry=r)

    # -- the plugin side ----------------------------------------------------------------------

    @hookimpl
    def plugin_error(self, plugin_name: str, stage: str, error: BaseException) -> None:
        self.faults.labels(plugin=plugin_name, stage=stage).inc()

    @hookimpl
    def recommendation_served(self, context: Any, recommendation: Any) -> None:
        for item in recommendation.excluded:
            if item.code in POLICY_RULES:
                self.policy.labels(rule=item.code).inc()
        experiment = getattr(recommendation, "experiment", None)
        if experiment is not None:  # names from the engine's validated configuration
            arm = recommendation.arm
            self.experiment_requests.labels(experiment=experiment, arm=arm).inc()
            self.experiment_suggestions.labels(experiment=experiment, arm=arm).inc(
                len(recommendation.suggestions))

    # -- the Flask side -----------------------------------------------------------------------

    def init_app(self, app: Flask) -> None:
        app.before_request(self._start)
        app.after_request(self._record)

    def set_model(self, previous: str | None, version: str) -> None:
        if previous is not None and previous != version:
            self.model.remove(previous)
        self.model.labels(version=version).set(1)

    def _start(self) -> None:
        g.metrics_started = time.perf_counter()

    def _record(self, response: Response) -> Response:
        started = g.get("metrics_started")
        if started is not None:
            endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
            method = request.method if request.method in KNOWN_METHODS else "other"
            status = str(response.status_code)
            if status not in KNOWN_STATUSES:
                status = f"{status[:1]}xx"
            self.requests.labels(endpoint=endpoint, method=method, status=status).inc()
            self.latency.labels(endpoint=endpoint, status=status).observe(
                time.perf_counter() - started)
        return response

    def exposition(self) -> tuple[bytes, dict[str, Any]]:
        """The text a scrape gets: this process's registry, or all workers' when shared."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), {"Content-Type": CONTENT_TYPE_LATEST}
        return generate_latest(self.registry), {"Content-Type": CONTENT_TYPE_LATEST}
