"""The Music tab's handlers without a browser: the table, search and sorts, playlist, radio, play events, covers,
transcoding, and the `/play` endpoint of the running app."""
from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pandas as pd
import pytest
import soundfile

from anagnorisis.media.playback import cover_path, transcoded_path
from anagnorisis.recommend.plays import play_path
from anagnorisis.search import SearchRequest, run_search
from anagnorisis.ui import music
from anagnorisis.ui.browse import QUERY_ORDER, sort_choices
from anagnorisis.ui.music import Player, View
from tests.ui.music_library import Track, make_tracks, music_context, start_music_app, write_adpcm_wav

SEARCH_DEFAULTS: dict[str, Any] = {"query": "", "mode": "auto", "sort": "date", "order": "desc", "temperature": 0,
                                   "seed": 0, "page": 1, "folder": "", "rated": "all", "rmin": 0, "rmax": 10, "mmin": 0,
                                   "mmax": 10, "ext": ""}


@pytest.fixture
def tracks(tmp_path: Path) -> list[Track]:
    return make_tracks(tmp_path / "music")


@pytest.fixture
def ctx(tmp_path: Path, tracks: list[Track]) -> Iterator[Any]:
    context = music_context(tmp_path / "data", tmp_path / "music")
    try:
        yield context
    finally:
        context.session.store.close()


def search(ctx: Any, **options: Any) -> tuple[pd.DataFrame, str, View, int]:
    return music.search_page(ctx, **{**SEARCH_DEFAULTS, **options})


def titles(frame: pd.DataFrame) -> list[str]:
    return list(frame["Title"])


def plays_of(ctx: Any, path: Path) -> tuple[int, int, Any]:
    record = ctx.session.record_by_path("music", str(path))
    return record["full_plays"] or 0, record["skips"] or 0, record["last_played"]


def audio_source(player_html: str) -> str:
    found = re.search(r'<audio[^>]* src="gradio_api/file=([^"]+)"', player_html)
    assert found, player_html
    return unquote(found.group(1))


def started(ctx: Any, player: Player) -> None:
    """What the browser reports when the current load begins to play."""
    music.track_started(ctx, player, {"nonce": str(player.nonce), "hash": player.current()[1]})


# ------------------------------------------------------------------------------------------------- the table


def test_the_table_shows_cover_tags_length_ratings_plays_and_last_played(ctx: Any, tracks: list[Track]) -> None:
    long_song, short_two, short_one = tracks[0], tracks[1], tracks[2]
    ctx.session.rate("music", str(long_song.path), 8.5)
    hashes = {t.title: ctx.session.record_by_path("music", str(t.path))["content_hash"] for t in tracks}
    ctx.session.store.write(lambda c: c.execute(
        "INSERT INTO models VALUES (1, 'music', 'basic-audio', now(), 'ridge', NULL, NULL, false),"
        " (2, 'music', 'basic-audio', now(), 'ridge', NULL, NULL, true);"
        "INSERT INTO predictions VALUES (?, 'music', 2, 7.25, 0.5, now()), (?, 'music', 1, 6.0, 0.5, now())",
        [hashes["Short Two"], hashes["Short One"]]))
    ctx.session.invalidate("music")
    play_path(ctx.session, str(short_two.path), "start")
    play_path(ctx.session, str(short_two.path), "full")
    play_path(ctx.session, str(short_one.path), "skip")

    frame, summary, _view, page = search(ctx)
    assert list(frame.columns) == music.HEADERS and page == 1 and "**6** matching" in summary
    assert titles(frame) == [t.title for t in tracks]  # date, newest first
    first, second, third = (frame.iloc[i].to_dict() for i in range(3))
    assert first["Artist"] == "The Testers" and first["Album"] == "Firsts" and first["Year"] == "2024"
    assert first["Length"] == "0:20" and first["Rating"] == "8.5" and first["Model rating"] == ""
    assert f"previews/covers/{hashes['Long Song']}.jpg" in unquote(first["Cover"])
    assert cover_path(ctx.session.previews_dir, hashes["Long Song"]).is_file()
    assert "<img" not in third["Cover"]  # short one.mp3 has no cover art
    assert second["Model rating"] == "7.2"  # 7.25, fresh: the active model's
    assert third["Model rating"] == "6.0 (stale)"
    assert (second["Plays"], second["Skips"]) == ("1", "0") and second["Last played"].endswith("UTC")
    assert (third["Plays"], third["Skips"], third["Last played"]) == ("0", "1", "")
    assert [row["#"] for _, row in frame.iterrows()] == [1, 2, 3, 4, 5, 6]
    assert all(frame["Why here"].str.startswith("dated"))


