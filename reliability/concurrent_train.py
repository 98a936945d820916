"""Concurrent training: several ``recommender train`` at once into one workspace, one of them
killed mid-way. They run one after another (a lock), each writes a complete, distinct version,
and the next training removes what the killed one left.

    python reliability/concurrent_train.py                # 3 at once, one killed
    python reliability/concurrent_train.py --runs 4 --json out.json
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import finish, recommender_cli, report, sample_workspace  # noqa: E402


def start_train(root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "recommender.cli", "train", "--dir",
                             str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def run(root: Path, runs: int) -> dict:
    from recommender.errors import ModelError
    from recommender.models import read_manifest

    models = root / "models"
    before = {p.name for p in models.iterdir()} if models.exists() else set()
    victim = start_train(root)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(models.glob(".*.partial")):
        time.sleep(0.01)
    left_partial = bool(list(models.glob(".*.partial")))
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    started = time.monotonic()
    trainings = [start_train(root) for _ in range(runs)]
    outputs = [t.communicate(timeout=600) for t in trainings]
    seconds = round(time.monotonic() - started, 1)
    failed = [err[-300:] for t, (_, err) in zip(trainings, outputs, strict=True)
              if t.returncode != 0]
    tracebacks = sum("Traceback" in err for _, err in outputs)
    versions = sorted({p.name for p in models.iterdir() if p.is_dir()} - before
                      - {p.name for p in models.glob(".*")})
    broken = []
    for version in versions:
        try:
            read_manifest(models / version)
        except ModelError as e:
            broken.append(str(e))
    partial_after = [p.name for p in models.glob(".*.partial")]
    after_next = recommender_cli("train", "--dir", str(root))
    partial_after_next = [p.name for p in models.glob(".*.partial")]
    return {
        "runs": runs, "killed_left_partial": left_partial, "seconds": seconds,
        "exit_0": runs - len(failed), "tracebacks": tracebacks, "new_versions": len(versions),
        "versions_refused": len(broken), "partial_after_runs": len(partial_after),
        "next_train_ok": after_next.returncode == 0,
        "partial_after_next_train": len(partial_after_next), "errors": failed + broken,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="workspace (default: a fresh sample one)")
    parser.add_argument("--runs", type=int, default=3, help="trainings started at once")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or sample_workspace(Path(tmp) / "ws", customers=300, train=False)
        result = run(root, args.runs)
    report([result], [k for k in result if k != "errors"])
    for error in result["errors"]:
        print("  ", error)
    ok = (result["exit_0"] == result["runs"] and result["tracebacks"] == 0
          and result["new_versions"] == result["runs"] and result["versions_refused"] == 0
          and result["next_train_ok"] and result["partial_after_next_train"] == 0
          and result["partial_after_runs"] == 0)
    return finish(result, ok, args.json)


if __name__ == "__main__":
    sys.exit(main())
