"""Play events (SPEC §5) on a real DuckDB file: what each event stores, and that search and radio see it at once."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from anagnorisis.recommend.plays import PlayEventError, play_event, play_path
from anagnorisis.search import SearchRequest
from tests.conftest import Cli
from tests.media import write_jpeg
from tests.ui.music_library import Track, make_tracks, music_context


@pytest.fixture
def library(tmp_path: Path) -> list[Track]:
    return make_tracks(tmp_path / "music")


@pytest.fixture
def ctx(tmp_path: Path, library: list[Track]) -> Iterator[Any]:
    context = music_context(tmp_path / "data", tmp_path / "music")
    try:
        yield context
    finally:
        context.session.store.close()


def plays_row(ctx: Any, path: Path) -> tuple[Any, ...] | None:
    record = ctx.session.record_by_path("music", str(path))
    return ctx.session.store.read(lambda c: c.execute(
        "SELECT full_plays, skips, last_played FROM plays WHERE content_hash = ?", [record["content_hash"]]).fetchone())


def test_start_sets_last_played_and_counts_nothing(ctx: Any, library: list[Track]) -> None:
    before = datetime.now(UTC).replace(tzinfo=None)
    done = play_path(ctx.session, str(library[0].path), "start")
    assert done["recorded"] and done["event"] == "start"
    full_plays, skips, last_played = plays_row(ctx, library[0].path)
    assert (full_plays, skips) == (0, 0) and last_played >= before
    assert done["record"]["last_played"].endswith("Z")


def test_full_counts_a_full_play_and_skip_counts_a_skip(ctx: Any, library: list[Track]) -> None:
    for event in ("start", "full", "start", "skip", "start", "full"):
        play_path(ctx.session, str(library[1].path), event)
    assert plays_row(ctx, library[1].path)[:2] == (2, 1)


def test_a_decode_error_records_nothing(ctx: Any, library: list[Track]) -> None:
    done = play_path(ctx.session, str(library[2].path), "error")
    assert done == {"record": done["record"], "event": "error", "recorded": False}
    assert plays_row(ctx, library[2].path) is None
    record = ctx.session.record_by_path("music", str(library[2].path))
    assert not play_event(ctx.session.store, record["content_hash"], "error")


def test_an_unknown_event_is_refused(ctx: Any, library: list[Track]) -> None:
    with pytest.raises(PlayEventError, match="unknown play event 'pause'"):
        play_path(ctx.session, str(library[0].path), "pause")
    record = ctx.session.record_by_path("music", str(library[0].path))
    with pytest.raises(PlayEventError):
        play_event(ctx.session.store, record["content_hash"], "finished")


def test_files_that_are_not_indexed_tracks_are_refused(ctx: Any, tmp_path: Path) -> None:
    with pytest.raises(PlayEventError, match="not an indexed file"):
        play_path(ctx.session, str(tmp_path / "music" / "nowhere.mp3"), "start")
    photo = write_jpeg(tmp_path / "data" / "library" / "images" / "photo.jpg")
    from anagnorisis.library.scan import scan

    scan(ctx.session.store, ["images"])
    with pytest.raises(PlayEventError, match="only music and videos have plays"):
        play_path(ctx.session, str(photo), "full")


def test_the_cached_records_follow_at_once_so_the_radio_rescores(ctx: Any, library: list[Track]) -> None:
    cached = {record["path"]: record for record in ctx.session.records("music")}
    play_path(ctx.session, str(library[3].path), "start")
    play_path(ctx.session, str(library[3].path), "skip")
    record = cached[str(library[3].path)]
    assert record["skips"] == 1 and record["full_plays"] == 0 and record["last_played"] is not None


def test_the_track_just_started_scores_zero_in_the_recommendation_sort(ctx: Any, library: list[Track]) -> None:
    play_path(ctx.session, str(library[0].path), "start")
    result = ctx.session.search(SearchRequest("music", sort="recommendation", limit=100))
    scores = {item["path"]: item["score"] for item in result.results}
    assert scores[str(library[0].path)] == 0.0
    assert result.results[-1]["path"] == str(library[0].path)
    assert all(score > 0 for path, score in scores.items() if path != str(library[0].path))


def test_plays_are_durable_and_the_cli_sort_sees_them(tmp_path: Path, library: list[Track]) -> None:
    context = music_context(tmp_path / "data", tmp_path / "music")
    try:
        for event in ("start", "full"):
            play_path(context.session, str(library[4].path), event)
    finally:
        context.session.store.close()
    document = Cli(tmp_path / "data").json("search", "music", "--sort", "recommendation", "--limit", "100")
    by_path = {item["path"]: item for item in document["results"]}
    assert by_path[str(library[4].path)]["full_plays"] == 1
    assert by_path[str(library[4].path)]["score"] == 0.0 and document["results"][-1]["path"] == str(library[4].path)
