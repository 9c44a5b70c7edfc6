"""Editing a text: atomic, in the file's own encoding and line endings, the rating carried to the new content."""
from __future__ import annotations

import codecs
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from anagnorisis.cli import open_library
from anagnorisis.config import load_settings
from anagnorisis.library import edit
from anagnorisis.library.edit import EditRefused, open_document, save_text
from anagnorisis.library.hashing import content_hash
from anagnorisis.store.db import Store
from anagnorisis.store.records import present_files
from tests.conftest import REPO, Cli
from tests.media import write_text


@pytest.fixture
def notes(tmp_path: Path, cli: Cli) -> Path:
    root = tmp_path / "notes"
    root.mkdir()
    cli.json("library", "add", "text", str(root))
    return root


def open_store(cli: Cli) -> Store:
    return open_library(load_settings({"data_dir": str(cli.data_dir)}))


def ratings(store: Store) -> dict[str, tuple[str, float | None]]:
    return {record["path"]: (record["content_hash"], record["user_rating"]) for record in present_files(store, "text")}


def history(store: Store, content_hash: str) -> list[tuple[Any, ...]]:
    return store.read(lambda c: c.execute(
        "SELECT old, new, source FROM rating_history WHERE content_hash = ? ORDER BY changed_at",
        [content_hash]).fetchall())


def rated_note(cli: Cli, path: Path, rating: str = "8.5") -> Path:
    cli.json("scan")
    cli.json("rate", str(path), rating)
    return path


def test_editing_a_rated_text_keeps_its_rating(cli: Cli, notes: Path) -> None:
    path = rated_note(cli, write_text(notes / "diary.md", "# Monday\n\nRained all day.\n"))
    old_hash = content_hash(path)
    store = open_store(cli)
    try:
        document = open_document(str(path))
        saved = save_text(store, str(path), document.text + "\nTuesday: sun at last.\n",
                          encoding=document.encoding, newline=document.newline, expected_hash=document.content_hash)
        assert saved.changed and saved.old_hash == old_hash and saved.new_hash == content_hash(path) != old_hash
        assert ratings(store) == {str(path): (saved.new_hash, 8.5)}
        assert history(store, saved.new_hash) == [(None, 8.5, "carried")]
    finally:
        store.close()
    assert path.read_text() == "# Monday\n\nRained all day.\n\nTuesday: sun at last.\n"
    assert sorted(os.listdir(notes)) == ["diary.md"]  # no temporary file left behind
    report = cli.json("scan")
    assert (report["unchanged"], report["changed"], report["new"]) == (1, 0, 0)


def test_an_unchanged_save_writes_nothing(cli: Cli, notes: Path) -> None:
    path = rated_note(cli, write_text(notes / "same.txt", "Nothing new.\n"))
    before = os.stat(path).st_mtime_ns
    store = open_store(cli)
    try:
        saved = save_text(store, str(path), "Nothing new.\n", encoding="utf-8")
    finally:
        store.close()
    assert not saved.changed and os.stat(path).st_mtime_ns == before


@pytest.mark.parametrize("encoding, newline, original, added", [
    ("cp1252", "\r\n", "Caf\u00e9 cr\u00e8me\r\nbr\u00fbl\u00e9e\r\n", "d\u00e9j\u00e0 vu"),
    ("cp1251", "\n", "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440, \u044d\u0442\u043e "
                     "\u043f\u0440\u043e\u0432\u0435\u0440\u043a\u0430\n", "\u0434\u0430"),
    ("utf-8-sig", "\n", "Mit BOM \u00c4rger\n", "\u00fcber"),
])
def test_a_save_keeps_the_files_encoding_and_line_endings(cli: Cli, notes: Path, encoding: str, newline: str,
                                                          original: str, added: str) -> None:
    path = rated_note(cli, write_text(notes / "legacy.txt", original, encoding), "6")
    document = open_document(str(path))
    assert (document.encoding, document.newline) == (encoding, newline)
    assert "\r" not in document.text  # the editor sees plain \n
    store = open_store(cli)
    try:
        save_text(store, str(path), document.text + added + "\n", encoding=document.encoding,
                  newline=document.newline, expected_hash=document.content_hash)
        assert list(ratings(store).values())[0][1] == 6.0
    finally:
        store.close()
    assert path.read_bytes() == (original + added + newline).encode(encoding)


def test_a_utf16_file_keeps_its_byte_order(cli: Cli, notes: Path) -> None:
    path = notes / "wide.txt"
    path.write_bytes(codecs.BOM_UTF16_BE + "Big endian\n".encode("utf-16-be"))
    rated_note(cli, path, "4")
    document = open_document(str(path))
    store = open_store(cli)
    try:
        save_text(store, str(path), "Still big endian\n", encoding=document.encoding)
    finally:
        store.close()
    assert path.read_bytes() == codecs.BOM_UTF16_BE + "Still big endian\n".encode("utf-16-be")


