"""A hostile library of 200+ files scans to completion: every bad file reported with a reason, every valid one indexed."""
from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from anagnorisis.library.scan import display, scan
from anagnorisis.store import Store
from anagnorisis.store.roots import add_root
from tests.hostile import make_hostile_library


@contextmanager
def as_another_user() -> Iterator[None]:
    """Tests run as root, for whom chmod 000 means nothing: scan with the effective identity of `nobody`."""
    if os.geteuid() != 0:
        yield
        return
    nobody = pwd.getpwnam("nobody")
    os.setegid(nobody.pw_gid)
    os.seteuid(nobody.pw_uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="anagnorisis-hostile-"))
    base.chmod(0o755)
    yield base
    for folder, _dirs, _files in os.walk(base):
        os.chmod(folder, 0o755)
    shutil.rmtree(base, ignore_errors=True)


def _open_up(root: Path) -> None:
    for folder, dirs, files in os.walk(root):
        os.chmod(folder, 0o755)


def test_a_hostile_library_scans_to_completion_with_each_bad_file_reported(world_readable_dir: Path) -> None:
    root = world_readable_dir / "library"
    root.mkdir()
    expectations = make_hostile_library(root, world_readable_dir / "outside")
    _open_up(root)
    assert len(expectations) >= 200, len(expectations)
    data = world_readable_dir / "data"
    data.mkdir(mode=0o777)
    data.chmod(0o777)
    store = Store.open(data / "db.duckdb")
    try:
        for kind in ("images", "music", "text", "videos"):
            add_root(store, kind, root)
        with as_another_user():
            for item in expectations:
                if item.what == "unreadable for the scanning user":
                    with pytest.raises(PermissionError):
                        open(item.path, "rb").close()
            report = scan(store)
        indexed = {bytes(row[0]) for row in store.read(
            lambda c: c.execute("SELECT path_bytes FROM files WHERE NOT missing").fetchall())}
    finally:
        store.close()
    reported = {item["path"]: item["reason"] for item in report.bad}
    problems = []
    for item in expectations:
        if item.outcome == "bad" and display(item.path) not in reported:
            problems.append(f"not reported: {item.what}: {display(item.path)}")
        if item.outcome == "bad" and item.path in indexed:
            problems.append(f"indexed although bad: {item.what}: {display(item.path)}")
        if item.outcome == "indexed" and item.path not in indexed:
            problems.append(f"not indexed: {item.what}: {display(item.path)} ({reported.get(display(item.path))})")
        if item.outcome == "either" and (display(item.path) in reported) == (item.path in indexed):
            problems.append(f"neither reported nor indexed (or both): {item.what}: {display(item.path)}")
    assert problems == [], "\n".join(problems)
    assert all(reason and "\n" not in reason and "Traceback" not in reason for reason in reported.values())
    kinds = Counter(item.outcome for item in expectations)
    either = [item for item in expectations if item.outcome == "either"]
    print(f"hostile library: {len(expectations)} files tried, all handled, 0 crashes: {kinds['bad']} certainly bad "
          f"(all reported), {kinds['indexed']} valid (all indexed), {len(either)} mildly damaged "
          f"({sum(display(item.path) in reported for item in either)} reported, the rest still decodable)")
