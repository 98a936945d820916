"""gzip over real HTTP: compressed when the client asks for it, never when it does not, and the
catalog's conditional requests still answer 304."""

from __future__ import annotations

import gzip
import json

import pytest
from api_support import copy_workspace, serving
from http_support import exchange

BODY = json.dumps({"customer": {"id": "C0000042"}, "channel": "web", "moment": "query",
                   "debug": True}).encode()
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def base(sample_workspace, tmp_path_factory):
    ws = copy_workspace(sample_workspace, tmp_path_factory.mktemp("gzip") / "ws")
    with serving(ws.root, ws.root / "server.log", "--workers", "1", "--no-access-log") as (
            url, _):
        yield url


@pytest.mark.parametrize(("method", "path", "data"), [
    ("GET", "/v1/products", None),
    ("GET", "/v1/strategies", None),
    ("POST", "/v1/recommendations", BODY),
    ("GET", "/openapi.json", None),
])
def test_gzip_when_asked_the_same_json_otherwise(base, method, path, data):
    status, plain_headers, plain = exchange(base, method, path, data=data, headers=JSON)
    assert status == 200 and "Content-Encoding" not in plain_headers
    status, headers, packed = exchange(base, method, path, data=data,
                                       headers={**JSON, "Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert "accept-encoding" in headers["Vary"].lower()
    assert int(headers["Content-Length"]) == len(packed) < len(plain)
    unpacked = json.loads(gzip.decompress(packed))
    if method == "GET":
        assert unpacked == json.loads(plain)
    else:  # another request: another id and timings, the same suggestions
        assert [s["product"] for s in unpacked["suggestions"]] == \
            [s["product"] for s in json.loads(plain)["suggestions"]]


@pytest.mark.parametrize("accept", ["", "identity", "gzip;q=0", "gzip;q=0, *", "br", "deflate"])
def test_no_compression_unless_gzip_is_accepted(base, accept):
    status, headers, raw = exchange(base, "GET", "/v1/products",
                                    headers={"Accept-Encoding": accept})
    assert status == 200 and "Content-Encoding" not in headers
    assert json.loads(raw)["count"] > 0


def test_small_answers_are_sent_as_they_are(base):
    status, headers, raw = exchange(base, "GET", "/healthz", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and "Content-Encoding" not in headers
    assert json.loads(raw) == {"status": "ok"}


def test_errors_are_sent_as_they_are(base):
    body = json.dumps({"customer": {f"field_{i}": i for i in range(40)}, "channel": "web",
                       "moment": "query"}).encode()
    status, headers, raw = exchange(base, "POST", "/v1/recommendations", data=body,
                                    headers={**JSON, "Accept-Encoding": "gzip"})
    assert status == 422 and len(raw) > 1000 and "Content-Encoding" not in headers
    assert json.loads(raw)["status"] == 422


def test_conditional_requests_still_get_their_304(base):
    asks = {"Accept-Encoding": "gzip"}
    _, headers, _ = exchange(base, "GET", "/v1/products", headers=asks)
    etag, modified = headers["ETag"], headers["Last-Modified"]
    assert etag.endswith(':gzip"')  # another representation, another validator
    for condition in ({"If-None-Match": etag}, {"If-Modified-Since": modified}):
        status, headers, raw = exchange(base, "GET", "/v1/products", headers={**asks,
                                                                              **condition})
        assert (status, raw) == (304, b""), condition
    status, _, raw = exchange(base, "GET", "/v1/products", headers={**asks,
                                                                    "If-None-Match": '"old"'})
    assert status == 200 and json.loads(gzip.decompress(raw))["count"] > 0
