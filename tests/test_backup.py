"""A backup taken while ratings are being written holds every rating acknowledged before it started."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from anagnorisis.store.backup import backup_now, list_backups, prune_backups
from anagnorisis.store import Store
from anagnorisis.store.ratings import set_rating


def test_a_backup_during_writes_holds_every_rating_acknowledged_before_it(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.duckdb")
    acknowledged: list[str] = []
    stop = threading.Event()

    def rate_continuously() -> None:
        index = 0
        while not stop.is_set():
            set_rating(store, f"hash{index:06d}", index % 11)
            acknowledged.append(f"hash{index:06d}")
            index += 1

    writer = threading.Thread(target=rate_continuously)
    writer.start()
    try:
        time.sleep(0.5)
        before = list(acknowledged)
        backup = backup_now(store, tmp_path)
        time.sleep(0.2)
    finally:
        stop.set()
        writer.join()
        store.close()
    assert len(before) > 10
    with Store.open(backup) as copy:
        saved = {row[0] for row in copy.read(lambda c: c.execute("SELECT content_hash FROM ratings").fetchall())}
    assert set(before) <= saved
    assert len(saved) <= len(acknowledged)


def test_only_the_newest_backups_are_kept(tmp_path: Path) -> None:
    with Store.open(tmp_path / "db.duckdb") as store:
        made = [backup_now(store, tmp_path) for _ in range(4)]
    deleted = prune_backups(tmp_path, 2)
    assert list_backups(tmp_path) == sorted(made, reverse=True)[:2]
    assert set(deleted) == set(made[:2])
