"""Who is signed in to the console, kept on the server so that signing out ends a session.

The cookie carries only a random session id; the role is looked up here on every page. With a
store the sessions live in it, so every worker sees a sign-in and a sign-out; without one
(a server over no store) they live in this process.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time

from recommender.store import Store, StoreError

log = logging.getLogger("recommender.console")

#: Longest a sign-in or sign-out waits for another writer (an import) to release the store (s).
WRITE_WAIT_S = 2.0


class ConsoleSessions:
    """Open, look up and end console sessions that expire after ``idle_s`` unused."""

    def __init__(self, store: Store | None, idle_s: float):
        self.store = store
        self.idle_s = idle_s
        self._in_process: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def open(self, role: str) -> str:
        """A new session with ``role``; its id.

        :raises StoreError: the store stayed busy for :data:`WRITE_WAIT_S` or cannot be written.
        """
        now = time.time()
        if self.store is not None:
            with self.store.busy_timeout(WRITE_WAIT_S):
                return self.store.open_console_session(role, now=now, idle_s=self.idle_s)
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            for key in [k for k, (_, seen) in self._in_process.items() if seen < now - self.idle_s]:
                del self._in_process[key]
            self._in_process[session_id] = (role, now)
        return session_id

    def role(self, session_id: object) -> str | None:
        """The role of an open session, None when it is not one."""
        if not isinstance(session_id, str) or not session_id:
            return None
        now = time.time()
        if self.store is not None:
            return self.store.console_session_role(session_id, now=now, idle_s=self.idle_s)
        with self._lock:
            found = self._in_process.get(session_id)
            if found is None or found[1] < now - self.idle_s:
                return None
            self._in_process[session_id] = (found[0], now)
            return found[0]

    def close(self, session_id: object) -> bool:
        """End a session (nothing happens when it is not open); False when the store could
        not record it (busy past :data:`WRITE_WAIT_S`, or failing): the session then lasts
        until it is idle for ``idle_s``, and the failure is logged."""
        if not isinstance(session_id, str) or not session_id:
            return True
        if self.store is not None:
            try:
                with self.store.busy_timeout(WRITE_WAIT_S):
                    self.store.close_console_session(session_id)
            except StoreError as e:
                log.error("console: a session could not be ended on the server (%s); it "
                          "expires when idle for %g hours", e.code or type(e).__name__,
                          self.idle_s / 3600)
                return False
        else:
            with self._lock:
                self._in_process.pop(session_id, None)
        return True
