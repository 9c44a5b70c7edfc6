"""The scanner on real generated media, through the CLI: identity by content, bad files, odd names."""
from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import mutagen
import pytest

from tests.conftest import Cli
from tests.media import make_bad_files, make_odd_names, write_jpeg, write_mp3, write_text, write_wav

KINDS = ("images", "music", "text", "videos")


@pytest.fixture
def library(tmp_path: Path, cli: Cli) -> Path:
    """One folder added as a root of every kind (each kind indexes only its own extensions)."""
    root = tmp_path / "library"
    root.mkdir()
    for kind in KINDS:
        assert cli("library", "add", kind, str(root)).code == 0
    return root


def _exported(cli: Cli) -> list[dict[str, object]]:
    """Every row of a fresh export (the public way to read ratings back)."""
    import pyarrow.csv as pa_csv

    cli.json("export", str(cli.data_dir / "out.csv"))
    return pa_csv.read_csv(cli.data_dir / "out.csv").to_pylist()


def rating_of(cli: Cli, path: Path) -> float | None:
    found = [row for row in _exported(cli) if row["path"] == str(path)]
    assert len(found) == 1, found
    return found[0]["user_rating"]


def test_an_empty_library_scans_to_zero(cli: Cli, library: Path) -> None:
    report = cli.json("scan")
    assert (report["new"], report["unchanged"], report["missing"], report["bad"]) == (0, 0, 0, [])
    assert set(report) >= {"new", "changed", "moved", "missing", "unchanged", "carried", "bad", "seconds"}


def test_a_rescan_of_an_unchanged_library_reuses_every_hash(cli: Cli, library: Path) -> None:
    for index in range(5):
        write_jpeg(library / f"p{index}.jpg", color=(index * 40, 10, 10))
    assert cli.json("scan")["new"] == 5
    again = cli.json("scan")
    assert (again["new"], again["unchanged"], again["changed"]) == (0, 5, 0)


def test_renamed_moved_and_copied_files_keep_their_rating(cli: Cli, library: Path) -> None:
    photo = write_jpeg(library / "photo.jpg", color=(200, 30, 30))
    cli.json("scan")
    assert cli.json("rate", str(photo), "8.5")["record"]["user_rating"] == 8.5

    renamed = library / "renamed.jpg"
    photo.rename(renamed)
    report = cli.json("scan")
    assert (report["moved"], report["new"], report["missing"]) == (1, 0, 0)
    assert rating_of(cli, renamed) == 8.5

    (library / "sub").mkdir()
    moved = library / "sub" / "moved.jpg"
    renamed.rename(moved)
    assert cli.json("scan")["moved"] == 1
    assert rating_of(cli, moved) == 8.5

    copy = library / "copy.jpg"
    shutil.copy2(moved, copy)
    assert cli.json("scan")["new"] == 1
    assert rating_of(cli, copy) == 8.5
    cli.json("rate", str(copy), "3")
    assert rating_of(cli, moved) == 3.0, "a copy shares its rating with the original: same content"


def test_a_deleted_file_is_missing_and_its_rating_survives_its_return(cli: Cli, library: Path, tmp_path: Path) -> None:
    photo = write_jpeg(library / "photo.jpg", color=(1, 2, 3))
    cli.json("scan")
    cli.json("rate", str(photo), "6")
    aside = tmp_path / "aside.jpg"
    photo.rename(aside)
    assert cli.json("scan")["missing"] == 1
    aside.rename(photo)
    cli.json("scan")
    assert rating_of(cli, photo) == 6.0


