"""Client tokens: when the server names its callers, only they reach the ``/v1`` endpoints.

An operator whose server is reachable from more than the channels' back ends sets one bearer
token per caller (``[server] client_tokens`` or ``RECOMMENDER_CLIENT_TOKENS``). Every ``/v1``
call but the admin ones (which need the admin token) then carries one of them, or the admin
token; anything else is a 401 before the view runs, so nobody else can read a customer's
suggestions or post the refusals that would silence them. Health, readiness, metrics and the
documentation stay open. Without client tokens nothing is checked (the default).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping

from flask import Flask, Response, request

from .contract import guarded
from .problems import problem
from .settings import ADMIN_CLIENT as ADMIN

log = logging.getLogger("recommender.api")


class ClientTokens:
    """Who a bearer token names: compared as SHA-256 digests in constant time, every known
    token each time, so neither the answer nor its timing says which token was close."""

    def __init__(self, tokens: Mapping[str, str], admin_token: str | None):
        known = list(tokens.items())
        if admin_token is not None:
            known.append((ADMIN, admin_token))
        self._digests = [(name, _digest(token)) for name, token in known]

    def who(self, authorization: str) -> str | None:
        scheme, _, given = authorization.partition(" ")
        digest = _digest(given.strip())
        found = None
        for name, expected in self._digests:
            if hmac.compare_digest(digest, expected) and found is None:
                found = name
        return found if scheme.lower() == "bearer" else None


def _digest(token: str) -> bytes:
    # Header values arrive decoded as Latin-1; settings allow printable ASCII tokens only.
    return hashlib.sha256(token.encode("latin-1", "replace")).digest()


def install(app: Flask, tokens: Mapping[str, str], admin_token: str | None) -> None:
    """Guard ``app``'s ``/v1`` endpoints with ``tokens`` (nothing to do without any)."""
    if not tokens:
        return
    clients = ClientTokens(tokens, admin_token)

    @app.before_request
    def _client_token() -> Response | None:
        if request.method == "OPTIONS" or not guarded(request.path):
            return None  # a browser's preflight carries no credentials
        if clients.who(request.headers.get("Authorization", "")) is None:
            # %r: a path can hold an encoded newline, which must not start a forged log line
            log.warning("refused %s %r from %s: no valid client token", request.method,
                        request.path, request.remote_addr)
            return problem(401, "a valid client bearer token is required: this server names "
                                "its callers (client_tokens)",
                           headers={"WWW-Authenticate": 'Bearer realm="recommender"'})
        return None
