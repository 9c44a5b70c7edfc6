"""User ratings keyed by content, plays, preferences, and the append-only rating history."""
from __future__ import annotations

from datetime import datetime

import duckdb

from anagnorisis.store.db import Store, utc_now

MIN_RATING, MAX_RATING = 0.0, 10.0
SOURCES = ("user", "import", "carried", "anagnorisis")


class RatingOutOfRange(ValueError):
    pass


def check_rating(rating: float) -> float:
    value = float(rating)
    if not MIN_RATING <= value <= MAX_RATING:  # also refuses NaN
        raise RatingOutOfRange(f"rating {rating} is outside {MIN_RATING:g}–{MAX_RATING:g}")
    return value


def apply_rating(
    conn: duckdb.DuckDBPyConnection, content_hash: str, rating: float | None, *, source: str, at: datetime
) -> bool:
    """Set (or with None clear) a rating inside the caller's transaction; record the change. True if it changed."""
    row = conn.execute("SELECT rating FROM ratings WHERE content_hash = ?", [content_hash]).fetchone()
    old = row[0] if row else None
    if old == rating:
        return False
    if rating is None:
        conn.execute("DELETE FROM ratings WHERE content_hash = ?", [content_hash])
    else:
        conn.execute(
            "INSERT INTO ratings VALUES (?, ?, ?, ?) ON CONFLICT (content_hash) DO UPDATE SET"
            " rating = excluded.rating, rated_at = excluded.rated_at, source = excluded.source",
            [content_hash, rating, at, source],
        )
    conn.execute("INSERT INTO rating_history VALUES (?, ?, ?, ?, ?)", [content_hash, old, rating, at, source])
    return True


def set_rating(store: Store, content_hash: str, rating: float | None, *, source: str = "user") -> None:
    """Commit a rating; when this returns the rating is durable and may be acknowledged."""
    value = None if rating is None else check_rating(rating)
    store.write(lambda conn: apply_rating(conn, content_hash, value, source=source, at=utc_now()))


def carry_hash(conn: duckdb.DuckDBPyConnection, old_hash: str, new_hash: str, at: datetime) -> bool:
    """A file changed in place: its rating, plays and A/B choices follow to the new content.

    The new hash keeps its own rating if it already has one. True when anything was carried.
    """
    carried = False
    old_rating = conn.execute("SELECT rating FROM ratings WHERE content_hash = ?", [old_hash]).fetchone()
    new_rated = conn.execute("SELECT count(*) FROM ratings WHERE content_hash = ?", [new_hash]).fetchone()[0]
    if old_rating and not new_rated:
        apply_rating(conn, new_hash, old_rating[0], source="carried", at=at)
        carried = True
    old_plays = conn.execute(
        "SELECT full_plays, skips, last_played FROM plays WHERE content_hash = ?", [old_hash]
    ).fetchone()
    new_plays = conn.execute("SELECT count(*) FROM plays WHERE content_hash = ?", [new_hash]).fetchone()[0]
    if old_plays and not new_plays:
        conn.execute("INSERT INTO plays VALUES (?, ?, ?, ?)", [new_hash, *old_plays])
        carried = True
    moved = conn.execute(
        "INSERT INTO preferences SELECT CASE WHEN winner_hash = $old THEN $new ELSE winner_hash END,"
        " CASE WHEN loser_hash = $old THEN $new ELSE loser_hash END, tie, kind, chosen_at, 'carried'"
        " FROM preferences WHERE winner_hash = $old OR loser_hash = $old",
        {"old": old_hash, "new": new_hash},
    ).fetchone()
    return carried or bool(moved and moved[0])


def record_play(store: Store, content_hash: str, event: str, *, at: datetime | None = None) -> None:
    """event: 'start' sets last played, 'full' counts a full play, 'skip' counts a skip."""
    at = at or utc_now()
    column = {"full": "full_plays", "skip": "skips"}.get(event)
    if event != "start" and column is None:
        raise ValueError(f"unknown play event {event!r}")

    def write(conn: duckdb.DuckDBPyConnection) -> None:
        conn.execute("INSERT INTO plays VALUES (?, 0, 0, NULL) ON CONFLICT DO NOTHING", [content_hash])
        if event == "start":
            conn.execute("UPDATE plays SET last_played = ? WHERE content_hash = ?", [at, content_hash])
        else:
            conn.execute(f"UPDATE plays SET {column} = {column} + 1 WHERE content_hash = ?", [content_hash])

    store.write(write)


def add_preference(
    store: Store, winner_hash: str, loser_hash: str, *, tie: bool, kind: str | None, source: str = "user"
) -> None:
    store.write(
        lambda conn: conn.execute(
            "INSERT INTO preferences VALUES (?, ?, ?, ?, ?, ?)", [winner_hash, loser_hash, tie, kind, utc_now(), source]
        )
    )


def rating_of(conn: duckdb.DuckDBPyConnection, content_hash: str) -> tuple[float, datetime] | None:
    """(rating, rated_at) of this content, inside the caller's transaction; None when unrated."""
    row = conn.execute("SELECT rating, rated_at FROM ratings WHERE content_hash = ?", [content_hash]).fetchone()
    return None if row is None else (row[0], row[1])


def ratings_of_kind(conn: duckdb.DuckDBPyConnection, kind: str) -> dict[str, float]:
    """content hash → rating of every content a file of this kind has had (missing files too)."""
    rows = conn.execute(
        "SELECT r.content_hash, r.rating FROM ratings r"
        " WHERE r.content_hash IN (SELECT content_hash FROM files WHERE kind = ?)", [kind]
    ).fetchall()
    return {content_hash: float(rating) for content_hash, rating in rows}


def present_ratings(store: Store, kind: str) -> list[float]:
    """Your ratings of the kind's present files (one per content)."""
    rows = store.read(lambda c: c.execute(
        "SELECT r.rating FROM ratings r WHERE r.rating IS NOT NULL AND r.content_hash IN"
        " (SELECT content_hash FROM files WHERE kind = ? AND NOT missing)", [kind]).fetchall())
    return [row[0] for row in rows]


def choices_of_kind(conn: duckdb.DuckDBPyConnection, kind: str) -> list[tuple[str, str, bool]]:
    """(winner, loser, tie) of the A/B choices made in this kind's tab (or of no kind), oldest first."""
    return [(winner, loser, bool(tie)) for winner, loser, tie in conn.execute(
        "SELECT winner_hash, loser_hash, tie FROM preferences WHERE kind = ? OR kind IS NULL"
        " ORDER BY chosen_at", [kind]
    ).fetchall()]


def preference_pairs(store: Store) -> list[tuple[str, str]]:
    """(winner, loser) of every A/B choice of any kind."""
    return store.read(lambda c: c.execute("SELECT winner_hash, loser_hash FROM preferences").fetchall())
