"""Broken files on disk: a reload is refused with 409, and a worker killed while the bad file is
still there comes back, serving what was published. The server never goes down.

    python reliability/broken_files.py                 # each broken file, one worker kill each
    python reliability/broken_files.py --json out.json

For each case: break one workspace file, ``POST /v1/admin/reload`` (expect 409 naming it),
SIGKILL a worker, wait for its replacement, then send fresh-connection requests to every worker:
all must answer 200 with the version served before, and /readyz must say ready.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import (  # noqa: E402
    Server,
    admin_env,
    finish,
    kill_a_worker,
    reload,
    report,
    sample_workspace,
    survey,
)

CASES = {
    "rules.toml syntax error": ("rules.toml", "[[rule]\nid = "),
    "rules.toml unknown business": (
        "rules.toml", '[[rule]]\nid = "x"\nmoments = ["success"]\npriority = 5\n'
                      'recommend = [{ product = "no_such_business", reason = "r" }]\n'),
    "catalog.toml syntax error": ("catalog.toml", "[[product]]\nid = "),
    "catalog.toml incomplete product": ("catalog.toml", '[[product]]\nid = "a"\n'),
    "catalog.toml removed": ("catalog.toml", None),
    "config.toml syntax error": ("config.toml", "[engine\n"),
    "config.toml misspelt strategy": ("config.toml", "[blend.query]\npopularty = 1.0\n"),
    "config.toml infinite timeout": ("config.toml", "[engine]\nstrategy_timeout_ms = inf\n"),
}


def run(root: Path, requests: int) -> dict:
    rows = []
    with Server(root, workers=2, env=admin_env()) as server:
        served = survey(server.base, 10)["versions"]
        for case, (name, text) in CASES.items():
            path = root / name
            original = path.read_bytes()
            if text is None:
                path.unlink()
            else:
                path.write_text(text)
            try:
                status, body = reload(server.base)
                detail = body.get("detail", "") if isinstance(body, dict) else ""
                victim = kill_a_worker(server)
                seen = survey(server.base, requests)
            finally:
                path.write_bytes(original)
            rows.append({
                "case": case, "reload": status, "names_file": name in detail,
                "killed": victim, "answers": seen["statuses"], "versions": len(seen["versions"]),
                "same_version": set(seen["versions"]) == set(served),
                "ready": f"{seen['ready']}/{seen['probes']}",
                "alive": server.process.poll() is None,
                "held": (status == 409 and name in detail and seen["statuses"] == {200: requests}
                         and set(seen["versions"]) == set(served)
                         and seen["ready"] == seen["probes"] and server.process.poll() is None),
            })
    return {"cases": rows, "requests_per_case": requests}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="workspace (default: a fresh sample one)")
    parser.add_argument("--requests", type=int, default=40, help="requests after each kill")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or sample_workspace(Path(tmp) / "ws", customers=300)
        result = run(root, args.requests)
    report(result["cases"], ["case", "reload", "names_file", "answers", "versions",
                             "same_version", "ready", "alive", "held"])
    return finish(result, all(r["held"] for r in result["cases"]), args.json)


if __name__ == "__main__":
    sys.exit(main())
