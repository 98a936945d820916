"""Metric cardinality: requests with random methods, paths and bodies must not add Prometheus
series; /metrics stays the same size whatever unauthenticated clients send.

    python reliability/metric_cardinality.py                  # 2 x 1,500 requests
    python reliability/metric_cardinality.py --requests 150 --json out.json
"""

from __future__ import annotations

import argparse
import http.client
import random
import string
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Server, call, finish, report, sample_workspace  # noqa: E402

#: Series a run may add: one per (endpoint, method, status) the app can really answer with.
ALLOWED_GROWTH = 60


def series(base: str) -> tuple[int, int]:
    """(number of samples, bytes) of /metrics."""
    _, text = call(base, "GET", "/metrics")
    return sum(1 for line in text.splitlines() if line and not line.startswith("#")), len(text)


def send(base: str, requests: int, rng: random.Random) -> None:
    """Requests with random methods and paths, each on its own connection."""
    host, port = base.removeprefix("http://").split(":")
    for _ in range(requests):
        method = "".join(rng.choices(string.ascii_uppercase, k=rng.randint(3, 12)))
        path = rng.choice(["/v1/recommendations", "/healthz", "/v1/products/",
                           "/" + "".join(rng.choices(string.ascii_lowercase, k=8))])
        if path.endswith("/"):
            path += "".join(rng.choices(string.ascii_lowercase, k=10))
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            connection.request(method, path, body=b"{}",
                               headers={"Content-Type": "application/json"})
            connection.getresponse().read()
        except OSError:
            pass
        finally:
            connection.close()


def run(root: Path, requests: int, seed: int) -> dict:
    """Two rounds of random requests: the first may add the few label sets of the statuses
    such requests get (404, 405...); the second, as many again, must add none."""
    rng = random.Random(seed)
    with Server(root, workers=2) as server:
        call(server.base, "GET", "/healthz")
        before = series(server.base)
        send(server.base, requests, rng)
        middle = series(server.base)
        send(server.base, requests, rng)
        after = series(server.base)
    return {"requests": 2 * requests, "samples_before": before[0],
            "samples_after_round_1": middle[0], "samples_after_round_2": after[0],
            "bytes_before": before[1], "bytes_after": after[1],
            "series_added": after[0] - before[0],
            "added_by_round_2": after[0] - middle[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="workspace (default: a fresh sample one)")
    parser.add_argument("--requests", type=int, default=1500, help="per round (two rounds)")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or sample_workspace(Path(tmp) / "ws", customers=300)
        result = run(root, args.requests, args.seed)
    report([result], list(result))
    ok = result["series_added"] <= ALLOWED_GROWTH and result["added_by_round_2"] == 0
    return finish(result, ok, args.json)


if __name__ == "__main__":
    sys.exit(main())
