"""The store stays behind one interface: outside ``recommender/store.py`` no code runs SQL or
touches SQLite, so a server database can take SQLite's place by providing ``Store``'s methods.

Two parts are SQLite's own by design and listed here with the reason; anything else that
reaches past the ``Store`` fails this test, naming the file and the line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("recommender", "api", "plugins")
#: Files allowed past the interface, and why.
SQLITE_OWN = {
    "recommender/store.py": "the store itself",
    "recommender/csvimport.py": "bulk CSV import and export on the connection's transactions",
    "recommender/quickstart.py": "the tour finds its example customers in the sample data",
}


#: Attributes of a database connection or of the store's own connection handling.
CONNECTION_ATTRIBUTES = frozenset({"db", "cursor", "backup", "iterdump", "_local"})


def _connection_attribute(name: str) -> bool:
    return name in CONNECTION_ATTRIBUTES or name.startswith(("execute", "read_sql"))


def reaches_past_the_store(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) for each use of sqlite3 (imported, reached through another module, or
    named in a string), each connection attribute (``.db``, ``.execute*``, ``.cursor``...) and
    each ``getattr`` of one by name."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if any(n.split(".")[0] == "sqlite3" for n in names):
                found.append((node.lineno, "imports sqlite3"))
        elif isinstance(node, ast.Attribute):
            if node.attr == "sqlite3":
                found.append((node.lineno, "reaches sqlite3"))
            elif _connection_attribute(node.attr):
                found.append((node.lineno, f".{node.attr}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                node.value == "sqlite3" or _connection_attribute(node.value)):
            found.append((node.lineno, f"names {node.value!r}"))
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


@pytest.mark.parametrize(("code", "what"), [
    ("import sqlite3", "imports sqlite3"),
    ("from sqlite3 import connect", "imports sqlite3"),
    ("store.db.execute('SELECT 1')", ".db"),
    ("conn.executemany('x', [])", ".executemany"),
    ("recommender.store.sqlite3.connect(p)", "reaches sqlite3"),
    ("importlib.import_module('sqlite3')", "names 'sqlite3'"),
    ("getattr(getattr(store, 'db'), 'execute')('x')", "names 'db'"),
    ("store._local.conn", "._local"),
    ("tx.backup(other)", ".backup"),
    ("conn.cursor()", ".cursor"),
    ("pandas.read_sql('SELECT * FROM meta', conn)", ".read_sql"),
])
def test_the_check_finds_each_way_past_the_store(code, what):
    assert what in [w for _, w in reaches_past_the_store(ast.parse(code))]


def test_the_check_lets_the_stores_own_methods_be():
    code = "with store.transaction() as tx:\n    store.add_rows('events', rows, db=tx)\n"
    assert reaches_past_the_store(ast.parse(code)) == []
