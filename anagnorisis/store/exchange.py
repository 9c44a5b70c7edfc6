"""Export and import of ratings, plays and A/B choices as CSV or Parquet (SPEC §3)."""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from anagnorisis.store.db import Store
from anagnorisis.store.ratings import apply_rating, check_rating
from anagnorisis.store.records import iso_utc

log = logging.getLogger(__name__)

EXPORT_COLUMNS = (
    "content_hash", "kind", "path", "user_rating", "rated_at", "full_plays", "skips", "last_played",
    "model_rating", "model_version",
)
PREFERENCE_COLUMNS = ("winner_hash", "loser_hash", "tie", "chosen_at")
FORMATS = (".csv", ".parquet")


class ExchangeError(ValueError):
    pass


class ExchangeWriteError(ExchangeError):
    """The file could not be written (a missing folder, no permission, a full disk): a failure, not a usage error."""


def preferences_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.preferences{path.suffix}")


def _check_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ExchangeError(f"{path}: the file name must end in .csv or .parquet")
    return suffix


_EXPORT_SQL = """
WITH present AS (
    SELECT DISTINCT content_hash, kind, path_bytes FROM files WHERE NOT missing AND content_hash IS NOT NULL
),
kept AS (SELECT content_hash FROM ratings UNION SELECT content_hash FROM plays),
orphans AS (
    SELECT k.content_hash,
           coalesce((SELECT any_value(f.kind) FROM files f WHERE f.content_hash = k.content_hash),
                    -- content no file holds now (changed in place, deleted): its kind as the model or A/B knew it
                    (SELECT any_value(p.kind) FROM predictions p WHERE p.content_hash = k.content_hash),
                    (SELECT any_value(q.kind) FROM preferences q
                     WHERE k.content_hash IN (q.winner_hash, q.loser_hash))) AS kind,
           NULL::BLOB AS path_bytes
    FROM kept k WHERE k.content_hash NOT IN (SELECT content_hash FROM present)
),
rows AS (SELECT * FROM present UNION ALL SELECT * FROM orphans),
active AS (SELECT kind, max(version) AS v FROM models WHERE active GROUP BY kind),
pred AS (
    SELECT p.content_hash, p.kind, p.rating, p.model_version,
           row_number() OVER (PARTITION BY p.content_hash, p.kind
                              ORDER BY (p.model_version IS NOT DISTINCT FROM a.v) DESC, p.model_version DESC) AS rn
    FROM predictions p LEFT JOIN active a ON a.kind = p.kind
)
SELECT r.content_hash, r.kind, r.path_bytes, rt.rating, rt.rated_at, pl.full_plays, pl.skips, pl.last_played,
       pr.rating, pr.model_version
FROM rows r
LEFT JOIN ratings rt ON rt.content_hash = r.content_hash
LEFT JOIN plays pl ON pl.content_hash = r.content_hash
LEFT JOIN pred pr ON pr.content_hash = r.content_hash AND pr.kind = r.kind AND pr.rn = 1
ORDER BY r.kind, r.content_hash, r.path_bytes
"""


def _export_table(rows: list[tuple[Any, ...]]) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in EXPORT_COLUMNS}
    for content_hash, kind, path_bytes, rating, rated_at, full, skips, last, model_rating, model_version in rows:
        values = (
            content_hash, kind, "" if path_bytes is None else bytes(path_bytes).decode("utf-8", "replace"), rating,
            iso_utc(rated_at), full, skips, iso_utc(last), model_rating, model_version,
        )
        for name, value in zip(EXPORT_COLUMNS, values):
            columns[name].append(value)
    types = {"user_rating": pa.float64(), "model_rating": pa.float64(), "full_plays": pa.int64(),
             "skips": pa.int64(), "model_version": pa.int64()}
    return pa.table({name: pa.array(values, types.get(name, pa.string())) for name, values in columns.items()})


def _write(table: pa.Table, path: Path, suffix: str) -> None:
    if not path.parent.is_dir():
        raise ExchangeWriteError(f"cannot write {path}: the folder {path.parent} does not exist")
    tmp = path.with_name(path.name + ".partial")
    try:
        if suffix == ".csv":
            pa_csv.write_csv(table, tmp)
        else:
            pq.write_table(table, tmp)
        os.replace(tmp, path)
    except OSError as error:  # no permission, a full disk: the reason, and no half-written file left
        tmp.unlink(missing_ok=True)
        raise ExchangeWriteError(f"cannot write {path}: {getattr(error, 'strerror', None) or error}") from None


