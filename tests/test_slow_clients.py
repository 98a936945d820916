"""Slow clients cannot starve the server (api/worker.py's BufferingThreadWorker): the request
framing, then a real `recommender serve` (2 workers x 4 threads) on loopback, then the
reliability script in its short form."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from api.worker import MORE, READY, RequestFramer, RequestLimits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "reliability"))
from _server import Server, call  # noqa: E402

BODY = json.dumps({"customer": {"id": "C0000042"}, "channel": "app", "moment": "success",
                   "product": "plan_5g"}).encode()
NEXT = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"


def chunked(body: bytes, *sizes: int, trailers: bytes = b"") -> bytes:
    out, rest = b"", body
    for size in sizes:
        out += b"%x;ext=1\r\n" % size + rest[:size] + b"\r\n"
        rest = rest[size:]
    return out + b"%x\r\n" % len(rest) + rest + b"\r\n0\r\n" + trailers + b"\r\n"


REQUESTS = {
    "get": b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    "leading empty line": b"\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    "content-length": b"POST /v1/recommendations HTTP/1.1\r\nHost: t\r\nContent-Type: "
                      b"application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(BODY), BODY),
    "chunked": b"POST /v1/recommendations HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
               b"chunked\r\n\r\n" + chunked(BODY, 10, 1),
    "chunked with trailers": b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, "
                             b"chunked\r\n\r\n" + chunked(b"abcdef", 2, trailers=b"X-T: 1\r\n"),
}


@pytest.mark.parametrize("name", REQUESTS)
@pytest.mark.parametrize("step", [1, 7, 10_000])
def test_framer_finds_the_end_of_a_request_however_it_arrives(name, step):
    request = REQUESTS[name]
    data = request + NEXT  # a pipelined request behind it must not be taken in
    framer, buf = RequestFramer(RequestLimits()), bytearray()
    for i in range(0, len(data), step):
        buf += data[i:i + step]
        result = framer.feed(buf)
        if len(buf) < len(request):
            assert result == MORE, (len(buf), len(request))
        else:
            break
    assert result == READY and framer.end == len(request) and not framer.oversize


@pytest.mark.parametrize(("data", "status"), [
    (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 40_000, 431),  # header never ends
    (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n", 431),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10001\r\n", 413),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1\r\na\r\n" * 40_000, 413),
])
def test_framer_refuses_what_is_too_large(data, status):
    framer = RequestFramer(RequestLimits(max_body_bytes=65536))
    assert framer.feed(bytearray(data)) == "error" and framer.error == status


def test_framer_does_not_read_a_declared_body_over_the_limit():
    head = b"POST / HTTP/1.1\r\nContent-Length: 70000\r\n\r\n"
    framer = RequestFramer(RequestLimits(max_body_bytes=65536))
    assert framer.feed(bytearray(head + b"x" * 100)) == READY
    assert framer.oversize and framer.end == len(head)


@pytest.mark.parametrize("head", [
    b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
    b"POST / HTTP/1.1\nContent-Length: 5\n\n",
])
def test_framer_hands_over_at_once_what_gunicorn_refuses_at_the_header(head):
    # gunicorn's parser answers 400 from the header alone; waiting for a body would only
    # keep the connection.
    assert RequestFramer(RequestLimits()).feed(bytearray(head)) == READY


def test_framer_hands_over_a_malformed_chunk_for_gunicorn_to_refuse():
    data = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n"
    assert RequestFramer(RequestLimits()).feed(bytearray(data)) == READY


def test_framer_asks_for_100_continue_only_when_a_body_is_awaited():
    framer = RequestFramer(RequestLimits())
    head = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
    assert framer.feed(bytearray(head)) == MORE and framer.expect_continue
    framer = RequestFramer(RequestLimits())
    assert framer.feed(bytearray(head + b"abc")) == READY


# --- a real server ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(sample_workspace, tmp_path_factory):
    ws = tmp_path_factory.mktemp("slow") / "ws"
    shutil.copytree(sample_workspace.root, ws)
    with Server(ws, workers=2, threads=4) as s:
        yield s


def raw(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def read_all(sock: socket.socket, timeout: float = 10) -> bytes:
    """Everything until the server closes the connection."""
    sock.settimeout(timeout)
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def responses(data: bytes) -> list[tuple[int, bytes]]:
    """(status, body) of each response in ``data`` (Content-Length framed)."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        out.append((status, rest[:length]))
        data = rest[length:]
    return out


