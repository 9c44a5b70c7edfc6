"""Import ratings and play history from the original Anagnorisis' `project.db` (SQLite; SPEC §3, ANAGNORISIS-DB.md).

Every published schema is read: head (`files_library` keyed by `osfs://` paths, plus per-module play rows),
v0.4.2 (absolute or relative paths) and v0.4.1 / v0.3.0 (relative paths). Rows are matched to our files by path
first, then by content: `xxh3s:*` hashes equal ours, `md5:*` ones are compared with the full-file MD5 of our
files of that kind that matched no path. A newer rating of ours wins; importing twice changes nothing.
"""
from __future__ import annotations

import csv
import hashlib
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import duckdb

from anagnorisis.kinds import kind_of_extension
from anagnorisis.store.db import Store, utc_now
from anagnorisis.store.exchange import merge_plays
from anagnorisis.store.files import present_files_by_path
from anagnorisis.store.legacy import open_sqlite_readonly, sqlite_columns, sqlite_rows, sqlite_tables
from anagnorisis.store.ratings import apply_rating, rating_of



def module_tables() -> dict[str, str]:
    """The original app keeps one `<kind>_library` table per media module (and `files_library` for the rest)."""
    from anagnorisis.kinds import kind_names

    return {f"{kind}_library": kind for kind in kind_names()}


RATING_COLUMNS = {"hash", "hash_algorithm", "file_path", "user_rating", "user_rating_date"}
PLAY_COLUMNS = ("full_play_count", "skip_count", "last_played")
DEFAULT_MEDIA_DIR = "/mnt/media/{kind}"
URL_PREFIX = "osfs://"
MD5_READ_CHUNK = 1 << 20  # bytes per read while computing a full-file MD5


class NotAnAnagnorisisDatabase(ValueError):
    pass


@dataclass
class OldRow:
    table: str
    kind: str
    file_path: str | None
    hash: str | None
    hash_algorithm: str | None
    user_rating: float | None
    rated_at: datetime | None
    full_plays: int | None = None
    skips: int | None = None
    last_played: datetime | None = None
    resolved_path: str | None = None


@dataclass
class ImportReport:
    matched: int = 0
    unmatched: int = 0
    conflicts: int = 0
    ratings_applied: int = 0
    plays_updated: int = 0
    unmatched_rows: list[tuple[OldRow, str]] = field(default_factory=list)


def local_to_utc(text: str | None) -> datetime | None:
    """The old app wrote naive local times ('YYYY-MM-DD HH:MM:SS.ffffff'); ours are naive UTC."""
    if not text:
        return None
    moment = datetime.fromisoformat(str(text))
    if moment.tzinfo is None:
        moment = moment.astimezone()  # interpret in this machine's local time zone
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def _open_readonly(path: Path) -> sqlite3.Connection:
    if path.is_dir():
        raise NotAnAnagnorisisDatabase(f"{path} is a folder; give the path of the project.db file")
    if not path.is_file():
        raise NotAnAnagnorisisDatabase(f"{path} does not exist")
    try:
        connection = open_sqlite_readonly(path)
    except sqlite3.DatabaseError as error:
        raise NotAnAnagnorisisDatabase(f"{path} is not an SQLite database ({error})") from None
    return connection


def _usable_tables(connection: sqlite3.Connection, path: Path) -> dict[str, set[str]]:
    tables = sqlite_tables(connection)
    usable = {table: sqlite_columns(connection, table) for table in tables
              if (table in module_tables() or table == "files_library")}
    usable = {table: columns for table, columns in usable.items() if RATING_COLUMNS <= columns}
    if not usable:
        raise NotAnAnagnorisisDatabase(
            f"{path} is not an Anagnorisis project.db: it has none of the tables files_library, images_library, "
            "music_library, text_library, videos_library with their rating columns"
        )
    return usable


def read_rows(path: Path) -> list[OldRow]:
    """Every row holding a user rating or play history, from whichever schema the file has."""
    connection = _open_readonly(Path(path))
    try:
        rows: list[OldRow] = []
        for table, columns in sorted(_usable_tables(connection, Path(path)).items()):
            plays = all(column in columns for column in PLAY_COLUMNS)
            select = ["hash", "hash_algorithm", "file_path", "user_rating", "user_rating_date"] + (
                list(PLAY_COLUMNS) if plays else [])
            for values in sqlite_rows(connection, table, select):
                row = _old_row(table, values, plays)
                if row is not None:
                    rows.append(row)
        return rows
    finally:
        connection.close()


def _old_row(table: str, values: tuple[Any, ...], plays: bool) -> OldRow | None:
    content_hash, algorithm, file_path, rating, rated_at = values[:5]
    full, skips, last = values[5:8] if plays else (None, None, None)
    if rating is None and not full and not skips and not last:
        return None
    if table == "files_library":
        kind_found = kind_of_extension(os.path.splitext(str(file_path or ""))[1])
        kind = kind_found.name if kind_found is not None else ""  # reported as unmatched, not dropped
    else:
        kind = module_tables()[table]
    return OldRow(table, kind, file_path, content_hash, algorithm, None if rating is None else float(rating),
                  local_to_utc(rated_at), full, skips, local_to_utc(last))


def resolve_path(row: OldRow, maps: list[tuple[str, str]], media_dirs: dict[str, str]) -> str | None:
    """The row's file on this machine: strip osfs://, anchor relative paths, apply the longest --map."""
    if not row.file_path:
        return None
    path = str(row.file_path)
    if path.startswith(URL_PREFIX):
        path = path[len(URL_PREFIX):]
    if not path.startswith("/"):
        path = os.path.join(media_dirs.get(row.kind, DEFAULT_MEDIA_DIR.format(kind=row.kind)), path)
    for old, new in sorted(maps, key=lambda pair: len(pair[0]), reverse=True):
        if path == old or path.startswith(old.rstrip("/") + "/"):
            path = new.rstrip("/") + path[len(old.rstrip("/")):]
            break
    return os.path.normpath(path)


