"""The offline evaluation reports: listed from the workspace's ``reports/`` folder and opened.

``recommender evaluate --html F --json F`` writes a report wherever it is told; the console
lists the ``.html`` and ``.json`` files of ``<workspace>/reports/``. An HTML report is served as
it is, sandboxed (no script runs, nothing is fetched); a JSON report is shown as a table of
headline metrics. A JSON report named after a model version (``reports/<version>.json``) also
gives that version's offline metrics on the models page.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, render_template

from ..state import service

blp = Blueprint("reports", __name__, url_prefix="/reports")

FOLDER = "reports"
#: A report file's name: no folders, no hidden files, one of the two formats.
REPORT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}\.(html|json)")
#: Metrics shown for each strategy, at k = 10 when the report has it.
HEADLINE = ("ndcg", "precision", "recall", "hit_rate", "coverage")
#: An opened HTML report may show its embedded images and styles, and nothing else.
REPORT_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox; "
              "frame-ancestors 'none'")
MAX_REPORT_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Report:
    name: str
    kind: str
    size: int
    modified: str


def folder() -> Path:
    return service().settings.root / FOLDER


def listing(root: Path) -> list[Report]:
    """The reports in ``root``, newest first."""
    if not root.is_dir():
        return []
    out = []
    for path in root.iterdir():
        if REPORT_NAME.fullmatch(path.name) and path.is_file():
            stat = path.stat()
            out.append((stat.st_mtime, Report(
                path.name, path.suffix[1:], stat.st_size,
                datetime.fromtimestamp(stat.st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC"))))
    return [report for _, report in sorted(out, key=lambda x: (-x[0], x[1].name))]


def report_path(root: Path, name: str) -> Path | None:
    """The file of a report named ``name`` in ``root``, or None (bad name, absent, too big)."""
    if not REPORT_NAME.fullmatch(name):
        return None
    path = root / name
    if not path.is_file() or path.resolve().parent != root.resolve() or \
            path.stat().st_size > MAX_REPORT_BYTES:
        return None
    return path


def headline(data: Any) -> tuple[list[str], list[tuple[str, list[float | None]]]]:
    """From a JSON report (strategy -> {"ndcg@10": ...}), the headline columns and one row of
    values per strategy. Entries that are not metrics tables are left out."""
    if not isinstance(data, dict):
        return [], []
    tables = {name: values for name, values in data.items()
              if isinstance(values, dict) and not name.startswith("experiment:")}
    keys = {key for values in tables.values() for key in values if isinstance(key, str)}
    ks = sorted({int(key.split("@", 1)[1]) for key in keys
                 if re.fullmatch(r"[a-z_]+@\d+", key)})
    if not ks:
        return [], []
    k = 10 if 10 in ks else ks[0]
    columns = [f"{metric}@{k}" for metric in HEADLINE if f"{metric}@{k}" in keys]
    rows = []
    for name, values in tables.items():
        row = [_number(values.get(column)) for column in columns]
        if any(v is not None for v in row):
            rows.append((name, row))
    return columns, rows


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value):
        return None
    return float(value)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None


def metrics_for(version: str) -> tuple[list[str], list[tuple[str, list[float | None]]]]:
    """The headline metrics of ``reports/<version>.json``, if there is such a report."""
    path = report_path(folder(), f"{version}.json")
    return headline(read_json(path)) if path is not None else ([], [])


@blp.route("/")
def index() -> str:
    root = folder()
    return render_template("reports.html", reports=listing(root), folder=FOLDER)


@blp.route("/<name>")
def open_report(name: str) -> Any:
    path = report_path(folder(), name)
    if path is None:
        abort(404)
    if path.suffix == ".html":
        response = Response(path.read_bytes(), mimetype="text/html")
        response.headers["Content-Security-Policy"] = REPORT_CSP
        return response
    data = read_json(path)
    columns, rows = headline(data)
    return render_template("report.html", name=name, columns=columns, rows=rows,
                           readable=data is not None)
