"""Database errors a user can act on; each message says what to do."""
from __future__ import annotations

from pathlib import Path


class StoreError(Exception):
    pass


class StoreBusy(StoreError):
    """Another process holds the database file."""

    def __init__(self, pid: int | None, path: Path) -> None:
        who = f"PID {pid}" if pid else "another process"
        super().__init__(f"database in use by {who}: {path}")
        self.pid = pid


class LockWaitAbandoned(StoreBusy):
    """The caller stopped waiting for the file before the time was up (an app that can run its command started)."""


class SchemaTooNew(StoreError):
    pass
