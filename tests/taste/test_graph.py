"""The graph model (taste/graph.py): the library's neighbourhood graph carries a rating to the file's family."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anagnorisis.taste.evaluate import srocc
from anagnorisis.taste.graph import BayesLinear, GraphFeatures, GraphModel
from anagnorisis.taste.models import RidgeModel, load_model
from anagnorisis.taste.train import train_taste


def families(seed: int, n_families: int = 100, size: int = 20, dim: int = 32,
             spread: float = 0.45) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors in families around random centres; (X, family label)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_families, dim))
    label = np.repeat(np.arange(n_families), size)
    X = centres[label] + spread * rng.normal(size=(len(label), dim))
    return X / np.linalg.norm(X, axis=1, keepdims=True), label


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_taste_per_family_is_learnt_from_few_ratings_better_than_by_ridge(seed: int) -> None:
    # The taste is one value per family: 100 families in 32 dimensions leave no direction for ridge to
    # find, while the unrated library shows which files belong together. (Against kNN the margin depends on
    # the data: bench/active.md measures both on the simulated users.)
    X, label = families(seed)
    rng = np.random.default_rng(10 + seed)
    y = np.clip(rng.uniform(0, 10, label.max() + 1)[label] + rng.normal(0, 0.7, len(label)), 0, 10)
    order = rng.permutation(len(X))
    rated, held_out = order[:120], order[300:]
    features = GraphFeatures.fit(X, seed=0)
    scores = {name: srocc(y[held_out], model.fit(X[rated], y[rated]).predict(X[held_out])[0])
              for name, model in (("graph", GraphModel(features)), ("ridge", RidgeModel()))}
    assert scores["graph"] > scores["ridge"] + 0.1, scores


def test_files_outside_the_sample_get_their_neighbours_features() -> None:
    X, label = families(2, n_families=20, size=30)
    features = GraphFeatures.fit(X, seed=0, sample_size=300)
    assert features.sample.shape[0] == 300
    F = features.transform(X)
    assert F.shape == (len(X), features.dim) and np.all(np.isfinite(F))
    # A file's graph features are closer to those of its own family than to another family's.
    graph = F[:, features.components.shape[0]:]
    centroid = np.stack([graph[label == f].mean(axis=0) for f in range(20)])
    distance = np.linalg.norm(graph[:, None, :] - centroid[None, :, :], axis=2)
    assert np.mean(np.argmin(distance, axis=1) == label) > 0.9


def test_a_preference_raises_the_winner_above_the_loser() -> None:
    X, label = families(3, n_families=10, size=20)
    features = GraphFeatures.fit(X, seed=0)
    rated = np.arange(0, len(X), 7)
    y = np.full(len(X), np.nan)
    y[rated] = 5.0 + np.random.default_rng(0).normal(0, 0.5, len(rated))
    winner, loser = 1, 41  # two unrated files of different families
    plain = GraphModel(features).fit(X, y).predict(X[[winner, loser]])[0]
    chosen = GraphModel(features).fit(X, y, [(winner, loser, 0)] * 3).predict(X[[winner, loser]])[0]
    assert chosen[0] - chosen[1] > plain[0] - plain[1] + 0.2


def test_the_noise_level_follows_the_evidence() -> None:
    rng = np.random.default_rng(4)
    Phi = rng.normal(size=(200, 10)) / np.sqrt(10)
    w = rng.normal(size=10)
    clean = 5 + 2 * (Phi @ w)
    noisy = clean + rng.normal(0, 4, len(clean))
    assert BayesLinear.fit(Phi, clean + rng.normal(0, 0.1, len(clean))).noise < BayesLinear.fit(Phi, noisy).noise


def test_the_uncertainty_is_smaller_near_the_rated_files() -> None:
    X, label = families(5, n_families=8, size=40)
    features = GraphFeatures.fit(X, seed=0)
    rated = np.flatnonzero(label < 4)[::2]
    model = GraphModel(features).fit(X[rated], np.random.default_rng(1).uniform(2, 8, len(rated)))
    _, spread = model.predict(X)
    assert spread[label >= 4].mean() > 1.5 * spread[label < 4].mean()


def test_a_saved_graph_model_predicts_the_same_after_loading(tmp_path: Path) -> None:
    X, _ = families(6, n_families=12, size=20)
    model = GraphModel(GraphFeatures.fit(X, seed=0)).fit(X[::3], np.linspace(0, 10, len(X[::3])))
    model.save(tmp_path / "graph.pt")
    loaded = load_model(tmp_path / "graph.pt")
    for original, again in zip(model.predict(X[:30]), loaded.predict(X[:30]), strict=True):
        assert np.allclose(original, again, atol=1e-5)


def test_training_with_a_library_cross_validates_the_graph_model_and_keeps_it_in_the_report() -> None:
    X, label = families(7)
    rng = np.random.default_rng(2)
    y = np.clip(rng.uniform(0, 10, label.max() + 1)[label] + rng.normal(0, 0.7, len(label)), 0, 10)
    rows = rng.permutation(len(X))[:300]
    with_library = train_taste(X[rows], y[rows], seed=0, epochs=5, library=X)
    without = train_taste(X[rows], y[rows], seed=0, epochs=5)
    assert "graph" in with_library.metrics and "graph" not in without.metrics
    assert with_library.metrics["graph"]["srocc"] > with_library.metrics["ridge"]["srocc"]
    assert "graph" in with_library.reason
