"""File actions (move, rename, send to trash) that keep the database in step; ratings follow the content."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from anagnorisis.library.scan import display
from anagnorisis.store.db import Store
from anagnorisis.store.files import mark_path_missing, move_file_row
from anagnorisis.store.roots import list_roots

ALLOWED = {"off": frozenset(), "move": frozenset({"move", "rename"}), "trash": frozenset({"move", "rename", "trash"})}


class ActionRefused(Exception):
    """The action cannot be done; the message says why and what setting changes it."""


def check_allowed(setting: str, action: str) -> None:
    if action not in ALLOWED.get(setting, frozenset()):
        raise ActionRefused(
            f"{action} is turned off (ANAGNORISIS_FILE_ACTIONS={setting}); set it to "
            f"{'trash' if action == 'trash' else 'move'} to allow it"
        )


def _root_containing(store: Store, kind: str, path: str) -> str:
    for root in list_roots(store, kind):
        if path == root.path or path.startswith(root.path.rstrip(os.sep) + os.sep):
            return root.path
    raise ActionRefused(f"{path} is not inside a {kind} library folder")


def _check_writable(folder: str) -> None:
    if not os.access(folder, os.W_OK):
        raise ActionRefused(f"the library is read-only here ({folder} cannot be written)")


def _update_path(store: Store, kind: str, old: str, new: str, root: str) -> None:
    new_bytes = os.fsencode(new)
    relative = new_bytes[len(os.fsencode(root)):].lstrip(b"/")
    info = os.stat(new_bytes)

    move_file_row(store, kind, os.fsencode(old), new_bytes, display_path=display(new_bytes),
                  relative_path=display(relative), root=root, mtime=info.st_mtime)


def move_file(store: Store, kind: str, path: str, folder: str, *, setting: str) -> str:
    """Move into another folder under a root of the same kind; returns the new path."""
    check_allowed(setting, "move")
    source = os.path.abspath(path)
    _root_containing(store, kind, source)
    target_folder = os.path.realpath(os.path.abspath(folder))
    root = _root_containing(store, kind, target_folder)
    if not os.path.isdir(target_folder):
        raise ActionRefused(f"{target_folder} is not a folder")
    _check_writable(os.path.dirname(source))
    _check_writable(target_folder)
    target = os.path.join(target_folder, os.path.basename(source))
    if os.path.exists(target):
        raise ActionRefused(f"{target} already exists; nothing was moved")
    shutil.move(source, target)
    _update_path(store, kind, source, target, root)
    return target


def rename_file(store: Store, kind: str, path: str, new_name: str, *, setting: str) -> str:
    """Rename in place (the extension must stay a {kind} one); returns the new path."""
    check_allowed(setting, "rename")
    source = os.path.abspath(path)
    root = _root_containing(store, kind, source)
    name = new_name.strip()
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise ActionRefused(f"{new_name!r} is not a valid file name")
    if Path(name).suffix.lower() != Path(source).suffix.lower():
        name += Path(source).suffix
    target = os.path.join(os.path.dirname(source), name)
    if os.path.exists(target):
        raise ActionRefused(f"{target} already exists; nothing was renamed")
    _check_writable(os.path.dirname(source))
    os.rename(source, target)
    _update_path(store, kind, source, target, root)
    return target


def trash_file(store: Store, kind: str, path: str, *, setting: str) -> None:
    """Send to the desktop trash (recoverable); the file is marked missing and its rating stays with its content."""
    from send2trash import send2trash

    check_allowed(setting, "trash")
    source = os.path.abspath(path)
    _root_containing(store, kind, source)
    _check_writable(os.path.dirname(source))
    send2trash(source)
    mark_path_missing(store, kind, os.fsencode(source))
