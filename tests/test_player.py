"""The players' state (anagnorisis.media.player): the ends of the list, a list replaced or changed under the
player, the radio drawing on, late browser events — pure functions, no Gradio, no store."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

from anagnorisis.media import player as playing
from anagnorisis.media.player import MusicPlayer, VideoPlayer
from anagnorisis.search.engine import SearchRequest


def tracks(*names: str) -> list[tuple[str, str]]:
    return [(f"/music/{name}.mp3", f"hash-{name}") for name in names]


def records(*names: str) -> list[dict[str, Any]]:
    return [{"path": path, "content_hash": content_hash, "user_rating": 5.0, "full_plays": 0, "skips": 0,
             "last_played": None} for path, content_hash in tracks(*names)]


def no_pool(_scope: Any) -> list[dict[str, Any]]:
    raise AssertionError("a playlist never draws")


def test_a_playlist_starts_at_the_clicked_track_even_when_the_list_moved() -> None:
    moved = tracks("a", "b", "c", "d")
    assert playing.playlist(moved, start=0, content_hash="hash-c").position == 2
    assert playing.playlist(moved, start=3, content_hash="gone").position == 3  # not there: the row's place
    assert playing.playlist(moved, start=9).position == 3  # clamped to the list


def test_a_track_twice_in_the_list_starts_at_the_copy_nearest_the_row_clicked() -> None:
    twice = tracks("a", "b", "a", "c", "a")
    assert playing.nearest_position(twice, "hash-a", 3) in (2, 4)
    assert playing.nearest_position(twice, "hash-a", 1) in (0, 2)
    assert playing.nearest_position(twice, "hash-a", 4) == 4


def test_next_at_the_end_of_a_playlist_stops_with_end_of_the_list() -> None:
    player = playing.playlist(tracks("a", "b"), start=1)
    after = playing.move_on(player, no_pool)
    assert after.mode == "" and after.current() is None and after.message == playing.END_OF_LIST
    assert after.position == 2 and after.finished


def test_next_in_a_playlist_goes_to_the_next_track_and_forgets_the_transcode() -> None:
    player = replace(playing.playlist(tracks("a", "b", "c")), transcoded=True, finished=False, message="old")
    after = playing.move_on(player, no_pool)
    assert after.current() == tracks("a", "b", "c")[1] and not after.transcoded
    assert after.finished and after.message == ""


def test_previous_at_the_first_track_plays_it_again() -> None:
    player = playing.playlist(tracks("a", "b"))
    assert playing.step_back(player).position == 0


def test_previous_after_the_end_plays_the_last_track_again_in_the_old_mode() -> None:
    ended = playing.move_on(playing.playlist(tracks("a", "b"), start=1), no_pool)
    back = playing.step_back(ended)
    assert back.mode == "playlist" and back.current() == tracks("a", "b")[1] and back.message == ""
    stopped_radio = replace(playing.radio(1.0, 7, SearchRequest("music")), tracks=tracks("x"), position=1)
    assert playing.step_back(stopped_radio).mode == "radio"


def test_a_new_search_replaces_the_queue_rather_than_appending_to_it() -> None:
    playing_now = playing.move_on(playing.playlist(tracks("a", "b", "c")), no_pool)
    replaced = playing.playlist(tracks("x", "y"), start=0, content_hash="hash-y")
    assert replaced.tracks == tracks("x", "y") and replaced.current() == tracks("x", "y")[1]
    assert playing_now.tracks == tracks("a", "b", "c")  # the old state is untouched (immutable updates)


def test_the_radio_draws_when_its_history_runs_out_and_replays_its_history_first() -> None:
    scope = SearchRequest("music")
    seen: list[Any] = []

    def pool(asked: Any) -> list[dict[str, Any]]:
        seen.append(asked)
        return records("a", "b", "c", "d", "e")

    player = playing.step_forward(playing.radio(1.0, 42, scope), pool)
    assert player.mode == "radio" and player.draws == 1 and player.position == 0 and seen == [scope]
    for _ in range(5):
        player = playing.move_on(player, pool)
    assert player.draws == 6 and len(player.tracks) == 6 and player.position == 5
    assert all(player.tracks[i] != player.tracks[i + 1] for i in range(5))  # never the same track twice in a row
    back = playing.step_back(playing.step_back(player))
    again = playing.move_on(back, pool)  # forward through the history: no new draw
    assert again.draws == 6 and again.current() == player.tracks[4]


def test_the_same_seed_gives_the_same_radio() -> None:
    def run(seed: int) -> list[tuple[str, str]]:
        player = playing.radio(1.0, seed, None)
        for _ in range(8):
            player = playing.move_on(player, lambda _scope: records("a", "b", "c", "d", "e", "f"))
        return player.tracks

    assert run(3) == run(3)
    assert len({tuple(run(seed)) for seed in range(6)}) > 1


def test_the_radio_at_temperature_zero_draws_the_top_score_first() -> None:
    pool = records("a", "b", "c")
    pool[1]["user_rating"] = 10.0
    player = playing.step_forward(playing.radio(0, 1, None), lambda _scope: pool)
    assert player.current() == tracks("a", "b", "c")[1] and player.temperature == 0.0


def test_a_radio_with_nothing_to_draw_stops_with_a_message() -> None:
    player = playing.step_forward(playing.radio(1.0, 1, None), lambda _scope: [])
    assert player.mode == "" and player.current() is None and player.message == playing.RADIO_EMPTY


def test_a_radio_whose_tracks_were_removed_draws_only_from_what_is_left() -> None:
    library = records("a", "b", "c")
    player = playing.step_forward(playing.radio(1.0, 5, None), lambda _scope: library)
    left = [record for record in library if record["content_hash"] != player.current()[1]]
    drawn = Counter()
    for _ in range(10):
        player = playing.move_on(player, lambda _scope: left)
        drawn[player.current()[1]] += 1
    assert set(drawn) <= {record["content_hash"] for record in left}


def test_a_stopped_music_player_has_no_current_track_though_it_keeps_its_list() -> None:
    player = playing.stopped(playing.playlist(tracks("a", "b")), "Stopped.")
    assert player.current() is None and player.tracks and player.finished and player.message == "Stopped."
    assert MusicPlayer().current() is None


def test_only_an_event_of_the_current_unfinished_load_counts() -> None:
    player = playing.loaded(playing.playlist(tracks("a", "b")), 41)
    assert not player.finished
    assert playing.is_current_load(player, {"nonce": "41"})
    assert not playing.is_current_load(player, {"nonce": "40"})  # a late event of the previous load
    assert not playing.is_current_load(player, {})
    assert not playing.is_current_load(replace(player, finished=True), {"nonce": 41})  # ended once already
    assert playing.event_nonce({"nonce": "x"}) is None and playing.event_nonce(None) is None


def test_a_start_event_finds_its_track_by_hash_after_the_player_moved_on() -> None:
    listed = [*tracks("a", "b"), ("/other/a.mp3", "hash-a")]
    assert playing.path_of_hash(listed, "hash-a") == "/music/a.mp3"
    assert playing.path_of_hash(listed, "hash-a", latest=True) == "/other/a.mp3"
    assert playing.path_of_hash(listed, "unknown") is None


def test_the_now_playing_place_reads_as_words() -> None:
    player = playing.playlist(tracks("a", "b", "c"), start=1)
    assert playing.music_place(player) == "track 2 of 3 · playlist"
    assert playing.music_place(replace(player, mode="radio", temperature=0.5)) == \
        "radio at temperature 0.5 · track 2"
    assert playing.video_place(VideoPlayer(tracks=tracks("a", "b"), position=0)) == \
        "Video 1 of 2 in the current order"


def test_a_video_click_plays_the_order_from_it_or_alone_when_it_left_the_order() -> None:
    order = tracks("a", "b", "c")
    player = playing.video_queue(order, order[2], near=2, reasons={"hash-c": "rated 9"})
    assert player.current() == order[2] and player.reasons == {"hash-c": "rated 9"}
    alone = playing.video_queue(order, ("/v/new.mp4", "hash-new"), near=1, reasons={})
    assert alone.tracks == [("/v/new.mp4", "hash-new")] and alone.position == 0


def test_next_after_the_last_video_leaves_the_last_one_to_rate() -> None:
    order = tracks("a", "b")
    player = replace(playing.video_queue(order, order[1], 1, {}), forced=True, finished=False)
    after = playing.video_forward(player, "passed over b")
    assert after.current() is None and after.rated() == order[1] and after.finished and not after.forced
    assert after.message == "passed over b"
    assert playing.video_back(after).current() == order[1]
    assert playing.video_back(playing.video_back(after)).current() == order[0]
    assert playing.video_back(replace(after, position=0)).position == 0
    assert VideoPlayer().rated() is None
