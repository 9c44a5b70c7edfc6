"""File records as the CLI, the UI and search see them (SPEC §1 keys, never renamed)."""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import Any

import duckdb

from anagnorisis.store.db import Store

Record = dict[str, Any]

RECORD_KEYS = (
    "path", "root", "relative_path", "kind", "content_hash", "size", "user_rating", "model_rating",
    "model_rating_stale", "uncertainty", "full_plays", "skips", "last_played",
)


def iso_utc(moment: datetime | None) -> str | None:
    """ISO-8601 UTC with a Z, or None."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"


_RECORD_SQL = """
WITH active AS (SELECT max(version) AS v FROM models WHERE kind = $kind AND active),
pred AS (
    SELECT content_hash, rating, uncertainty, model_version,
           row_number() OVER (PARTITION BY content_hash
                              ORDER BY (model_version IS NOT DISTINCT FROM (SELECT v FROM active)) DESC,
                                       model_version DESC) AS rn
    FROM predictions WHERE kind = $kind {prediction_where}
)
SELECT f.id, f.kind, f.root, f.relative_path, f.path_bytes, f.display_path, f.size, f.mtime, f.content_hash,
       f.metadata, r.rating, r.rated_at, p.rating, p.uncertainty, p.model_version, (SELECT v FROM active),
       pl.full_plays, pl.skips, pl.last_played
FROM files f
LEFT JOIN ratings r ON r.content_hash = f.content_hash
LEFT JOIN pred p ON p.content_hash = f.content_hash AND p.rn = 1
LEFT JOIN plays pl ON pl.content_hash = f.content_hash
WHERE f.kind = $kind AND NOT f.missing {where}
ORDER BY f.id
"""


def _record(row: tuple[Any, ...]) -> Record:
    (file_id, kind, root, relative_path, path_bytes, display_path, size, mtime, content_hash, metadata,
     user_rating, rated_at, model_rating, uncertainty, model_version, active_version, full_plays, skips,
     last_played) = row
    return {
        "path": os.fsdecode(bytes(path_bytes)),
        "root": root,
        "relative_path": relative_path,
        "kind": kind,
        "content_hash": content_hash,
        "size": size,
        "user_rating": user_rating,
        "model_rating": model_rating,
        "model_rating_stale": None if model_rating is None else model_version != active_version,
        "uncertainty": uncertainty,
        "full_plays": full_plays,
        "skips": skips,
        "last_played": iso_utc(last_played),
        "id": file_id,
        "path_bytes": bytes(path_bytes),
        "display_path": display_path,
        "mtime": mtime,
        "rated_at": iso_utc(rated_at),
        "model_version": model_version,
        "metadata": json.loads(metadata) if metadata else {},
    }


def present_files(store: Store, kind: str) -> list[Record]:
    sql = _RECORD_SQL.format(where="", prediction_where="")
    rows = store.read(lambda c: c.execute(sql, {"kind": kind}).fetchall())
    return [_record(row) for row in rows]


def records_for_hashes(store: Store, kind: str, content_hashes: list[str]) -> list[Record]:
    """Present records of a kind whose content is one of the given hashes (a search's top hits), by file id."""
    where = "AND content_hash IN (SELECT unnest($hashes))"
    sql = _RECORD_SQL.format(where=where.replace("content_hash", "f.content_hash"), prediction_where=where)
    rows = store.read(lambda c: c.execute(sql, {"kind": kind, "hashes": content_hashes}).fetchall())
    return [_record(row) for row in rows]


def records_for_paths(store: Store, kind: str, path_bytes: list[bytes]) -> list[Record]:
    """Present records of the given paths (in the order found)."""
    sql = _RECORD_SQL.format(where="AND f.path_bytes IN (SELECT unnest($paths))", prediction_where="")
    rows = store.read(lambda c: c.execute(sql, {"kind": kind, "paths": path_bytes}).fetchall())
    return [_record(row) for row in rows]


def public_record(record: Record) -> Record:
    """The record as printed by the CLI and returned by endpoints: SPEC keys plus a few safe extras."""
    out = {key: record.get(key) for key in RECORD_KEYS}
    out["display_path"] = record.get("display_path")
    out["rated_at"] = record.get("rated_at")
    out["model_version"] = record.get("model_version")
    return out


def user_ratings(store: Store, kind: str) -> dict[str, float]:
    rows = store.read(
        lambda c: c.execute(
            "SELECT DISTINCT r.content_hash, r.rating FROM ratings r JOIN files f ON f.content_hash = r.content_hash"
            " WHERE f.kind = ?",
            [kind],
        ).fetchall()
    )
    return {content_hash: rating for content_hash, rating in rows}


def find_file(conn: duckdb.DuckDBPyConnection, path_bytes: bytes) -> tuple[int, str, str] | None:
    """(id, kind, content_hash) of a present file at this path."""
    row = conn.execute(
        "SELECT id, kind, content_hash FROM files WHERE path_bytes = ? AND NOT missing ORDER BY id LIMIT 1",
        [path_bytes],
    ).fetchone()
    return (row[0], row[1], row[2]) if row else None
