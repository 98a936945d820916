"""Manifest tampering: every damaged or malformed model version is refused on reload with 409,
never 500, and every worker keeps serving the version it served.

    python reliability/manifest_tampering.py
    python reliability/manifest_tampering.py --json out.json

Each case copies the trained version under a new name (its manifest saying so), damages it,
asks a 2-worker server to reload it, then checks fresh-connection answers from every worker.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Server, admin_env, finish, reload, report, sample_workspace, survey  # noqa: E402

ARTIFACT = "popularity/popularity.npz"


def _manifest(change: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        path = folder / "manifest.json"
        manifest = json.loads(path.read_text())
        change(manifest)
        path.write_text(json.dumps(manifest))
    return damage


def _unlisted_and_altered(folder: Path) -> None:
    _manifest(lambda m: m["files"].pop(ARTIFACT))(folder)
    (folder / ARTIFACT).write_bytes((folder / ARTIFACT).read_bytes()[:-7])


def _manifest_is_a_directory(folder: Path) -> None:
    (folder / "manifest.json").unlink()
    (folder / "manifest.json").mkdir()


CASES: dict[str, Callable[[Path], None]] = {
    "artifact truncated": lambda f: (f / ARTIFACT).write_bytes((f / ARTIFACT).read_bytes()[:99]),
    "artifact unlisted and altered": _unlisted_and_altered,
    "extra file added": lambda f: (f / "popularity" / "extra.npy").write_bytes(b"\x93NUMPY"),
    "files as a list": _manifest(lambda m: m.update(files=list(m["files"]))),
    "strategies an int": _manifest(lambda m: m.update(strategies=7)),
    "version missing": _manifest(lambda m: m.pop("version")),
    "version an object": _manifest(lambda m: m.update(version={"v": 1})),
    "version another folder's": _manifest(lambda m: m.update(version="elsewhere")),
    "catalog not a list": _manifest(lambda m: m.update(catalog=1)),
    "path outside the folder": _manifest(lambda m: m["files"].update({"../../x": "0" * 64})),
    "manifest a directory": _manifest_is_a_directory,
    "manifest not JSON": lambda f: (f / "manifest.json").write_text("{"),
    "manifest deeply nested": lambda f: (f / "manifest.json").write_text("[" * 100000),
    "manifest removed": lambda f: (f / "manifest.json").unlink(),
}


def run(root: Path, requests: int) -> dict:
    rows = []
    with Server(root, workers=2, env=admin_env()) as server:
        served = set(survey(server.base, 10)["versions"])
        source = root / "models" / next(iter(served))
        for n, (case, damage) in enumerate(CASES.items()):
            name = f"tampered-{n}"
            shutil.copytree(source, root / "models" / name)
            _manifest(lambda m, name=name: m.update(version=name))(root / "models" / name)
            damage(root / "models" / name)
            status, body = reload(server.base, name)
            seen = survey(server.base, requests)
            rows.append({"case": case, "reload": status,
                         "detail": (body.get("detail", "") if isinstance(body, dict) else "")[
                             len("reload refused, the previous model keeps serving: "):][:70],
                         "answers": seen["statuses"], "versions": len(seen["versions"]),
                         "ready": f"{seen['ready']}/{seen['probes']}",
                         "held": (status == 409 and set(seen["versions"]) == served
                                  and seen["statuses"] == {200: requests}
                                  and seen["ready"] == seen["probes"])})
    return {"cases": rows, "requests_per_case": requests}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="workspace (default: a fresh sample one)")
    parser.add_argument("--requests", type=int, default=20, help="requests after each case")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or sample_workspace(Path(tmp) / "ws", customers=300)
        result = run(root, args.requests)
    report(result["cases"], ["case", "reload", "answers", "versions", "ready", "held",
                             "detail"])
    return finish(result, all(r["held"] for r in result["cases"]), args.json)


if __name__ == "__main__":
    sys.exit(main())
