"""``recommender serve``: the app under gunicorn, the way to run it in production.

Each worker process builds its own app (models, store connections) and answers ``threads``
requests at a time. Metrics from all workers are pooled through a shared
``PROMETHEUS_MULTIPROC_DIR`` so a scrape of any worker sees the whole server.

The worker class is :class:`api.worker.BufferingThreadWorker`: it hands a thread only
complete requests, so slow clients cannot starve the server (see its module).
"""

from __future__ import annotations

import os
from typing import Any

from gunicorn.app.base import BaseApplication

from recommender.errors import ConfigError

from .settings import ServerSettings
from .worker import REQUEST_TIMEOUT, WORKER_CLASS_VARIABLE, BufferingThreadWorker, RequestLimits

#: gunicorn's default access line, plus the request id the response carries.
ACCESS_LOG_FORMAT = ('%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" '
                     'request_id=%({x-request-id}o)s')


def _child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


class GunicornServer(BaseApplication):  # type: ignore[misc]
    """Runs the app in gunicorn workers; each builds what the store says is served.

    Workers get the settings the arbiter read at start and build from the published
    snapshot, so a worker that restarts does not read files changed on disk meanwhile.
    """

    def __init__(self, settings: ServerSettings, options: dict[str, Any],
                 request_limits: RequestLimits | None = None):
        self.settings = settings
        self.options = options
        self.request_limits = request_limits or RequestLimits(
            max_body_bytes=settings.max_body_bytes)
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from . import create_app
        from .serving import settle_heap

        app = create_app(settings=self.settings, follow_published=True)
        settle_heap()
        return app


def worker_class() -> Any:
    """The worker class to run: ours, unless ``RECOMMENDER_WORKER_CLASS=gthread``."""
    name = os.environ.get(WORKER_CLASS_VARIABLE, "buffered").strip().lower() or "buffered"
    if name == "gthread":
        return "gthread"
    if name != "buffered":
        raise ConfigError("environment", WORKER_CLASS_VARIABLE,
                          f"must be 'buffered' or 'gthread' (got {name!r})")
    return BufferingThreadWorker


def serve(settings: ServerSettings, *, bind: str, workers: int, threads: int, timeout: int,
          access_log: bool = True, request_timeout: float | None = None) -> None:
    """Run the server in the foreground until SIGTERM/SIGINT (graceful shutdown).

    ``request_timeout`` (seconds for a request's header, and again for its body) defaults to
    ``settings.request_timeout`` when the settings have one, else :data:`REQUEST_TIMEOUT`.

    ``PROMETHEUS_MULTIPROC_DIR`` must be set before prometheus_client is first imported, so
    the caller sets it (see :func:`shared_metrics_dir`) before importing this package.
    """
    seconds = float(request_timeout or getattr(settings, "request_timeout", None)
                    or REQUEST_TIMEOUT)
    limits = RequestLimits(header_timeout=seconds, body_timeout=seconds,
                           max_body_bytes=settings.max_body_bytes)
    GunicornServer(settings, {
        "bind": bind, "workers": workers, "threads": threads,
        "worker_class": worker_class(), "timeout": timeout, "graceful_timeout": timeout,
        "keepalive": 5, "accesslog": "-" if access_log else None,
        "access_log_format": ACCESS_LOG_FORMAT,
        "child_exit": _child_exit, "proc_name": "recommender",
    }, limits).run()
