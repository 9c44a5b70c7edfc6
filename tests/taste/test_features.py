"""Features beyond the embedding (SPEC §6): field groups kept only where cross-validation says they help; play
history as weak ratings; the fields travel with a saved model."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anagnorisis.taste.features import WEAK_RATING_WEIGHT, FieldEncoder, weak_ratings
from anagnorisis.taste.models import FieldsModel, load_model, predict_files
from anagnorisis.taste.train import TrainResult, train_taste

GENRES = ("jazz", "rock", "folk", "soul", "punk")
ARTISTS = tuple(f"artist {i}" for i in range(8))


def library_with_a_telling_genre(seed: int, n: int = 240, dim: int = 32) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Ratings = a weak embedding trend + 2.5 points for jazz; the artist field is drawn at random (no signal)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    genre = rng.integers(0, len(GENRES), n)
    artist = rng.integers(0, len(ARTISTS), n)
    taste = 1.5 * (X @ rng.normal(size=dim)) + 2.5 * (genre == 0)
    y = np.clip(5.0 + taste - taste.mean() + rng.normal(0, 1.2, n), 0, 10)
    fields = [{"genre": GENRES[g], "artist": ARTISTS[a]} for g, a in zip(genre, artist)]
    return X, y, fields


@pytest.fixture(scope="module")
def runs() -> list[TrainResult]:
    results = []
    for seed in range(3):
        X, y, fields = library_with_a_telling_genre(seed)
        results.append(train_taste(X, y, seed=seed, fields=fields, learning_curve=False, budget_seconds=2))
    return results


def test_a_field_that_only_adds_noise_is_dropped_by_cross_validation(runs: list[TrainResult]) -> None:
    for result in runs:
        assert result.fields["genre"]["kept"], result.fields
        assert not result.fields["artist"]["kept"], result.fields
        assert result.fields["genre"]["gain"] > 3 * result.fields["genre"]["se"]
        assert "kept genre" in result.reason and "dropped artist" in result.reason


def test_the_kept_field_improves_held_out_ranking() -> None:
    X, y, fields = library_with_a_telling_genre(7, n=400)
    result = train_taste(X[:200], y[:200], seed=0, fields=fields[:200], learning_curve=False, budget_seconds=2)
    plain = train_taste(X[:200], y[:200], seed=0, learning_curve=False, budget_seconds=2)
    from anagnorisis.taste.evaluate import srocc

    with_fields = srocc(y[200:], predict_files(result.model, X[200:], fields[200:])[0])
    without = srocc(y[200:], plain.model.predict(X[200:])[0])
    assert with_fields > without + 0.05


def test_a_model_with_fields_saves_its_encoder_and_predicts_the_same(runs: list[TrainResult], tmp_path: Path) -> None:
    X, _y, fields = library_with_a_telling_genre(0)
    model = runs[0].model
    assert isinstance(model, FieldsModel)
    model.save(tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    np.testing.assert_allclose(predict_files(loaded, X[:20], fields[:20])[0], model.predict_files(X[:20], fields[:20])[0],
                               rtol=1e-5, atol=1e-5)
    # Embeddings alone: the fields count as an average file's, and nothing breaks.
    assert np.isfinite(loaded.predict(X[:20])[0]).all()


def test_rare_categories_get_no_column_and_numbers_are_standardised() -> None:
    rows = [{"genre": "jazz, soul", "year": 1990 + i} for i in range(10)] + [{"genre": "polka"}]
    encoder = FieldEncoder.fit(rows)
    assert encoder.names == ["genre", "year"]
    genre = encoder.groups[0]
    assert genre.values == ["jazz", "soul"]  # polka: one file only
    matrix = encoder.encode(rows)
    assert np.allclose(matrix.mean(axis=0), 0, atol=1e-6)


def test_weak_ratings_are_below_a_real_one_and_only_for_unrated_files() -> None:
    y = np.array([8.0, 4.0, np.nan, np.nan, np.nan, 6.0])
    plays = np.array([[5, 0], [0, 0], [0, 4], [9, 0], [0, 0], [0, 7]])
    labels, weights = weak_ratings(y, plays)
    assert np.isnan(labels[[0, 1, 4, 5]]).all() and (weights[[0, 1, 4, 5]] == 0).all()
    assert labels[2] < np.nanmean(y) < labels[3]
    assert 0 < weights[2] <= WEAK_RATING_WEIGHT < 1


def test_play_history_moves_a_skipped_only_track_down() -> None:
    rng = np.random.default_rng(3)
    n, dim = 80, 24
    X = rng.normal(size=(n + 1, dim)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = np.append(np.clip(5 + 2 * (X[:n] @ rng.normal(size=dim)) + rng.normal(0, 1, n), 0, 10), np.nan)
    plain = [{"full_plays": 0, "skips": 0} for _ in range(n + 1)]
    skipped = [dict(row) for row in plain]
    skipped[n]["skips"] = 5  # the unrated track: skipped five times, never played through
    predictions = {}
    for name, fields in (("without", plain), ("with", skipped)):
        result = train_taste(X, y, seed=0, fields=fields, learning_curve=False, epochs=20)
        assert result.weak_ratings == (1 if name == "with" else 0)
        predictions[name] = (predict_files(result.model, X[n:], fields[n:])[0][0],
                             predict_files(result.candidates["ridge"], X[n:], fields[n:])[0][0])
    assert predictions["with"][0] < predictions["without"][0]
    assert predictions["with"][1] < predictions["without"][1] - 0.1
