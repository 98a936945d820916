"""``recommender serve``: the app under gunicorn, the way to run it in production.

Each worker process builds its own app (models, store connections); gthread workers answer
``threads`` requests at a time each. Metrics from all workers are pooled through a shared
``PROMETHEUS_MULTIPROC_DIR`` so a scrape of any worker sees the whole server.
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from .settings import ServerSettings


def _child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


class GunicornServer(BaseApplication):  # type: ignore[misc]
    """Runs the app in gunicorn workers; each builds what the store says is served.

    Workers get the settings the arbiter read at start and build from the published
    snapshot, so a worker that restarts does not read files changed on disk meanwhile.
    """

    def __init__(self, settings: ServerSettings, options: dict[str, Any]):
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from . import create_app

        return create_app(settings=self.settings, follow_published=True)


def serve(settings: ServerSettings, *, bind: str, workers: int, threads: int, timeout: int,
          access_log: bool = True) -> None:
    """Run the server in the foreground until SIGTERM/SIGINT (graceful shutdown).

    ``PROMETHEUS_MULTIPROC_DIR`` must be set before prometheus_client is first imported, so
    the caller sets it (see :func:`shared_metrics_dir`) before importing this package.
    """
    GunicornServer(settings, {
        "bind": bind, "workers": workers, "threads": threads,
        "worker_class": "gthread", "timeout": timeout, "graceful_timeout": timeout,
        "keepalive": 5, "accesslog": "-" if access_log else None,
        "child_exit": _child_exit, "proc_name": "recommender",
    }).run()
