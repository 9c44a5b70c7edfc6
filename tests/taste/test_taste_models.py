"""The candidate models: one interface, uncertainty that grows away from the data, A/B choices, files."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from anagnorisis.taste.device import pick_device
from anagnorisis.taste.graph import GraphFeatures, GraphModel
from anagnorisis.taste.evaluate import srocc
from anagnorisis.taste.models import (
    CANDIDATE_NAMES,
    KnnModel,
    MeanModel,
    MlpConfig,
    MlpEnsemble,
    RidgeModel,
    TasteModel,
    load_model,
)
from tests.taste.taste_data import PlantedRatings, unit_rows

# A smaller, faster ensemble for unit tests; train.py uses the defaults.
FAST_MLP = MlpConfig(members=4, max_steps=600, patience_steps=100)


def make_model(name: str, library: np.ndarray | None = None) -> TasteModel:
    """A candidate; the graph model's features are fitted on `library` (rated and unrated embeddings)."""
    makers: dict[str, Callable[[], TasteModel]] = {
        "mean": MeanModel, "knn": KnnModel, "ridge": RidgeModel, "mlp": lambda: MlpEnsemble(FAST_MLP, device="cpu"),
        "graph": lambda: GraphModel(GraphFeatures.fit(library)),
    }
    return makers[name]()


def whole_library(data: PlantedRatings) -> np.ndarray:
    return np.vstack([data.X, data.X_held_out])


def test_the_candidates_are_named_as_the_spec_says() -> None:
    assert CANDIDATE_NAMES == ("mean", "knn", "ridge", "graph", "mlp")


@pytest.mark.parametrize("name", CANDIDATE_NAMES)
def test_every_candidate_predicts_a_rating_and_an_uncertainty_per_item(name: str, planted: PlantedRatings) -> None:
    model = make_model(name, whole_library(planted)).fit(planted.X, planted.y)
    rating, uncertainty = model.predict(planted.X_held_out[:50])
    assert rating.shape == uncertainty.shape == (50,)
    assert np.all(np.isfinite(rating)) and np.all(uncertainty >= 0)


@pytest.mark.parametrize("name", ("knn", "ridge", "graph", "mlp"))
def test_learning_models_rank_held_out_items_on_a_planted_signal(name: str, planted: PlantedRatings) -> None:
    model = make_model(name, whole_library(planted)).fit(planted.X, planted.y)
    assert srocc(planted.y_held_out, model.predict(planted.X_held_out)[0]) > 0.4


def test_knn_averages_the_ten_most_similar_rated_items_only() -> None:
    rng = np.random.default_rng(1)
    close = unit_rows(np.eye(1, 8) + 0.05 * rng.normal(size=(10, 8)))  # ten items near e0, rated 8
    farther = unit_rows(np.eye(1, 8, 1) + 0.4 * np.eye(1, 8))  # five items less similar, rated 0
    X = np.vstack([close, np.repeat(farther, 5, axis=0)])
    model = KnnModel().fit(X, np.array([8.0] * 10 + [0.0] * 5))
    assert model.predict(unit_rows(np.eye(1, 8)))[0][0] == pytest.approx(8.0)


def test_knn_with_fewer_than_ten_ratings_weighs_all_of_them_by_similarity() -> None:
    X = unit_rows(np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]))
    model = KnnModel().fit(X, np.array([0.0, 5.0, 10.0]))
    query = unit_rows(np.array([[1.0, 0.2]]))
    similarity = np.clip(X @ query[0], 0, None) + 1e-6
    expected = (similarity * [0.0, 5.0, 10.0]).sum() / similarity.sum()
    assert model.predict(query)[0][0] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", ("knn", "ridge", "mlp"))
def test_uncertainty_is_larger_far_from_the_rated_data_than_near_it(name: str) -> None:
    rng = np.random.default_rng(4)
    dim = 32
    centre = unit_rows(rng.normal(size=(1, dim)))
    near_cluster = lambda n: unit_rows(centre + 0.25 * rng.normal(size=(n, dim)) / np.sqrt(dim) * 4)  # noqa: E731
    X = near_cluster(150)
    y = np.clip(5 + 3 * (X @ rng.normal(size=dim)) + rng.normal(0, 0.5, len(X)), 0, 10)
    far = unit_rows(rng.normal(size=(200, dim)))
    far = far[(far @ centre.T)[:, 0] < 0.2]  # really elsewhere: not near the rated cluster
    model = make_model(name).fit(X, y)
    near_uncertainty = model.predict(near_cluster(200))[1].mean()
    far_uncertainty = model.predict(far)[1].mean()
    assert far_uncertainty > 1.2 * near_uncertainty


