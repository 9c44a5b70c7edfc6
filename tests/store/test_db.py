"""The store: migrations, one writer, durable ratings, refusing what it cannot read."""
from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import duckdb
import pytest

from anagnorisis.store import LockWaitAbandoned, SchemaTooNew, Store, StoreBusy
from anagnorisis.store.ratings import RatingOutOfRange, set_rating
from anagnorisis.store.schema import LATEST_VERSION


def test_a_new_database_gets_every_table(tmp_path: Path) -> None:
    with Store.open(tmp_path / "db.duckdb") as store:
        tables = {row[0] for row in store.read(lambda c: c.execute("SELECT table_name FROM information_schema.tables").fetchall())}
    assert {"roots", "files", "scan_issues", "ratings", "rating_history", "preferences", "embeddings", "plays",
            "predictions", "models", "settings", "schema_version"} <= tables


def test_a_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.duckdb"
    Store.open(path).close()
    connection = duckdb.connect(str(path))
    connection.execute("INSERT INTO schema_version VALUES (?, now())", [LATEST_VERSION + 1])
    connection.close()
    with pytest.raises(SchemaTooNew, match="newer"):
        Store.open(path)


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    with Store.open(tmp_path / "db.duckdb") as store:
        def half_done(conn: duckdb.DuckDBPyConnection) -> None:
            conn.execute("INSERT INTO ratings VALUES ('h', 5, now(), 'user')")
            raise RuntimeError("crash in the middle")

        with pytest.raises(RuntimeError):
            store.write(half_done)
        assert store.read(lambda c: c.execute("SELECT count(*) FROM ratings").fetchone()[0]) == 0


def test_every_rating_change_is_in_the_history(tmp_path: Path) -> None:
    with Store.open(tmp_path / "db.duckdb") as store:
        set_rating(store, "h1", 3)
        set_rating(store, "h1", 7.5)
        set_rating(store, "h1", None)
        history = store.read(lambda c: c.execute("SELECT old, new, source FROM rating_history ORDER BY changed_at").fetchall())
        with pytest.raises(RatingOutOfRange):
            set_rating(store, "h1", 10.5)
    assert history == [(None, 3.0, "user"), (3.0, 7.5, "user"), (7.5, None, "user")]


@contextlib.contextmanager
def database_held_by_another_process(path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the database file's lock, until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(path)!r}); print('held', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def test_a_second_process_waits_then_names_the_lock_holder(tmp_path: Path) -> None:
    path = tmp_path / "db.duckdb"
    with database_held_by_another_process(path) as holder:
        started = time.monotonic()
        with pytest.raises(StoreBusy, match=f"PID {holder.pid}"):
            Store.open(path, wait_seconds=1.0)
        assert time.monotonic() - started >= 1.0


def test_a_wait_for_the_lock_ends_early_when_the_caller_gives_up(tmp_path: Path) -> None:
    """A command waiting for the file asks at every retry whether to go on (an app that can run it may appear)."""
    path = tmp_path / "db.duckdb"
    with database_held_by_another_process(path) as holder:
        started = time.monotonic()
        with pytest.raises(LockWaitAbandoned, match=f"PID {holder.pid}"):
            Store.open(path, wait_seconds=30.0, give_up=lambda: time.monotonic() - started > 0.5)
        assert 0.5 <= time.monotonic() - started < 2.0


def test_a_backup_taken_while_open_holds_the_ratings(tmp_path: Path) -> None:
    with Store.open(tmp_path / "db.duckdb") as store:
        set_rating(store, "h1", 4)
        backup = store.backup_to(tmp_path / "backup.duckdb")
        set_rating(store, "h2", 6)
    with Store.open(backup) as copy:
        rows = copy.read(lambda c: c.execute("SELECT content_hash, rating FROM ratings").fetchall())
    assert rows == [("h1", 4.0)]


def test_a_data_folder_with_a_question_mark_is_refused_with_the_reason(tmp_path: Path) -> None:
    from tests.conftest import Cli

    result = Cli(tmp_path / "what?")("--json", "library", "list")
    assert result.code == 1 and "holds a '?', which DuckDB cannot open" in result.json["error"]["message"]
