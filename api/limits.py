"""The body limit for every request, whether it declares its length or is sent chunked.

Flask's ``MAX_CONTENT_LENGTH`` refuses a body whose ``Content-Length`` is too large, but a
chunked body has no length and the server hands it over as a stream. This middleware reads such
a body up to the limit before the app sees it: within the limit the app gets it with its
length; one byte over, the request is marked and answered 413 (see ``create_app``), and nothing
of it reaches a view.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class BodyLimit:
    """WSGI middleware: buffer a body of unknown length, at most ``limit`` bytes."""

    #: Set in the WSGI environment when the body was over the limit.
    OVER = "recommender.body_over_limit"

    def __init__(self, app: WSGIApp, limit: int):
        self.app = app
        self.limit = limit

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        if not environ.get("CONTENT_LENGTH") and _has_body(environ):
            stream = environ["wsgi.input"]
            chunks, size = [], 0
            while size <= self.limit:
                chunk = stream.read(min(65536, self.limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            if size > self.limit:
                environ[self.OVER] = True
                body = b""
                environ["wsgi.input"] = io.BytesIO(b"")
                environ["CONTENT_LENGTH"] = "0"
            else:
                body = b"".join(chunks)
                environ["wsgi.input"] = io.BytesIO(body)
                environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            environ["wsgi.input_terminated"] = True
        return self.app(environ, start_response)


def _has_body(environ: dict[str, Any]) -> bool:
    """A request whose body the server streams without a declared length (chunked)."""
    return bool(environ.get("HTTP_TRANSFER_ENCODING"))
