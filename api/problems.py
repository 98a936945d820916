"""Errors as RFC 9457 problem details: every 4xx and 5xx is JSON naming what was wrong.

Nothing else reaches the client: not Werkzeug's HTML pages, not a traceback, not a file path.
Validation errors carry ``errors``, a map from the field's dotted path (``customer.holdings.3``)
to its messages, so a front-end can point at the field.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from apispec import BasePlugin
from flask import Response, g, request
from flask_smorest import Api
from flask_smorest.spec import prepare_response
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException

from recommender.errors import ContextError, UnknownCustomerError, UnknownProductError

from .contract import ErrorResponses, NamedEnums
from .enums import ENUMS
from .schemas import ProblemSchema

log = logging.getLogger("recommender.api")

PROBLEM_MIME = "application/problem+json"
TYPE_BASE = "/docs#problem-"  # each type is described on the docs page


def problem(status: int, detail: str, *, errors: Mapping[str, list[str]] | None = None,
            headers: Mapping[str, str] | None = None, **extra: Any) -> Response:
    """A problem-details response."""
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": TYPE_BASE + phrase.lower().replace(" ", "-").replace("'", ""),
        "title": phrase, "status": status, "detail": detail,
    }
    with contextlib.suppress(RuntimeError):
        body["instance"] = request.path
        if "request_id" in g:
            body["request_id"] = g.request_id
    if errors:
        body["errors"] = {k: list(v) for k, v in errors.items()}
    body.update(extra)
    text = json.dumps(body, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate the client sent, echoed in a field name
        text = json.dumps(body)
    response = Response(text, status=status, mimetype=PROBLEM_MIME)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Marshmallow's nested error dict as {"customer.holdings.3": ["..."]}."""
    if isinstance(messages, Mapping):
        out: dict[str, list[str]] = {}
        for key, value in messages.items():
            name = str(key) if key != "_schema" else ""
            path = f"{prefix}.{name}" if prefix and name else (prefix or name or "body")
            out.update(flatten(value, path))
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {prefix or "body": messages}
    if isinstance(messages, list):
        out = {}
        for item in messages:
            out.update(flatten(item, prefix))
        return out
    return {prefix or "body": [str(messages)]}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class StrictJSONParser(FlaskParser):
    """Reads JSON bodies as RFC 8259 says: no NaN or Infinity, nesting errors are 400s."""

    DEFAULT_UNKNOWN_BY_LOCATION: dict[str, str | None] = {"json": None, "query": None}

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req):
            return core.missing
        raw = req.get_data(cache=True)
        if not raw:
            return core.missing
        try:
            return json.loads(raw, parse_constant=_reject_constant)
        except RecursionError:
            raise BadJSON("nested too deeply") from None
        except UnicodeDecodeError as e:
            raise BadJSON(f"not UTF-8 at byte {e.start}") from None
        except json.JSONDecodeError as e:
            raise BadJSON(f"{e.msg} at line {e.lineno} column {e.colno}") from None
        except ValueError as e:
            raise BadJSON(str(e)) from None


class BadJSON(Exception):
    """The request body is not valid JSON."""


class OperationIds(BasePlugin):
    """An apispec plugin giving every operation an ``operationId``: its view function's name,
    which generated clients use to name their methods (``recommend``, ``list_products``)."""

    def path_helper(self, path: str | None = None, operations: dict | None = None, *,
                    rule: Any = None, **kwargs: Any) -> None:
        if rule is None or not operations:
            return
        name = rule.endpoint.rpartition(".")[2]
        for method, operation in operations.items():
            operation.setdefault("operationId", name if len(operations) == 1
                                 else f"{name}_{method}")


class ProblemApi(Api):
    """flask-smorest's Api, answering and documenting errors as problem details.

    Its document declares every error status of every operation as a Problem and names each
    enum once (see :mod:`api.contract`).
    """

    ERROR_SCHEMA = ProblemSchema
    DEFAULT_ERROR_RESPONSE_NAME = "DEFAULT_ERROR"

    def _init_spec(self, *, extra_plugins: Any = None, **kwargs: Any) -> None:
        plugins = [*(extra_plugins or ()), ErrorResponses("Problem", PROBLEM_MIME),
                   NamedEnums(ENUMS)]
        super()._init_spec(extra_plugins=plugins, **kwargs)

    def _register_responses(self) -> None:
        for status in HTTPStatus:
            if status < 400:
                continue
            response = {"description": status.phrase, "schema": self.ERROR_SCHEMA}
            prepare_response(response, self.spec, PROBLEM_MIME)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Problem details", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MIME)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)

    def _register_error_handlers(self) -> None:
        app = self._app
        app.register_error_handler(HTTPException, self.handle_http_exception)
        app.register_error_handler(BadJSON, _bad_json)
        app.register_error_handler(ContextError, _context_error)
        app.register_error_handler(UnknownProductError, _unknown_product)
        app.register_error_handler(UnknownCustomerError, _unknown_customer)
        app.register_error_handler(Exception, _unexpected)

    def handle_http_exception(self, error: HTTPException) -> Response:  # type: ignore[override]
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        errors = None
        detail = error.description or HTTPStatus(status).description
        if "messages" in data:  # webargs validation, keyed by location ("json", "query")
            errors = {}
            for messages in data["messages"].values():
                errors.update(flatten(messages))
            detail = "the request does not match the schema: " + "; ".join(
                f"{field}: {' '.join(msgs)}" for field, msgs in sorted(errors.items()))
        if "message" in data:
            detail = data["message"]
        if status == 429:
            detail = f"rate limit exceeded ({error.description}); retry after Retry-After seconds"
        headers = dict(data.get("headers") or {})
        valid_methods = getattr(error, "valid_methods", None)
        if status == 405 and valid_methods:
            detail = f"{request.method} is not allowed here; use {', '.join(valid_methods)}"
            headers["Allow"] = ", ".join(valid_methods)
        if status >= 500:
            log.error("%s %s -> %d", request.method, request.path, status)
        return problem(status, detail, errors=errors, headers=headers)


def _bad_json(error: BadJSON) -> Response:
    return problem(400, f"the request body is not valid JSON: {error}",
                   errors={"body": [str(error)]})


def _context_error(error: ContextError) -> Response:
    message = str(error)
    return problem(422, message, errors={error.field: [message.split(": ", 1)[-1]]})


def _unknown_product(error: UnknownProductError) -> Response:
    return problem(422, str(error), errors={error.field: [f"unknown product "
                                                          f"{error.product_id!r}"]})


def _unknown_customer(error: UnknownCustomerError) -> Response:
    return problem(422, f"{error}; send the customer's attributes and holdings inline",
                   errors={"customer.id": ["unknown customer"]})


def _unexpected(error: Exception) -> Response:
    # One line at ERROR, without the message (it may hold paths or data); the traceback only
    # when DEBUG logging is switched on for "recommender.api".
    reference = uuid.uuid4().hex[:12]
    log.error("unhandled %s on %s %s (error %s)", type(error).__name__, request.method,
              request.path, reference)
    log.debug("error %s", reference, exc_info=error)
    return problem(500, f"the server failed to answer this request (error {reference}); "
                        f"it has been logged")


def without_paths(message: str, settings: Any) -> str:
    """Strip the server's folders from a message before it leaves the process."""
    for folder in (settings.models, settings.root / "models", settings.root):
        if folder is not None:
            for text in (str(folder.resolve()), str(folder)):
                message = message.replace(text + "/", "").replace(text, "")
    return message
