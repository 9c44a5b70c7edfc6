"""The files table as the scanner, the file actions, the taste service and the importer change and read it.

Functions taking a connection run inside the caller's transaction (a scan chunk is one `Store.write`); functions
taking the store open their own read or write.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Collection, Mapping, Sequence

import duckdb
import pyarrow as pa

from anagnorisis.store.db import Store, utc_now

# (id, path_bytes, size, mtime, content_hash, missing, root) of one files row, as the scanner compares it.
KnownRow = tuple[int, bytes, int | None, float | None, str | None, bool, str]

# The columns a scan writes for one file: kind, root, relative_path, path_bytes, display_path, size, mtime,
# content_hash, hash_algorithm, metadata (JSON text).
FileValues = Mapping[str, Any]

_UPDATE_SQL = (
    "UPDATE files SET root = $root, relative_path = $relative_path, path_bytes = $path_bytes,"
    " display_path = $display_path, size = $size, mtime = $mtime, content_hash = $content_hash,"
    " hash_algorithm = $hash_algorithm, metadata = $metadata, missing = false, last_seen = $now"
    " WHERE id = $id AND kind = $kind"
)


def known_files(conn: duckdb.DuckDBPyConnection, kind: str, path_bytes: bytes | None = None) -> list[KnownRow]:
    """The kind's files rows, missing ones too (only the row of one path, when given)."""
    sql = "SELECT id, path_bytes, size, mtime, content_hash, missing, root FROM files WHERE kind = $kind"
    if path_bytes is not None:
        sql += " AND path_bytes = $path"
    return conn.execute(sql, {"kind": kind} | ({} if path_bytes is None else {"path": path_bytes})).fetchall()


def mark_file_missing(conn: duckdb.DuckDBPyConnection, file_id: int) -> None:
    conn.execute("UPDATE files SET missing = true WHERE id = ?", [file_id])


def update_file(conn: duckdb.DuckDBPyConnection, file_id: int, values: FileValues, now: datetime) -> None:
    """Rewrite a row with what a scan found (a changed file, or one moved to this path): present, seen now."""
    conn.execute(_UPDATE_SQL, {**values, "now": now, "id": file_id})


def insert_files(conn: duckdb.DuckDBPyConnection, rows: Sequence[FileValues], now: datetime) -> None:
    """Add new files, first and last seen now, in one insert from an Arrow table."""
    if not rows:
        return
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    table = pa.table(
        {
            **{key: columns[key] for key in columns if key not in ("path_bytes", "size", "mtime")},
            "path_bytes": pa.array(columns["path_bytes"], pa.binary()),
            "size": pa.array(columns["size"], pa.int64()),
            "mtime": pa.array(columns["mtime"], pa.float64()),
        }
    )
    conn.register("new_files", table)
    try:
        conn.execute(
            "INSERT INTO files (kind, root, relative_path, path_bytes, display_path, size, mtime, content_hash,"
            " hash_algorithm, first_seen, last_seen, missing, metadata)"
            " SELECT kind, root, relative_path, path_bytes, display_path, size, mtime, content_hash, hash_algorithm,"
            " $now, $now, false, metadata FROM new_files",
            {"now": now},
        )
    finally:
        conn.unregister("new_files")


def sweep_files(conn: duckdb.DuckDBPyConnection, kind: str, vanished_ids: Collection[int], now: datetime) -> None:
    """End of a kind's scan: the files not seen are missing; every file still present was seen now."""
    if vanished_ids:
        conn.execute("UPDATE files SET missing = true WHERE id IN (SELECT unnest($ids))", {"ids": list(vanished_ids)})
    conn.execute("UPDATE files SET last_seen = ? WHERE kind = ? AND NOT missing", [now, kind])


def mark_files_present(store: Store, file_ids: Sequence[int]) -> None:
    """Files found again unchanged at their old paths are no longer missing."""
    store.write(lambda conn: conn.execute(
        "UPDATE files SET missing = false WHERE id IN (SELECT unnest($ids))", {"ids": list(file_ids)}))


