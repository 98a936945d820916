"""Shared by the reliability scripts: a sample workspace and a real server on loopback."""

from __future__ import annotations

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
                 env: dict[str, str] | None = None, wait_for: str = "/readyz"):
        self.root = root
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
                                        env=self.env)
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
