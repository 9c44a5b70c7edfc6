"""The MLP stops where its validation loss stops improving and keeps the best epoch's members."""
from __future__ import annotations

import math

import numpy as np

from anagnorisis.taste.folds import CvSplits
from anagnorisis.taste.mlp import MlpConfig, MlpEnsemble
from tests.taste.taste_data import unit_rows

N_RATED = 40
CONFIG = MlpConfig(members=3, max_steps=1500, patience_steps=60)


def noise_ratings(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Ratings with nothing to learn: any step away from the start fits noise, so validation loss rises."""
    rng = np.random.default_rng(seed)
    return unit_rows(rng.normal(size=(N_RATED, 64))), rng.uniform(0, 10, N_RATED)


def fitted(X: np.ndarray, y: np.ndarray, epochs: int | None = None) -> MlpEnsemble:
    model = MlpEnsemble(CONFIG, device="cpu", seed=3)
    model.fit_with_folds(X, y, None, CvSplits.make(N_RATED, 5, 1, 3), epochs=epochs)
    return model


def test_training_stops_soon_after_validation_loss_stops_improving_and_keeps_the_best_epoch() -> None:
    X, y = noise_ratings()
    model = fitted(X, y)
    report = model.report
    asked = math.ceil(CONFIG.max_steps / 1)  # 40 ratings: one batch, one step per epoch
    val = [report.best_val_mse] + [epoch.val_loss for epoch in report.history]  # (epoch 0 is the start)
    assert val[-1] > val[0]  # the validation loss rose
    assert not report.budget_reached and report.epochs < asked / 5  # stopped well before the epochs allowed
    patience = max(CONFIG.min_patience_epochs, CONFIG.patience_steps)
    assert report.epochs == report.best_epoch + patience  # no improvement for `patience` epochs, then stop
    # The kept epoch is the best one (a later one must beat it by MIN_RELATIVE_IMPROVEMENT, 1 %).
    assert report.best_val_mse == val[report.best_epoch] <= 1.01 * min(val)
    # ... and the members kept are those of that epoch: the same as a run asked for exactly that many epochs.
    exact = fitted(X, y, epochs=report.best_epoch)
    np.testing.assert_allclose(model.predict(X)[0], exact.predict(X)[0], rtol=1e-5, atol=1e-5)
