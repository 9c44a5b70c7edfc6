"""Importing the original Anagnorisis' project.db in each published schema (facts: shared/ANAGNORISIS-DB.md)."""
from __future__ import annotations

import hashlib
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
import xxhash

from tests.conftest import Cli
from tests.media import write_jpeg, write_mp3, write_text, write_video

MIB = 1 << 20
OLD_DATE = "2024-01-15 12:00:00.000000"  # naive local time, as the old app wrote it


def old_xxh3(path: Path) -> str:
    """The old app's xxh3s hash, computed here independently from its description."""
    data = path.read_bytes()
    if len(data) <= 5 * MIB:
        return xxhash.xxh3_128(data).hexdigest()
    step = (len(data) - MIB) // 4
    blocks = [data[o:o + MIB] for o in (0, step, 2 * step, 3 * step, len(data) - MIB)]
    return xxhash.xxh3_128(b"".join(blocks) + len(data).to_bytes(8, "little")).hexdigest()


def old_md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def module_table_sql(table: str, plays: bool, named_keys: bool) -> str:
    extra = ", full_play_count INTEGER DEFAULT '0', skip_count INTEGER DEFAULT '0', last_played DATETIME" if plays else ""
    keys = (f"CONSTRAINT pk_{table} PRIMARY KEY (id), CONSTRAINT uq_{table}_id UNIQUE (id), "
            f"CONSTRAINT uq_{table}_hash UNIQUE (hash)") if named_keys else "PRIMARY KEY (id), UNIQUE (id), UNIQUE (hash)"
    return (f"CREATE TABLE {table} (id INTEGER NOT NULL, hash VARCHAR, hash_algorithm VARCHAR, file_path VARCHAR, "
            f"user_rating FLOAT, user_rating_date DATETIME, model_rating FLOAT, model_hash VARCHAR{extra}, {keys})")


def make_old_db(path: Path, schema: str, rows: dict[str, list[dict[str, Any]]]) -> Path:
    connection = sqlite3.connect(path)
    named = schema in ("head", "v0.4.2", "v0.4.1")
    for table, kind in (("images_library", "images"), ("music_library", "music"), ("text_library", "text"),
                        ("videos_library", "videos")):
        connection.execute(module_table_sql(table, kind in ("music", "videos"), named))
    if schema == "head":
        connection.execute("CREATE TABLE files_library (id INTEGER NOT NULL, hash VARCHAR, hash_algorithm VARCHAR, "
                           "file_path VARCHAR, user_rating FLOAT, user_rating_date DATETIME, model_rating FLOAT, "
                           "model_hash VARCHAR, PRIMARY KEY (id))")
    connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
    for table, table_rows in rows.items():
        for index, row in enumerate(table_rows, start=1):
            columns = ["id", *row]
            connection.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                               [index, *row.values()])
    connection.commit()
    connection.close()
    return path


