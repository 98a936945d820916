"""The engine's thread pool (``recommender.workers``): futures as usual, and a hung plugin
call never keeps the process from exiting."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

from recommender.workers import DaemonPool


def test_results_and_errors_come_back_through_futures() -> None:
    pool = DaemonPool(2)
    try:
        assert pool.submit(sum, [1, 2, 3]).result(timeout=5) == 6
        with pytest.raises(ZeroDivisionError):
            pool.submit(lambda: 1 / 0).result(timeout=5)
        assert pool.submit(dict, a=1).result(timeout=5) == {"a": 1}
    finally:
        pool.shutdown()


def test_threads_are_reused_and_bounded() -> None:
    pool = DaemonPool(3)
    try:
        for _ in range(50):
            pool.submit(time.sleep, 0).result(timeout=5)
        assert pool.threads == 1  # one idle thread serves calls one after another
        release = threading.Event()
        blocked = [pool.submit(release.wait, 5) for _ in range(5)]
        time.sleep(0.05)
        assert pool.threads == 3
        release.set()
        assert all(f.result(timeout=5) for f in blocked)  # queued calls ran once freed
    finally:
        pool.shutdown()


def test_shutdown_cancels_what_has_not_started_and_refuses_more() -> None:
    pool = DaemonPool(1)
    release = threading.Event()
    running = pool.submit(release.wait, 5)
    queued = pool.submit(time.sleep, 0)
    time.sleep(0.05)
    pool.shutdown()
    assert queued.cancelled()
    with pytest.raises(RuntimeError, match="cannot submit after shutdown"):
        pool.submit(time.sleep, 0)
    release.set()
    assert running.result(timeout=5) is True
    with pytest.raises(ValueError, match="at least 1"):
        DaemonPool(0)


def test_a_run_with_a_hung_plugin_exits_without_waiting_for_it(sample_workspace) -> None:
    """A CLI-like run: one recommendation with a strategy that hangs for a minute, then
    exit. The request returns at its budget, and the process exits at once."""
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from recommender import Config, RecommendationRequest, Strategy, hookimpl
        from recommender.plugin_manager import make_plugin_manager
        from recommender.workspace import Workspace

        class Hung(Strategy):
            name = "hung"
            def candidates(self, context, n):
                time.sleep(60)
                return []

        class Plugin:
            @hookimpl
            def register_strategies(self):
                return [Hung()]

        ws = Workspace(Path({str(sample_workspace.root)!r}))
        config = Config.from_dict({{"blend": {{"query": {{"hung": 1.0, "popularity": 1.0}}}},
                                   "engine": {{"strategy_timeout_ms": 200}}}}, root=ws.root)
        pm = make_plugin_manager(extra_plugins=[("hung", Plugin())], load_entry_points=False)
        with ws.engine(plugin_manager=pm, config=config, require_models=True) as engine:
            customer = engine.store.customer_ids(1)[0]
            result = engine.recommend(RecommendationRequest(customer, "app", "query",
                                                            debug=True))
            print([e["stage"] for e in result.errors if e["strategy"] == "hung"])
    """)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=50)
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['timeout']"
    assert elapsed < 30, elapsed  # not the 60 s the plugin sleeps