def export_file(store: Store, path: Path) -> dict[str, Any]:
    path = Path(path)
    suffix = _check_format(path)
    rows, prefs = store.read(lambda c: (
        c.execute(_EXPORT_SQL).fetchall(),
        c.execute("SELECT winner_hash, loser_hash, tie, chosen_at FROM preferences ORDER BY chosen_at").fetchall(),
    ))
    _write(_export_table(rows), path, suffix)
    pref_table = pa.table({
        "winner_hash": pa.array([p[0] for p in prefs], pa.string()),
        "loser_hash": pa.array([p[1] for p in prefs], pa.string()),
        "tie": pa.array([p[2] for p in prefs], pa.bool_()),
        "chosen_at": pa.array([iso_utc(p[3]) for p in prefs], pa.string()),
    })
    _write(pref_table, preferences_path(path), suffix)
    return {"rows": len(rows), "preferences": len(prefs), "file": str(path),
            "preferences_file": str(preferences_path(path))}


def _read(path: Path, suffix: str, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    try:
        if suffix == ".csv":
            options = pa_csv.ConvertOptions(column_types={name: pa.string() for name in columns},
                                            strings_can_be_null=True, null_values=[""])
            table = pa_csv.read_csv(path, convert_options=options)
        else:
            table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise ExchangeError(f"{path} cannot be read as {suffix[1:].upper()}: {error}") from None
    missing = [name for name in columns if name not in table.column_names]
    if missing:
        raise ExchangeError(f"{path}: missing columns {', '.join(missing)}")
    return table.select(list(columns)).to_pylist()


def _parse_time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def _number(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def _merge_rating(conn: duckdb.DuckDBPyConnection, content_hash: str, rating: float, at: datetime | None) -> bool:
    ours = conn.execute("SELECT rated_at FROM ratings WHERE content_hash = ?", [content_hash]).fetchone()
    if ours is not None and (at is None or at <= ours[0]):
        return False  # the later rating wins; a tie keeps ours
    return apply_rating(conn, content_hash, rating, source="import", at=at or datetime(1970, 1, 1))


def merge_plays(conn: duckdb.DuckDBPyConnection, content_hash: str, full: int, skips: int, last: datetime | None) -> bool:
    """Maximum counts and the latest time, never a sum, so importing twice changes nothing."""
    ours = conn.execute("SELECT full_plays, skips, last_played FROM plays WHERE content_hash = ?", [content_hash]).fetchone()
    if ours is None:
        conn.execute("INSERT INTO plays VALUES (?, ?, ?, ?)", [content_hash, full, skips, last])
        return True
    merged = (max(ours[0], full), max(ours[1], skips), max((t for t in (ours[2], last) if t is not None), default=None))
    if merged == tuple(ours):
        return False
    conn.execute("UPDATE plays SET full_plays = ?, skips = ?, last_played = ? WHERE content_hash = ?",
                 [*merged, content_hash])
    return True


CONTENT_HASH = re.compile(r"[0-9a-f]{16,128}")  # what our hashes look like (lower-case hex)
SKIPPED_SHOWN = 20  # skipped rows listed with their reason in the command's answer; all are counted and logged


@dataclass
class _Row:
    content_hash: str
    rating: float | None
    rated_at: datetime | None
    plays: tuple[int, int, datetime | None] | None


def _checked_row(row: dict[str, Any]) -> _Row:
    """One export row, validated; ValueError names what is wrong with it."""
    content_hash = str(row["content_hash"] or "").strip()
    if not CONTENT_HASH.fullmatch(content_hash):
        raise ValueError(f"content_hash {content_hash!r} is not a content hash")
    rating = _number(row["user_rating"])
    if rating is not None:
        check_rating(rating)
    plays = None
    if any(row[key] not in (None, "") for key in ("full_plays", "skips", "last_played")):
        full, skips = (_number(row[key]) or 0 for key in ("full_plays", "skips"))
        if not (full >= 0 and skips >= 0 and float(full).is_integer() and float(skips).is_integer()):
            raise ValueError(f"play counts must be whole numbers, 0 or more (full_plays {full:g}, skips {skips:g})")
        plays = (int(full), int(skips), _parse_time(row["last_played"]))
    return _Row(content_hash, rating, _parse_time(row["rated_at"]), plays)


def _checked_rows(rows: list[dict[str, Any]], skipped: list[dict[str, Any]]) -> list[_Row]:
    """The valid rows; each invalid one goes to `skipped` as {row, reason} (row 1 is the first after the header)."""
    valid = []
    for number, row in enumerate(rows, start=1):
        try:
            valid.append(_checked_row(row))
        except ValueError as error:
            log.warning("import: skipping row %d: %s", number, error)
            skipped.append({"row": number, "reason": str(error)})
    return valid


def _import_rows(conn: duckdb.DuckDBPyConnection, rows: list[_Row], counts: dict[str, int]) -> None:
    done: set[str] = set()
    for row in rows:
        if row.content_hash in done:
            continue
        done.add(row.content_hash)
        if row.rating is not None:
            applied = _merge_rating(conn, row.content_hash, row.rating, row.rated_at)
            counts["ratings_applied" if applied else "ratings_kept"] += 1
        if row.plays is not None:
            counts["plays_updated"] += merge_plays(conn, row.content_hash, *row.plays)


def _checked_preferences(rows: list[dict[str, Any]], skipped: list[dict[str, Any]]) -> list[dict[str, Any]]:
    valid = []
    for number, row in enumerate(rows, start=1):
        try:
            for key in ("winner_hash", "loser_hash"):
                if not CONTENT_HASH.fullmatch(str(row[key] or "").strip()):
                    raise ValueError(f"{key} {row[key]!r} is not a content hash")
            _parse_time(row["chosen_at"])
        except ValueError as error:
            log.warning("import: skipping A/B row %d: %s", number, error)
            skipped.append({"preferences_row": number, "reason": str(error)})
            continue
        valid.append(row)
    return valid


def _import_preferences(conn: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]], counts: dict[str, int]) -> None:
    for row in rows:
        tie = str(row["tie"]).strip().lower() in ("true", "1", "yes")
        chosen_at = _parse_time(row["chosen_at"]) or datetime(1970, 1, 1)
        exists = conn.execute(
            "SELECT count(*) FROM preferences WHERE winner_hash = ? AND loser_hash = ? AND tie = ? AND chosen_at = ?",
            [row["winner_hash"], row["loser_hash"], tie, chosen_at],
        ).fetchone()[0]
        if exists:
            counts["preferences_skipped"] += 1
            continue
        kind = conn.execute("SELECT any_value(kind) FROM files WHERE content_hash = ?", [row["winner_hash"]]).fetchone()[0]
        conn.execute("INSERT INTO preferences VALUES (?, ?, ?, ?, ?, 'import')",
                     [row["winner_hash"], row["loser_hash"], tie, kind, chosen_at])
        counts["preferences_added"] += 1


def import_file(store: Store, path: Path) -> dict[str, Any]:
    """Merge an export into this database; model_* columns are never read as ratings."""
    path = Path(path)
    suffix = _check_format(path)
    if not path.is_file():
        raise ExchangeError(f"{path} does not exist")
    read_rows = _read(path, suffix, EXPORT_COLUMNS)
    pref_path = preferences_path(path)
    read_prefs = _read(pref_path, suffix, PREFERENCE_COLUMNS) if pref_path.is_file() else []
    skipped: list[dict[str, Any]] = []
    rows, prefs = _checked_rows(read_rows, skipped), _checked_preferences(read_prefs, skipped)
    counts = dict.fromkeys(("ratings_applied", "ratings_kept", "plays_updated", "preferences_added",
                            "preferences_skipped"), 0)

    def merge(conn: duckdb.DuckDBPyConnection) -> None:
        _import_rows(conn, rows, counts)
        _import_preferences(conn, prefs, counts)

    store.write(merge)
    return {"rows": len(read_rows), **counts, "rows_skipped": len(skipped), "skipped": skipped[:SKIPPED_SHOWN]}
