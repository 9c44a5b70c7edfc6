"""The recommendation score of SPEC §5 against values computed by hand."""
from __future__ import annotations

import math

import pytest

from anagnorisis.recommend.scores import recommendation_scores


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def track(make_record, name: str, **fields):
    return make_record(name, kind="music", **fields)


def test_a_never_played_track_has_time_factor_one_and_the_just_played_one_zero(make_record) -> None:
    records = [
        track(make_record, "a.mp3", user_rating=8, full_plays=2, skips=0, last_played="2024-01-03T10:00:00Z"),
        track(make_record, "b.mp3", user_rating=8, full_plays=2, skips=0, last_played=None),
    ]
    scores = recommendation_scores(records, "music")
    assert scores[0] == 0.0  # newest play: rank 0
    assert scores[1] == pytest.approx(0.64 * sig(7 / 5) * 1.0)


def test_played_tracks_rank_by_last_play_over_n_minus_one(make_record) -> None:
    records = [
        track(make_record, "new.mp3", user_rating=8, full_plays=2, skips=0, last_played="2024-01-03T10:00:00Z"),
        track(make_record, "old.mp3", model_rating=6, full_plays=0, skips=5, last_played="2024-01-01T10:00:00+00:00"),
        track(make_record, "never.mp3"),
    ]
    scores = recommendation_scores(records, "music")
    # old.mp3: R = model 6 → 0.36; S_skip = sigmoid(0) = 0.5; rank 1 of N = 3 → 1/2
    assert scores[1] == pytest.approx(0.36 * 0.5 * 0.5)
    # never.mp3: no rating → mean user rating of the set (8) → 0.64; sigmoid(1); never played → 1
    assert scores[2] == pytest.approx(0.64 * sig(1.0))
    assert scores[0] == 0.0


def test_equal_last_played_times_share_their_average_rank(make_record) -> None:
    same = "2024-05-01T12:00:00Z"
    records = [
        track(make_record, "a.mp3", user_rating=10, last_played=same),
        track(make_record, "b.mp3", user_rating=10, last_played="2024-05-01T12:00:00+00:00"),  # same instant
        track(make_record, "c.mp3", user_rating=10, last_played="2024-04-01T12:00:00Z"),
        track(make_record, "d.mp3", user_rating=10),
    ]
    scores = recommendation_scores(records, "music")
    base = 1.0 * sig(1.0)
    # a and b share ranks 0 and 1 → 0.5, over N − 1 = 3; c has rank 2 → 2/3; d never played → 1
    assert scores == pytest.approx([base * 0.5 / 3, base * 0.5 / 3, base * 2 / 3, base])


def test_a_set_of_one_gets_time_factor_one_even_when_just_played(make_record) -> None:
    only = track(make_record, "only.mp3", user_rating=6, full_plays=1, skips=1, last_played="2024-01-01T00:00:00Z")
    assert recommendation_scores([only], "music") == pytest.approx([0.36 * sig(1.0)])


def test_skip_heavy_tracks_score_below_play_heavy_ones(make_record) -> None:
    records = [
        track(make_record, "loved.mp3", user_rating=7, full_plays=10, skips=0),
        track(make_record, "skipped.mp3", user_rating=7, full_plays=0, skips=10),
    ]
    loved, skipped = recommendation_scores(records, "music")
    assert loved == pytest.approx(0.49 * sig(3.0))
    assert skipped == pytest.approx(0.49 * sig(-1.0))
    assert loved > skipped


def test_without_any_rating_every_file_counts_as_a_five(make_record) -> None:
    records = [track(make_record, f"{i}.mp3") for i in range(3)]
    assert recommendation_scores(records, "music") == pytest.approx([0.25 * sig(1.0)] * 3)


def test_the_model_rating_stands_in_for_a_missing_user_rating(make_record) -> None:
    records = [track(make_record, "a.mp3", model_rating=9), track(make_record, "b.mp3", user_rating=3, model_rating=9)]
    assert recommendation_scores(records, "music") == pytest.approx([0.81 * sig(1.0), 0.09 * sig(1.0)])


def test_a_zero_rating_keeps_a_small_positive_weight(make_record) -> None:
    assert recommendation_scores([track(make_record, "z.mp3", user_rating=0)], "music") == pytest.approx([1e-4 * sig(1.0)])


def test_images_and_text_score_by_rating_alone(make_record) -> None:
    records = [
        make_record("a.jpg", user_rating=8, full_plays=50, skips=0, last_played="2024-01-01T00:00:00Z"),
        make_record("b.jpg", user_rating=8, full_plays=0, skips=50),
    ]
    assert recommendation_scores(records, "images") == pytest.approx([0.64 * sig(1.0)] * 2)
    assert recommendation_scores(records, "text") == pytest.approx([0.64 * sig(1.0)] * 2)


def test_an_empty_set_scores_nothing() -> None:
    assert len(recommendation_scores([], "music")) == 0


def test_the_scored_set_is_the_filtered_set(make_record) -> None:
    """N, the time ranks and the mean-rating fallback all come from the files passing the filters."""
    from anagnorisis.search import SearchRequest, run_search

    records = [
        track(make_record, "a.mp3", user_rating=4, last_played="2024-03-03T00:00:00Z"),
        track(make_record, "b.flac", user_rating=10, last_played="2024-02-02T00:00:00Z"),
        track(make_record, "c.mp3", last_played="2024-01-01T00:00:00Z"),
        track(make_record, "d.mp3", user_rating=8),
    ]

    def scores(**options: str) -> dict[str, float]:
        result = run_search(SearchRequest("music", sort="recommendation", limit=10, **options), records)
        return {item["relative_path"]: item["score"] for item in result.results}

    # all four: N = 4, c ranks 2 of 0..3 → 2/3; c has no rating → the mean user rating of the set, (4+10+8)/3
    assert scores()["c.mp3"] == pytest.approx((22 / 3 / 10) ** 2 * sig(1.0) * 2 / 3)
    # mp3 only: N = 3, c ranks 1 of 0..2 → 1/2; the mean of the set is now (4+8)/2 = 6
    assert scores(ext="mp3")["c.mp3"] == pytest.approx(0.36 * sig(1.0) * 1 / 2)
