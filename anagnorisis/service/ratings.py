"""Ratings and A/B choices: one implementation for the slider, the CLI and the endpoints."""
from __future__ import annotations

import os
from typing import Any

from anagnorisis.kinds import MediaError
from anagnorisis.service.errors import BadRequest, Failed
from anagnorisis.store.records import Record


def parse_rating(value: Any) -> float:
    """A rating typed or sent (text or number) as a float in 0–10, else BadRequest."""
    from anagnorisis.store.ratings import RatingOutOfRange, check_rating

    try:
        return check_rating(float(value))
    except (TypeError, ValueError, RatingOutOfRange) as error:
        raise BadRequest(f"rating {value!r}: {error}; ratings go from 0 to 10") from None


def resolve_indexed(session: Any, path: str) -> tuple[str, str, bytes]:
    """(kind, content_hash, path_bytes) of a file under a root, indexing it now if needed. `path` is absolute."""
    from anagnorisis.library.scan import index_file
    from anagnorisis.store.roots import root_of

    candidates = [path, os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))]
    for candidate in candidates:
        if root_of(session.store, candidate) is None:
            continue
        if not os.path.isfile(candidate):
            raise Failed(f"{path}: no such file")
        try:
            kind, content_hash = index_file(session.store, candidate)
        except MediaError as error:
            raise Failed(f"{path}: {error}") from None
        return kind, content_hash, os.fsencode(candidate)
    raise BadRequest(f"{path} is not under any library root (see `library list`)")


def record_at(session: Any, kind: str, path_bytes: bytes) -> Record:
    """The stored record of a path, also patched into the session's cached records (a rating shows at once)."""
    from anagnorisis.store.records import records_for_paths

    found = records_for_paths(session.store, kind, [path_bytes])
    if not found:
        raise Failed(f"{os.fsdecode(path_bytes)} is not an indexed file; scan the library first")
    session.note_rating(kind, found[0])
    return found[0]


def rate(session: Any, path: str, rating: float | None, *, kind: str | None = None) -> Record:
    """Commit a rating (None clears it) for the file at an absolute path under a root; when this returns the
    rating is durable. The file's fresh record.

    Typed from the CLI or an endpoint (no `kind`), the file is indexed first if it is new or changed, so the rating
    goes to its content now. From a tab (`kind` given) the rating goes to the record the tab shows, even when the
    file has become unreadable since the scan (a scan will say so)."""
    from anagnorisis.store.ratings import RatingOutOfRange, check_rating, set_rating

    try:
        value = None if rating is None else check_rating(rating)
    except RatingOutOfRange as error:
        raise BadRequest(str(error)) from None
    if kind is None:
        kind, content_hash, path_bytes = resolve_indexed(session, path)
    else:
        shown = session.record_by_path(kind, path)
        if shown is None:
            raise Failed(f"{path} is not an indexed {kind} file; scan the library first")
        content_hash, path_bytes = shown["content_hash"], shown["path_bytes"]
    set_rating(session.store, content_hash, value)
    return record_at(session, kind, path_bytes)


def unrate(session: Any, path: str) -> Record:
    return rate(session, path, None)


def prefer(session: Any, path_a: str, path_b: str, *, tie: bool = False) -> dict[str, Any]:
    """Record an A/B choice: A over B, or equal; `{preference}` as SPEC §1 prints it, plus both records."""
    from anagnorisis.config import noun
    from anagnorisis.taste.queue import record_preference

    kind_a, hash_a, bytes_a = resolve_indexed(session, path_a)
    kind_b, hash_b, bytes_b = resolve_indexed(session, path_b)
    if kind_a != kind_b:
        raise BadRequest(f"A is {_a(noun(kind_a))} and B {_a(noun(kind_b))}; compare two files of one kind")
    if hash_a == hash_b:
        raise BadRequest("A and B have the same content; compare two different files")
    winner, loser = record_at(session, kind_a, bytes_a), record_at(session, kind_b, bytes_b)
    document = record_preference(session.store, kind_a, winner, loser, tie=tie)
    return {**document, "winner": winner, "loser": loser}


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"