@pytest.fixture
def media(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "media"
    files = {
        "photo": write_jpeg(root / "images" / "trip" / "photo.jpg", color=(10, 200, 30)),
        "moved_photo": write_jpeg(root / "images" / "new place" / "moved.jpg", color=(250, 1, 1)),
        "song": write_mp3(root / "music" / "Artist" / "song.mp3", freq=330, tags={"artist": "Artist"}),
        "other_song": write_mp3(root / "music" / "Artist" / "other.mp3", freq=550),
        "note": write_text(root / "text" / "note.md", "# A note\nabout things\n"),
        "clip": write_video(root / "videos" / "clip.mp4", frames=6),
    }
    return files


@pytest.fixture
def cli(tmp_path: Path, media: dict[str, Path]) -> Cli:
    cli = Cli(tmp_path / "data")
    for kind in ("images", "music", "text", "videos"):
        cli.json("library", "add", kind, str(tmp_path / "media" / kind))
    cli.json("scan")
    return cli


def exported(cli: Cli) -> dict[str, dict[str, Any]]:
    target = cli.data_dir / "check.csv"
    cli.json("export", str(target))
    as_text = pa_csv.ConvertOptions(column_types={"rated_at": pa.string(), "last_played": pa.string()})
    table = pa_csv.read_csv(target, convert_options=as_text)
    return {Path(row["path"]).name: row for row in table.to_pylist() if row["path"]}


@pytest.fixture
def berlin_time() -> Iterator[None]:
    """Naive local dates are converted with the machine's zone; pin one with a known offset (UTC+1 in January)."""
    import os

    before = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


def test_the_head_schema_imports_ratings_plays_and_skips_from_docker_paths(
    cli: Cli, media: dict[str, Path], tmp_path: Path, berlin_time: None
) -> None:
    def url(key: str, kind: str) -> str:
        return "osfs:///mnt/media/" + kind + "/" + str(media[key].relative_to(tmp_path / "media" / kind))

    db = make_old_db(tmp_path / "project.db", "head", {
        "files_library": [
            {"hash": old_xxh3(media["photo"]), "hash_algorithm": "xxh3s:s5m1048576:v1.2",
             "file_path": url("photo", "images"), "user_rating": 7.5, "user_rating_date": OLD_DATE,
             "model_rating": 2.0, "model_hash": "m"},
            {"hash": old_xxh3(media["song"]), "hash_algorithm": "xxh3s:s5m1048576:v1.2",
             "file_path": url("song", "music"), "user_rating": 9.25, "user_rating_date": OLD_DATE},
            {"hash": old_xxh3(media["note"]), "hash_algorithm": "xxh3s:s5m1048576:v1.2",
             "file_path": url("note", "text"), "user_rating": None, "model_rating": 8.0},
            {"hash": "f" * 32, "hash_algorithm": "xxh3s:s5m1048576:v1.2",  # rated, but of no kind we index
             "file_path": "osfs:///mnt/media/images/readme.xyz", "user_rating": 5.0, "user_rating_date": OLD_DATE},
        ],
        "music_library": [
            {"hash": old_md5(media["song"]), "hash_algorithm": "md5:v2", "file_path": url("song", "music"),
             "full_play_count": 12, "skip_count": 3, "last_played": "2024-02-01 20:30:00.000000"},
        ],
        "videos_library": [
            {"hash": old_xxh3(media["clip"]), "hash_algorithm": "xxh3s:s5m1:v1", "file_path": url("clip", "videos"),
             "full_play_count": 2, "skip_count": 1, "last_played": OLD_DATE},
        ],
    })
    result = cli.json("import-anagnorisis", str(db), "--map", f"/mnt/media={tmp_path / 'media'}")
    assert (result["matched"], result["unmatched"]) == (4, 1)
    unmatched = Path(result["unmatched_csv"]).read_text()
    assert "readme.xyz" in unmatched and "its extension belongs to no media kind" in unmatched
    rows = exported(cli)
    assert rows["photo.jpg"]["user_rating"] == 7.5
    assert rows["photo.jpg"]["rated_at"] == "2024-01-15T11:00:00.000000Z", "naive Berlin time became UTC"
    assert rows["song.mp3"]["user_rating"] == 9.25
    assert (rows["song.mp3"]["full_plays"], rows["song.mp3"]["skips"]) == (12, 3)
    assert rows["song.mp3"]["last_played"] == "2024-02-01T19:30:00.000000Z"
    assert (rows["clip.mp4"]["full_plays"], rows["clip.mp4"]["skips"]) == (2, 1)
    assert rows["note.md"]["user_rating"] is None, "the old app's model ratings are never user ratings"

    again = cli.json("import-anagnorisis", str(db), "--map", f"/mnt/media={tmp_path / 'media'}")
    assert (again["ratings_applied"], again["plays_updated"]) == (0, 0)
    assert exported(cli) == rows


def test_v042_reads_absolute_and_relative_paths(cli: Cli, media: dict[str, Path], tmp_path: Path) -> None:
    db = make_old_db(tmp_path / "project.db", "v0.4.2", {
        "images_library": [
            {"hash": old_md5(media["photo"]), "hash_algorithm": "md5:v1",
             "file_path": "/mnt/media/images/trip/photo.jpg", "user_rating": 3.0, "user_rating_date": OLD_DATE},
        ],
        "music_library": [
            {"hash": old_md5(media["song"]), "hash_algorithm": "md5:v1", "file_path": "Artist/song.mp3",
             "user_rating": 6.0, "user_rating_date": OLD_DATE, "full_play_count": 4, "skip_count": 0},
        ],
    })
    odd = tmp_path / "odd dir" / "proj#1 ?%41.db"  # URI characters in the file's path are only characters
    odd.parent.mkdir()
    shutil.copy(db, odd)
    result = cli.json("import-anagnorisis", str(odd), "--map", f"/mnt/media/images={tmp_path / 'media' / 'images'}",
                      "--media-dir", f"music={tmp_path / 'media' / 'music'}")
    assert (result["matched"], result["unmatched"]) == (2, 0)
    assert sorted(path.name for path in odd.parent.iterdir()) == [odd.name]  # no stray file beside it
    rows = exported(cli)
    assert rows["photo.jpg"]["user_rating"] == 3.0
    assert (rows["song.mp3"]["user_rating"], rows["song.mp3"]["full_plays"]) == (6.0, 4)


@pytest.mark.parametrize("schema", ["v0.4.1", "v0.3.0"])
def test_per_module_schemas_match_moved_files_by_md5_and_xxh3(
    cli: Cli, media: dict[str, Path], tmp_path: Path, schema: str
) -> None:
    db = make_old_db(tmp_path / "project.db", schema, {
        "images_library": [  # the file was moved since: its old relative path no longer exists
            {"hash": old_md5(media["moved_photo"]), "hash_algorithm": "md5:v1", "file_path": "old place/moved.jpg",
             "user_rating": 8.0, "user_rating_date": OLD_DATE},
        ],
        "videos_library": [
            {"hash": old_xxh3(media["clip"]), "hash_algorithm": "xxh3s:s5m1:v1", "file_path": "gone/clip.mp4",
             "user_rating": 5.5, "user_rating_date": OLD_DATE, "full_play_count": 1, "skip_count": 2},
        ],
        "text_library": [
            {"hash": "0" * 32, "hash_algorithm": "md5:v1", "file_path": "deleted.txt", "user_rating": 1.0,
             "user_rating_date": OLD_DATE},
        ],
    })
    result = cli.json("import-anagnorisis", str(db),
                      *(f"--media-dir={kind}={tmp_path / 'media' / kind}" for kind in ("images", "videos", "text")))
    assert (result["matched"], result["unmatched"]) == (2, 1)
    rows = exported(cli)
    assert rows["moved.jpg"]["user_rating"] == 8.0
    assert (rows["clip.mp4"]["user_rating"], rows["clip.mp4"]["skips"]) == (5.5, 2)
    unmatched = Path(result["unmatched_csv"]).read_text()
    assert "deleted.txt" in unmatched and unmatched.count("\n") == 2


def test_a_newer_local_rating_wins(cli: Cli, media: dict[str, Path], tmp_path: Path) -> None:
    cli.json("rate", str(media["photo"]), "1")  # rated now, after the old app's 2024 rating
    db = make_old_db(tmp_path / "project.db", "v0.4.1", {"images_library": [
        {"hash": old_md5(media["photo"]), "hash_algorithm": "md5:v1", "file_path": "trip/photo.jpg",
         "user_rating": 9.0, "user_rating_date": OLD_DATE}]})
    result = cli.json("import-anagnorisis", str(db), f"--media-dir=images={tmp_path / 'media' / 'images'}")
    assert result["conflicts"] == 1 and result["ratings_applied"] == 0
    assert exported(cli)["photo.jpg"]["user_rating"] == 1.0


def test_anything_but_an_anagnorisis_database_is_refused(cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    connection = sqlite3.connect(other)
    connection.execute("CREATE TABLE songs (id INTEGER, title TEXT)")
    connection.commit()
    connection.close()
    refused = cli("--json", "import-anagnorisis", str(other))
    assert refused.code == 1 and "not an Anagnorisis project.db" in refused.json["error"]["message"]
    junk = tmp_path / "junk.db"
    shutil.copy(Path(__file__), junk)
    refused = cli("--json", "import-anagnorisis", str(junk))
    assert refused.code == 1 and "not an SQLite database" in refused.json["error"]["message"]
    refused = cli("--json", "import-anagnorisis", str(tmp_path))
    assert refused.code == 1 and "is a folder" in refused.json["error"]["message"]
