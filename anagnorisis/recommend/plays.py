"""Play events (SPEC §5), the one code path the player and the `/play` endpoint share.

start → last played is now; full → a full play (the track ended); skip → a skip (Next before the end);
error → nothing (a track the browser could not decode is skipped without penalty).
"""
from __future__ import annotations

import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

from anagnorisis.recommend.scores import is_played
from anagnorisis.store import Store
from anagnorisis.store.ratings import record_play
from anagnorisis.store.records import Record, find_file, records_for_paths

if TYPE_CHECKING:
    from anagnorisis.session import Session

PLAY_EVENTS = ("start", "full", "skip", "error")
RECORDED_EVENTS = frozenset({"start", "full", "skip"})
PLAY_FIELDS = ("full_plays", "skips", "last_played")


class PlayEventError(ValueError):
    """An event that cannot be recorded as asked (unknown event, a file that is not an indexed track)."""


def check_event(event: str) -> str:
    name = str(event or "").strip().lower()
    if name not in PLAY_EVENTS:
        raise PlayEventError(f"unknown play event {event!r}; expected one of {', '.join(PLAY_EVENTS)}")
    return name


def play_event(store: Store, content_hash: str, event: str, *, at: datetime | None = None) -> bool:
    """Record one event for a content hash; True when something was stored ('error' stores nothing)."""
    name = check_event(event)
    if name not in RECORDED_EVENTS:
        return False
    record_play(store, content_hash, name, at=at)
    return True


def played_file(store: Store, path: str) -> Record:
    """The indexed music or video file at path, or PlayEventError saying why not."""
    path_bytes = os.fsencode(os.path.abspath(os.path.expanduser(path)))
    found = store.read(lambda conn: find_file(conn, path_bytes))
    if found is None:
        raise PlayEventError(f"{path} is not an indexed file; add its folder as a library root and scan")
    _file_id, kind, _content_hash = found
    if not is_played(kind):
        from anagnorisis.kinds.registry import all_kinds

        played = " and ".join(media_kind.name for media_kind in all_kinds() if media_kind.played)
        raise PlayEventError(f"{path} is {kind}; only {played} have plays")
    records = records_for_paths(store, kind, [path_bytes])
    if not records:
        raise PlayEventError(f"{path} is not an indexed file")
    return records[0]


def play_path(session: Session, path: str, event: str) -> dict[str, Any]:
    """Record an event for the file at path, refresh the session's cached records, return the fresh record.

    Returns ``{record, event, recorded}``; what the `/play` endpoint answers and what the player uses.
    """
    name = check_event(event)
    record = played_file(session.store, path)
    recorded = play_event(session.store, str(record["content_hash"]), name)
    fresh = played_file(session.store, path) if recorded else record
    if recorded:
        refresh_cached_plays(session, fresh)
    return {"record": fresh, "event": name, "recorded": recorded}


def refresh_cached_plays(session: Session, fresh: Record) -> None:
    """Copy the fresh play counts into every cached record of the same content (radio re-scores from them)."""
    for cached in session.records(str(fresh["kind"])):
        if cached.get("content_hash") == fresh["content_hash"]:
            for key in PLAY_FIELDS:
                cached[key] = fresh.get(key)
