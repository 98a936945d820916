"""The gunicorn worker of ``recommender serve``: slow clients cannot hold its threads.

Slow clients
------------
gunicorn's ``gthread`` worker hands a connection to one of its ``threads`` as soon as the first
bytes arrive, and the thread then blocks reading the rest of the request with no deadline. A
few clients that send half a header, or a header and half a body, and then trickle or stop
(slowloris, slow POST) hold every thread, and health probes and real requests queue behind them.

:class:`BufferingThreadWorker` keeps gthread's model (a WSGI app, real threads, ``threads``
requests in the app at once per worker) but moves all network I/O to the worker's event loop:

* The loop reads every connection without blocking and frames the request itself (the header,
  then a ``Content-Length`` body or a chunked body up to its last chunk and trailers). Only a
  **complete** request is handed to a thread, which parses it from memory with gunicorn's own
  parser and runs the app; the thread never waits for the client. A slow or silent client costs
  a socket and its buffer, never a thread.
* The response is collected in memory, then sent without blocking: the thread sends what the
  socket takes at once (usually all of it), the loop sends the rest, so a client that does
  not read its answer does not hold a thread either. (Responses here are small; a streamed
  response is buffered whole.)
* Deadlines, checked by the loop about every 0.1 s; a connection past one is closed (with a
  ``408`` if it was mid-request). ``request_timeout`` is ``serve(request_timeout=...)``, else
  the settings' ``request_timeout`` (``[server] request_timeout``) when they have one, else
  :data:`REQUEST_TIMEOUT`:

  ======================  ==========================================================  =======
  what                    limit                                                       default
  ======================  ==========================================================  =======
  request header          complete within ``request_timeout`` of the connection       10 s
                          opening, or of the first byte of a kept-alive request
  request body            complete within ``request_timeout`` of the header's end     10 s
  idle keep-alive         the next request starts within gunicorn's ``keepalive``     5 s
  response                written within :data:`SEND_TIMEOUT`                         30 s
  closing                 after ``Connection: close``, the client's last bytes are    2 s
                          drained (RFC 9112 9.6) for at most :data:`LINGER_SECONDS`
  ======================  ==========================================================  =======

* Sizes: a header over :data:`MAX_HEADER_BYTES` (32 KiB) is answered ``431``. A body declared
  larger than ``max_body_bytes`` (64 KiB by default) is not read: the request goes to the app
  with its header only, the app answers ``413`` as it always does, and the connection closes. A
  chunked body that grows past ``max_body_bytes`` is answered ``413`` by the worker. So a
  connection holds at most about 32 KiB + twice ``max_body_bytes`` of buffer (chunk framing
  included), and a worker at most ``worker_connections`` (1,000) connections.
* ``Expect: 100-continue`` is answered by the loop when the header is complete, so clients
  that wait for it send their body.

What stays as it was: keep-alive and pipelined requests, chunked request bodies (gunicorn's
parser decodes them, the app's body limit applies), graceful shutdown on SIGTERM (requests in
the app finish, idle connections close within 2 s, a half-sent request within its deadline),
``max_requests`` restarts, the access log, the arbiter's worker timeout, Prometheus
multiprocess metrics. Connections the worker drops are counted in
``recommender_http_connections_dropped_total{reason}`` (``header_timeout``, ``body_timeout``,
``send_timeout``, ``header_too_large``, ``body_too_large``).

What it does not do: limit connections per client. A flood of more than
``worker_connections`` connections per worker (each closed within ``request_timeout`` if it
sends nothing useful) fills the worker's connection slots, and new connections wait in the
listen backlog; that is a job for a firewall or load balancer in front.

It speaks plain HTTP/1.x only (no TLS, HTTP/2 or PROXY protocol in the worker), which is how
``recommender serve`` binds; put TLS in front if needed. ``RECOMMENDER_WORKER_CLASS=gthread``
runs gunicorn's plain gthread worker instead (the previous set-up, open to slow clients), for
comparison or as an escape hatch.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import selectors
import socket
import time
from dataclasses import dataclass
from email.utils import formatdate
from functools import partial
from http import HTTPStatus
from typing import Any

import gunicorn
from gunicorn.http.errors import NoMoreData
from gunicorn.http.parser import RequestParser
from gunicorn.workers.gthread import ThreadWorker

from .problems import PROBLEM_MIME, TYPE_BASE

#: Seconds for a whole request header, and again for a whole body (``[server] request_timeout``).
REQUEST_TIMEOUT = 10.0
#: Seconds for the loop to write a whole response before it drops the connection.
SEND_TIMEOUT = 30.0
#: Largest request header (request line and fields) buffered; larger is answered 431.
MAX_HEADER_BYTES = 32 * 1024
#: Seconds a closing connection is drained of what the client still sends.
LINGER_SECONDS = 2.0
#: Environment variable naming the worker class: ``buffered`` (default) or ``gthread``.
WORKER_CLASS_VARIABLE = "RECOMMENDER_WORKER_CLASS"

log = logging.getLogger("recommender.server")

_SWEEP_EVERY = 0.1
_ACCEPT_PAUSE = 0.5
_RECV_BYTES = 64 * 1024
_LINGER_MAX_BYTES = 64 * 1024
_HEX = frozenset(b"0123456789abcdefABCDEF")


@dataclass(frozen=True)
class RequestLimits:
    """How long and how large a request may be before a thread is given to it."""

    header_timeout: float = REQUEST_TIMEOUT
    body_timeout: float = REQUEST_TIMEOUT
    send_timeout: float = SEND_TIMEOUT
    max_header_bytes: int = MAX_HEADER_BYTES
    max_body_bytes: int = 64 * 1024


# --- framing: where does the request in a buffer end? ------------------------------------

MORE = "more"  # incomplete: keep reading
READY = "ready"  # complete (or malformed: gunicorn's parser will say how); dispatch it


class RequestFramer:
    """Finds the end of one HTTP/1.x request at the start of a growing buffer.

    It follows gunicorn's own framing rules (``gunicorn.http.message`` and ``body``): a body
    is chunked if the last transfer coding is ``chunked``, else ``Content-Length`` bytes, else
    empty. Anything gunicorn would refuse while reading the header (two lengths, a length with
    a transfer coding, a coding that does not end in chunked, a bare LF...) is declared
    ``READY`` at once, so the thread's parser answers it exactly as gunicorn always did.
    Call :meth:`feed` with the whole buffer after each read; it resumes where it stopped.
    """

    def __init__(self, limits: RequestLimits, chunk_line_limit: int = 8190):
        self.limits = limits
        self.chunk_line_limit = chunk_line_limit
        self.phase = "head"
        self.pos = 0  # where scanning resumes
        self.body_start = -1  # index after the header's blank line, once seen
        self.end = -1  # index after the request, once READY
        self.chunk_end = 0
        self.scanned = 0  # how far a chunk-size line or the trailers were searched
        self.decoded = 0  # chunked body bytes declared so far
        self.expect_continue = False
        self.oversize = False  # Content-Length over the limit: header only is dispatched
        self.error = 0  # status the worker answers itself (431, 413)

    @property
    def header_done(self) -> bool:
        return self.body_start >= 0

    def feed(self, buf: bytearray) -> str:
        """``MORE``, ``READY`` (see :attr:`end`) or ``"error"`` (see :attr:`error`)."""
        if self.phase == "head":
            result = self._head(buf)
            if result is not None:
                return result
        if self.phase == "length":
            return READY if len(buf) >= self.end else MORE
        while self.phase in ("size", "data", "trailers"):
            if len(buf) - self.body_start > 2 * self.limits.max_body_bytes + 16384:
                return self._fail(413)  # framing overhead beyond any honest client
            step = getattr(self, "_" + self.phase)(buf)
            if step is not None:
                return step
        return READY if self.phase == "done" else MORE

    def _ready(self, end: int) -> str:
        self.phase, self.end = "done", end
        return READY

    def _fail(self, status: int) -> str:
        self.phase, self.error = "error", status
        return "error"

    def _head(self, buf: bytearray) -> str | None:
        idx = buf.find(b"\r\n\r\n", max(0, self.pos - 3))
        if idx < 0:
            if len(buf) > self.limits.max_header_bytes:
                return self._fail(431)
            if _bare_lf(buf, self.pos):
                return self._ready(len(buf))  # gunicorn answers 400
            self.pos = len(buf)
            return MORE
        if idx + 4 > self.limits.max_header_bytes:
            return self._fail(431)
        self.body_start = start = idx + 4
        lines = bytes(buf[:idx]).split(b"\r\n")
        if lines and not lines[0]:
            lines = lines[1:]  # one empty line before the request line is allowed
        http10 = bool(lines) and lines[0].rstrip().endswith(b"HTTP/1.0")
        lengths: list[bytes] = []
        codings: list[bytes] = []
        expect = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.upper(), value.strip(b" \t")
            if name == b"CONTENT-LENGTH":
                lengths.append(value)
            elif name == b"TRANSFER-ENCODING":
                codings += [v.strip(b" \t").lower() for v in value.split(b",")]
            elif name == b"EXPECT":
                expect = value.lower() == b"100-continue"
        if codings:
            if codings[-1] != b"chunked" or codings.count(b"chunked") > 1 or lengths or http10:
                return self._ready(start)  # gunicorn refuses the header
            self.phase, self.pos = "size", start
            self.expect_continue = expect
            return None
        if len(lengths) > 1 or (lengths and not lengths[0].isdigit()):
            return self._ready(start)  # gunicorn refuses the header
        length = int(lengths[0]) if lengths else 0
        if length > self.limits.max_body_bytes:
            self.oversize = True
            return self._ready(start)
        self.phase, self.end = "length", start + length
        self.expect_continue = expect and length > 0 and not http10
        return None

    def _size(self, buf: bytearray) -> str | None:
        idx = buf.find(b"\r\n", max(self.pos, self.scanned - 1))
        if idx < 0:
            if len(buf) - self.pos > self.chunk_line_limit:
                return self._ready(len(buf))  # gunicorn answers 400
            self.scanned = len(buf)
            return MORE
        size, semicolon, _ = bytes(buf[self.pos:idx]).partition(b";")
        if semicolon:
            size = size.rstrip(b" \t")
        if not size or not set(size) <= _HEX:
            return self._ready(len(buf))  # gunicorn answers 400
        n = int(size, 16)
        self.pos = self.scanned = idx + 2
        if n == 0:
            self.phase = "trailers"
            return None
        self.decoded += n
        if self.decoded > self.limits.max_body_bytes:
            return self._fail(413)
        self.chunk_end, self.phase = self.pos + n, "data"
        return None

    def _data(self, buf: bytearray) -> str | None:
        if len(buf) < self.chunk_end + 2:
            return MORE
        if buf[self.chunk_end:self.chunk_end + 2] != b"\r\n":
            return self._ready(len(buf))  # gunicorn answers 400
        self.pos = self.scanned = self.chunk_end + 2
        self.phase = "size"
        return None

    def _trailers(self, buf: bytearray) -> str | None:
        if len(buf) - self.pos < 2:
            return MORE
        if buf[self.pos:self.pos + 2] == b"\r\n":
            return self._ready(self.pos + 2)
        start = max(self.pos, self.scanned)
        idx = buf.find(b"\r\n\r\n", max(self.pos, start - 3))
        if idx >= 0:
            return self._ready(idx + 4)
        if _bare_lf(buf, start):
            return self._ready(len(buf))  # gunicorn answers 400
        self.scanned = len(buf)
        return MORE


def _bare_lf(buf: bytearray, start: int) -> bool:
    """Whether a LF at or after ``start`` lacks its CR (RFC 9112 2.2; gunicorn refuses it)."""
    return buf.count(b"\n", start) != buf.count(b"\r\n", max(0, start - 1))


# --- what a request thread sees instead of the socket ---------------------------------------

class _RequestSource:
    """The buffered request, read by gunicorn's parser as if it were the socket."""

    def __init__(self, data: bytes):
        self.data = memoryview(data)
        self.pos = 0
        self.starved = False  # the parser wanted more than the framer found

    def recv(self, size: int) -> bytes:
        if self.pos >= len(self.data):
            self.starved = True
            return b""
        chunk = bytes(self.data[self.pos:self.pos + size])
        self.pos += len(chunk)
        return chunk

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos


