"""Settings: changes persist across a restart, apply at once, and invalid roots are refused with their reason."""
from __future__ import annotations

from html import unescape
from pathlib import Path

from anagnorisis.ui import settings as tab
from tests.ui.conftest import make_photos, start_app


def test_a_setting_changed_in_the_tab_survives_a_restart(tmp_path: Path) -> None:
    library = tmp_path / "library"
    make_photos(library, 2)
    app, _url = start_app(tmp_path / "data", library)
    try:
        assert tab.change_setting(app.context, "file_actions", "trash") == "saved file_actions = trash"
        assert app.context.settings.file_actions == "trash", "applies without a restart"
        assert "not saved" in tab.change_setting(app.context, "device", "tpu")
    finally:
        app.close()
    again, _url = start_app(tmp_path / "data", library)
    try:
        assert again.context.settings.file_actions == "trash"
        assert again.context.settings.sources["file_actions"] == "ui"
    finally:
        again.close()


def test_an_invalid_root_is_refused_with_its_reason(tmp_path: Path) -> None:
    library = tmp_path / "library"
    make_photos(library, 1)
    (library / "inner").mkdir()
    app, _url = start_app(tmp_path / "data", library)
    try:
        message, _rows = tab.add_root(app.context, "images", str(tmp_path / "nowhere"))
        assert message.startswith("not added") and "does not exist" in message
        message, _rows = tab.add_root(app.context, "images", str(library / "inner"))
        assert "inside" in message
        roots_before = tab.roots_table(app.context)
        assert tab.exchange(app.context, "export", "  ") == (
            "export failed: type a file's path first, ending in .csv or .parquet")
        for blank in ("", "   "):  # an empty Folder field: refused, not taken as the app's working folder
            message, rows = tab.add_root(app.context, "images", blank)
            assert message.startswith("not added") and "no folder given" in message, message
            assert rows == roots_before
        elsewhere = tmp_path / "music"
        elsewhere.mkdir()
        message, rows = tab.add_root(app.context, "music", str(elsewhere))
        assert message.startswith("added") and ["music", str(elsewhere.resolve()), "added"] in rows
        message, _rows = tab.add_root(app.context, "music", str(elsewhere))
        assert unescape(message) == f"{elsewhere} is already a music folder; scanning it again now"
        refused = tab.change_setting(app.context, "backup_keep", -3)
        assert unescape(refused) == "not saved: backup_keep must be 0 or more, not -3"
        assert app.context.settings.backup_keep >= 0
    finally:
        app.close()


def test_back_up_now_writes_a_database_that_opens(tmp_path: Path) -> None:
    from anagnorisis.store import Store

    library = tmp_path / "library"
    photos = make_photos(library, 2)
    app, _url = start_app(tmp_path / "data", library)
    try:
        app.context.session.rate("images", str(photos[0]), 4)
        message = tab.backup(app.context)
    finally:
        app.close()
    path = Path(unescape(message).removeprefix("backup written to "))  # the message is Markdown: escaped text
    assert path.is_absolute() and path.is_file(), message
    with Store.open(path) as copy:
        assert copy.read(lambda c: c.execute("SELECT rating FROM ratings").fetchall()) == [(4.0,)]


def test_the_original_apps_database_imports_from_the_settings_tab(tmp_path: Path) -> None:
    import sqlite3

    library = tmp_path / "library"
    photos = make_photos(library, 2)
    old = tmp_path / "project.db"
    connection = sqlite3.connect(old)
    connection.execute("CREATE TABLE images_library (id INTEGER NOT NULL, hash VARCHAR, hash_algorithm VARCHAR, "
                       "file_path VARCHAR, user_rating FLOAT, user_rating_date DATETIME, model_rating FLOAT, "
                       "model_hash VARCHAR, PRIMARY KEY (id), UNIQUE (id), UNIQUE (hash))")
    connection.execute("INSERT INTO images_library VALUES (1, 'x', 'md5:v1', ?, 6.5, '2024-01-01 10:00:00.000000', "
                       "NULL, NULL)", [str(photos[0])])
    connection.commit()
    connection.close()
    app, _url = start_app(tmp_path / "data", library)
    try:
        message = tab.exchange(app.context, "import-anagnorisis", str(old))
        assert "matched 1" in message and "unmatched 0" in message
        assert app.context.session.record_by_path("images", str(photos[0]))["user_rating"] == 6.5
        assert "failed" in tab.exchange(app.context, "import-anagnorisis", str(photos[1]))
    finally:
        app.close()
