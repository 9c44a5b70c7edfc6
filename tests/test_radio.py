"""Radio draws (SPEC §4 temperature rule over the SPEC §5 score), tested statistically with fixed seeds."""
from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import numpy as np
import pytest
from scipy.stats import chisquare, spearmanr

from anagnorisis.recommend.radio import avoided_hashes, draw_next, radio_seed
from anagnorisis.recommend.scores import recommendation_scores
from anagnorisis.search import SearchRequest, run_search

DRAWS = 200


def track(name: str, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "path": f"/music/{name}.mp3", "relative_path": f"{name}.mp3", "kind": "music", "content_hash": f"h-{name}",
        "user_rating": None, "model_rating": None, "full_plays": None, "skips": None, "last_played": None,
        "metadata": {}, "mtime": 1.6e9, "size": 1000,
    }
    record.update(fields)
    return record


def rated_tracks(ratings: list[float]) -> list[dict[str, Any]]:
    return [track(f"t{i}", user_rating=rating) for i, rating in enumerate(ratings)]


def test_at_temperature_one_tracks_come_up_in_proportion_to_their_score() -> None:
    records = rated_tracks([9, 7, 5, 3, 1])
    counts = Counter(draw_next(records, "music", temperature=1.0, seed=radio_seed(7, i)) for i in range(DRAWS))
    observed = [counts[i] for i in range(len(records))]
    assert observed[0] > observed[1] > observed[2] > observed[3] >= observed[4]
    scores = recommendation_scores(records, "music")
    expected = scores / scores.sum() * DRAWS
    # the last two expected counts are small (11 and 1): one bin, so the chi-square approximation holds
    merged_observed = [*observed[:3], observed[3] + observed[4]]
    merged_expected = [*expected[:3], expected[3] + expected[4]]
    assert chisquare(merged_observed, merged_expected).pvalue > 0.01, (observed, expected.round(1))


def test_a_higher_temperature_flattens_the_draw_and_a_lower_one_sharpens_it() -> None:
    records = rated_tracks([9, 7, 5, 3, 1])

    def share_of_best(temperature: float) -> float:
        picks = [draw_next(records, "music", temperature=temperature, seed=radio_seed(3, i)) for i in range(DRAWS)]
        return picks.count(0) / DRAWS

    assert share_of_best(0.2) > share_of_best(1.0) > share_of_best(4.0)
    assert share_of_best(0.2) > 0.9


def test_temperature_zero_plays_the_top_of_the_recommendation_sort() -> None:
    now = datetime(2024, 5, 1, tzinfo=UTC)
    records = [
        track("loved-but-just-played", user_rating=10, last_played=now.isoformat()),
        track("good", user_rating=8, full_plays=3, last_played=(now - timedelta(days=3)).isoformat()),
        track("skipped", user_rating=9, skips=12),
        track("fresh", model_rating=7),
    ]
    first = run_search(SearchRequest("music", sort="recommendation", limit=10), records).results[0]
    index = draw_next(records, "music", temperature=0, seed=0)
    assert index is not None and records[index]["path"] == first["path"]


def test_the_radio_scores_with_the_function_behind_the_recommendation_sort() -> None:
    records = rated_tracks([8, 2, 6])
    records[0]["last_played"] = "2024-01-01T00:00:00Z"
    listed = run_search(SearchRequest("music", sort="recommendation", limit=10), records).results
    assert [item["score"] for item in listed] == sorted(recommendation_scores(records, "music"), reverse=True)


def test_the_track_just_played_never_comes_straight_back() -> None:
    records = rated_tracks([9, 9, 9, 1])
    for i in range(DRAWS):
        just_played = i % len(records)
        recent = [records[just_played]["content_hash"]]
        drawn = draw_next(records, "music", temperature=1.0, seed=radio_seed(11, i), recent=recent)
        assert drawn != just_played


def test_a_radio_session_rescored_by_its_plays_favours_the_better_tracks_and_never_repeats() -> None:
    """200 draws where each drawn track is played to the end: its last-played time and plays update, as the
    player's events do, so every draw is scored afresh."""
    ratings = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    records = rated_tracks(ratings)
    clock = datetime(2024, 1, 1, tzinfo=UTC)
    played: list[str] = []
    picks: list[int] = []
    for i in range(DRAWS):
        index = draw_next(records, "music", temperature=1.0, seed=radio_seed(5, i), recent=played)
        assert index is not None
        picks.append(index)
        clock += timedelta(minutes=4)
        records[index]["last_played"] = clock.isoformat()
        records[index]["full_plays"] = (records[index]["full_plays"] or 0) + 1
        played.append(records[index]["content_hash"])
    assert all(a != b for a, b in pairwise(picks)), "a track came straight back"
    window = len(avoided_hashes(played, len(records)))
    assert all(picks[i] not in picks[max(0, i - window + 1):i] for i in range(len(picks)))
    counts = [picks.count(i) for i in range(len(records))]
    assert spearmanr(ratings, counts).statistic > 0.8, counts
    assert sum(counts[:3]) > 2 * sum(counts[-3:]), counts


def test_the_same_seed_draws_the_same_sequence() -> None:
    records = rated_tracks([5, 6, 7, 8])
    first = [draw_next(records, "music", temperature=2.0, seed=radio_seed(9, i)) for i in range(20)]
    again = [draw_next(records, "music", temperature=2.0, seed=radio_seed(9, i)) for i in range(20)]
    other = [draw_next(records, "music", temperature=2.0, seed=radio_seed(10, i)) for i in range(20)]
    assert first == again != other


def test_a_single_track_is_played_again_when_nothing_else_is_left() -> None:
    records = rated_tracks([7])
    assert draw_next(records, "music", temperature=1.0, seed=1, recent=[records[0]["content_hash"]]) == 0
    assert draw_next([], "music", temperature=1.0, seed=1) is None


def test_a_small_library_avoids_only_the_last_track_not_all_of_them() -> None:
    records = rated_tracks([5, 5, 5])
    recent = [record["content_hash"] for record in records]
    assert avoided_hashes(recent, len(records)) == {records[-1]["content_hash"]}
    draws = {draw_next(records, "music", temperature=1.0, seed=radio_seed(2, i), recent=recent) for i in range(50)}
    assert draws == {0, 1}


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_zero_scored_tracks_are_drawn_only_when_nothing_else_is_left(temperature: float) -> None:
    now = "2024-01-01T00:00:00Z"
    records = [track("a", user_rating=8, last_played=now), track("b", user_rating=8)]
    scores = recommendation_scores(records, "music")
    assert scores[0] == 0.0 and scores[1] == pytest.approx(0.64 / (1 + np.exp(-1.0)))
    picks = {draw_next(records, "music", temperature=temperature, seed=radio_seed(1, i)) for i in range(50)}
    assert picks == {1}