def file_md5(path: str | bytes) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        while chunk := file.read(MD5_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _Matcher:
    """Finds our content hash for an old row: by path, then by XXH3, then by MD5 of files no path matched."""

    def __init__(self, store: Store) -> None:
        rows = present_files_by_path(store)
        self.by_path = {(kind, os.fsdecode(bytes(path))): content_hash for kind, path, content_hash in rows}
        self.hashes = {content_hash for _kind, _path, content_hash in rows}
        self.files = rows
        self.path_matched: set[tuple[str, str]] = set()
        self._md5: dict[str, dict[str, str]] = {}

    def note_path_matches(self, rows: list[OldRow]) -> None:
        for row in rows:
            if row.resolved_path and (row.kind, row.resolved_path) in self.by_path:
                self.path_matched.add((row.kind, row.resolved_path))

    def _md5_index(self, kind: str) -> dict[str, str]:
        if kind not in self._md5:
            index: dict[str, str] = {}
            for file_kind, path_bytes, content_hash in self.files:
                path = os.fsdecode(bytes(path_bytes))
                if file_kind == kind and (kind, path) not in self.path_matched:
                    try:
                        index.setdefault(file_md5(bytes(path_bytes)), content_hash)
                    except OSError:
                        continue
            self._md5[kind] = index
        return self._md5[kind]

    def match(self, row: OldRow) -> tuple[str | None, str]:
        if row.resolved_path and (row.kind, row.resolved_path) in self.by_path:
            return self.by_path[(row.kind, row.resolved_path)], "path"
        algorithm = (row.hash_algorithm or "").lower()
        if row.hash and algorithm.startswith("xxh3") and row.hash.lower() in self.hashes:
            return row.hash.lower(), "hash"
        if row.hash and algorithm.startswith("md5"):
            found = self._md5_index(row.kind).get(row.hash.lower())
            if found:
                return found, "md5"
        return None, "no file with this path or content" if row.file_path else "no path and no matching content"


def _apply(conn: duckdb.DuckDBPyConnection, content_hash: str, row: OldRow, report: ImportReport) -> None:
    if row.user_rating is not None and 0 <= row.user_rating <= 10:
        ours = rating_of(conn, content_hash)
        if ours is not None and ours[0] != row.user_rating:
            report.conflicts += 1
        theirs_at = row.rated_at or datetime(1970, 1, 1)
        if ours is None or theirs_at > ours[1]:
            report.ratings_applied += apply_rating(conn, content_hash, row.user_rating, source="anagnorisis",
                                                   at=theirs_at)
    if row.full_plays or row.skips or row.last_played:
        full, skips = int(row.full_plays or 0), int(row.skips or 0)
        if merge_plays(conn, content_hash, full, skips, row.last_played):
            report.plays_updated += 1


def _write_unmatched(report: ImportReport, data_dir: Path) -> Path | None:
    if not report.unmatched_rows:
        return None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")  # two imports in one second: two files
    path = Path(data_dir) / f"import-anagnorisis-unmatched-{stamp}.csv"
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["table", "kind", "file_path", "resolved_path", "hash", "hash_algorithm", "user_rating",
                         "user_rating_date_utc", "full_play_count", "skip_count", "last_played_utc", "reason"])
        for row, reason in report.unmatched_rows:
            writer.writerow([row.table, row.kind, row.file_path, row.resolved_path, row.hash, row.hash_algorithm,
                             row.user_rating, row.rated_at.isoformat() if row.rated_at else "", row.full_plays,
                             row.skips, row.last_played.isoformat() if row.last_played else "", reason])
    return path


def import_anagnorisis(store: Store, db_path: Path, data_dir: Path, *, maps: list[tuple[str, str]] | None = None,
                       media_dirs: dict[str, str] | None = None) -> dict[str, Any]:
    """Merge the old database into ours; returns SPEC §1's `{matched, unmatched, conflicts, unmatched_csv}`."""
    rows = read_rows(Path(db_path))
    report = ImportReport()
    for row in [row for row in rows if not row.kind]:
        report.unmatched += 1
        report.unmatched_rows.append((row, "its extension belongs to no media kind"))
    rows = [row for row in rows if row.kind]
    for row in rows:
        row.resolved_path = resolve_path(row, maps or [], media_dirs or {})
    matcher = _Matcher(store)
    matcher.note_path_matches(rows)
    matched: list[tuple[str, OldRow]] = []
    for row in rows:
        content_hash, how = matcher.match(row)
        if content_hash is None:
            report.unmatched += 1
            report.unmatched_rows.append((row, how))
        else:
            report.matched += 1
            matched.append((content_hash, row))

    def write(conn: duckdb.DuckDBPyConnection) -> None:
        for content_hash, row in matched:
            _apply(conn, content_hash, row, report)

    store.write(write)
    csv_path = _write_unmatched(report, data_dir)
    return {"matched": report.matched, "unmatched": report.unmatched, "conflicts": report.conflicts,
            "unmatched_csv": str(csv_path) if csv_path else None, "ratings_applied": report.ratings_applied,
            "plays_updated": report.plays_updated, "imported_at": utc_now().isoformat() + "Z"}


def parse_pairs(values: list[str] | None, option: str) -> Iterator[tuple[str, str]]:
    for value in values or []:
        old, sep, new = value.partition("=")
        if not sep or not old or not new:
            raise ValueError(f"{option} {value!r}: expected OLD=NEW")
        yield old, new
