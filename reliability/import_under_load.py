"""Import under load: ``recommender import events`` of a large CSV while feedback and
recommendation clients keep calling a real 2-worker x 4-thread server.

    python reliability/import_under_load.py                   # 2,000,000 events, 12 clients
    python reliability/import_under_load.py --quick --json out.json       # 100,000 events

Feedback clients behave as the API asks: on 503 they wait Retry-After seconds, on a dropped
connection a moment, then send the same event id again. Held means: no 5xx other than 503
(which must carry Retry-After), no dropped connection, every acknowledged feedback event in the
store, feedback never slower than its budget, recommendations' p99 within theirs, and importing
the same file a second time stores no new event.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Server, call, sample_workspace  # noqa: E402

#: Budgets: the feedback write waits at most 1 s for the lock (api/feedback.py), plus the
#: request itself; recommendations only read, so an import must not slow them much.
FEEDBACK_MAX_MS = 2000.0
RECOMMEND_P99_MS = 1000.0
FULL_ROWS = 2_000_000
QUICK_ROWS = 100_000
KINDS = ("query", "transaction", "success", "success", "failure")
REASONS = ("not_eligible", "conflict", "missing_prerequisite", "other")


def write_events(path: Path, rows: int, customers: list[str], products: list[str],
                 channels: list[str], seed: int = 20261125) -> None:
    """A seeded events.csv of ``rows`` rows over the store's customers and the catalog."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ts", "customer_id", "product_id", "channel", "kind",
                         "failure_reason"])
        for _ in range(rows):
            kind = rng.choice(KINDS)
            writer.writerow([1_760_000_000 + rng.randrange(10_000_000), rng.choice(customers),
                             rng.choice(products), rng.choice(channels), kind,
                             rng.choice(REASONS) if kind == "failure" else ""])


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def post(base: str, path: str, body: Any, timeout: float = 30
         ) -> tuple[int, dict[str, str], str]:
    """(status, headers, body); status 0 for a dropped connection or a timeout."""
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                     method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()
    except OSError:
        return 0, {}, ""


class Load:
    """Feedback clients and a recommendation client, running until ``stop``."""

    def __init__(self, base: str, customers: list[str], products: list[str], clients: int):
        self.base = base
        self.customers = customers
        self.products = products
        self.clients = clients
        self.run_id = uuid.uuid4().hex[:8]
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.feedback_ms: list[float] = []
        self.recommend_ms: list[float] = []
        self.statuses: dict[str, dict[int, int]] = {"feedback": {}, "recommend": {}}
        self.missing_retry_after = 0
        self.busy_writers = 0  # 503 because every writer slot of the process was taken
        self.acked: list[str] = []
        self.threads: list[threading.Thread] = []

    def _count(self, kind: str, status: int, ms: float) -> None:
        with self.lock:
            self.statuses[kind][status] = self.statuses[kind].get(status, 0) + 1
            (self.feedback_ms if kind == "feedback" else self.recommend_ms).append(ms)

    def _feedback(self, t: int) -> None:
        rng = random.Random(t)
        i = 0
        while not self.stopping.is_set():
            event_id = f"load-{self.run_id}-{t}-{i}"
            body = {"event_id": event_id, "request_id": f"r-{t}-{i}",
                    "product": rng.choice(self.products), "action": "click",
                    "customer_id": rng.choice(self.customers), "channel": "app",
                    "moment": "success"}
            while True:
                started = time.monotonic()
                status, headers, text = post(self.base, "/v1/feedback", body)
                self._count("feedback", status, (time.monotonic() - started) * 1000)
                if status in (200, 201):
                    with self.lock:
                        self.acked.append(event_id)
                    break
                if status == 503:
                    retry = headers.get("Retry-After")
                    with self.lock:
                        self.missing_retry_after += retry is None
                        self.busy_writers += "writer of this server process" in text
                    time.sleep(float(retry or 1))
                else:
                    time.sleep(0.1)
            i += 1

    def _recommend(self) -> None:
        rng = random.Random(-1)
        while not self.stopping.is_set():
            body = {"customer": {"id": rng.choice(self.customers)}, "channel": "app",
                    "moment": "success", "product": "plan_5g"}
            started = time.monotonic()
            status, _, _ = post(self.base, "/v1/recommendations", body)
            self._count("recommend", status, (time.monotonic() - started) * 1000)

    def start(self) -> None:
        self.threads = [threading.Thread(target=self._feedback, args=(t,), daemon=True)
                        for t in range(self.clients)]
        self.threads.append(threading.Thread(target=self._recommend, daemon=True))
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)


