"""The one DuckDB connection of a process: every write goes through `Store.write`, which commits before it returns."""
from __future__ import annotations

import logging
import re
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, TypeVar

import duckdb

from anagnorisis.store import schema
from anagnorisis.store.errors import LockWaitAbandoned, StoreBusy, StoreError

T = TypeVar("T")
log = logging.getLogger(__name__)

# DuckDB keeps every table block it has read cached until its memory limit (80 % of RAM by default) is reached.
# After a bulk read of vectors, which the caller keeps in an index of its own, those blocks are a second copy:
# 100k × 384 float32 rows kept 120 MB of RSS (bench/app.py). release_cache keeps at most this much of them.
CACHE_KEEP_BYTES = 32 << 20

# How long an open waits for another process to let go of the file before giving up, in seconds (SPEC §1).
LOCK_WAIT_SECONDS = 30.0
# How often it tries again, and asks its caller whether to go on waiting (an app that starts meanwhile announces
# itself in app.json; a command waiting for the file then forwards to it).
LOCK_RETRY_SECONDS = 0.2


def utc_now() -> datetime:
    """Naive UTC timestamp, the form every TIMESTAMP column holds."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _lock_holder(message: str) -> int | None:
    match = re.search(r"PID (\d+)", message)
    return int(match.group(1)) if match else None


def _connect(path: Path, wait_seconds: float, give_up: Callable[[], bool] | None) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise StoreError(f"cannot open database {path}: {error}") from None
            if give_up is not None and give_up():
                raise LockWaitAbandoned(_lock_holder(str(error)), path) from None
            if time.monotonic() >= deadline:
                raise StoreBusy(_lock_holder(str(error)), path) from None
            time.sleep(LOCK_RETRY_SECONDS)


class Store:
    """Owns the database file for this process."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, path: Path) -> None:
        self.path = path
        self._connection = connection
        self._write_lock = threading.RLock()

    @classmethod
    def open(cls, path: Path, *, wait_seconds: float = LOCK_WAIT_SECONDS,
             give_up: Callable[[], bool] | None = None) -> "Store":
        """Open the file, waiting up to wait_seconds while another process holds it; give_up, asked at every retry,
        ends the wait early with LockWaitAbandoned when it answers True."""
        path = Path(path)
        if "?" in str(path):  # DuckDB reads what follows a '?' as options: the file it opens is not this one
            raise StoreError(f"the database path {path} holds a '?', which DuckDB cannot open; "
                             "choose a data folder without it (--data-dir)")
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = _connect(path, wait_seconds, give_up)
        store = cls(connection, path)
        try:
            schema.migrate(connection, path)
        except Exception:
            connection.close()
            raise
        return store

    def write(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run fn in one transaction; return only after COMMIT (a rating is acknowledged after this)."""
        with self._write_lock:
            connection = self._connection
            connection.execute("BEGIN TRANSACTION")
            try:
                result = fn(connection)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            return result

    def read(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run fn on a cursor of its own, so readers on other threads do not disturb the writer."""
        cursor = self._connection.cursor()
        try:
            return fn(cursor)
        finally:
            cursor.close()

    def release_cache(self, keep_bytes: int = CACHE_KEEP_BYTES) -> int:
        """Evict the table blocks DuckDB holds cached beyond keep_bytes (they are read from disk again when
        needed); the number of cached bytes it asked DuckDB to drop, 0 when there was nothing worth it.

        DuckDB evicts only to fit its memory limit, so the limit is lowered for a moment to what the database
        uses besides cached table blocks (plus keep_bytes as headroom for a query running meanwhile), then set
        back to the default. Best effort: if DuckDB cannot get there (blocks in use), nothing changes."""
        with self._write_lock:
            connection = self._connection
            try:
                usage = dict(connection.execute("SELECT tag, memory_usage_bytes FROM duckdb_memory()").fetchall())
                cached = int(usage.get("BASE_TABLE", 0))
                if cached <= 2 * keep_bytes and keep_bytes:
                    return 0
                target = sum(int(used) for used in usage.values()) - cached + keep_bytes
                connection.execute(f"SET memory_limit = '{target}B'")
            except duckdb.Error as error:
                log.debug("could not release DuckDB's cached blocks: %s", error)
                return 0
            # Back to DuckDB's default (80 % of RAM): the store sets no limit of its own; the value shown by
            # current_setting is rounded, so it could not be set back exactly.
            connection.execute("RESET memory_limit")
            return cached - keep_bytes

    def checkpoint(self) -> None:
        with self._write_lock:
            self._connection.execute("CHECKPOINT")

    def backup_to(self, target: Path) -> Path:
        """A consistent copy of the whole database while it stays open and writable."""
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.unlink()
        with self._write_lock:
            escaped = str(target).replace("'", "''")
            source = self._connection.execute("SELECT current_database()").fetchone()[0]
            self._connection.execute(f"ATTACH '{escaped}' AS backup_target")
            try:
                self._connection.execute(f'COPY FROM DATABASE "{source}" TO backup_target')
            finally:
                self._connection.execute("DETACH backup_target")
        return target

    def close(self) -> None:
        with self._write_lock:
            try:
                self._connection.close()
            except duckdb.Error:  # pragma: no cover - closing twice
                pass

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
