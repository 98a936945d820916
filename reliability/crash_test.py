"""Crash test: feedback from several client threads to a multi-worker server while workers are
killed with SIGKILL. Every event that got a 2xx must be in the store, exactly once.

    python reliability/crash_test.py                     # 6 threads x 400 events, 2 kills
    python reliability/crash_test.py --threads 4 --events 50 --kills 1 --json out.json

Clients behave as the API asks: on a dropped connection or a 5xx they retry the same event id.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Server, call, sample_workspace  # noqa: E402


def run(root: Path, threads: int, events: int, kills: int, workers: int) -> dict:
    run_id = uuid.uuid4().hex[:8]
    acked: list[str] = []
    retries = dropped = 0
    lock = threading.Lock()
    killed: list[int] = []

    with Server(root, workers=workers, wait_for="/healthz") as server:
        def client(t: int) -> None:
            nonlocal retries, dropped
            for i in range(events):
                event_id = f"crash-{run_id}-{t}-{i}"
                body = {"event_id": event_id, "request_id": f"r-{t}-{i}",
                        "product": "caller_id", "action": "accept", "customer_id": "C0000001"}
                for attempt in range(20):
                    try:
                        status, _ = call(server.base, "POST", "/v1/feedback", body, timeout=10)
                    except OSError:
                        status = 0
                    if status in (200, 201):
                        with lock:
                            acked.append(event_id)
                        break
                    with lock:
                        retries += 1
                        dropped += status == 0
                    time.sleep(0.05 * (attempt + 1))

        clients = [threading.Thread(target=client, args=(t,)) for t in range(threads)]
        started = time.monotonic()
        for c in clients:
            c.start()
        for k in range(kills):
            time.sleep(0.5)
            victims = server.workers()
            if victims:
                os.kill(victims[k % len(victims)], signal.SIGKILL)
                killed.append(victims[k % len(victims)])
        for c in clients:
            c.join()
        elapsed = time.monotonic() - started

    from recommender.store import Store

    with Store(root / "store.sqlite") as store:
        rows = store.db.execute(
            "SELECT event_id, COUNT(*) FROM feedback WHERE event_id LIKE ? GROUP BY event_id",
            (f"crash-{run_id}-%",)).fetchall()
    found = {event_id: n for event_id, n in rows}
    missing = sorted(set(acked) - set(found))
    return {
        "threads": threads, "events_sent": threads * events, "acknowledged": len(acked),
        "found_in_store": len(found), "missing": len(missing),
        "stored_more_than_once": sum(1 for n in found.values() if n > 1),
        "retries": retries, "dropped_connections": dropped, "workers_killed": len(killed),
        "seconds": round(elapsed, 1), "missing_ids": missing[:10],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="workspace (default: a fresh sample one)")
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument("--events", type=int, default=400, help="events per thread")
    parser.add_argument("--kills", type=int, default=2, help="workers to SIGKILL mid-run")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or sample_workspace(Path(tmp) / "ws", customers=200, train=False)
        result = run(root, args.threads, args.events, args.kills, args.workers)
    for key, value in result.items():
        print(f"{key:24} {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    ok = result["missing"] == 0 and result["stored_more_than_once"] == 0 and \
        result["acknowledged"] == result["events_sent"]
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