def run(root: Path, rows: int, clients: int, workers: int, threads: int, tmp: Path) -> dict:
    from recommender.context import CHANNEL_IDS
    from recommender.store import Store
    from recommender.workspace import Workspace

    ws = Workspace(root)
    catalog = ws.catalog()
    with ws.store() as store:
        customers = store.customer_ids()
        events_before = store.count("events")
    products = list(catalog.ids)
    csv_path = tmp / "events.csv"
    t0 = time.monotonic()
    write_events(csv_path, rows, customers, products, list(CHANNEL_IDS))
    generated_s = time.monotonic() - t0
    command = [sys.executable, "-m", "recommender.cli", "import", "--dir", str(root), "events",
               str(csv_path)]

    with Server(root, workers=workers, threads=threads) as server:
        for _ in range(3):  # warm both workers' first requests
            call(server.base, "POST", "/v1/recommendations",
                 {"customer": {"id": customers[0]}, "channel": "app", "moment": "query"})
        load = Load(server.base, customers, products, clients)
        load.start()
        time.sleep(1.0)
        started = time.monotonic()
        imported = subprocess.run(command, capture_output=True, text=True)
        import_s = time.monotonic() - started
        time.sleep(0.5)
        load.stop()

    with Store(ws.store_path) as store:
        found = {r[0] for r in store.db.execute(
            "SELECT event_id FROM feedback WHERE event_id LIKE ?", (f"load-{load.run_id}-%",))}
        events_after = store.count("events")
    started = time.monotonic()
    again = subprocess.run(command, capture_output=True, text=True)
    reimport_s = time.monotonic() - started
    with Store(ws.store_path) as store:
        events_again = store.count("events")

    fb, rec = load.statuses["feedback"], load.statuses["recommend"]
    return {
        "rows": rows, "feedback_clients": clients, "workers": workers, "threads": threads,
        "csv_generated_s": round(generated_s, 1),
        "import_ok": imported.returncode == 0, "import_s": round(import_s, 1),
        "import_summary": (imported.stderr.strip().splitlines() or [""])[-1].strip(),
        "import_error": "" if imported.returncode == 0 else imported.stderr[-2000:],
        "events_before": events_before, "events_after": events_after,
        "events_added": events_after - events_before,
        "feedback_requests": sum(fb.values()),
        "feedback_201": fb.get(201, 0), "feedback_200": fb.get(200, 0),
        "feedback_503": fb.get(503, 0), "feedback_503_writer_slots": load.busy_writers,
        "feedback_5xx_other": sum(n for s, n in fb.items() if s >= 500 and s != 503),
        "feedback_other": sum(n for s, n in fb.items() if s not in (0, 200, 201, 503)
                              and s < 500),
        "feedback_dropped": fb.get(0, 0),
        "feedback_503_without_retry_after": load.missing_retry_after,
        "feedback_p50_ms": round(percentile(load.feedback_ms, 50), 1),
        "feedback_p99_ms": round(percentile(load.feedback_ms, 99), 1),
        "feedback_max_ms": round(max(load.feedback_ms, default=0.0), 1),
        "acknowledged": len(load.acked), "acknowledged_in_store": len(set(load.acked) & found),
        "recommend_requests": sum(rec.values()), "recommend_200": rec.get(200, 0),
        "recommend_failed": sum(n for s, n in rec.items() if s != 200),
        "recommend_p50_ms": round(percentile(load.recommend_ms, 50), 1),
        "recommend_p99_ms": round(percentile(load.recommend_ms, 99), 1),
        "recommend_max_ms": round(max(load.recommend_ms, default=0.0), 1),
        "reimport_ok": again.returncode == 0, "reimport_s": round(reimport_s, 1),
        "events_after_reimport": events_again,
        "feedback_max_budget_ms": FEEDBACK_MAX_MS, "recommend_p99_budget_ms": RECOMMEND_P99_MS,
    }