def test_rewriting_an_mp3s_tags_carries_its_rating_to_the_new_content(cli: Cli, library: Path) -> None:
    song = write_mp3(library / "song.mp3", tags={"artist": "Before", "title": "Song"})
    cli.json("scan")
    cli.json("rate", str(song), "9")
    old_hash = cli.json("rate", str(song), "9")["record"]["content_hash"]

    tags = mutagen.File(song, easy=True)
    tags["artist"] = "After, retagged by another program"
    tags.save()
    report = cli.json("scan")
    assert (report["changed"], report["carried"], report["new"]) == (1, 1, 0)
    record = cli.json("rate", str(song), "9")["record"]
    assert record["content_hash"] != old_hash
    rows = [row for row in _exported(cli) if row["path"] == str(song)]
    assert rows[0]["user_rating"] == 9.0


def test_a_changed_file_carries_its_plays_too(cli: Cli, library: Path) -> None:
    from anagnorisis.cli import open_library
    from anagnorisis.config import load_settings
    from anagnorisis.store.ratings import record_play

    song = write_wav(library / "tone.wav", freq=440)
    report = cli.json("scan")
    assert report["new"] == 1
    old_hash = cli.json("unrate", str(song))["record"]["content_hash"]
    store = open_library(load_settings({"data_dir": str(cli.data_dir)}))
    record_play(store, old_hash, "full")
    record_play(store, old_hash, "skip")
    store.close()
    write_wav(song, freq=880)
    assert cli.json("scan")["carried"] == 1
    row = [row for row in _exported(cli) if row["path"] == str(song)][0]
    assert (row["full_plays"], row["skips"]) == (1, 1)


def test_bad_files_are_each_reported_and_the_scan_completes(cli: Cli, library: Path) -> None:
    bad = make_bad_files(library / "bad")
    good = write_jpeg(library / "good.jpg")
    write_text(library / "good.txt", "a good text file\n")
    categories = Counter(item.badness for item in bad)
    assert len(bad) >= 30 and min(categories.values()) >= 3 and len(categories) >= 5, categories

    report = cli.json("scan")
    reported = {item["path"]: item["reason"] for item in report["bad"]}
    for item in bad:
        assert str(item.path) in reported, f"{item.badness} {item.kind} file {item.path.name} was not reported"
        assert reported[str(item.path)], "every bad file has a reason"
    assert report["new"] == 2
    rows = {row["path"] for row in _exported(cli)}
    assert str(good) in rows and not rows & {str(item.path) for item in bad}
    log = (cli.data_dir / "logs" / "anagnorisis.log").read_text(encoding="utf-8")
    assert f"skipping {bad[0].path}: " in log


def test_odd_names_are_indexed_and_rated(cli: Cli, library: Path) -> None:
    odd = make_odd_names(library / "odd")
    report = cli.json("scan")
    assert report["bad"] == [], report["bad"]
    assert report["new"] == len(odd)
    for path in odd:
        if path.suffix in (".jpg", ".png"):
            assert cli.json("rate", str(path), "7")["record"]["user_rating"] == 7.0
    from anagnorisis.cli import open_library
    from anagnorisis.config import load_settings
    from anagnorisis.store.records import present_files

    store = open_library(load_settings({"data_dir": str(cli.data_dir)}))
    try:
        stored = {record["path_bytes"]: record for kind in KINDS for record in present_files(store, kind)}
    finally:
        store.close()
    for path in odd:
        record = stored[os.fsencode(path)]
        assert record["display_path"].encode("utf-8"), "the display form is valid UTF-8"
    invalid = [path for path in odd if b"\xff" in os.fsencode(path)]
    assert invalid and "\ufffd" in stored[os.fsencode(invalid[0])]["display_path"]
    assert stored[os.fsencode(invalid[0])]["user_rating"] == 7.0


