"""Shared by the reliability scripts: a sample workspace and a real server on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def sample_workspace(root: Path, customers: int = 2000, train: bool = True) -> Path:
    """Create (once) the seeded sample operator in ``root``; train it if asked."""
    from recommender import sampledata
    from recommender.workspace import Workspace

    ws = Workspace(root)
    if not ws.store_path.exists():
        root.mkdir(parents=True, exist_ok=True)
        sampledata.write_workspace_files(root)
        with ws.store() as store:
            sampledata.generate(store, ws.catalog(), customers=customers, seed=7)
    if train and not (ws.models_path / "CURRENT").exists():
        ws.train()
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base: str, method: str, path: str, body: Any = None, timeout: float = 30,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One request on a fresh connection: (status, parsed JSON or text)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            status, ctype, text = r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        status, ctype, text = e.code, e.headers["Content-Type"], e.read().decode()
    return status, json.loads(text) if "json" in (ctype or "") else text


class Server:
    """``recommender serve`` in a child process; ``with Server(...) as s: s.base``."""

    def __init__(self, root: Path, *, workers: int = 2, threads: int = 4,
                 env: dict[str, str] | None = None, wait_for: str = "/readyz",
                 cwd: Path | None = None):
        self.root = root
        self.cwd = cwd  # where ``python -m recommender.cli`` finds the code it runs
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "recommender.cli", "serve", "--dir", str(root),
                     "--port", str(self.port), "--workers", str(workers), "--threads",
                     str(threads), "--no-access-log"]
        self.env = {**os.environ, **(env or {})}
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.wait_for = wait_for
        self.log_path = root / "server.log"

    def __enter__(self) -> Server:
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                        env=self.env, cwd=self.cwd)
        deadline = time.monotonic() + 120
        while True:
            try:
                if call(self.base, "GET", self.wait_for, timeout=5)[0] == 200:
                    return self
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError("server did not start:\n" + self.log_path.read_text())
            time.sleep(0.2)

    def workers(self) -> list[int]:
        """PIDs of the gunicorn worker processes (children of the arbiter)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in children.read_text().split()]

    def __exit__(self, *exc: object) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


TOKEN = "reliability-admin-token-0123456789"
RECOMMEND = {"customer": {"id": "C0000042"}, "channel": "app", "moment": "success",
             "product": "plan_5g"}


def admin_env() -> dict[str, str]:
    """Server environment with the admin endpoints on and a fast reload poll."""
    return {"RECOMMENDER_ADMIN_TOKEN": TOKEN, "RECOMMENDER_RELOAD_POLL_SECONDS": "0.2"}


def reload(base: str, version: str | None = None) -> tuple[int, Any]:
    return call(base, "POST", "/v1/admin/reload", {} if version is None else
                {"version": version}, headers={"Authorization": f"Bearer {TOKEN}"})


def kill_a_worker(server: Server, timeout: float = 60) -> int:
    """SIGKILL one worker and wait until the arbiter has booted its replacement."""
    before = server.workers()
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = server.workers()
        if victim not in now and len(now) == len(before):
            break
        time.sleep(0.1)
    return victim


def survey(base: str, requests: int = 40) -> dict[str, Any]:
    """Fresh connections (so every worker answers some): statuses and model versions seen,
    and how many /readyz probes said ready."""
    statuses: dict[int, int] = {}
    versions: dict[str, int] = {}
    ready = 0
    for _ in range(requests):
        try:
            status, body = call(base, "POST", "/v1/recommendations", RECOMMEND, timeout=10)
        except OSError:
            status, body = 0, None
        statuses[status] = statuses.get(status, 0) + 1
        if status == 200:
            versions[body["model_version"]] = versions.get(body["model_version"], 0) + 1
        with contextlib.suppress(OSError):
            ready += call(base, "GET", "/readyz", timeout=10)[0] == 200
    return {"statuses": statuses, "versions": versions, "ready": ready, "probes": requests}


def report(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Print rows as an aligned table."""
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(columns, widths,
                                                                    strict=True)))


def finish(result: dict[str, Any], ok: bool, json_path: Path | None) -> int:
    """Write the JSON, print the verdict line; the exit status."""
    result["held"] = ok
    if json_path:
        json_path.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print("held" if ok else "broke")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def recommender_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "recommender.cli", *args],
                          capture_output=True, text=True, timeout=timeout)
