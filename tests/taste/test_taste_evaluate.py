"""Metrics of the taste model: MAE, SROCC and pairwise accuracy as SPEC §6 defines them."""
from __future__ import annotations

import numpy as np
import pytest

from anagnorisis.taste.evaluate import (
    all_metrics,
    cross_validated_metrics,
    mae,
    pairwise_accuracy,
    srocc,
)


def test_mae_is_the_mean_absolute_difference() -> None:
    assert mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)


def test_a_constant_prediction_scores_srocc_zero() -> None:
    assert srocc([1, 5, 3, 8], [4, 4, 4, 4]) == 0.0


def test_constant_true_ratings_score_srocc_zero() -> None:
    assert srocc([6, 6, 6], [1, 2, 3]) == 0.0


def test_a_nan_in_the_prediction_scores_srocc_zero() -> None:
    assert srocc([1, 2, 3], [1, np.nan, 3]) == 0.0


def test_srocc_is_spearmans_rank_correlation() -> None:
    assert srocc([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert srocc([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)


def test_a_predicted_tie_counts_half_a_pair() -> None:
    # Pairs with different true ratings: (0,1), (0,2), (1,2). Prediction ties (0,1), orders the others right.
    assert pairwise_accuracy([1, 2, 3], [5, 5, 9]) == pytest.approx((0.5 + 1 + 1) / 3)


def test_pairs_with_equal_true_ratings_are_not_scored() -> None:
    # Pairs (0, 2) and (1, 2) differ in truth and both are ordered wrongly; (0, 1) is not scored.
    assert pairwise_accuracy([1, 1, 3], [9, 8, 5]) == pytest.approx(0.0)


def test_a_constant_prediction_has_pairwise_accuracy_one_half() -> None:
    assert pairwise_accuracy([1, 2, 3, 4], [7, 7, 7, 7]) == pytest.approx(0.5)


def test_no_pair_with_different_ratings_gives_chance() -> None:
    assert pairwise_accuracy([4, 4, 4], [1, 2, 3]) == 0.5


def test_pairwise_accuracy_samples_pairs_of_a_large_set_deterministically() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 21, 2000) / 2
    prediction = truth + rng.normal(0, 2, truth.size)
    exact = pairwise_accuracy(truth, prediction, max_pairs=10**8)
    sampled = pairwise_accuracy(truth, prediction, max_pairs=50_000, seed=3)
    assert sampled == pairwise_accuracy(truth, prediction, max_pairs=50_000, seed=3)
    assert sampled == pytest.approx(exact, abs=0.01)


def test_all_metrics_returns_the_three_named_metrics() -> None:
    assert set(all_metrics([1, 2, 3], [1, 2, 4])) == {"mae", "srocc", "pairwise_accuracy"}


def test_cross_validated_metrics_judge_each_fold_on_its_own_pairs() -> None:
    # A model constant within each fold (like the mean baseline) ranks nothing: SROCC 0, pairs 0.5,
    # even though pooling the folds would rank the folds' different constants.
    truth = np.array([1.0, 2.0, 3.0, 7.0, 8.0, 9.0])
    prediction = np.array([6.0, 6.0, 6.0, 2.0, 2.0, 2.0])
    folds = np.array([0, 0, 0, 1, 1, 1])
    metrics = cross_validated_metrics(truth, prediction, folds)
    assert metrics["srocc"] == 0.0
    assert metrics["pairwise_accuracy"] == 0.5
    assert metrics["mae"] == pytest.approx(mae(truth, prediction))
