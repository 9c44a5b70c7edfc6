"""Files the scanner skipped (damaged, truncated, empty, disguised), with the reason: the `scan_issues` table."""
from __future__ import annotations

from datetime import datetime
from typing import Mapping

import duckdb

from anagnorisis.store.db import Store


def replace_scan_issues(conn: duckdb.DuckDBPyConnection, kind: str, issues: Mapping[bytes, str],
                        now: datetime) -> None:
    """The kind's skipped files become exactly `issues` (path → reason), inside the caller's transaction;
    a file skipped before keeps the time it was first seen."""
    first_seen = dict(
        (bytes(path), seen)
        for path, seen in conn.execute("SELECT path_bytes, first_seen FROM scan_issues WHERE kind = ?", [kind]).fetchall()
    )
    conn.execute("DELETE FROM scan_issues WHERE kind = ?", [kind])
    for path_bytes, reason in issues.items():
        conn.execute(
            "INSERT INTO scan_issues VALUES (?, ?, ?, ?, ?)",
            [path_bytes, kind, reason, first_seen.get(path_bytes, now), now],
        )


def skipped_files(store: Store, kind: str, limit: int) -> tuple[int, list[tuple[bytes, str]]]:
    """(how many files of the kind were skipped, the first `limit` of them as (path, reason), by path)."""

    def read(conn: duckdb.DuckDBPyConnection) -> tuple[int, list[tuple[bytes, str]]]:
        total = conn.execute("SELECT count(*) FROM scan_issues WHERE kind = ?", [kind]).fetchone()[0]
        rows = conn.execute("SELECT path_bytes, reason FROM scan_issues WHERE kind = ? ORDER BY path_bytes LIMIT ?",
                            [kind, limit]).fetchall() if total and limit else []
        return int(total), [(bytes(path), str(reason)) for path, reason in rows]

    return store.read(read)