def rehome_files(store: Store, moves: Sequence[tuple[int, str, str]]) -> None:
    """(id, root, relative path) per file now found under another root than its row says, in one transaction."""
    store.write(lambda conn: conn.executemany(
        "UPDATE files SET root = ?, relative_path = ? WHERE id = ?",
        [[root, relative, file_id] for file_id, root, relative in moves]))


def move_file_row(store: Store, kind: str, old_path: bytes, new_path: bytes, *, display_path: str,
                  relative_path: str, root: str, mtime: float) -> None:
    """A present file was moved or renamed on disk by the app: its row follows (the content is the same)."""

    def write(conn: duckdb.DuckDBPyConnection) -> None:
        conn.execute(
            "UPDATE files SET path_bytes = ?, display_path = ?, relative_path = ?, root = ?, mtime = ?, last_seen = ?"
            " WHERE kind = ? AND path_bytes = ? AND NOT missing",
            [new_path, display_path, relative_path, root, mtime, utc_now(), kind, old_path],
        )

    store.write(write)


def mark_path_missing(store: Store, kind: str, path_bytes: bytes) -> None:
    """The file at this path is gone (sent to the trash); its rating stays with its content."""
    store.write(lambda conn: conn.execute(
        "UPDATE files SET missing = true WHERE kind = ? AND path_bytes = ?", [kind, path_bytes]))


def content_hashes_of_kind(conn: duckdb.DuckDBPyConnection, kind: str) -> set[str]:
    """Every content hash a file of this kind has had (missing files too: their ratings still say what you like)."""
    rows = conn.execute(
        "SELECT DISTINCT content_hash FROM files WHERE kind = ? AND content_hash IS NOT NULL", [kind]
    ).fetchall()
    return {row[0] for row in rows}


def file_fields_of_kind(conn: duckdb.DuckDBPyConnection, kind: str) -> dict[str, tuple[str, str | None, int, int]]:
    """content hash -> (relative path, metadata JSON as scanned, full plays, skips) of the kind's files: what a
    file says about itself and how it was played, for the taste model. A present file's row wins over a missing
    one's when two files share the content."""
    rows = conn.execute(
        "SELECT f.content_hash, f.relative_path, f.metadata, coalesce(p.full_plays, 0), coalesce(p.skips, 0)"
        " FROM files f LEFT JOIN plays p ON p.content_hash = f.content_hash"
        " WHERE f.kind = ? AND f.content_hash IS NOT NULL ORDER BY f.missing DESC, f.id", [kind]).fetchall()
    return {row[0]: (row[1], row[2], int(row[3]), int(row[4])) for row in rows}


def played_hashes_of_kind(conn: duckdb.DuckDBPyConnection, kind: str) -> set[str]:
    """Content hashes of the kind's files with at least one full play or skip."""
    rows = conn.execute(
        "SELECT DISTINCT p.content_hash FROM plays p JOIN files f ON f.content_hash = p.content_hash"
        " WHERE f.kind = ? AND (p.full_plays > 0 OR p.skips > 0)", [kind]).fetchall()
    return {row[0] for row in rows}


def present_hashes(store: Store, kind: str) -> list[str]:
    """The content hashes of the kind's present files, sorted."""
    rows = store.read(lambda c: c.execute(
        "SELECT DISTINCT content_hash FROM files WHERE kind = ? AND NOT missing AND content_hash IS NOT NULL"
        " ORDER BY content_hash", [kind]).fetchall())
    return [row[0] for row in rows]


def present_files_by_path(store: Store) -> list[tuple[str, bytes, str]]:
    """(kind, path_bytes, content_hash) of every present file with a hash, of all kinds."""
    return store.read(lambda c: c.execute(
        "SELECT kind, path_bytes, content_hash FROM files WHERE NOT missing AND content_hash IS NOT NULL").fetchall())


def library_has_files(store: Store) -> bool:
    """Whether any file of any kind is present."""
    return bool(store.read(lambda c: c.execute("SELECT EXISTS (SELECT 1 FROM files WHERE NOT missing)").fetchone()[0]))
