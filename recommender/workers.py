"""The engine's thread pool: plugin calls run here so a request can stop waiting for them.

Like ``concurrent.futures.ThreadPoolExecutor`` (same ``Future``s, threads started on demand up
to a maximum and reused), with one difference that matters for plugins: its threads are
daemon threads. The standard pool joins every thread when the interpreter exits, so one plugin
call hung past its budget would keep a finished ``recommender recommend`` (or a stopping
server worker) alive until the call returned, if ever.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

_Item = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class DaemonPool:
    """A pool of at most ``max_workers`` daemon threads running submitted calls."""

    def __init__(self, max_workers: int, name: str = "recommender-pool"):
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers
        self.name = name
        self._work: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` in a pool thread; its outcome arrives in the Future."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name}: cannot submit after shutdown")
            self._work.put((future, fn, args, kwargs))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self.max_workers:
                thread = threading.Thread(target=self._run, daemon=True,
                                          name=f"{self.name}_{next(self._numbers)}")
                thread.start()
                self._threads.append(thread)
        return future

    def _run(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            _call(*item)
            del item  # no reference to the call's arguments or result while idle
            self._idle.release()

    def shutdown(self) -> None:
        """Cancel calls not started and let idle threads end; calls still running (a hung
        plugin) are left to finish or to end with the process, never waited for."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while True:
                try:
                    item = self._work.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
            for _ in self._threads:
                self._work.put(None)

    @property
    def threads(self) -> int:
        """Threads started so far."""
        return len(self._threads)


def _call(future: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...],
          kwargs: dict[str, Any]) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = fn(*args, **kwargs)
    except BaseException as e:  # the caller gets it from the Future
        future.set_exception(e)
    else:
        future.set_result(result)
