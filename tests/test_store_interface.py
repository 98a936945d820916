"""The store stays behind one interface: outside ``recommender/store.py`` no code runs SQL or
touches SQLite, so a server database can take SQLite's place by providing ``Store``'s methods.

Two parts are SQLite's own by design and listed here with the reason; anything else that
reaches past the ``Store`` fails this test, naming the file and the line.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("recommender", "api", "plugins")
#: Files allowed past the interface, and why.
SQLITE_OWN = {
    "recommender/store.py": "the store itself",
    "recommender/csvimport.py": "bulk CSV import and export on the connection's transactions",
    "recommender/quickstart.py": "the tour finds its example customers in the sample data",
}


def reaches_past_the_store(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) for each import of sqlite3, ``.db`` attribute and ``.execute*`` call."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if any(n.split(".")[0] == "sqlite3" for n in names):
                found.append((node.lineno, "imports sqlite3"))
        elif isinstance(node, ast.Attribute) and (
                node.attr == "db" or node.attr.startswith("execute")):
            found.append((node.lineno, f".{node.attr}"))
    return found


def test_no_code_outside_the_store_runs_sql():
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name in SQLITE_OWN:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=name)
            offenders += [f"{name}:{line}: {what}" for line, what in reaches_past_the_store(tree)]
    assert offenders == []


def test_the_check_finds_what_it_looks_for():
    code = ("import sqlite3\nfrom sqlite3 import connect\nstore.db.execute('SELECT 1')\n"
            "conn.executemany('x', [])\n")
    assert sorted(reaches_past_the_store(ast.parse(code))) == [
        (1, "imports sqlite3"), (2, "imports sqlite3"), (3, ".db"), (3, ".execute"),
        (4, ".executemany")]