def verdict(r: dict) -> list[str]:
    """What broke; empty when everything held."""
    broke = []
    if not r["import_ok"]:
        broke.append("the import failed")
    if r["events_added"] != r["rows"]:
        broke.append(f"{r['events_added']} events added for {r['rows']} rows")
    if r["feedback_5xx_other"] or r["recommend_failed"]:
        broke.append("5xx answers other than 503, or failed recommendations")
    if r["feedback_dropped"]:
        broke.append("dropped feedback connections")
    if r["feedback_503_without_retry_after"]:
        broke.append("503 without Retry-After")
    if r["acknowledged_in_store"] != r["acknowledged"] or not r["acknowledged"]:
        broke.append("acknowledged feedback missing from the store")
    if r["feedback_max_ms"] > r["feedback_max_budget_ms"]:
        broke.append("feedback slower than its budget")
    if r["recommend_p99_ms"] > r["recommend_p99_budget_ms"]:
        broke.append("recommendation p99 over its budget")
    if not r["reimport_ok"] or r["events_after_reimport"] != r["events_after"]:
        broke.append("importing the same file again changed the events")
    return broke


def table(r: dict) -> str:
    lines = [
        f"import of {r['rows']:,} events: {r['import_s']} s ({r['import_summary']})",
        "",
        "| feedback | requests | 201 | 200 | 503 (writer slots full) | other 5xx | dropped | "
        "p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {r['feedback_clients']} clients | {r['feedback_requests']:,} | "
        f"{r['feedback_201']:,} | {r['feedback_200']:,} | {r['feedback_503']:,} "
        f"({r['feedback_503_writer_slots']:,}) | {r['feedback_5xx_other']} | "
        f"{r['feedback_dropped']} | {r['feedback_p50_ms']} | {r['feedback_p99_ms']} | "
        f"{r['feedback_max_ms']} |",
        "",
        "| recommendations | requests | 200 | failed | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| 1 client | {r['recommend_requests']:,} | {r['recommend_200']:,} | "
        f"{r['recommend_failed']} | {r['recommend_p50_ms']} | {r['recommend_p99_ms']} | "
        f"{r['recommend_max_ms']} |",
        "",
        f"acknowledged feedback {r['acknowledged']:,}, found in the store "
        f"{r['acknowledged_in_store']:,}",
        f"events {r['events_before']:,} -> {r['events_after']:,}; imported again in "
        f"{r['reimport_s']} s -> {r['events_after_reimport']:,}",
        f"budgets: feedback max {r['feedback_max_budget_ms']:.0f} ms, recommendations p99 "
        f"{r['recommend_p99_budget_ms']:.0f} ms",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path,
                        help="workspace to import into (default: a fresh trained sample one)")
    parser.add_argument("--rows", type=int, help=f"events to import (default {FULL_ROWS:,})")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_ROWS:,} events unless --rows says otherwise")
    parser.add_argument("--clients", type=int, default=12, help="feedback client threads")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    rows = args.rows or (QUICK_ROWS if args.quick else FULL_ROWS)
    with tempfile.TemporaryDirectory(prefix="import-under-load-") as tmp:
        root = args.dir or sample_workspace(Path(tmp) / "ws", customers=2000, train=True)
        result = run(root, rows, args.clients, args.workers, args.threads, Path(tmp))
    broke = verdict(result)
    result["broke"] = broke
    print(table(result))
    if result["import_error"]:
        print(result["import_error"])
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    for reason in broke:
        print(f"broke: {reason}")
    print("held" if not broke else "broke")
    print("PASS" if not broke else "FAIL")
    return 0 if not broke else 1


if __name__ == "__main__":
    sys.exit(main())
