"""Chunked bodies: a body sent without Content-Length obeys the same limit as one with it.
Over the limit is 413 and nothing is stored; within it, the request is served as usual.

    python reliability/chunked_body.py
    python reliability/chunked_body.py --json out.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import RECOMMEND, Server, finish, report, sample_workspace  # noqa: E402


def feedback(event_id: str) -> dict:
    return {"event_id": event_id, "request_id": "r-chunked", "product": "caller_id",
            "action": "accept", "customer_id": "C0000001"}


def chunks(body: dict, padding: int, size: int = 8192) -> Iterator[bytes]:
    """The JSON body with ``padding`` spaces before its closing brace, in ``size`` pieces."""
    text = json.dumps(body).encode()
    data = text[:-1] + b" " * padding + b"}"
    for i in range(0, len(data), size):
        yield data[i:i + size]


def post_chunked(base: str, path: str, body: dict, padding: int) -> int | str:
    """The status, or "closed" when the server refused the body by closing the connection
    before the client could send all of it."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("POST", path, body=chunks(body, padding), encode_chunked=True,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status
    except (BrokenPipeError, ConnectionResetError):
        return "closed"
    finally:
        connection.close()


def stored(root: Path, event_id: str) -> bool:
    from recommender.store import Store

    with Store(root / "store.sqlite") as store:
        return store.db.execute("SELECT 1 FROM feedback WHERE event_id = ?",
                                (event_id,)).fetchone() is not None


CASES = [  # (name, path, body kind, padding bytes, expected status)
    ("feedback 200 KB", "/v1/feedback", "feedback", 200_000, 413),
    ("feedback 64 KiB + 1", "/v1/feedback", "feedback", 65_536, 413),
    ("feedback 2 MB", "/v1/feedback", "feedback", 2_000_000, 413),
    ("recommendation 200 KB", "/v1/recommendations", "recommend", 200_000, 413),
    ("feedback 10 KB", "/v1/feedback", "feedback", 10_000, 201),
    ("recommendation 10 KB", "/v1/recommendations", "recommend", 10_000, 200),
]


def run(root: Path) -> dict:
    rows = []
    with Server(root, workers=2) as server:
        for name, path, kind, padding, expected in CASES:
            event_id = f"chunked-{uuid.uuid4().hex[:10]}"
            body = feedback(event_id) if kind == "feedback" else RECOMMEND
            status = post_chunked(server.base, path, body, padding)
            was_stored = kind == "feedback" and stored(root, event_id)
            refused = status == "closed" and expected == 413
            rows.append({"case": name, "status": status, "expected": expected,
                         "stored": was_stored,
                         "held": (status == expected or refused)
                         and was_stored == (expected == 201)})
    return {"cases": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="workspace (default: a fresh sample one)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or sample_workspace(Path(tmp) / "ws", customers=300)
        result = run(root)
    report(result["cases"], ["case", "status", "expected", "stored", "held"])
    return finish(result, all(r["held"] for r in result["cases"]), args.json)


if __name__ == "__main__":
    sys.exit(main())