def test_the_table_is_paged(ctx: Any, tracks: list[Track], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(music, "PAGE_SIZE", 4)
    frame, summary, _view, page = search(ctx, page=2)
    assert page == 2 and "page 2 of 2" in summary
    assert titles(frame) == [t.title for t in tracks[4:]] and list(frame["#"]) == [5, 6]
    frame, summary, view, page = search(ctx, page=3)  # past the end (Page ▶ on the last page): the last page
    assert page == 2 and "page 2 of 2" in summary and list(frame["#"]) == [5, 6]
    assert view.request.offset == 4


def test_name_search_finds_a_track_by_its_file_name(ctx: Any) -> None:
    frame, summary, _view, _page = search(ctx, query="opus tune", mode="name")
    assert titles(frame)[0] == "Opus Tune" and "name search" in summary


def test_meaning_search_says_it_is_unavailable_with_the_basic_audio_features(ctx: Any) -> None:
    frame, summary, _view, _page = search(ctx, query="calm piano at night", mode="meaning")
    shown = html.unescape(summary)  # the message is escaped for Markdown: the text as the page shows it
    assert "meaning search is unavailable for music" in shown and frame.empty
    # the screen names its own controls, not the CLI's options
    assert "--mode" not in shown and "`models download" not in shown, shown
    assert "Search by file name (Mode: name)" in shown and "Settings → Models and device" in shown
    frame, summary, _view, _page = search(ctx, query="calm piano at night")  # auto: falls back to names
    assert "unavailable" not in summary


def test_meaning_search_uses_the_clap_text_tower(tmp_path: Path, tracks: list[Track]) -> None:
    from anagnorisis.embed.pipeline import embed_missing
    from tests.embed.models import build_tiny_clap

    model = build_tiny_clap(tmp_path / "tiny-clap", fused=False)
    context = music_context(tmp_path / "data", tmp_path / "music", music_model=str(model))
    try:
        encoder, _status = context.session.encoder("music")
        assert getattr(encoder, "has_text_tower", False)
        embed_missing(context.session.store, "music", encoder)
        frame, summary, _view, _page = search(context, query="a rock song")
        assert "meaning search" in summary and len(frame) == len(tracks)
        assert all(frame["Why here"].str.contains("meaning"))
    finally:
        context.session.store.close()


@pytest.mark.parametrize("sort", [key for key in sort_choices("music") if key != QUERY_ORDER])
def test_every_sort_key_lists_every_track(ctx: Any, tracks: list[Track], sort: str) -> None:
    ctx.session.rate("music", str(tracks[3].path), 9)
    frame, summary, view, _page = search(ctx, sort=sort)
    if sort == "duplicates":  # only groups of near-identical tracks are listed; these tones are all different
        assert not summary.startswith("⚠️"), summary
        return
    assert not summary.startswith("⚠️") and len(frame) == len(tracks), summary
    expected = run_search(SearchRequest("music", sort=sort, limit=100), ctx.session.records("music"))
    assert [r["path"] for r in view.results] == [r["path"] for r in expected.results]


# ------------------------------------------------------------------------------------------------- the player


def test_play_as_playlist_plays_the_sorted_filtered_list_in_order(ctx: Any, tracks: list[Track]) -> None:
    _frame, _summary, view, _page = search(ctx, sort="length", order="asc", ext="mp3,flac,wav")
    expected = [r["path"] for r in view.results]
    assert sorted(expected) == sorted(str(t.path) for t in tracks if t.path.suffix in (".mp3", ".flac", ".wav"))
    html, _now, _slider, _saved, player = music.play_list(ctx, view)
    heard = [audio_source(html)]
    for _ in range(len(expected) - 1):
        started(ctx, player)
        html, _now, _slider, _saved, player = music.track_ended(ctx, player, {"nonce": str(player.nonce)})
        heard.append(audio_source(html))
    assert heard == expected
    html, _now, _slider, _saved, player = music.track_ended(ctx, player, {"nonce": str(player.nonce)})
    assert "End of the list" in html and player.mode == "" and player.current() is None
    assert all(plays_of(ctx, Path(path))[0] == 1 for path in expected)


def test_next_before_the_end_is_a_skip_and_the_end_a_full_play(ctx: Any, tracks: list[Track]) -> None:
    _frame, _summary, view, _page = search(ctx)
    html, _now, _slider, _saved, player = music.play_list(ctx, view)
    assert audio_source(html) == str(tracks[0].path)  # served in place from its root
    assert 'class="music-cover"' in html and "Long Song" in html and "The Testers" in html
    started(ctx, player)
    assert plays_of(ctx, tracks[0].path)[2] is not None  # start sets last played

    html, _now, _slider, _saved, player = music.next_track(ctx, player)
    assert plays_of(ctx, tracks[0].path)[:2] == (0, 1)
    assert audio_source(html) == str(tracks[1].path)

    late = music.track_ended(ctx, player, {"nonce": str(player.nonce - 1)})  # an event of the previous load
    assert late[4] is player and plays_of(ctx, tracks[1].path)[:2] == (0, 0)
    html, _now, _slider, _saved, player = music.track_ended(ctx, player, {"nonce": str(player.nonce)})
    assert plays_of(ctx, tracks[1].path)[:2] == (1, 0)
    assert audio_source(html) == str(tracks[2].path)

    html, _now, _slider, _saved, player = music.previous_track(ctx, player)  # no penalty for going back
    assert audio_source(html) == str(tracks[1].path) and plays_of(ctx, tracks[2].path)[:2] == (0, 0)
    html, _now, _slider, _saved, player = music.next_track(ctx, player)
    assert plays_of(ctx, tracks[1].path)[:2] == (1, 1)


def test_a_decode_error_retries_a_transcode_then_passes_over_without_penalty(ctx: Any, tracks: list[Track]) -> None:
    _frame, _summary, view, _page = search(ctx, query="short one", mode="name")
    html, _now, _slider, _saved, player = music.play_list(ctx, view)
    assert audio_source(html) == str(tracks[2].path)
    record = ctx.session.record_by_path("music", str(tracks[2].path))
    html, _now, _slider, _saved, player = music.track_failed(ctx, player, {"nonce": str(player.nonce), "code": 4})
    assert audio_source(html) == str(transcoded_path(ctx.session.previews_dir, record["content_hash"]))
    html, _now, _slider, _saved, player = music.track_failed(ctx, player, {"nonce": str(player.nonce), "code": 4})
    assert player.current() is None or player.current()[0] != str(tracks[2].path)
    assert plays_of(ctx, tracks[2].path) == (0, 0, None)


def test_a_track_that_does_not_decode_at_all_is_passed_over(ctx: Any, tracks: list[Track]) -> None:
    _frame, _summary, view, _page = search(ctx)
    tracks[1].path.write_bytes(b"\0" * 4096)  # broken after the scan
    html, _now, _slider, _saved, player = music.play_list(ctx, view)
    started(ctx, player)
    html, _now, _slider, _saved, player = music.next_track(ctx, player)  # → the broken track
    html, _now, _slider, _saved, player = music.track_failed(ctx, player, {"nonce": str(player.nonce)})
    assert audio_source(html) == str(tracks[2].path) and "passed over short two.flac" in player.message
    assert plays_of(ctx, tracks[1].path) == (0, 0, None)


def test_a_click_on_a_row_plays_the_list_from_that_track(ctx: Any, tracks: list[Track]) -> None:
    _frame, _summary, view, _page = search(ctx)
    html, _now, _slider, _saved, player = music.play_row(ctx, view, 4)
    assert audio_source(html) == str(tracks[3].path) and player.position == 3 and player.mode == "playlist"


def test_the_radio_draws_by_recommendation_within_the_filters_and_rescored(ctx: Any, tracks: list[Track]) -> None:
    for track, rating in zip(tracks, (2, 9, 8, 7, 1, 1)):
        ctx.session.rate("music", str(track.path), rating)
    _frame, _summary, view, _page = search(ctx, ext="flac,mp3,opus")
    html, now, _slider, _saved, player = music.start_radio(ctx, view, 0, 3)
    assert audio_source(html) == str(tracks[1].path) and "radio at temperature 0" in now  # the top score
    heard = [audio_source(html)]
    for _ in range(5):
        started(ctx, player)
        html, _now, _slider, _saved, player = music.track_ended(ctx, player, {"nonce": str(player.nonce)})
        heard.append(audio_source(html))
    allowed = {str(t.path) for t in tracks if t.path.suffix in (".flac", ".mp3", ".opus")}
    assert set(heard) <= allowed
    assert all(a != b for a, b in pairwise(heard))
    # at T = 0 each draw is the top of the re-scored recommendation order among the tracks not just played
    assert heard[:3] == [str(tracks[1].path), str(tracks[2].path), str(tracks[3].path)]


def test_rating_the_current_track_commits_and_shows_in_the_table(ctx: Any, tracks: list[Track]) -> None:
    assert music.rate_current(ctx, Player(), 5) == "Play a track to rate it."
    _frame, _summary, view, _page = search(ctx)
    _html, _now, _slider, _saved, player = music.play_list(ctx, view)
    assert music.rate_current(ctx, player, 7.5) == "saved 7.5"
    assert ctx.session.record_by_path("music", str(tracks[0].path))["user_rating"] == 7.5
    frame = music.table_frame(ctx, music.with_fresh_values(ctx, view))
    assert frame.iloc[0]["Rating"] == "7.5"
    assert music.rate_current(ctx, player, None) == "saved: rating cleared"


# ------------------------------------------------------------------------------------------------- formats


def test_audio_the_browser_cannot_decode_is_transcoded_into_the_cache(tmp_path: Path, tracks: list[Track]) -> None:
    write_adpcm_wav(tmp_path / "music" / "adpcm tune.wav")
    context = music_context(tmp_path / "data", tmp_path / "music")
    try:
        _frame, _summary, view, _page = search(context, query="adpcm tune", mode="name")
        html, _now, _slider, _saved, _player = music.play_list(context, view)
        record = context.session.record_by_path("music", str(tmp_path / "music" / "adpcm tune.wav"))
        target = transcoded_path(context.session.previews_dir, record["content_hash"])
        assert audio_source(html) == str(target)
        info = soundfile.info(str(target))
        assert info.subtype == "OPUS" and info.samplerate == 48_000 and abs(info.duration - 1.0) < 0.05
        for track in tracks:  # every format of the issue plays as it is
            html, *_rest = music.play_row(context, music.View([], SearchRequest("music", query=track.title,
                                                                                   mode="name", limit=25), 1), 1)
            assert audio_source(html) == str(track.path), track.path.suffix
    finally:
        context.session.store.close()


# ------------------------------------------------------------------------------------------------- /play endpoint


def test_the_play_endpoint_records_events_with_the_players_code(tmp_path: Path, tracks: list[Track],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from gradio_client.exceptions import AppError

    from tests.ui.conftest import owner_client

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio-tmp"))
    app, url = start_music_app(tmp_path / "data", tmp_path / "music")
    try:
        client = owner_client(app, url)
        path = str(tracks[2].path)
        for event in ("start", "full", "start", "skip"):
            document = client.predict(path=path, event=event, api_name="/play")
            assert document["event"] == event and document["recorded"] is True
        assert document["record"]["path"] == path
        assert (document["record"]["full_plays"], document["record"]["skips"]) == (1, 1)
        assert document["record"]["last_played"].endswith("Z")
        error = client.predict(path=path, event="error", api_name="/play")
        assert error["recorded"] is False and error["record"]["skips"] == 1
        with pytest.raises(AppError, match="unknown play event"):
            client.predict(path=path, event="paused", api_name="/play")
        with pytest.raises(AppError, match="not an indexed file"):
            client.predict(path=str(tmp_path / "elsewhere.mp3"), event="start", api_name="/play")
        searched = client.predict(kind="music", sort="recommendation", limit=10, api_name="/search")
        assert searched["results"][-1]["path"] == path and searched["results"][-1]["score"] == 0.0
    finally:
        app.close()
        time.sleep(0.2)


def test_a_file_whose_name_is_not_utf8_plays_through_a_link_in_the_cache(tmp_path: Path) -> None:
    import os

    from tests.media import write_mp3

    library = tmp_path / "music"
    library.mkdir()
    source = write_mp3(tmp_path / "staging.mp3", seconds=1.0, tags={"title": "Cafe"}, cover=True)
    odd = os.path.join(os.fsencode(library), b"caf\xe9 latin-1.mp3")
    os.rename(source, odd)
    write_adpcm_wav(tmp_path / "staging.wav")
    odd_wav = os.path.join(os.fsencode(library), b"vals\xe9.wav")
    os.rename(tmp_path / "staging.wav", odd_wav)
    context = music_context(tmp_path / "data", library)
    try:
        _frame, _summary, view, _page = search(context, sort="file-size", order="asc")
        assert len(view.results) == 2
        html, *_rest = music.play_row(context, view, 1)
        link = Path(audio_source(html))
        assert link.parent == context.session.previews_dir / "audio" and link.suffix == ".mp3"
        assert os.path.realpath(link) == os.path.realpath(os.fsdecode(odd))
        assert 'class="music-cover"' in html  # the cover came out of the oddly named file too
        html, *_rest = music.play_row(context, view, 2)
        assert soundfile.info(audio_source(html)).subtype == "OPUS"  # transcoded from an odd name as well
    finally:
        context.session.store.close()