def test_a_character_the_encoding_cannot_hold_is_refused_and_the_file_is_untouched(cli: Cli, notes: Path) -> None:
    path = rated_note(cli, write_text(notes / "old.txt", "Caf\u00e9\n", "cp1252"))
    store = open_store(cli)
    try:
        with pytest.raises(EditRefused, match=r"“😀” \(line 2\) cannot be written in cp1252"):
            save_text(store, str(path), "Caf\u00e9\n\U0001f600\n", encoding="cp1252")
    finally:
        store.close()
    assert path.read_bytes() == "Caf\u00e9\n".encode("cp1252")


def test_a_save_is_refused_when_the_file_changed_on_disk_since_it_was_opened(cli: Cli, notes: Path) -> None:
    path = rated_note(cli, write_text(notes / "shared.md", "first version\n"))
    document = open_document(str(path))
    path.write_text("changed by another program\n")
    store = open_store(cli)
    try:
        with pytest.raises(EditRefused, match="changed on disk since you opened it"):
            save_text(store, str(path), "my edit\n", encoding="utf-8", expected_hash=document.content_hash)
    finally:
        store.close()
    assert path.read_text() == "changed by another program\n"


def test_a_save_on_a_read_only_library_is_refused_with_a_clear_message(cli: Cli, notes: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The folder says it takes no writes (as a read-only mount does; root passes every permission check, so the
    answer is stubbed here: the real mount is the next test)."""
    path = rated_note(cli, write_text(notes / "locked.txt", "keep me\n"))
    real_access = os.access
    monkeypatch.setattr(edit.os, "access", lambda p, mode, **kw: False if mode & os.W_OK else real_access(p, mode))
    store = open_store(cli)
    try:
        with pytest.raises(EditRefused, match="library is read-only"):
            save_text(store, str(path), "changed\n", encoding="utf-8")
        assert list(ratings(store).values()) == [(content_hash(path), 8.5)]
    finally:
        store.close()
    assert path.read_text() == "keep me\n"


CHILD = """
import json, sys
from anagnorisis.cli import open_library
from anagnorisis.config import load_settings
from anagnorisis.library.edit import EditRefused, library_is_writable, save_text
data_dir, path = sys.argv[1:3]
store = open_library(load_settings({"data_dir": data_dir}))
try:
    writable = library_is_writable(path)
    save_text(store, path, "changed\\n", encoding="utf-8")
    print(json.dumps({"saved": True, "writable": writable}))
except EditRefused as error:
    print(json.dumps({"saved": False, "writable": writable, "message": str(error)}))
finally:
    store.close()
"""


def test_a_save_on_a_read_only_mount_is_refused(cli: Cli, notes: Path) -> None:
    """A real read-only bind mount of the library, in a private mount namespace (nothing leaks to the host)."""
    path = rated_note(cli, write_text(notes / "mounted.txt", "keep me\n"))
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed")
    script = (f'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && '
              f'exec "{sys.executable}" -c "$2" "$3" "$4"')
    done = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(notes), CHILD, str(cli.data_dir), str(path)],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    if not done.stdout.strip():  # no private mount namespace or no mount rights here (e.g. an unprivileged container)
        pytest.skip(f"cannot make a read-only mount here: {done.stderr.strip()[:200]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"saved": False, "writable": False,
                      "message": f"not saved: the library is read-only ({notes} does not accept changes)"}
    assert path.read_text() == "keep me\n"


def test_a_write_the_file_system_refuses_says_read_only_and_leaves_the_old_text(cli: Cli, notes: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Some mounts (network shares, FUSE) pass the permission check and refuse the write itself."""
    path = rated_note(cli, write_text(notes / "remote.txt", "keep me\n"))

    def refuse(source: str, target: str) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(edit.os, "replace", refuse)
    store = open_store(cli)
    try:
        with pytest.raises(EditRefused, match=r"library is read-only \(Read-only file system\)"):
            save_text(store, str(path), "changed\n", encoding="utf-8")
        assert list(ratings(store).values()) == [(content_hash(path), 8.5)]
    finally:
        store.close()
    assert path.read_text() == "keep me\n"
    assert sorted(os.listdir(notes)) == ["remote.txt"]  # the partial file is gone


def test_a_save_keeps_the_permission_bits(cli: Cli, notes: Path) -> None:
    path = rated_note(cli, write_text(notes / "private.txt", "secret\n"))
    os.chmod(path, 0o600)
    store = open_store(cli)
    try:
        save_text(store, str(path), "still secret\n", encoding="utf-8")
    finally:
        store.close()
    assert os.stat(path).st_mode & 0o777 == 0o600
