"""Versioned migrations: each runs once, after a backup of the file, and a newer database is refused."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import duckdb

from anagnorisis.store.errors import SchemaTooNew

log = logging.getLogger(__name__)

# Each step: (version, why, statements). Never edit a released step; append a new one.
MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "the first schema: SPEC §3 tables",
        [
            "CREATE TABLE roots(kind VARCHAR NOT NULL, path VARCHAR NOT NULL, from_config BOOLEAN NOT NULL,"
            " added_at TIMESTAMP NOT NULL, PRIMARY KEY (kind, path))",
            "CREATE SEQUENCE files_id_seq START 1",
            # No UNIQUE index on paths: DuckDB updates indexed columns as delete + insert, which trips
            # over-eager constraint checks on moves; the one writer keeps (kind, path_bytes) unique instead.
            "CREATE TABLE files(id BIGINT PRIMARY KEY DEFAULT nextval('files_id_seq'), kind VARCHAR NOT NULL,"
            " root VARCHAR NOT NULL, relative_path VARCHAR NOT NULL, path_bytes BLOB NOT NULL,"
            " display_path VARCHAR NOT NULL, size BIGINT, mtime DOUBLE, content_hash VARCHAR,"
            " hash_algorithm VARCHAR, first_seen TIMESTAMP, last_seen TIMESTAMP,"
            " missing BOOLEAN NOT NULL DEFAULT false, metadata JSON)",
            "CREATE TABLE scan_issues(path_bytes BLOB NOT NULL, kind VARCHAR NOT NULL, reason VARCHAR NOT NULL,"
            " first_seen TIMESTAMP NOT NULL, last_seen TIMESTAMP NOT NULL)",
            "CREATE TABLE ratings(content_hash VARCHAR PRIMARY KEY, rating DOUBLE NOT NULL,"
            " rated_at TIMESTAMP NOT NULL, source VARCHAR NOT NULL)",
            "CREATE TABLE rating_history(content_hash VARCHAR NOT NULL, old DOUBLE, new DOUBLE,"
            " changed_at TIMESTAMP NOT NULL, source VARCHAR NOT NULL)",
            "CREATE TABLE preferences(winner_hash VARCHAR NOT NULL, loser_hash VARCHAR NOT NULL,"
            " tie BOOLEAN NOT NULL, kind VARCHAR, chosen_at TIMESTAMP NOT NULL, source VARCHAR NOT NULL)",
            "CREATE TABLE embeddings(content_hash VARCHAR NOT NULL, model_id VARCHAR NOT NULL, dim INTEGER NOT NULL,"
            " vector BLOB NOT NULL, PRIMARY KEY (content_hash, model_id))",
            "CREATE TABLE plays(content_hash VARCHAR PRIMARY KEY, full_plays INTEGER NOT NULL DEFAULT 0,"
            " skips INTEGER NOT NULL DEFAULT 0, last_played TIMESTAMP)",
            "CREATE TABLE predictions(content_hash VARCHAR NOT NULL, kind VARCHAR NOT NULL,"
            " model_version INTEGER NOT NULL, rating DOUBLE NOT NULL, uncertainty DOUBLE,"
            " predicted_at TIMESTAMP NOT NULL, PRIMARY KEY (content_hash, model_version))",
            "CREATE TABLE models(version INTEGER PRIMARY KEY, kind VARCHAR NOT NULL, embedding_model VARCHAR NOT NULL,"
            " created_at TIMESTAMP NOT NULL, winner VARCHAR NOT NULL, metrics JSON, file VARCHAR,"
            " active BOOLEAN NOT NULL DEFAULT false)",
            "CREATE TABLE settings(name VARCHAR PRIMARY KEY, value JSON)",
        ],
    ),
    (
        2,
        # A query scores a text by the smooth maximum over its passages (SPEC §2), so one matching passage in a
        # long document counts; the file's mean vector alone cannot say that. Rows of one file are written in
        # the transaction of its mean vector. No primary key: the one writer deletes a file's rows before
        # writing them again, and an index would only slow the bulk inserts of an embed run.
        "chunk vectors of text files, for meaning search by the best passage",
        [
            "CREATE TABLE chunk_embeddings(content_hash VARCHAR NOT NULL, model_id VARCHAR NOT NULL,"
            " chunk INTEGER NOT NULL, start_char INTEGER NOT NULL, end_char INTEGER NOT NULL, dim INTEGER NOT NULL,"
            " vector BLOB NOT NULL)",
        ],
    ),
]

LATEST_VERSION = MIGRATIONS[-1][0]


def current_version(connection: duckdb.DuckDBPyConnection) -> int:
    exists = connection.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ).fetchone()[0]
    if not exists:
        return 0
    row = connection.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def _backup_before_migration(connection: duckdb.DuckDBPyConnection, path: Path, version: int) -> None:
    connection.execute("CHECKPOINT")
    backup = path.with_name(f"{path.name}.v{version}.bak")
    shutil.copy2(path, backup)
    log.info("backed up %s to %s before migrating from schema v%d", path, backup, version)


def migrate(connection: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Bring the database to LATEST_VERSION, refusing one written by newer code."""
    version = current_version(connection)
    if version > LATEST_VERSION:
        raise SchemaTooNew(
            f"database {path} has schema v{version}, newer than this Anagnorisis understands (v{LATEST_VERSION}); "
            "upgrade Anagnorisis, or restore a backup"
        )
    if version == LATEST_VERSION:
        return
    if version > 0:
        _backup_before_migration(connection, path, version)
    connection.execute("BEGIN TRANSACTION")
    try:
        if version == 0:
            connection.execute("CREATE TABLE schema_version(version INTEGER NOT NULL, applied_at TIMESTAMP)")
        for step, _why, statements in MIGRATIONS:
            if step <= version:
                continue
            for statement in statements:
                connection.execute(statement)
            connection.execute("INSERT INTO schema_version VALUES (?, now())", [step])
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
