"""Database backups: a consistent copy while the app runs, now or every few hours, keeping the newest N."""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from pathlib import Path

from anagnorisis.store import Store

log = logging.getLogger(__name__)

PREFIX = "anagnorisis-"
SUFFIX = ".duckdb"


def backups_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "backups"


def backup_now(store: Store, data_dir: Path) -> Path:
    """Copy the whole database (every committed rating up to this moment) into data/backups/."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
    return store.backup_to(backups_dir(data_dir) / f"{PREFIX}{stamp}{SUFFIX}")


def list_backups(data_dir: Path) -> list[Path]:
    """Newest first."""
    return sorted(backups_dir(data_dir).glob(f"{PREFIX}*{SUFFIX}"), reverse=True)


def prune_backups(data_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups; returns what was deleted."""
    doomed = list_backups(data_dir)[max(0, keep):]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


class AutoBackup:
    """A daemon thread taking a backup every `interval_hours` and keeping `keep` of them."""

    def __init__(self, store: Store, data_dir: Path, keep: int, interval_hours: float) -> None:
        self.store, self.data_dir = store, data_dir
        self.keep, self.interval_hours = keep, interval_hours
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.keep <= 0 or self.interval_hours <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="auto-backup", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_hours * 3600):
            try:
                path = backup_now(self.store, self.data_dir)
                prune_backups(self.data_dir, self.keep)
                log.info("automatic backup written to %s", path)
            except Exception as error:  # a failed backup is logged; the app goes on
                log.error("automatic backup failed: %s", error)

    def stop(self) -> None:
        self._stop.set()
