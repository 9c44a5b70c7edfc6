"""The registry of media kinds: scan, embed, search, train and the UI loop over it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

Metadata = dict[str, Any]


class MediaError(Exception):
    """A file that cannot be used; the message is the reason shown to the user."""


@dataclass(frozen=True)
class Probe:
    """What reading a file's header told us: its metadata, and a warning if it is odd but usable."""

    metadata: Metadata
    warning: str | None = None


@dataclass(frozen=True)
class MediaKind:
    """Everything the app knows of a kind of media; every list of kinds elsewhere is derived from these."""

    name: str
    extensions: frozenset[str]
    encoder: str  # the embedding family's key in anagnorisis.embed.registry ("siglip", "clap", …)
    fallback_encoder: str | None  # the built-in basic features when the model cannot be had (None: no fallback)
    read_metadata: Callable[[Path], Probe]
    extra_sorts: tuple[str, ...] = field(default=())  # sort keys beyond the common ones (resolution, length, …)
    noun: tuple[str, str] = ("", "")  # one file, many files: ("track", "tracks"); empty: "<name> file(s)"
    default_model: str = ""  # the model id used unless the settings name another
    played: bool = False  # has a play history (full plays, skips) that the recommendation score reads
    tab: str | None = None  # the UI tab that shows it, or None
    length: str = "duration"  # what the `length` sort measures: "duration" (seconds) or "characters"

    def noun_for(self, count: int = 1) -> str:
        one, many = self.noun if all(self.noun) else (f"{self.name} file", f"{self.name} files")
        return one if count == 1 else many


_KINDS: dict[str, MediaKind] = {}


def register(kind: MediaKind) -> MediaKind:
    """Add a kind; a repeated name or a missing field is a programming error."""
    if kind.name in _KINDS:
        raise ValueError(f"media kind {kind.name!r} is registered twice")
    if not kind.name or not kind.extensions or not callable(kind.read_metadata):
        raise ValueError(f"media kind {kind.name!r} lacks a name, extensions or a metadata reader")
    if any(not ext.startswith(".") or ext != ext.lower() for ext in kind.extensions):
        raise ValueError(f"media kind {kind.name!r}: extensions must be lower case and start with '.'")
    _KINDS[kind.name] = kind
    return kind


def _load_builtin_kinds() -> None:
    # Imported for their side effect of registering; a failing optional import skips that kind only.
    import importlib
    import logging

    for module in ("images", "music", "text", "videos"):
        try:
            importlib.import_module(f"anagnorisis.kinds.{module}")
        except ImportError as error:  # pragma: no cover - depends on the installation
            logging.getLogger(__name__).warning("media kind %s unavailable: %s", module, error)


_builtins_loaded = False


def all_kinds() -> list[MediaKind]:
    # A flag, not "is the registry empty": importing one kind module first must not hide the other three.
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        _load_builtin_kinds()
    return list(_KINDS.values())


def kind_names() -> list[str]:
    return [kind.name for kind in all_kinds()]


def unregister(name: str) -> None:
    """Take a kind out of the registry (a test's throw-away kind); unknown names are ignored."""
    _KINDS.pop(name, None)


def find_kind(name: str) -> MediaKind | None:
    return next((kind for kind in all_kinds() if kind.name == name), None)


def get_kind(name: str) -> MediaKind:
    kinds = {kind.name: kind for kind in all_kinds()}
    if name not in kinds:
        raise KeyError(f"unknown media kind {name!r}; expected one of {', '.join(kinds)}")
    return kinds[name]


def kind_of_extension(ext: str, among: list[str] | None = None) -> MediaKind | None:
    """The kind a file extension belongs to (case-insensitive), or None."""
    ext = ext.lower()
    for kind in all_kinds():
        if (among is None or kind.name in among) and ext in kind.extensions:
            return kind
    return None
