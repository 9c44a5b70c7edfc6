"""Nearest rated neighbours by cosine similarity, computed once per training and reused.

One (items x rated) similarity pass keeps, for every item, its NEIGHBOUR_CANDIDATES most similar
rated items in order. Any subset of the rated items (the training rows of a CV fold, all ratings
but the item itself) then finds its k = min(10, n) nearest by skipping the excluded ones in that
list, so kNN cross-validation and the MLP's neighbour input cost one matrix product, not one per
fold. With 64 candidates and a fold holding out a fifth, fewer than 10 allowed candidates happens
with probability below 1e-20; the answer then uses those it has.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

MAX_NEIGHBOURS = 10  # SPEC §6: k = min(10, n)
NEIGHBOUR_CANDIDATES = 64
# Query rows per similarity block: 4096 x 10k ratings is 160 MB of float32.
QUERY_CHUNK_ROWS = 4096
# A neighbour with negative similarity still counts a little rather than dividing by zero.
MIN_WEIGHT = 1e-6


@dataclass
class NeighbourLists:
    """For each query row, rated positions (into the rated rows) by decreasing similarity."""

    positions: np.ndarray  # (queries, K) int64
    similarity: np.ndarray  # (queries, K) float32

    def rows(self, index: np.ndarray) -> "NeighbourLists":
        """The lists of some of the query rows."""
        return NeighbourLists(self.positions[index], self.similarity[index])


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (a zero row stays zero), float32."""
    X = np.asarray(X, dtype=np.float32)
    return (X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def nearest_rated(
    queries: np.ndarray, rated_unit: np.ndarray, candidates: int = NEIGHBOUR_CANDIDATES
) -> NeighbourLists:
    """The `candidates` most cosine-similar rated rows of every query row (rated_unit: unit rows)."""
    rated = torch.from_numpy(np.ascontiguousarray(rated_unit, dtype=np.float32))
    k = min(candidates, len(rated_unit))
    positions, similarity = [], []
    for start in range(0, len(queries), QUERY_CHUNK_ROWS):
        block = torch.from_numpy(unit_rows(queries[start:start + QUERY_CHUNK_ROWS])) @ rated.T
        top = torch.topk(block, k, dim=1)  # sorted; far faster than numpy's argpartition
        positions.append(top.indices.numpy())
        similarity.append(top.values.numpy())
    if not positions:
        return NeighbourLists(np.zeros((0, k), np.int64), np.zeros((0, k), np.float32))
    return NeighbourLists(np.concatenate(positions).astype(np.int64), np.concatenate(similarity))


def neighbour_mean(
    lists: NeighbourLists,
    ratings: np.ndarray,
    allowed: np.ndarray | None = None,
    own_position: np.ndarray | None = None,
    k: int = MAX_NEIGHBOURS,
) -> tuple[np.ndarray, np.ndarray]:
    """Similarity-weighted mean rating of each query's k nearest allowed rated neighbours.

    allowed: mask over rated positions (None = all); own_position: each query's own rated
    position, skipped so a rated item never votes for itself (-1 or None = none).
    Returns (mean, found) where found counts the neighbours used; mean is NaN where found is 0.
    """
    positions, similarity = lists.positions, lists.similarity.astype(np.float64)
    usable = np.ones(positions.shape, dtype=bool) if allowed is None else allowed[positions]
    if own_position is not None:
        usable &= positions != own_position[:, None]
    usable &= np.cumsum(usable, axis=1) <= min(k, max(len(ratings), 1))
    weights = np.where(usable, np.clip(similarity, 0.0, None) + MIN_WEIGHT, 0.0)
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (weights * ratings[positions]).sum(axis=1) / total
    return np.where(total > 0, mean, np.nan), usable.sum(axis=1)