def test_keep_alive_serves_several_requests_on_one_connection(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    sockets = set()
    for _ in range(4):
        conn.request("POST", "/v1/recommendations", BODY,
                     {"Content-Type": "application/json"})
        reply = conn.getresponse()
        assert reply.status == 200 and json.loads(reply.read())["suggestions"]
        sockets.add(id(conn.sock))
        conn.request("GET", "/healthz")
        reply = conn.getresponse()
        assert (reply.status, reply.read()) == (200, b'{"status":"ok"}\n')
    assert len(sockets) == 1
    conn.close()


def test_a_chunked_body_sent_slowly_then_a_pipelined_request(server):
    sock = raw(server.port)
    sock.sendall(b"POST /v1/recommendations HTTP/1.1\r\nHost: t\r\nContent-Type: "
                 b"application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    body = chunked(BODY, 7, 20)
    for i in range(0, len(body), 40):  # in pieces, chunk lines split across them
        sock.sendall(body[i:i + 40])
        time.sleep(0.05)
    sock.sendall(NEXT.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
    (status, answer), (status2, health) = responses(read_all(sock))
    assert status == 200 and json.loads(answer)["suggestions"]
    assert (status2, health) == (200, b'{"status":"ok"}\n')


def test_expect_100_continue_is_answered_before_the_body(server):
    sock = raw(server.port)
    sock.sendall(b"POST /v1/recommendations HTTP/1.1\r\nHost: t\r\nContent-Type: "
                 b"application/json\r\nExpect: 100-continue\r\nConnection: close\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(BODY))
    assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
    sock.sendall(BODY)
    [(status, answer)] = responses(read_all(sock))
    assert status == 200 and json.loads(answer)["suggestions"]


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"POST /v1/recommendations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
     b"Content-Length: 70000\r\n\r\n{", 413),  # declared too large: the app answers
    (b"POST /v1/recommendations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n" + b"8000\r\n" + b" " * 0x8000 + b"\r\n"
     + b"8001\r\n", 413),  # chunked past the limit: the worker answers
    (b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n", 431),
])
def test_too_large_is_refused_as_problem_details_and_closed(server, request_bytes, status):
    sock = raw(server.port)
    sock.sendall(request_bytes)
    data = read_all(sock)  # returns: the server closed the connection
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status)
    assert b"application/problem+json" in head and b"Connection: close" in head
    assert json.loads(body)["status"] == status


def test_healthz_stays_fast_while_slow_clients_outnumber_the_threads(server):
    slow = []
    for i in range(16):  # twice the 8 threads, half slow headers, half slow bodies
        sock = raw(server.port)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: " if i % 2 else
                     b"POST /v1/recommendations HTTP/1.1\r\nHost: t\r\nContent-Type: "
                     b"application/json\r\nContent-Length: 100\r\n\r\n{")
        slow.append(sock)
    time.sleep(0.5)
    try:
        for _ in range(20):
            started = time.perf_counter()
            assert call(server.base, "GET", "/healthz", timeout=2)[0] == 200
            assert time.perf_counter() - started < 0.5
        assert call(server.base, "POST", "/v1/recommendations", json.loads(BODY),
                    timeout=5)[0] == 200
    finally:
        for sock in slow:
            sock.close()


def test_slow_and_idle_connections_are_closed_at_their_deadline(server):
    kinds = {
        "header": b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: a",
        "body": b"POST /v1/recommendations HTTP/1.1\r\nHost: t\r\nContent-Type: "
                b"application/json\r\nContent-Length: 100\r\n\r\n{",
        "idle": b"",
    }
    closed: dict[str, tuple[float, bytes]] = {}

    def hold(kind: str, first: bytes) -> None:
        started = time.monotonic()
        sock = raw(server.port)
        if first:
            sock.sendall(first)
        sock.settimeout(0.5)
        data = b""
        while time.monotonic() - started < 20:
            try:
                chunk = sock.recv(1000)
            except TimeoutError:
                if first:
                    try:
                        sock.sendall(b"a" if kind == "header" else b" ")  # trickle
                    except OSError:
                        break
                continue
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        closed[kind] = (time.monotonic() - started, data)
        sock.close()

    threads = [threading.Thread(target=hold, args=item) for item in kinds.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for kind, (seconds, data) in closed.items():
        assert 9 <= seconds <= 13, (kind, seconds)  # request_timeout is 10 s
        if kind != "idle":
            assert data.startswith(b"HTTP/1.1 408 "), (kind, data)


def test_dropped_connections_are_counted_in_metrics(server):
    def dropped() -> float:
        text = call(server.base, "GET", "/metrics")[1]
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("recommender_http_connections_dropped_total{")
                   and 'reason="header_too_large"' in line)

    before = dropped()
    sock = raw(server.port)
    sock.sendall(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n")
    read_all(sock)
    assert dropped() == before + 1


def test_worker_restart_and_graceful_shutdown_with_slow_clients(sample_workspace, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(sample_workspace.root, ws)
    with Server(ws, workers=2, threads=4) as server:
        first = server.workers()
        server_pid = server.process.pid
        os.kill(first[0], signal.SIGKILL)  # the arbiter starts another
        deadline = time.monotonic() + 30
        while sorted(server.workers()) == sorted(first) or len(server.workers()) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        for _ in range(10):
            assert call(server.base, "POST", "/v1/recommendations", json.loads(BODY))[0] == 200
        idle = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        idle.request("GET", "/healthz")
        assert idle.getresponse().read()  # now a kept-alive, idle connection
        slow = raw(server.port)
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: a")
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=20) == 0
        # The slow client holds shutdown for its deadline at most, not forever.
        assert time.monotonic() - started < 13
        assert server_pid == server.process.pid
        slow.close()
        idle.close()


def test_slow_clients_script_quick(sample_workspace, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(sample_workspace.root, ws)
    out = tmp_path / "slow.json"
    result = subprocess.run([sys.executable, str(ROOT / "reliability" / "slow_clients.py"),
                             "--dir", str(ws), "--connections", "20", "--seconds", "3",
                             "--no-before", "--json", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.rstrip().endswith("PASS")
    [run] = json.loads(out.read_text())["runs"]
    assert run["setup"] == "buffered" and run["slow_connections"] == 20
    assert run["healthz_failed"] == 0 and run["healthz_p99_ms"] < 100
    assert run["healthz_probes"] > 20 and run["recommendations_failed"] == 0
