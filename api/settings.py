"""Server settings: the ``[server]`` table of ``config.toml``, overridden by environment variables.

Environment variables win so that a deployment can keep secrets (the admin token) out of files
and point several workers at the same workspace without editing it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recommender.errors import ConfigError

DEFAULT_MAX_BODY_BYTES = 64 * 1024

#: Upper bounds of the numeric settings (lower bounds are given where they are read).
MAXIMA = {"max_body_bytes": 64 * 1024 * 1024, "reload_poll_seconds": 3600.0, "workers": 256,
          "threads": 1024, "timeout": 3600, "request_timeout": 600.0}

#: A client token's name: a label for the caller, as the settings give it.
CLIENT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: A client token: printable ASCII (HTTP headers arrive as Latin-1), no space or comma.
CLIENT_TOKEN = re.compile(r"[!-+\--~]{16,}")
#: The name the admin token goes by among callers; no client may take it.
ADMIN_CLIENT = "admin"
MIN_TOKEN_LENGTH = 16

#: Environment variable -> ``[server]`` key it overrides.
ENVIRONMENT = {
    "RECOMMENDER_DIR": "dir",
    "RECOMMENDER_STORE": "store",
    "RECOMMENDER_MODELS": "models",
    "RECOMMENDER_MAX_BODY_BYTES": "max_body_bytes",
    "RECOMMENDER_ADMIN_TOKEN": "admin_token",
    "RECOMMENDER_VIEWER_TOKEN": "viewer_token",
    "RECOMMENDER_CLIENT_TOKENS": "client_tokens",
    "RECOMMENDER_CORS_ORIGINS": "cors_origins",
    "RECOMMENDER_RELOAD_POLL_SECONDS": "reload_poll_seconds",
    "RECOMMENDER_RATE_LIMIT": "rate_limit",
    "RECOMMENDER_REQUEST_TIMEOUT": "request_timeout",
}


@dataclass(frozen=True)
class ServerSettings:
    """Everything the HTTP layer needs to know beyond the engine's own configuration.

    :param root: the workspace folder (catalog, rules, config, store, models).
    :param store: the SQLite store file; defaults to the workspace's ``store.sqlite``.
    :param models: the folder of trained model versions; defaults to ``<root>/models``.
    :param max_body_bytes: larger request bodies are refused with 413.
    :param admin_token: bearer token for ``/v1/admin/*``; admin endpoints are off without one.
    :param viewer_token: a second token that signs in to the console read-only (look and dry
        run; nothing saved, activated or rolled back); it opens no admin endpoint.
    :param client_tokens: name -> bearer token of each caller of the ``/v1`` endpoints (a
        channel's back end, the outbound system); when any is set, every ``/v1`` call but the
        admin ones needs one of them (or the admin token). None by default: the endpoints are
        open to whoever reaches the server.
    :param cors_origins: origins allowed to call the API from a browser.
    :param reload_poll_seconds: how often a worker checks whether another worker reloaded.
    :param rate_limit: per-client limit on the /v1 endpoints, e.g. ``"50/second"`` (per worker
        process); none by default.
    :param request_timeout: seconds a client has to send a request's header, and again its
        body, before the connection is dropped (slow clients; see ``api/worker.py``).
    :param bind, workers, threads, timeout: gunicorn settings for ``recommender serve``.
    :param server_table: the ``[server]`` table of ``config.toml`` as read (before the
        environment), which only a restart changes; None when the settings were not read from
        the workspace (the served files' table stands for it then).
    """

    root: Path
    store: Path | None = None
    models: Path | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    admin_token: str | None = field(default=None, repr=False)
    viewer_token: str | None = field(default=None, repr=False)
    client_tokens: Mapping[str, str] = field(default_factory=dict, repr=False)
    cors_origins: tuple[str, ...] = ()
    reload_poll_seconds: float = 1.0
    rate_limit: str | None = None
    request_timeout: float = 10.0
    bind: str = "127.0.0.1:8000"
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    threads: int = 4
    timeout: int = 30
    server_table: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def load(cls, root: str | Path, environ: Mapping[str, str] | None = None,
             **overrides: Any) -> ServerSettings:
        """Read ``<root>/config.toml`` ``[server]``, then the environment, then ``overrides``."""
        environ = os.environ if environ is None else environ
        root = Path(environ.get("RECOMMENDER_DIR") or root)
        config_path = root / "config.toml"
        values: dict[str, Any] = {}
        table: dict[str, Any] = {}
        if config_path.exists():
            try:
                data = tomllib.loads(config_path.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as e:
                raise ConfigError(str(config_path), "server", f"invalid TOML: {e}") from None
            server = data.get("server", {})
            if not isinstance(server, dict):
                raise ConfigError(str(config_path), "server", "must be a table")
            values.update(server)
            table = dict(server)
            source = str(config_path)
        else:
            source = "<defaults>"
        for variable, key in ENVIRONMENT.items():
            if environ.get(variable) and key != "dir":
                values[key] = environ[variable]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return dataclasses.replace(cls._validated(root, values, source), server_table=table)

    @classmethod
    def _validated(cls, root: Path, values: dict[str, Any], source: str) -> ServerSettings:
        known = {"store", "models", "max_body_bytes", "admin_token", "viewer_token", "cors_origins",
                 "reload_poll_seconds", "rate_limit", "bind", "workers", "threads", "timeout",
                 "request_timeout", "client_tokens"}
        for key in values:
            if key not in known:
                raise ConfigError(source, f"server.{key}", f"unknown key; expected one of "
                                  f"{', '.join(sorted(known))}")

        def path(key: str) -> Path | None:
            value = values.get(key)
            if value is None:
                return None
            if not isinstance(value, str) or not value:
                raise ConfigError(source, f"server.{key}", "must be a path")
            p = Path(value)
            return p if p.is_absolute() else root / p

        def number(key: str, kind: type, default: Any, minimum: float) -> Any:
            value = values.get(key, default)
            maximum = MAXIMA[key]
            try:
                number = kind(value)
            except (TypeError, ValueError, OverflowError):
                raise ConfigError(source, f"server.{key}", f"must be a finite number from "
                                  f"{minimum} to {maximum} (got {value!r})") from None
            if isinstance(value, bool) or not minimum <= number <= maximum:
                raise ConfigError(source, f"server.{key}", f"must be a number from {minimum} "
                                  f"to {maximum} (got {value!r})")
            return number

        tokens = {}
        for key in ("admin_token", "viewer_token"):
            token = values.get(key)
            if token is not None and (not isinstance(token, str)
                                      or len(token) < MIN_TOKEN_LENGTH):
                raise ConfigError(source, f"server.{key}", "must be a string of at least 16 "
                                  "characters")
            tokens[key] = token
        if tokens["viewer_token"] is not None and tokens["viewer_token"] == tokens["admin_token"]:
            raise ConfigError(source, "server.viewer_token", "must differ from admin_token: "
                              "whoever holds it could change what is served")
        clients = _client_tokens(values.get("client_tokens"), source)
        for n, token in enumerate(clients.values(), 1):
            if token in (tokens["admin_token"], tokens["viewer_token"]):
                raise ConfigError(source, "server.client_tokens", f"entry {n}: must differ "
                                  f"from the admin and viewer tokens")
        origins = values.get("cors_origins", ())
        if isinstance(origins, str):
            origins = [o.strip() for o in origins.split(",") if o.strip()]
        if not isinstance(origins, list | tuple) or not all(isinstance(o, str) for o in origins):
            raise ConfigError(source, "server.cors_origins", "must be a list of origins")
        rate_limit = values.get("rate_limit") or None
        if rate_limit is not None:
            from limits import parse_many

            try:
                parse_many(str(rate_limit))
            except ValueError:
                raise ConfigError(source, "server.rate_limit", f"not a rate limit like "
                                  f"'50/second' (got {rate_limit!r})") from None
        return cls(
            root=root, rate_limit=rate_limit, store=path("store"), models=path("models"),
            max_body_bytes=number("max_body_bytes", int, DEFAULT_MAX_BODY_BYTES, 1024),
            admin_token=tokens["admin_token"], viewer_token=tokens["viewer_token"],
            client_tokens=clients, cors_origins=tuple(origins),
            reload_poll_seconds=number("reload_poll_seconds", float, 1.0, 0.0),
            bind=str(values.get("bind", "127.0.0.1:8000")),
            workers=number("workers", int, os.cpu_count() or 1, 1),
            threads=number("threads", int, 4, 1),
            timeout=number("timeout", int, 30, 1),
            request_timeout=number("request_timeout", float, 10.0, 1.0),
        )


def _client_tokens(value: Any, source: str) -> dict[str, str]:
    """``client_tokens``: a table of name = token, or (from the environment) the text
    ``name=token,name=token``. Errors name the entry by its place, never by its text: a name
    left out would put the token where the name goes."""
    key = "server.client_tokens"
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        key = "server.client_tokens (or RECOMMENDER_CLIENT_TOKENS)"
        entries = []
        for n, item in enumerate((part.strip() for part in value.split(",")), 1):
            name, sep, token = item.partition("=")
            if not sep:
                raise ConfigError(source, key, f"entry {n}: expected name=token, with entries "
                                  f"separated by commas")
            entries.append((name.strip(), token.strip()))
    elif isinstance(value, dict):
        entries = list(value.items())
    else:
        raise ConfigError(source, key, "must be a table of name = token")
    out: dict[str, str] = {}
    for n, (name, token) in enumerate(entries, 1):
        if not isinstance(name, str) or not CLIENT_NAME.fullmatch(name):
            raise ConfigError(source, key, f"entry {n}: a name is 1 to 64 letters, digits, "
                              f"'_', '.' or '-'")
        if name == ADMIN_CLIENT:
            raise ConfigError(source, key, f"entry {n}: {ADMIN_CLIENT!r} is the admin token's "
                              f"name; give the client another")
        if name in out:
            raise ConfigError(source, key, f"entry {n}: its name is given before")
        if not isinstance(token, str) or not CLIENT_TOKEN.fullmatch(token):
            raise ConfigError(source, key, f"entry {n}: a token is at least "
                              f"{MIN_TOKEN_LENGTH} printable ASCII characters, without spaces "
                              f"or commas")
        if token in out.values():
            raise ConfigError(source, key, f"entry {n}: another client's token: give "
                              f"each client its own, so one can be revoked alone")
        out[name] = token
    return out
