"""Server-side time of every console page, against the 300 ms budget and the API's own
recommendation call in the same run.

    python benchmarks/bench_console.py                 # 2,000 customers, 30 requests a page
    python benchmarks/bench_console.py --repeat 100    # steadier percentiles
    python benchmarks/bench_console.py --quick         # CI smoke test (300 customers, 3 a page)

The sample operator (seed 7) is built once in --work. Each page is asked through the app in
process (the WSGI call: routing, session, engine, templates; no network), signed in, after one
warm-up request, for customers drawn at random; the peer rows are ``POST /v1/recommendations``
(one answer: the customer page asks 24 of them) and ``GET /healthz``. The dry run is an action,
not a page: it is timed too (a rule's two moments on six channels for 20 customers, both
configurations), and not held to the page budget.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BUDGET_MS = 300.0
TOKEN = "bench-console-token-0123456789"


def build(root: Path, customers: int) -> Any:
    from recommender import sampledata
    from recommender.workspace import Workspace

    ws = Workspace(root)
    if not (root / "models").exists():
        root.mkdir(parents=True, exist_ok=True)
        sampledata.write_workspace_files(root)
        with ws.store() as store:
            sampledata.generate(store, ws.catalog(), customers=customers, seed=7)
        ws.train()
    return ws


def signed_in(app: Any) -> tuple[Any, str]:
    """A test client through the sign-in form, and its form token."""
    client = app.test_client()
    client.get("/console/language/en")
    page = client.get("/console/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/console/sign-in", data={"token": TOKEN, "csrf_token": token})
    assert response.status_code == 303, "sign-in failed"
    page = client.get("/console/").get_data(as_text=True)
    return client, re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def timed(call: Callable[[int], Any], repeat: int) -> list[float]:
    """Milliseconds of ``repeat`` calls (the i-th gets i), after one warm-up call."""
    response = call(0)
    assert response.status_code < 400, response.status_code
    out = []
    for i in range(repeat):
        t0 = time.perf_counter()
        response = call(i)
        out.append((time.perf_counter() - t0) * 1000)
        assert response.status_code < 400, response.status_code
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--work", type=Path, default=None,
                        help="workspace folder to build once and reuse")
    parser.add_argument("--quick", action="store_true", help="300 customers, 3 a page")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    if args.quick:
        args.customers, args.repeat = 300, 3

    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from api import ServerSettings, create_app

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-console-"))
    ws = build(work, args.customers)
    app = create_app(settings=ServerSettings.load(ws.root, environ={}, admin_token=TOKEN))
    client, csrf = signed_in(app)
    with ws.store() as store:
        ids = store.customer_ids()
    rng = np.random.default_rng(7)
    who = [str(c) for c in rng.choice(ids, max(args.repeat, 1) + 1)]

    def get(path: str | Callable[[int], str]) -> Callable[[int], Any]:
        return lambda i: client.get(path(i) if callable(path) else path)

    rule_form = {"csrf_token": csrf, "action": "dry_run", "sample": "20", "rows": "1",
                 "id": "roaming-abroad-kit", "moments": ["transaction", "success"],
                 "priority": "42", "recommend-0-product": "intl_data_daypass",
                 "recommend-0-reason": "出国必备", "when-product": "intl_roaming",
                 "try_product": "intl_roaming", "enabled": "1"}
    number = 1 + [r.get("id") for r in __import__("tomllib").loads(
        (ws.root / "rules.toml").read_text())["rule"]].index("roaming-abroad-kit")
    pages: list[tuple[str, Callable[[int], Any]]] = [
        ("overview", get("/console/")),
        ("customer search", get("/console/customers/?q=C00012")),
        ("customer: grid of 24 answers", get(lambda i: f"/console/customers/{who[i]}")),
        ("customer: what-if (4G, hotline, failure)", get(
            lambda i: f"/console/customers/{who[i]}?network=4G&channel=hotline&moment=failure"
                      f"&product=plan_5g&failure_reason=not_eligible")),
        ("customer: what-if fragment", get(
            lambda i: f"/console/customers/{who[i]}/results?product=intl_roaming")),
        ("catalog", get("/console/catalog/")),
        ("rules and weights", get("/console/rules/")),
        ("one rule", get(f"/console/rules/{number}")),
        ("models", get("/console/models/")),
        ("live", get("/console/live/?window=all")),
        ("live data (each poll)", get("/console/live/data?window=all")),
        ("reports", get("/console/reports/")),
    ]
    peers: list[tuple[str, Callable[[int], Any]]] = [
        ("peer: POST /v1/recommendations", lambda i: client.post(
            "/v1/recommendations", json={"customer": {"id": who[i]}, "channel": "app",
                                         "moment": "success", "product": "intl_roaming"})),
        ("peer: GET /healthz", get("/healthz")),
    ]
    actions: list[tuple[str, Callable[[int], Any]]] = [
        ("action: rule dry run (20 customers)", lambda i: client.post(
            f"/console/rules/{number}", data=rule_form)),
    ]
    print(f"{args.repeat} requests a page, {len(ids)} customers (sample operator, seed 7), "
          f"in process; budget {BUDGET_MS:.0f} ms a page\n")
    print(f"| {'page':42} | p50 ms | p95 ms | max ms | within budget |")
    print(f"|{'-' * 44}|-------:|-------:|-------:|:-------------:|")
    rows = []
    for kind, entries, repeat in (("page", pages, args.repeat), ("peer", peers, args.repeat),
                                  ("action", actions, max(1, args.repeat // 5))):
        for name, call in entries:
            times = timed(call, repeat)
            p50, p95, top = (statistics.median(times), float(np.percentile(times, 95)),
                             max(times))
            within = ("yes" if top <= BUDGET_MS else "NO") if kind == "page" else "-"
            print(f"| {name:42} | {p50:6.1f} | {p95:6.1f} | {top:6.1f} | {within:^13} |")
            rows.append({"page": name, "kind": kind, "p50_ms": p50, "p95_ms": p95,
                         "max_ms": top, "requests": repeat})
    app.extensions["recommender"].slot.close()
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
