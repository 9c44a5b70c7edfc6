"""Opening a library, its roots, and scanning them."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Callable

from anagnorisis.config import Settings
from anagnorisis.kinds import kind_names
from anagnorisis.service.errors import BadRequest, Failed
from anagnorisis.store import Store

log = logging.getLogger("anagnorisis")

DB_FILE_NAME = "anagnorisis.duckdb"


def open_library(settings: Settings, *, wait_seconds: float | None = None,
                 give_up: Callable[[], bool] | None = None) -> Store:
    """Open the database of a data dir and apply the roots named in settings (or the default folders). While
    another process holds the database, `give_up()` is asked at every retry: True stops the wait with
    LockWaitAbandoned (an app appeared that the command can be forwarded to)."""
    from anagnorisis.private import make_private
    from anagnorisis.store.roots import list_roots, sync_config_roots

    data_dir = settings.data_path
    make_private(data_dir)  # umask 077 from here on: the database, its WAL, backups … are the owner's alone
    wait = settings.lock_wait_seconds if wait_seconds is None else wait_seconds
    store = Store.open(data_dir / DB_FILE_NAME, wait_seconds=wait, give_up=give_up)
    kinds_with_roots = {root.kind for root in list_roots(store)}
    configured: dict[str, list[str]] = {}
    for kind in kind_names():
        configured[kind] = settings.roots_for(kind)
        if not configured[kind] and kind not in kinds_with_roots:
            default = data_dir / "library" / kind
            default.mkdir(parents=True, exist_ok=True)
            configured[kind] = [str(default)]
    for problem in sync_config_roots(store, configured):
        log.warning("%s", problem)
    return store


def check_kind(kind: str) -> str:
    """The registered kind a user typed (any case), or BadRequest naming the kinds there are."""
    normalised = str(kind).strip().lower()
    names = kind_names()
    if normalised not in names:
        raise BadRequest(f"unknown kind {kind!r}; expected one of {', '.join(names)}")
    return normalised


@dataclass(frozen=True)
class RootsChange:
    """The roots after an add or a remove; `already`: the folder was a root of that kind before."""

    roots: list[Any]
    changed: Any = None
    already: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"roots": [root.as_dict() for root in self.roots], **({"already": True} if self.already else {})}


def list_roots(session: Any, kind: str | None = None) -> list[Any]:
    from anagnorisis.store.roots import list_roots as stored_roots

    return stored_roots(session.store, check_kind(kind) if kind else None)


def add_root(session: Any, kind: str, path: str) -> RootsChange:
    """Add a folder as a root of a kind (absolute or relative to the current folder)."""
    from anagnorisis.store.roots import RootRefused
    from anagnorisis.store.roots import add_root as store_root

    kind = check_kind(kind)
    if not str(path or "").strip():
        raise Failed(f"cannot add a root for {kind}: no folder given (an empty path would mean the current folder;"
                     " name it, e.g. '.', to mean that)")
    known = {root.path for root in list_roots(session, kind)}
    try:
        root = store_root(session.store, kind, os.path.abspath(os.path.expanduser(path)))
    except RootRefused as error:
        raise Failed(f"cannot add {kind} root: {error}") from None
    session.invalidate(kind)
    return RootsChange(list_roots(session), root, already=root.path in known)


def remove_root(session: Any, kind: str, path: str) -> RootsChange:
    """Forget a root; its files' ratings stay with their content."""
    from anagnorisis.store.roots import remove_root as forget_root

    kind = check_kind(kind)
    if not str(path or "").strip():
        raise Failed(f"cannot remove a root for {kind}: no folder given (an empty path would mean the current"
                     " folder; name it, e.g. '.', to mean that)")
    if not forget_root(session.store, kind, os.path.abspath(os.path.expanduser(path))):
        raise Failed(f"{path} is not a library root for {kind}")
    session.invalidate(kind)
    return RootsChange(list_roots(session))


def scan(session: Any, kinds: list[str] | None = None,
         progress: Callable[[int, int, str], None] | None = None, **options: Any) -> Any:
    """Find, hash and read the files of the roots (of these kinds, else all): the ScanReport."""
    from anagnorisis.library.scan import scan as scan_roots

    report = scan_roots(session.store, [check_kind(kind) for kind in kinds] if kinds else None, progress, **options)
    session.invalidate()
    return report
