"""Library roots: one kind each; the same folder may serve several kinds; nested roots of one kind are refused."""
from __future__ import annotations

import os
from dataclasses import dataclass

import duckdb

from anagnorisis.store.db import Store, utc_now


class RootRefused(ValueError):
    """A root that cannot be added; the message is the reason."""


@dataclass(frozen=True)
class Root:
    kind: str
    path: str
    from_config: bool

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "path": self.path, "from_config": self.from_config}


def normalise_root(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.path.abspath(os.path.expanduser(os.fspath(path))))


def list_roots(store: Store, kind: str | None = None) -> list[Root]:
    def query(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str, bool]]:
        if kind is None:
            return conn.execute("SELECT kind, path, from_config FROM roots ORDER BY kind, path").fetchall()
        return conn.execute("SELECT kind, path, from_config FROM roots WHERE kind = ? ORDER BY path", [kind]).fetchall()

    return [Root(*row) for row in store.read(query)]


def _is_within(inner: str, outer: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def check_root(path: str, kind: str, existing: list[Root]) -> None:
    """Raise RootRefused with the reason a person can act on."""
    if not os.path.exists(path):
        raise RootRefused(f"{path} does not exist")
    if not os.path.isdir(path):
        raise RootRefused(f"{path} is not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise RootRefused(f"{path} cannot be read by this user")
    for root in existing:
        if root.kind != kind or root.path == path:
            continue
        if _is_within(path, root.path):
            raise RootRefused(f"{path} is inside the {kind} root {root.path}")
        if _is_within(root.path, path):
            raise RootRefused(f"{path} contains the {kind} root {root.path}")


def add_root(store: Store, kind: str, path: str | os.PathLike[str], *, from_config: bool = False) -> Root:
    resolved = normalise_root(path)
    check_root(resolved, kind, list_roots(store, kind))

    def insert(conn: duckdb.DuckDBPyConnection) -> None:
        conn.execute(
            "INSERT INTO roots VALUES (?, ?, ?, ?) ON CONFLICT (kind, path) DO UPDATE SET from_config = excluded.from_config",
            [kind, resolved, from_config, utc_now()],
        )

    store.write(insert)
    return Root(kind, resolved, from_config)


def remove_root(store: Store, kind: str, path: str | os.PathLike[str]) -> bool:
    """Forget a root; its files' ratings stay (they belong to the content), the files are marked missing."""
    resolved = normalise_root(path)

    def delete(conn: duckdb.DuckDBPyConnection) -> bool:
        found = conn.execute("SELECT count(*) FROM roots WHERE kind = ? AND path = ?", [kind, resolved]).fetchone()[0]
        conn.execute("DELETE FROM roots WHERE kind = ? AND path = ?", [kind, resolved])
        conn.execute("UPDATE files SET missing = true WHERE kind = ? AND root = ?", [kind, resolved])
        return bool(found)

    return store.write(delete)


def sync_config_roots(store: Store, configured: dict[str, list[str]]) -> list[str]:
    """Add the roots named in settings, marked from_config.

    Roots are never dropped here: a CLI run with other settings than the app must not forget the app's roots.
    Returns the reasons of roots that were refused, for the log and the UI.
    """
    problems: list[str] = []
    present = {(root.kind, root.path) for root in list_roots(store)}
    for kind, paths in configured.items():
        for path in paths:
            resolved = normalise_root(path)
            if (kind, resolved) in present:
                continue
            try:
                add_root(store, kind, resolved, from_config=True)
            except RootRefused as error:
                problems.append(f"{kind} root from settings refused: {error}")
    return problems


def root_of(store: Store, path: str) -> Root | None:
    """The root containing an absolute path (the first of any kind)."""
    for root in list_roots(store):
        if _is_within(path, root.path):
            return root
    return None
