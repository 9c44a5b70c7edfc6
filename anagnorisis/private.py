"""The data dir belongs to its owner alone (SPEC §8): folders 0700, files 0600.

Another account on the same machine is another person. `make_private(data_dir)` sets the process umask to 077,
so everything the app creates from then on (the database and its WAL, app.json, the token, backups, logs,
previews, models it downloads, the vector index) is private from birth, and tightens what an earlier version left
readable. Only what the app itself keeps there is tightened: the files at the top of the data dir and its own
folders. Anything else (the default library folders, which hold the user's own media, or whatever else a user keeps
in a folder they chose as the data dir) is left as it is; the data dir's own 0700 already closes it to others.
"""
from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

UMASK = 0o077
APP_FOLDERS = ("previews", "backups", "logs", "index", "models")  # what the app writes under the data dir


def make_private(data_dir: Path) -> int:
    """Set umask 077 and tighten the data dir; the number of paths whose mode changed."""
    os.umask(UMASK)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    changed = _tighten(data_dir, 0o700)
    with os.scandir(data_dir) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                changed += _tighten(Path(entry.path), 0o600)
    for name in APP_FOLDERS:
        top = data_dir / name
        if not top.is_dir() or top.is_symlink():
            continue
        changed += _tighten(top, 0o700)
        for folder, subfolders, files in os.walk(top):
            changed += sum(_tighten(Path(folder) / sub, 0o700) for sub in subfolders)
            changed += sum(_tighten(Path(folder) / file, 0o600) for file in files)
    if changed:
        log.info("made %d paths in %s private to this account", changed, data_dir)
    return changed


def _tighten(path: Path, mode: int) -> int:
    """Take group and other permissions away from one path (never following a link); 1 if it changed."""
    try:
        info = path.lstat()
    except OSError:
        return 0
    if stat.S_ISLNK(info.st_mode) or not (info.st_mode & 0o077):
        return 0
    try:
        # keep the owner's own bits (an executable stays executable for its owner), drop everyone else's
        os.chmod(path, (stat.S_IMODE(info.st_mode) & 0o700) | (mode & 0o700))
    except OSError as error:
        log.warning("cannot make %s private: %s", path, error)
        return 0
    return 1
