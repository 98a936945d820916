"""HTTP helpers for the API contract tests: raw exchanges (status, headers, bytes) and the
operations of an OpenAPI document."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any


def exchange(base: str, method: str, path: str, *, data: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request on a fresh connection: (status, headers, raw body, not decoded)."""
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def operations(spec: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId -> (path, method, operation) of every operation in ``spec``."""
    return {op["operationId"]: (path, method, op) for path, item in spec["paths"].items()
            for method, op in item.items() if method != "parameters"}
