"""SQL lives only in anagnorisis/store/ (SPEC §13): every other module reads and writes through store functions.

The rule, checked on the syntax tree of every module under anagnorisis/ outside anagnorisis/store/:

1. No call of a method named ``execute``, ``executemany``, ``sql`` or ``query``, whatever the object: these are
   the statement doors of DuckDB and sqlite3 connections and cursors, and nothing else in the package has methods
   of those names (if something ever does, rename it rather than teach this test about it).
2. No string literal that is a statement: after leading whitespace its first word is SELECT, INSERT, UPDATE,
   DELETE, CREATE, WITH, DROP or ALTER, all in capitals or all in lower case, and a clause keyword (FROM, INTO,
   SET, TABLE, VALUES, WHERE, INDEX, SEQUENCE or VIEW) follows it in the same case. That keeps prose out: a
   sentence starts with a capital ("Select an image first.", "Drop words from the end"), and a lone word such
   as "update" has no clause. Literal parts of f-strings are checked too.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import anagnorisis

PACKAGE = Path(anagnorisis.__file__).parent
STORE = PACKAGE / "store"

STATEMENT_METHODS = frozenset({"execute", "executemany", "sql", "query"})
STATEMENT_START = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|WITH|DROP|ALTER)\b", re.IGNORECASE)
CLAUSE_KEYWORD = re.compile(r"\b(FROM|INTO|SET|TABLE|VALUES|WHERE|INDEX|SEQUENCE|VIEW)\b", re.IGNORECASE)


def modules_outside_store() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if STORE not in path.parents)


def looks_like_sql(text: str) -> bool:
    start = STATEMENT_START.match(text)
    if start is None:
        return False
    verb = start.group(1)
    if not (verb.isupper() or verb.islower()):  # "Select an image": the start of a sentence
        return False
    same_case = str.upper if verb.isupper() else str.lower
    return any(word == same_case(word) for word in CLAUSE_KEYWORD.findall(text, start.end()))


def sql_found(source: str) -> list[tuple[int, str]]:
    """(line, what) of every statement call and SQL literal in one module's source."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in STATEMENT_METHODS:
            found.append((node.lineno, f".{node.func.attr}(...) call"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and looks_like_sql(node.value):
            found.append((node.lineno, f"SQL string {node.value.strip()[:60]!r}"))
    return sorted(found)


def test_no_module_outside_the_store_runs_or_holds_sql() -> None:
    offences = [f"{path.relative_to(PACKAGE.parent)}:{line}: {what}"
                for path in modules_outside_store()
                for line, what in sql_found(path.read_text(encoding="utf-8"))]
    assert not offences, "SQL belongs in anagnorisis/store/ (add a store function and call it):\n" + "\n".join(offences)


def test_the_rule_sees_calls_and_statements_but_not_prose() -> None:
    source = '''
def f(conn, store):
    conn.execute("SELECT 1")
    store.read(lambda c: c.sql("x"))
    cursor.executemany(query, rows)
    rows = "  select id from files where kind = ?"
    q = f"UPDATE files SET missing = true WHERE id = {1}"
    d = """
        WITH active AS (SELECT 1) SELECT * FROM active"""
    c = "CREATE TABLE t(x INTEGER)"
'''
    assert [line for line, _what in sql_found(source)] == [3, 4, 5, 6, 7, 8, 10]
    prose = '''
def g():
    """Delete all but the newest backups; returns what was deleted."""
    gr.Info("Select an image first: Similar finds the images that look like it.")
    note = "Drop words from the end until the chunk fits"
    mode = "update"
    hint = "Update the files from the list, then press Rescan"
    jobs.submit(work)
'''
    assert sql_found(prose) == []


def test_the_walk_covers_the_package_but_not_the_store() -> None:
    modules = modules_outside_store()
    assert PACKAGE / "taste" / "service.py" in modules
    assert PACKAGE / "ui" / "app.py" in modules
    assert not any(STORE in path.parents for path in modules)