def test_symlinks_out_of_a_root_and_loops_are_not_followed(cli: Cli, library: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    write_jpeg(outside / "secret.jpg")
    (library / "escape").symlink_to(outside)
    (library / "escape.jpg").symlink_to(outside / "secret.jpg")
    (library / "loop").symlink_to(library)
    write_jpeg(library / "inside.jpg")
    report = cli.json("scan")
    assert report["new"] == 1
    reasons = {Path(item["path"]).name: item["reason"] for item in report["bad"]}
    assert "outside" in reasons["escape"] and "outside" in reasons["escape.jpg"]
    assert "loop" in reasons["loop"]


def test_a_roots_kind_takes_only_its_own_extensions(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "pictures"
    root.mkdir()
    write_jpeg(root / "a.jpg")
    write_wav(root / "b.wav")
    cli.json("library", "add", "images", str(root))
    report = cli.json("scan")
    assert report["new"] == 1


def test_a_root_replaced_by_its_parent_takes_its_files_over(cli: Cli, tmp_path: Path) -> None:
    """Remove `photos/sub`, add `photos`: the files under sub now belong to `photos`, with paths relative to it."""
    parent = tmp_path / "photos"
    sub = parent / "sub"
    photo = write_jpeg(sub / "wood.jpg")
    assert cli("library", "add", "images", str(sub)).code == 0
    cli.json("scan")
    cli.json("rate", str(photo), "7")
    assert cli("library", "remove", "images", str(sub)).code == 0
    assert cli("library", "add", "images", str(parent)).code == 0
    report = cli.json("scan")
    assert (report["new"], report["unchanged"]) == (0, 1)
    (record,) = cli.json("search", "images", "--folder", str(sub))["results"]
    assert (record["root"], record["relative_path"]) == (str(parent), "sub/wood.jpg")
    assert record["user_rating"] == 7
    cli.json("embed", "images")
    assert cli.json("search", "images", str(photo), "--mode", "similar")["total"] == 0  # found; nothing else to match


def test_a_scan_stopped_between_files_keeps_what_it_recorded_and_the_next_scan_finishes_it(tmp_path: Path) -> None:
    """should_stop() is asked between files; a stop records the files probed so far, sweeps nothing, and the next
    scan ends where an uninterrupted one would (a moved file keeps its row either way)."""
    from anagnorisis.library.scan import scan
    from anagnorisis.store import Store
    from anagnorisis.store.roots import add_root

    library = tmp_path / "library"
    (library / "sub").mkdir(parents=True)
    photos = [write_jpeg(library / f"photo {index}.jpg", color=(30 * index, 90, 200 - 20 * index))
              for index in range(6)]
    stores = {name: Store.open(tmp_path / name / "anagnorisis.duckdb") for name in ("stopped", "whole")}
    try:
        for store in stores.values():
            add_root(store, "images", library)
            assert scan(store, ["images"]).new == 6

        def rows(store: Store) -> dict[str, tuple[object, ...]]:
            return {path: (file_id, content_hash, missing) for file_id, path, content_hash, missing in store.read(
                lambda c: c.execute("SELECT id, relative_path, content_hash, missing FROM files").fetchall())}

        before = rows(stores["stopped"])
        photos[0].rename(library / "sub" / "renamed.jpg")
        for index in range(6, 10):
            write_jpeg(library / f"photo {index}.jpg", color=(20 * index, 40, 100))
        asked = []
        # 10 files are walked (a checkpoint each), then 5 probed: stop after the second probe
        report = scan(stores["stopped"], ["images"], should_stop=lambda: asked.append(1) or len(asked) >= 12)
        assert report.stopped and report.as_dict()["stopped"] is True
        assert report.new + report.moved == 2 and report.missing == 0
        halfway = rows(stores["stopped"])
        assert not any(missing for _id, _hash, missing in halfway.values()), "nothing is swept by a stopped scan"
        assert len(halfway) == 6 + report.new
        rest = scan(stores["stopped"], ["images"])
        assert not rest.stopped and rest.new + rest.moved == 3 and rest.missing == 0
        scan(stores["whole"], ["images"])
        finished = rows(stores["stopped"])
        assert ({path: row[1:] for path, row in finished.items()}
                == {path: row[1:] for path, row in rows(stores["whole"]).items()})
        assert finished["sub/renamed.jpg"][0] == before["photo 0.jpg"][0], "the moved file kept its row"
    finally:
        for store in stores.values():
            store.close()