def preference_scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Rated items whose ratings depend only on feature 0, mirrored in feature 1 (each item also
    appears with feature 1 negated and the same rating), plus two unrated items that differ only
    in the sign of feature 1: the ratings give both exactly the same evidence."""
    rng = np.random.default_rng(seed)
    dim = 16
    half = rng.normal(size=(40, dim)).astype(np.float32)
    mirrored = half.copy()
    mirrored[:, 1] *= -1
    X = np.vstack([half, mirrored])
    ratings = np.clip(5 + 2 * half[:, 0] + rng.normal(0, 0.3, len(half)), 0, 10)
    y = np.concatenate([ratings, ratings])
    pair = np.zeros((2, dim), dtype=np.float32)
    pair[:, 0] = 0.3
    pair[0, 1], pair[1, 1] = 1.0, -1.0
    X = np.vstack([X, pair])
    y = np.concatenate([y, [np.nan, np.nan]])  # known only from A/B choices
    return X, y, len(X) - 2, len(X) - 1


@pytest.mark.parametrize("name", ("ridge", "mlp"))
def test_ab_choices_move_the_preferred_item_above_the_other(name: str) -> None:
    X, y, a, b = preference_scene()
    before = make_model(name).fit(X, y).predict(X[[a, b]])[0]
    # Prefer whichever the ratings alone put lower, so the choice has to change the order.
    winner, loser = (a, b) if before[0] <= before[1] else (b, a)
    prefs = [(winner, loser, 0)] * 3
    after = make_model(name).fit(X, y, prefs).predict(X[[winner, loser]])[0]
    gap_before = min(before) - max(before)  # the winner's lead before: zero or negative
    assert gap_before > -0.1  # the ratings alone do not separate the two
    assert after[0] - after[1] > 0.1


def test_a_tie_pulls_two_items_together() -> None:
    X, y, a, b = preference_scene()
    apart = RidgeModel().fit(X, y, [(a, b, 0)] * 3).predict(X[[a, b]])[0]
    tied = RidgeModel().fit(X, y, [(a, b, 0)] * 3 + [(a, b, 1)] * 6).predict(X[[a, b]])[0]
    assert abs(tied[0] - tied[1]) < abs(apart[0] - apart[1])


def test_a_preference_naming_a_missing_row_is_refused() -> None:
    X, y, a, _ = preference_scene()
    with pytest.raises(ValueError, match="outside"):
        RidgeModel().fit(X, y, [(a, len(X) + 5, 0)])


@pytest.mark.parametrize("name", CANDIDATE_NAMES)
def test_a_saved_model_loads_back_and_predicts_the_same(name: str, planted: PlantedRatings, tmp_path: Path) -> None:
    model = make_model(name, whole_library(planted)).fit(planted.X, planted.y)
    path = tmp_path / f"{name}.pt"
    model.save(path)
    loaded = load_model(path)
    assert loaded.name == name
    pairs = zip(model.predict(planted.X_held_out[:20]), loaded.predict(planted.X_held_out[:20]), strict=True)
    for original, again in pairs:
        assert np.allclose(original, again, atol=1e-5)


def test_a_file_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.pt"
    torch.save({"hello": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="not an Anagnorisis taste model"):
        load_model(path)


def test_the_device_is_the_cpu_when_asked_or_without_a_gpu() -> None:
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError):
        pick_device("tpu")


def test_the_mlp_weighs_the_neighbours_ratings_where_tastes_follow_clusters() -> None:
    # Ratings are a random value per cluster: no linear trend for ridge to find, all for neighbours.
    rng = np.random.default_rng(5)
    centres = unit_rows(rng.normal(size=(25, 32)))
    cluster = rng.integers(0, 25, 1300)
    X = unit_rows(centres[cluster] + 0.15 * rng.normal(size=(1300, 32)))
    y = np.clip(rng.uniform(0, 10, 25)[cluster] + rng.normal(0, 1, 1300), 0, 10)
    rated, held_out = slice(0, 300), slice(300, None)
    held = {name: srocc(y[held_out], make_model(name).fit(X[rated], y[rated]).predict(X[held_out])[0])
            for name in ("knn", "ridge", "mlp")}
    assert held["mlp"] > held["ridge"] + 0.05
    assert held["mlp"] > held["knn"] - 0.02


def test_the_blend_weighs_its_members_by_what_they_add_and_saves_like_the_others(planted: PlantedRatings,
                                                                                 tmp_path: Path) -> None:
    from anagnorisis.taste.models import BlendModel, fit_blend_weights

    ridge = make_model("ridge").fit(planted.X, planted.y)
    knn = make_model("knn").fit(planted.X, planted.y)
    # A member that says nothing (a constant) gets no weight; non-negative weights never bet against a member.
    rng = np.random.default_rng(0)
    signal = planted.y + rng.normal(0, 0.5, len(planted.y))
    noise = rng.normal(0, 3, len(planted.y))
    weights, intercept = fit_blend_weights(np.column_stack([signal, noise, -signal]), planted.y)
    assert weights[0] > 0.5 and weights[1] < 0.05 and weights[2] == 0
    blend = BlendModel({"ridge": ridge, "knn": knn}, np.array([0.7, 0.3]), 0.1)
    rating, uncertainty = blend.predict(planted.X_held_out[:20])
    expected = 0.1 + 0.7 * ridge.predict(planted.X_held_out[:20])[0] + 0.3 * knn.predict(planted.X_held_out[:20])[0]
    assert np.allclose(rating, expected) and np.all(uncertainty >= 0)
    assert blend.describe() == "ridge 0.70 · knn 0.30"
    path = tmp_path / "blend.pt"
    blend.save(path)
    loaded = load_model(path)
    assert loaded.name == "blend"
    for original, again in zip(blend.predict(planted.X_held_out[:20]), loaded.predict(planted.X_held_out[:20]),
                               strict=True):
        assert np.allclose(original, again, atol=1e-5)
