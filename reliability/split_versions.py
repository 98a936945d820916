"""Split model versions: training while serving, worker restarts, renamed folders. Every worker
must serve the one published version, and /readyz must say so.

    python reliability/split_versions.py
    python reliability/split_versions.py --requests 40 --json out.json

Steps, each followed by fresh-connection requests to every worker:
1. ``recommender train`` while serving, then SIGKILL a worker: the replacement must serve the
   version served before (training alone does not move what is served);
2. reload naming a version folder that was copied under another name: refused (409), nothing
   moves;
3. ``recommender train --activate``: every worker serves the new version within the poll
   interval, and /readyz is ready on all of them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import (  # noqa: E402
    Server,
    admin_env,
    finish,
    kill_a_worker,
    recommender_cli,
    reload,
    report,
    sample_workspace,
    survey,
)


def run(root: Path, requests: int) -> dict:
    rows = []
    with Server(root, workers=2, env=admin_env()) as server:
        served = set(survey(server.base, 10)["versions"])

        def step(name: str, expect: set[str], **extra: object) -> None:
            seen = survey(server.base, requests)
            rows.append({"step": name, **extra, "answers": seen["statuses"],
                         "versions": dict(seen["versions"]),
                         "ready": f"{seen['ready']}/{seen['probes']}",
                         "held": (set(seen["versions"]) == expect
                                  and seen["statuses"] == {200: requests}
                                  and seen["ready"] == seen["probes"]
                                  and bool(extra.get("ok", True)))})

        time.sleep(1.1)  # version names carry the second they were trained in
        trained = recommender_cli("train", "--dir", str(root))
        kill_a_worker(server)
        step("train, then kill a worker", served, ok=trained.returncode == 0)

        version = next(iter(served))
        shutil.copytree(root / "models" / version, root / "models" / "renamed")
        status, _ = reload(server.base, "renamed")
        step("reload a renamed folder", served, reload=status, ok=status == 409)
        kill_a_worker(server)
        step("then kill a worker", served)

        time.sleep(1.1)
        activated = recommender_cli("train", "--dir", str(root), "--activate")
        new_version = (root / "models" / "CURRENT").read_text().strip()
        started = time.monotonic()
        while time.monotonic() - started < 10:
            if set(survey(server.base, 6)["versions"]) == {new_version}:
                break
        converged = round(time.monotonic() - started, 2)
        step("train --activate", {new_version}, converged_s=converged,
             ok=activated.returncode == 0)
        kill_a_worker(server)
        step("then kill a worker", {new_version})
    return {"steps": rows, "requests_per_step": requests}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="workspace (default: a fresh sample one)")
    parser.add_argument("--requests", type=int, default=40, help="requests after each step")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or sample_workspace(Path(tmp) / "ws", customers=300)
        result = run(root, args.requests)
    report(result["steps"], ["step", "reload", "converged_s", "answers", "versions", "ready",
                             "held"])
    return finish(result, all(r["held"] for r in result["steps"]), args.json)


if __name__ == "__main__":
    sys.exit(main())
