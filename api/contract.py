"""What makes the OpenAPI document one that generated clients can rely on.

Two apispec plugins, added to every document by :class:`api.problems.ProblemApi`:

- :class:`ErrorResponses` declares on each operation the error statuses the app's shared
  handlers can answer it with (a JSON body can be malformed, too large, of another type or
  invalid; any /v1 operation can be rate-limited, and refused without a client token when the
  server sets client tokens; any operation can fail), and types every
  error response of the document as the Problem schema in ``application/problem+json``;
- :class:`NamedEnums` registers each :class:`~api.enums.NamedEnum` as a schema component and
  makes every :class:`~api.enums.Choice` field refer to it, so clients get one ``Moment``
  or ``Channel`` type, a nullable one as "the enum or null" and an extensible one as "the
  enum or any string".
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from apispec import APISpec, BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import fields

from .enums import NamedEnum

#: Operations answered without the rate limit (probes and metrics, see ``create_app``).
UNLIMITED = frozenset({"healthz", "readyz", "metrics"})

#: The statuses every operation of a kind can answer, and when.
BODY_ERRORS = {
    400: "The body is not valid JSON (syntax, encoding, NaN or Infinity, nesting).",
    413: "The body is larger than the configured limit (max_body_bytes).",
    415: "The body is not sent as application/json.",
    422: "A field is missing, unknown or out of its contract; ``errors`` names each one.",
}
QUERY_ERRORS = {
    422: "A query parameter is unknown or out of its contract; ``errors`` names it.",
}
RATE_LIMITED = ("More requests than the configured rate limit (``rate_limit``) allows; "
                "send again after Retry-After seconds.")
SERVER_ERROR = "The server failed; the error is logged under the reference in ``detail``."
RETRY_AFTER = {"description": "Seconds to wait before sending the request again.",
               "schema": {"type": "integer", "minimum": 0}}
UNAUTHORIZED = ("The server sets client tokens (``client_tokens``) and the request carries "
                "none of them, nor the admin token, as its bearer token.")

#: Paths a client token guards (see :mod:`api.clients`), and those under them that guard
#: themselves with the admin token.
CLIENT_PREFIX, ADMIN_PREFIX = "/v1/", "/v1/admin/"
#: The OpenAPI security scheme of a client token.
CLIENT_SCHEME = "clientToken"


def guarded(path: str) -> bool:
    """Whether a call to ``path`` needs a client token when the server sets any."""
    return path.startswith(CLIENT_PREFIX) and not path.startswith(ADMIN_PREFIX)


class ErrorResponses(BasePlugin):
    """Every error status an operation can answer is declared, each as a Problem."""

    def __init__(self, problem_schema: str, media_type: str):
        self.problem = {media_type: {"schema": {"$ref": f"#/components/schemas/{problem_schema}"}}}

    def operation_helper(self, path: str | None = None, operations: dict | None = None,
                         **kwargs: Any) -> None:
        for operation in (operations or {}).values():
            responses = operation.setdefault("responses", {})
            declared = {str(code) for code in responses}
            expected = self._expected(operation)
            if path is not None and guarded(path):
                # Only the 401: a security requirement, even an optional one, makes generated
                # clients demand a token type on servers that set no client tokens.
                expected[401] = (UNAUTHORIZED, None)
            for status, (description, headers) in expected.items():
                if str(status) not in declared:
                    response: dict[str, Any] = {"description": description}
                    if headers:
                        response["headers"] = headers
                    responses[status] = response
            for code, response in responses.items():
                if str(code).isdigit() and int(code) >= 400 and isinstance(response, dict) \
                        and "$ref" not in response:
                    response.setdefault("content", copy.deepcopy(self.problem))
            operation["responses"] = dict(sorted(  # by status, "default" last
                responses.items(), key=lambda item: (not str(item[0]).isdigit(), str(item[0]))))

    @staticmethod
    def _expected(operation: dict[str, Any]) -> dict[int, tuple[str, dict | None]]:
        """The statuses the shared handlers (``create_app``, ``ProblemApi``) can give it."""
        expected: dict[int, tuple[str, dict | None]] = {}
        if "application/json" in operation.get("requestBody", {}).get("content", {}):
            expected.update({s: (d, None) for s, d in BODY_ERRORS.items()})
        if any(p.get("in") == "query" for p in operation.get("parameters", [])):
            expected.update({s: (d, None) for s, d in QUERY_ERRORS.items()})
        if operation.get("operationId") not in UNLIMITED:
            expected[429] = (RATE_LIMITED, {"Retry-After": RETRY_AFTER})
        expected[500] = (SERVER_ERROR, None)
        return expected


class NamedEnums(BasePlugin):
    """Each named enum is a schema component; each Choice field refers to its component."""

    def __init__(self, enums: Iterable[NamedEnum]):
        self.enums = tuple(enums)

    def init_spec(self, spec: APISpec) -> None:
        for enum in self.enums:
            spec.components.schema(enum.name, {"type": "string", "enum": list(enum.values),
                                               "description": enum.description})
        for plugin in spec.plugins:
            if isinstance(plugin, MarshmallowPlugin):
                plugin.converter.add_attribute_function(enum_reference)


def enum_reference(self: Any, field: fields.Field, ret: dict[str, Any], **kwargs: Any
                   ) -> dict[str, Any]:
    """A Choice field as a reference to its enum (or null, or any string when extensible)."""
    enum: NamedEnum | None = getattr(field, "named_enum", None)
    if enum is None:
        return {}
    for key in ("type", "enum"):
        ret.pop(key, None)
    options: list[dict[str, Any]] = [{"$ref": f"#/components/schemas/{enum.name}"}]
    if enum.extensible:
        options.append({"type": "string"})
    if field.allow_none:
        options.append({"type": "null"})
    return options[0] if len(options) == 1 else {"anyOf": options}
