"""Repeated k-fold splits of the ratings, shared by every candidate so all are judged on the same folds.

With few ratings one k-fold split is a noisy judge (5 folds of 10 items at 50 ratings), so small
rating sets are split several times with different seeds and the metrics averaged over repeats.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Repeat the split until about this many held-out predictions are made, at most MAX_REPEATS
# times: 50 ratings get 5 repeats, 100 get 3, 250 and more get one.
HELD_OUT_PREDICTIONS_WANTED = 250
MAX_REPEATS = 5


def repeats_for(n_rated: int) -> int:
    """How many k-fold splits to average over for n_rated ratings."""
    if n_rated <= 0:
        return 1
    return int(min(MAX_REPEATS, max(1, math.ceil(HELD_OUT_PREDICTIONS_WANTED / n_rated))))


@dataclass(frozen=True)
class CvSplits:
    """fold_of[r, i] = the fold in which rating i is held out in repeat r.

    A "fold network" j = r * folds + f is the model of fold f in repeat r: it trains on the
    ratings with fold_of[r] != f and predicts the others.
    """

    fold_of: np.ndarray  # (repeats, n_rated) int64
    folds: int

    @classmethod
    def make(cls, n_rated: int, folds: int, repeats: int = 1, seed: int = 0) -> "CvSplits":
        """Seeded splits into `folds` near-equal folds; folds = 0 means no cross-validation."""
        if folds <= 0:
            return cls(np.zeros((1, n_rated), dtype=np.int64), 0)
        rows = []
        for repeat in range(repeats):
            order = np.random.default_rng([seed, repeat]).permutation(n_rated)
            fold_of = np.empty(n_rated, dtype=np.int64)
            fold_of[order] = np.arange(n_rated) % folds
            rows.append(fold_of)
        return cls(np.stack(rows), folds)

    @property
    def repeats(self) -> int:
        return len(self.fold_of)

    @property
    def networks(self) -> int:
        """Number of fold networks (repeats x folds); 0 without cross-validation."""
        return self.repeats * self.folds

    def repeat_of(self, network: int) -> int:
        return network // self.folds

    def held_out(self, network: int) -> np.ndarray:
        """Mask over the ratings that fold network `network` never sees."""
        return self.fold_of[network // self.folds] == network % self.folds

    def network_of(self) -> np.ndarray:
        """(repeats, n_rated): the fold network that holds each rating out in each repeat."""
        return np.arange(self.repeats)[:, None] * self.folds + self.fold_of
