"""Planted-signal data for the taste tests: ratings that really are a function of the embeddings."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PlantedRatings:
    X: np.ndarray  # rated embeddings
    y: np.ndarray  # their ratings
    X_held_out: np.ndarray  # never shown to training
    y_held_out: np.ndarray


def unit_rows(X: np.ndarray) -> np.ndarray:
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def planted_ratings(n_rated: int = 300, n_held_out: int = 1000, dim: int = 64, seed: int = 0) -> PlantedRatings:
    """y = clip(5 + 2.5 * standardised w.x + N(0, 1), 0, 10) on L2-normalised 64-d vectors."""
    rng = np.random.default_rng(seed)
    X = unit_rows(rng.normal(size=(n_rated + n_held_out, dim)))
    signal = X @ rng.normal(size=dim)
    y = np.clip(5 + 2.5 * signal / signal.std() + rng.normal(0, 1, len(X)), 0, 10)
    return PlantedRatings(X[:n_rated], y[:n_rated], X[n_rated:], y[n_rated:])
