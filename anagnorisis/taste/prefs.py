"""A/B preference arrays and rating masks, in numpy alone: the graph model and rate next use them without torch,
so /next and /why do not load it (≈ 200 MB of RSS; SPEC §9)."""
from __future__ import annotations

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]
# One A/B choice per row: (winner row, loser row, tie as 0/1); rows index the X given to fit().
Preferences = npt.NDArray[np.int64]


def as_preferences(prefs: object, n_rows: int) -> Preferences:
    """A/B choices as an (m, 3) int64 array (winner, loser, tie), checked against n_rows; None -> empty."""
    if prefs is None:
        return np.zeros((0, 3), dtype=np.int64)
    array = np.asarray(prefs, dtype=np.int64)
    if array.size == 0:
        return np.zeros((0, 3), dtype=np.int64)
    if array.ndim != 2 or array.shape[1] not in (2, 3):
        raise ValueError("preferences must be rows of (winner_idx, loser_idx[, tie])")
    if array.shape[1] == 2:
        array = np.column_stack([array, np.zeros(len(array), dtype=np.int64)])
    if array[:, :2].min() < 0 or array[:, :2].max() >= n_rows:
        raise ValueError(f"a preference names a row outside 0..{n_rows - 1}")
    array = array[array[:, 0] != array[:, 1]]
    array[:, 2] = array[:, 2] != 0
    return array


def preferences_within(prefs: Preferences, rows_allowed: np.ndarray) -> Preferences:
    """The choices whose both items are allowed rows (e.g. the training rows of one CV fold)."""
    if len(prefs) == 0:
        return prefs
    keep = rows_allowed[prefs[:, 0]] & rows_allowed[prefs[:, 1]]
    return prefs[keep]


def rated_rows(y: np.ndarray) -> np.ndarray:
    """Boolean mask of rows with a rating; NaN marks an item known only from A/B choices."""
    return np.isfinite(np.asarray(y, dtype=np.float64))


def weak_rows(y: np.ndarray, weak: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Rows that carry a weak rating (taste/features.weak_ratings: label, weight) and no real one: an index array."""
    if weak is None:
        return np.zeros(0, dtype=np.int64)
    labels, weights = weak
    return np.flatnonzero(np.isfinite(labels) & (weights > 0) & ~rated_rows(y))
