"""gzip for the clients that ask for it (``Accept-Encoding: gzip``), through Flask-Compress.

JSON compresses well (the sample operator's catalog listing and recommendations to about a
quarter), which matters to the mobile app and WeChat halls on slow networks. Only gzip is
offered: every HTTP client speaks it. Bodies under ``MIN_BYTES`` are sent as they are (the
header costs more than it saves), and so are errors; the ETag of a gzipped answer gets a
``:gzip`` suffix (it is another representation) and conditional requests still get their 304.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask_compress import Compress

#: Smaller bodies are not worth compressing.
MIN_BYTES = 500
#: The media types compressed (success answers only: Flask-Compress leaves errors alone).
MEDIA_TYPES = ("application/json", "text/html", "text/plain")


class GzipWhenAccepted(Compress):
    """Flask-Compress, except that ``gzip;q=0`` is a refusal (RFC 9110, section 12.5.3):
    Flask-Compress 1.25 still compresses such a request's answer."""

    def after_request(self, response: Response) -> Response:
        if request.accept_encodings["gzip"] <= 0:
            response.vary.add("Accept-Encoding")
            return response
        return super().after_request(response)


def compress(app: Flask) -> None:
    """Answer gzip-compressed when the request accepts it, and only then."""
    app.config.update(
        COMPRESS_ALGORITHM=["gzip"], COMPRESS_ALGORITHM_STREAMING=["gzip"],
        COMPRESS_MIMETYPES=list(MEDIA_TYPES), COMPRESS_MIN_SIZE=MIN_BYTES, COMPRESS_LEVEL=6,
    )
    GzipWhenAccepted(app)
