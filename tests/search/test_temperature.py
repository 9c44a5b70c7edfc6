"""Temperature sampling (SPEC §4): T = 0 sorts, a seed fixes the draw, first draws follow s^(1/T) / Σ s^(1/T)."""
from __future__ import annotations

import numpy as np
import pytest

from anagnorisis.search import SearchRequest, draw_order, run_search


def test_temperature_zero_is_the_plain_sort(make_record) -> None:
    records = [make_record(f"{i}.jpg", user_rating=float(r)) for i, r in enumerate([3, 9, 1, 7, 5])]
    result = run_search(SearchRequest("images", sort="rating", temperature=0, seed=123), records)
    assert [item["user_rating"] for item in result.results] == [9, 7, 5, 3, 1]


def test_a_tiny_temperature_draws_in_sorted_order() -> None:
    strengths = np.array([0.3, 0.9, 0.1, 0.7, 0.5])
    assert draw_order(strengths, 1e-3, seed=7).tolist() == np.argsort(-strengths).tolist()


def test_the_same_seed_gives_the_same_order_and_another_seed_another(make_record) -> None:
    records = [make_record(f"{i:02d}.jpg", user_rating=float(i % 11)) for i in range(40)]

    def order(seed: int) -> list[str]:
        request = SearchRequest("images", sort="rating", temperature=1.0, seed=seed, limit=100)
        return [item["path"] for item in run_search(request, records).results]

    assert order(3) == order(3)
    assert order(3) != order(4)
    assert sorted(order(3)) == sorted(record["path"] for record in records)


@pytest.mark.parametrize("temperature", [0.2, 1.0, 2.0])
def test_the_first_draw_follows_s_to_the_power_one_over_t_within_three_sigma(temperature: float) -> None:
    strengths = np.array([1.0, 0.8, 0.5, 0.3, 0.1, 1e-9])
    draws = 10_000
    firsts = np.bincount([draw_order(strengths, temperature, seed)[0] for seed in range(draws)],
                         minlength=len(strengths))
    weights = strengths ** (1.0 / temperature)
    expected = weights / weights.sum()
    sigma = np.sqrt(draws * expected * (1 - expected))
    assert np.all(np.abs(firsts - draws * expected) <= 3 * sigma + 1e-9), (firsts, draws * expected)


def test_the_second_draw_follows_the_remaining_weights() -> None:
    strengths = np.array([1.0, 0.6, 0.3])
    draws = 10_000
    orders = np.array([draw_order(strengths, 1.0, seed) for seed in range(draws)])
    after_first = orders[orders[:, 0] == 0][:, 1]  # given item 0 went first: 0.6 : 0.3
    share = np.mean(after_first == 1)
    sigma = np.sqrt((2 / 3) * (1 / 3) / len(after_first))
    assert abs(share - 2 / 3) <= 3 * sigma


def test_a_large_draw_is_fast_and_a_permutation() -> None:
    strengths = np.random.default_rng(0).random(100_000)
    order = draw_order(strengths, 0.5, seed=1)
    assert np.array_equal(np.sort(order), np.arange(100_000))


def test_files_without_a_value_come_last_at_a_moderate_temperature(make_record) -> None:
    records = [make_record(f"r{i}.jpg", user_rating=5.0) for i in range(5)] + [make_record("none.jpg")]
    for seed in range(50):
        request = SearchRequest("images", sort="rating", temperature=0.5, seed=seed)
        assert run_search(request, records).results[-1]["relative_path"] == "none.jpg"


def test_rank_based_strengths_favour_the_top_of_the_chosen_order(make_record) -> None:
    records = [make_record(f"{i}.jpg", size=1000 + i) for i in range(10)]
    firsts = [run_search(SearchRequest("images", sort="file-size", temperature=0.2, seed=s, limit=1), records)
              .results[0]["size"] for s in range(300)]
    assert np.mean(firsts) > 1006  # s = (n − rank)/n: the biggest file is drawn first most often
    firsts_asc = [run_search(SearchRequest("images", sort="file-size", order="asc", temperature=0.2, seed=s, limit=1),
                             records).results[0]["size"] for s in range(300)]
    assert np.mean(firsts_asc) < 1003


def test_draw_order_refuses_temperature_zero() -> None:
    with pytest.raises(ValueError):
        draw_order(np.ones(3), 0.0, seed=0)
