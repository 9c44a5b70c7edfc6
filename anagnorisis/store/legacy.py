"""The original Anagnorisis' `project.db` (SQLite), opened read-only: the importer reads it through these only."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Iterator, Sequence


def open_sqlite_readonly(path: Path) -> sqlite3.Connection:
    """Open an SQLite file read-only and read its catalogue once, so that a file which is not an SQLite database
    fails here, with sqlite3.DatabaseError."""
    # A URI, so that '#', '?' or '%' in the path are quoted and not read as URI syntax.
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    return connection


def sqlite_tables(connection: sqlite3.Connection) -> set[str]:
    return {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def sqlite_columns(connection: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')}


def sqlite_rows(connection: sqlite3.Connection, table: str, columns: Sequence[str]) -> Iterator[tuple[Any, ...]]:
    """The given columns of every row of a table (names that sqlite_columns listed: they are not quoted here)."""
    return iter(connection.execute(f'SELECT {", ".join(columns)} FROM "{table}"'))