class _ResponseBuffer:
    """Collects what gunicorn writes for one response; the event loop sends it."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.closed = False

    def sendall(self, data: bytes) -> None:
        if self.closed:
            raise BrokenPipeError(errno.EPIPE, "connection closing")
        self.parts.append(bytes(data))

    def send(self, data: bytes) -> int:
        self.sendall(data)
        return len(data)

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        file.seek(offset)
        data = file.read(count) if count else file.read()
        self.sendall(data)
        return len(data)

    def recv(self, size: int) -> bytes:  # util.close_graceful drains; nothing to drain here
        return b""

    def gettimeout(self) -> float | None:
        return None

    def setblocking(self, flag: bool) -> None:
        pass

    def settimeout(self, value: float | None) -> None:
        pass

    def shutdown(self, how: int) -> None:
        self.closed = True

    def close(self) -> None:
        self.closed = True

    def getvalue(self) -> bytes:
        return b"".join(self.parts)


@dataclass
class _Exchange:
    """What ``ThreadWorker.handle_request`` reads from its ``conn`` argument."""

    sock: _ResponseBuffer
    client: Any
    server: Any


# --- connections and the worker ------------------------------------------------------------

IDLE, READING, BUSY, WRITING, CLOSING = "idle", "reading", "busy", "writing", "closing"


class _Conn:
    __slots__ = ("sock", "client", "server", "inbuf", "framer", "state", "deadline", "fresh",
                 "events", "request", "response", "oversize", "out", "sent", "keepalive",
                 "drained")

    def __init__(self, sock: socket.socket, client: Any, server: Any):
        self.sock = sock
        self.client = client
        self.server = server
        self.inbuf = bytearray()
        self.framer: RequestFramer | None = None
        self.state = IDLE
        self.deadline = 0.0
        self.fresh = True  # no request answered yet on this connection
        self.events = 0  # what the poller watches for
        self.request = b""  # the complete request, for the thread
        self.response: bytes | memoryview = b""  # what the thread could not send yet
        self.oversize = False
        self.out = memoryview(b"")
        self.sent = 0
        self.keepalive = False
        self.drained = 0


class BufferingThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker, but a thread gets a request only once it is all here.

    See the module documentation for the deadlines and limits; they come from the
    application object's ``request_limits`` (:class:`RequestLimits`) when it has one.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.limits: RequestLimits = getattr(self.app, "request_limits", None) or RequestLimits()
        self._conns: set[_Conn] = set()  # every connection the loop is responsible for
        self._next_sweep = 0.0
        self._accept_paused_until = 0.0
        self._dropped: Any = None

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        super().check_config(cfg, log)
        if gunicorn.version_info[0] != 27:
            raise RuntimeError("BufferingThreadWorker extends gunicorn 27's gthread worker; "
                               f"this is gunicorn {gunicorn.__version__}")
        if cfg.is_ssl or "h2" in (getattr(cfg, "http_protocols", None) or "h1") or \
                getattr(cfg, "proxy_protocol", "off") not in ("off", False, None) or \
                getattr(cfg, "protocol", "http") != "http":
            raise RuntimeError("BufferingThreadWorker serves plain HTTP/1.x only (no TLS, "
                               "HTTP/2, PROXY or uwsgi protocol); terminate those in front")

    def init_process(self) -> None:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            try:
                from prometheus_client import Counter

                self._dropped = Counter(
                    "recommender_http_connections_dropped_total",
                    "Connections the server dropped: too slow or too large a request, or "
                    "a response not read in time.", ["reason"], registry=None)
            except Exception:  # metrics are a convenience here, never a reason not to serve
                self._dropped = None
        super().init_process()

    # The event loop (main thread) ----------------------------------------------------------

    def accept(self, listener: socket.socket) -> None:
        try:
            sock, client = listener.accept()
        except OSError as e:
            if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                # Out of file descriptors: pause accepting (connections wait in the backlog)
                # until deadlines free some, rather than spin on the listener or crash.
                self.log.warning("cannot accept a connection (%s); pausing for %.1f s",
                                 os.strerror(e.errno), _ACCEPT_PAUSE)
                self._accept_paused_until = time.monotonic() + _ACCEPT_PAUSE
                self.set_accept_enabled(False)
                return
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        sock.setblocking(False)
        self.nr_conns += 1
        conn = _Conn(sock, client, listener.getsockname())
        self._conns.add(conn)
        self._next_request(conn)

    def set_accept_enabled(self, enabled: bool) -> None:
        if enabled and time.monotonic() < self._accept_paused_until:
            enabled = False
        super().set_accept_enabled(enabled)

    def _next_request(self, conn: _Conn) -> None:
        """Wait for (or frame what is already buffered of) the connection's next request."""
        conn.framer = RequestFramer(self.limits, self.cfg.limit_request_field_size or 8190)
        conn.state, conn.oversize = IDLE, False
        now = time.monotonic()
        if conn.fresh or conn.inbuf:
            conn.deadline = now + self.limits.header_timeout
        else:
            conn.deadline = now + (self.cfg.keepalive if self.alive else
                                   min(self.cfg.keepalive, LINGER_SECONDS))
        if conn.inbuf:  # pipelined behind the last request
            self._frame(conn, now)
        else:
            self._watch(conn, selectors.EVENT_READ)

    def _on_event(self, conn: _Conn, _fileobj: Any) -> None:
        if conn.state == WRITING:
            self._write(conn)
        elif conn.state == CLOSING:
            self._drain(conn)
        elif conn.state in (IDLE, READING):
            self._read(conn)

    def _read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        now = time.monotonic()
        if conn.state == IDLE:
            conn.state = READING
            if not conn.fresh:
                conn.deadline = now + self.limits.header_timeout
        conn.inbuf += data
        self._frame(conn, now)

    def _frame(self, conn: _Conn, now: float) -> None:
        framer = conn.framer
        assert framer is not None
        conn.state = READING
        had_header = framer.header_done
        result = framer.feed(conn.inbuf)
        if result == MORE:
            if framer.header_done and not had_header:
                conn.deadline = now + self.limits.body_timeout
                if framer.expect_continue:
                    with contextlib.suppress(OSError):
                        conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            self._watch(conn, selectors.EVENT_READ)
        elif result == READY:
            self._dispatch(conn)
        else:
            reason = "header_too_large" if framer.error == 431 else "body_too_large"
            self._count(reason)
            self._refuse(conn, framer.error, {
                431: f"the request header is over {self.limits.max_header_bytes} bytes",
                413: f"the body is over {self.limits.max_body_bytes} bytes; the limit is "
                     f"{self.limits.max_body_bytes}",
            }[framer.error])

    def _dispatch(self, conn: _Conn) -> None:
        assert conn.framer is not None
        self._unwatch(conn)
        self._conns.discard(conn)
        end = conn.framer.end
        conn.request = bytes(conn.inbuf[:end])
        conn.oversize = conn.framer.oversize
        if conn.oversize:
            conn.inbuf.clear()  # its body is never read; the connection closes after
        else:
            del conn.inbuf[:end]
        conn.state = BUSY
        self.enqueue_req(conn)

    def finish_request(self, conn: _Conn, fs: Any) -> None:
        """A thread is done with ``conn``: send the rest of its response from the loop."""
        try:
            keepalive = bool(fs.result()) if not fs.cancelled() else False
        except Exception:
            keepalive = False
        data, conn.request, conn.response = conn.response, b"", b""
        self._conns.add(conn)
        self._respond(conn, data, keepalive)

    def _respond(self, conn: _Conn, data: bytes | memoryview, keepalive: bool) -> None:
        conn.out, conn.sent, conn.keepalive = memoryview(data), 0, keepalive
        conn.state = WRITING
        conn.deadline = time.monotonic() + self.limits.send_timeout
        self._write(conn)

    def _write(self, conn: _Conn) -> None:
        try:
            while conn.sent < len(conn.out):
                conn.sent += conn.sock.send(conn.out[conn.sent:])
        except (BlockingIOError, InterruptedError):
            self._watch(conn, selectors.EVENT_WRITE)
            return
        except OSError:
            self._close(conn)
            return
        conn.out = memoryview(b"")
        conn.fresh = False
        if conn.keepalive:
            self._next_request(conn)
        else:
            self._linger(conn)

    def _refuse(self, conn: _Conn, status: int, detail: str) -> None:
        """Answer ``status`` from the loop (problem details, as the app would) and close."""
        phrase = HTTPStatus(status).phrase
        body = json.dumps({"type": TYPE_BASE + phrase.lower().replace(" ", "-"),
                           "title": phrase, "status": status, "detail": detail}).encode()
        head = (f"HTTP/1.1 {status} {phrase}\r\nDate: {formatdate(usegmt=True)}\r\n"
                f"Connection: close\r\nContent-Type: {PROBLEM_MIME}\r\n"
                f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
                f"X-Content-Type-Options: nosniff\r\n\r\n").encode("latin-1")
        conn.inbuf.clear()
        self._respond(conn, head + body, keepalive=False)

    def _linger(self, conn: _Conn) -> None:
        """Close after the response: FIN first, then drain what the client still sends."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.state, conn.drained = CLOSING, 0
        conn.deadline = time.monotonic() + LINGER_SECONDS
        conn.inbuf.clear()
        self._watch(conn, selectors.EVENT_READ)

    def _drain(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        conn.drained += len(data)
        if not data or conn.drained > _LINGER_MAX_BYTES:
            self._close(conn)

    def _watch(self, conn: _Conn, events: int) -> None:
        if conn.events == events:
            return
        callback = partial(self._on_event, conn)
        if conn.events:
            self.poller.modify(conn.sock, events, callback)
        else:
            self.poller.register(conn.sock, events, callback)
        conn.events = events

    def _unwatch(self, conn: _Conn) -> None:
        if conn.events:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(conn.sock)
            conn.events = 0

    def _close(self, conn: _Conn) -> None:
        self._unwatch(conn)
        self._conns.discard(conn)
        self.nr_conns -= 1
        with contextlib.suppress(OSError):
            conn.sock.close()

    def _count(self, reason: str) -> None:
        log.debug("dropping a connection: %s", reason)
        if self._dropped is not None:
            self._dropped.labels(reason).inc()

    def _expire(self, conn: _Conn) -> None:
        if conn.state == READING or (conn.state == IDLE and conn.fresh):
            framer = conn.framer
            reason = "body_timeout" if framer and framer.header_done else "header_timeout"
            self._count(reason)
            if conn.state == READING:
                with contextlib.suppress(OSError):  # best effort: it may not be reading
                    conn.sock.send(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                                   b"Content-Length: 0\r\n\r\n")
        elif conn.state == WRITING:
            self._count("send_timeout")
        self._close(conn)

    # gunicorn's run() calls these on every turn of the loop and while stopping.

    def murder_keepalived(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_EVERY
        for conn in [c for c in self._conns if force or c.deadline <= now]:
            if force:
                self._close(conn)
            else:
                self._expire(conn)

    def murder_pending(self) -> None:
        pass  # no connection waits outside the loop's own deadlines

    def _cap_keepalive(self, deadline: float) -> None:
        for conn in self._conns:
            if conn.state == IDLE:
                conn.deadline = min(conn.deadline, deadline)
        self._next_sweep = 0.0

    # A request thread -----------------------------------------------------------------------

    def handle(self, conn: _Conn) -> bool:
        """Parse and answer the buffered request; what is left to send goes to
        ``conn.response``.

        Returns whether the connection may carry another request.
        """
        out = _ResponseBuffer()
        source = _RequestSource(conn.request)
        req = None
        keepalive = False
        try:
            parser = RequestParser(self.cfg, source, conn.client)
            req = next(parser)
            # The loop answered any 100-continue already; for a body too large to read it
            # must not invite the client to send it.
            req._expected_100_continue = False
            if conn.oversize:
                req.force_close()
            keepalive = self.handle_request(req, _Exchange(out, conn.client, conn.server))
            # Keep the connection only if gunicorn framed the request exactly as the loop did.
            keepalive = keepalive and parser.finish_body() and not source.starved and \
                source.remaining == 0 and not parser.unreader.buf.getvalue()
        except NoMoreData as e:
            self.log.debug("Ignored premature client disconnection. %s", e)
        except StopIteration as e:
            self.log.debug("Closing connection. %s", e)
        except Exception as e:
            self.handle_error(req, out, conn.client, e)
        # Send what the socket takes now, without blocking (usually all of it: the answer
        # leaves without waiting for the loop); the loop sends the rest.
        data, sent = memoryview(out.getvalue()), 0
        try:
            while sent < len(data):
                sent += conn.sock.send(data[sent:])
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            keepalive = False  # gone; the loop's close finds out
        conn.response = data[sent:]
        return keepalive and not out.closed
