"""Slow clients: many connections that send a request a byte at a time, or never finish it,
must not starve the server; /healthz must stay fast and every probe must succeed.

    python reliability/slow_clients.py                     # 100 slow connections, 30 s each run
    python reliability/slow_clients.py --connections 20 --seconds 4 --no-before --json out.json

A real ``recommender serve`` (2 workers x 4 threads) gets N slow connections, kept open and
reopened when the server closes one: a quarter trickle a request header a byte every few
seconds, a quarter send a whole header then trickle a ``Content-Length`` body, a quarter the
same with a chunked body, a quarter connect and send nothing. Meanwhile one thread probes
``GET /healthz`` and another ``POST /v1/recommendations`` on fresh connections. The same attack
runs first against gunicorn's plain gthread worker (the previous set-up, the "before" row).
PASS: on the server as shipped, /healthz p99 under 100 ms and no failed probe.
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Server, call, sample_workspace  # noqa: E402

BODY = {"customer": {"id": "C0000042"}, "channel": "app", "moment": "success",
        "product": "plan_5g"}
KINDS = ("header", "body", "chunked", "idle")
HEALTHZ_P99_MS = 100.0


class SlowConnection:
    """One slow client: what it sends first, then one byte every ``trickle`` seconds."""

    def __init__(self, kind: str, port: int, trickle: float, index: int):
        self.kind = kind
        self.opened = time.monotonic()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setblocking(False)
        first, self.drip = {
            "header": (b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow-%d: " % index,
                       b"a" * 10_000),
            "body": (b"POST /v1/recommendations HTTP/1.1\r\nHost: slow\r\nContent-Type: "
                     b"application/json\r\nContent-Length: 1000\r\n\r\n{", b" " * 999),
            "chunked": (b"POST /v1/recommendations HTTP/1.1\r\nHost: slow\r\nContent-Type: "
                        b"application/json\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n{",
                        b" " * 1023),
            "idle": (b"", b""),
        }[kind]
        self.sent = 0
        self.next_send = self.opened + trickle * (1 + index % 4) / 4  # spread the drips
        if first:
            self.sock.send(first)

    def close(self) -> None:
        self.sock.close()


class Attack:
    """Keeps ``n`` slow connections open (reopening those the server closes) in one thread."""

    def __init__(self, port: int, n: int, trickle: float):
        self.port, self.n, self.trickle = port, n, trickle
        self.closed: list[tuple[str, float, bool]] = []  # kind, seconds open, got a response
        self.open_failures = 0
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.conns: dict[socket.socket, SlowConnection] = {}
        self.selector = selectors.DefaultSelector()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.counter = 0

    def open(self, kind: str) -> None:
        try:
            conn = SlowConnection(kind, self.port, self.trickle, self.counter)
        except OSError:
            self.open_failures += 1
            return
        self.counter += 1
        self.conns[conn.sock] = conn
        self.selector.register(conn.sock, selectors.EVENT_READ, conn)

    def lost(self, conn: SlowConnection, answered: bool) -> None:
        self.selector.unregister(conn.sock)
        del self.conns[conn.sock]
        conn.close()
        if not self.stop.is_set():
            self.closed.append((conn.kind, time.monotonic() - conn.opened, answered))
            self.open(conn.kind)

    def run(self) -> None:
        for i in range(self.n):
            self.open(KINDS[i % len(KINDS)])
        self.ready.set()
        while not self.stop.is_set():
            for key, _ in self.selector.select(timeout=0.1):
                conn = key.data
                try:
                    data = conn.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                # Data (a 408, an error page) or EOF: the server gave up on this client.
                self.lost(conn, answered=bool(data))
            now = time.monotonic()
            for conn in list(self.conns.values()):
                if conn.drip and now >= conn.next_send:
                    conn.next_send = now + self.trickle
                    try:
                        conn.sock.send(conn.drip[conn.sent % len(conn.drip):][:1])
                        conn.sent += 1
                    except BlockingIOError:
                        pass
                    except OSError:
                        self.lost(conn, answered=False)

    def __enter__(self) -> Attack:
        self.thread.start()
        self.ready.wait(60)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        for conn in list(self.conns.values()):
            conn.close()


def probe(base: str, method: str, path: str, body: Any, interval: float, timeout: float,
          stop: threading.Event, out: list[tuple[float, bool]]) -> None:
    """Call ``path`` every ``interval`` seconds; record (milliseconds, succeeded)."""
    while not stop.is_set():
        started = time.perf_counter()
        try:
            ok = call(base, method, path, body, timeout=timeout)[0] == 200
        except OSError:
            ok = False
        out.append(((time.perf_counter() - started) * 1000, ok))
        stop.wait(max(0.0, interval - (time.perf_counter() - started)))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def attack(root: Path, setup: str, connections: int, seconds: float, trickle: float,
           probe_timeout: float) -> dict:
    env = {"RECOMMENDER_WORKER_CLASS": "gthread" if setup == "gthread" else "buffered"}
    healthz: list[tuple[float, bool]] = []
    recs: list[tuple[float, bool]] = []
    with Server(root, workers=2, threads=4, env=env) as server:
        for _ in range(5):  # warm both workers up
            call(server.base, "POST", "/v1/recommendations", BODY)
        with Attack(server.port, connections, trickle) as slow:
            time.sleep(1.0)  # let every slow connection reach the server
            stop = threading.Event()
            probes = [
                threading.Thread(target=probe, args=(server.base, "GET", "/healthz", None,
                                                     0.05, probe_timeout, stop, healthz)),
                threading.Thread(target=probe, args=(server.base, "POST",
                                                     "/v1/recommendations", BODY, 0.1,
                                                     probe_timeout, stop, recs)),
            ]
            started = time.monotonic()
            for t in probes:
                t.start()
            time.sleep(seconds)
            stop.set()
            for t in probes:
                t.join(probe_timeout + 5)
            elapsed = time.monotonic() - started
            still_open = len(slow.conns)
            closed = list(slow.closed)
            open_failures = slow.open_failures
    lifetimes = [s for _, s, _ in closed]
    return {
        "setup": setup, "slow_connections": connections, "seconds": round(elapsed, 1),
        "healthz_probes": len(healthz),
        "healthz_failed": sum(1 for _, ok in healthz if not ok),
        "healthz_p50_ms": round(percentile([ms for ms, _ in healthz], 50), 1),
        "healthz_p99_ms": round(percentile([ms for ms, _ in healthz], 99), 1),
        "healthz_max_ms": round(max((ms for ms, _ in healthz), default=float("nan")), 1),
        "recommendations": len(recs),
        "recommendations_failed": sum(1 for _, ok in recs if not ok),
        "recommendations_p99_ms": round(percentile([ms for ms, _ in recs], 99), 1),
        "slow_closed_by_server": len(closed),
        "slow_closed_by_kind": {k: sum(1 for kind, _, _ in closed if kind == k) for k in KINDS},
        "slow_answered_before_close": sum(1 for _, _, answered in closed if answered),
        "slow_closed_after_s_median": round(statistics.median(lifetimes), 1)
        if lifetimes else None,
        "slow_closed_after_s_max": round(max(lifetimes), 1) if lifetimes else None,
        "slow_open_at_end": still_open, "slow_open_failures": open_failures,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="trained workspace (default: the sample)")
    parser.add_argument("--connections", type=int, default=100, help="slow connections")
    parser.add_argument("--seconds", type=float, default=30, help="measuring time per run")
    parser.add_argument("--trickle", type=float, default=3.0,
                        help="seconds between two bytes of a slow client")
    parser.add_argument("--probe-timeout", type=float, default=2.0,
                        help="a probe slower than this fails")
    parser.add_argument("--before", action=argparse.BooleanOptionalAction, default=True,
                        help="also attack plain gthread, the previous set-up")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or sample_workspace(Path(tmp) / "ws")
        setups = (["gthread"] if args.before else []) + ["buffered"]
        runs = [attack(root, setup, args.connections, args.seconds, args.trickle,
                       args.probe_timeout) for setup in setups]
    after = runs[-1]
    ok = after["healthz_p99_ms"] < HEALTHZ_P99_MS and after["healthz_failed"] == 0 and \
        after["recommendations_failed"] == 0 and after["healthz_probes"] > 0
    result = {"connections": args.connections, "seconds": args.seconds,
              "trickle_seconds": args.trickle, "runs": runs, "pass": ok}
    names = {"gthread": "gthread (before)", "buffered": "buffered (after)"}
    print(f"{args.connections} slow connections ({', '.join(KINDS)}), 2 workers x 4 threads, "
          f"{args.seconds:g} s per run, a byte every {args.trickle:g} s")
    print(f"{'setup':18} {'probes':>6} {'failed':>6} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8} {'reco p99':>9} {'reco fail':>9} {'closed':>6} "
          f"{'after s (med/max)':>18} {'open':>5}")
    for r in runs:
        after_s = (f"{r['slow_closed_after_s_median']}/{r['slow_closed_after_s_max']}"
                   if r["slow_closed_by_server"] else "-")
        print(f"{names[r['setup']]:18} {r['healthz_probes']:6} {r['healthz_failed']:6} "
              f"{r['healthz_p50_ms']:8.1f} {r['healthz_p99_ms']:8.1f} "
              f"{r['healthz_max_ms']:8.1f} {r['recommendations_p99_ms']:9.1f} "
              f"{r['recommendations_failed']:9} {r['slow_closed_by_server']:6} "
              f"{after_s:>18} {r['slow_open_at_end']:5}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print("held" if ok else "broke")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
