"""What a command runs against: settings, the open library (on first use), and where its output goes."""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NoReturn, TextIO

from anagnorisis.config import Settings
from anagnorisis.service.errors import BadRequest, Failed
from anagnorisis.store import Store


class UsageError(BadRequest):
    """Bad arguments: exit 2."""


class CommandFailed(Failed):
    """The command could not do its job: exit 1."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


@dataclass
class Context:
    """A command's settings, library and streams. The running app lends its store and session to a command
    forwarded into it (`owns_store` False); a CLI run alone opens its own on first use."""

    settings: Settings
    json_output: bool = False
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    cwd: str = field(default_factory=os.getcwd)  # the caller's folder: relative paths resolve against it
    _store: Store | None = None
    owns_store: bool = True
    _session: Any = None
    give_up_waiting: Callable[[], bool] | None = None  # asked while the database is locked: stop waiting?

    @property
    def data_dir(self) -> Path:
        return self.settings.data_path

    @property
    def store(self) -> Store:
        if self._store is None:
            from anagnorisis.service.library import open_library
            from anagnorisis.store.settings import stored_settings

            self._store = open_library(self.settings, give_up=self.give_up_waiting)
            self.settings = self.settings.with_stored(stored_settings(self._store))
        return self._store

    @property
    def session(self) -> Any:
        """The session commands run on: the app's, or one of this process over the store."""
        if self._session is None:
            from anagnorisis.session import Session

            store = self.store
            self._session = Session(self.settings, store)
        return self._session

    @property
    def app_session(self) -> Any:
        """The running app's session when this command was forwarded into it, else None (nothing is opened)."""
        return self._session if self.in_app else None

    @property
    def in_app(self) -> bool:
        """True when this command was forwarded into the running app (its session is lent)."""
        return not self.owns_store

    def say(self, text: str) -> None:
        """Human output (suppressed with --json, where stdout holds one JSON object)."""
        if not self.json_output:
            print(text, file=self.stdout, flush=True)

    def abspath(self, path: str) -> str:
        return absolute(path, self.cwd)

    def close(self) -> None:
        if self._store is not None and self.owns_store:
            self._store.close()
        self._store = None


def absolute(path: str, cwd: str) -> str:
    """A path the caller typed, absolute: `~` expanded, a relative one taken from the caller's folder."""
    return os.path.abspath(os.path.join(cwd, os.path.expanduser(path)))
