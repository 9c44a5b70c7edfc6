"""Duplicate groups: files whose vectors are nearly the same, by an exact or an IVF range search.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from anagnorisis.search.vector_index import VectorIndex
from anagnorisis.search.draw import rank_strengths
from anagnorisis.search.request import Record, Ranking


# Cosine at or above which two files count as duplicates, per encoder (matched as a prefix of the model id).
# Learned encoders place re-encodes, crops and resizes of one picture/track at 0.93-0.99; the basic feature
# encoders are much less discriminative (unrelated photos of one scene type reach 0.95), so they need more.
DUPLICATE_THRESHOLDS: dict[str, float] = {
    "basic-image": 0.99,
    "basic-audio": 0.995,
    "google/siglip": 0.95,
    "laion/clap": 0.97,
}


DEFAULT_DUPLICATE_THRESHOLD = 0.95


DUPLICATES_EXACT_MAX_ITEMS = 20_000  # above this many embedded files, duplicate pairs come from an IVF range search


def rank_duplicates(records: Sequence[Record], descending: bool, index: VectorIndex | None,
                     threshold: float | None) -> Ranking:
    """Groups of near-identical files, biggest group first, members adjacent; files in no group are left out."""
    threshold = duplicate_threshold_for(index.model_id if index is not None else "") if threshold is None else threshold
    groups, best_similarity = duplicate_groups(records, index, threshold)
    if not descending:
        groups = groups[::-1]
    items: list[Record] = []
    scores: list[float | None] = []
    labels: list[str] = []
    for number, group in enumerate(groups, start=1):
        for member in group:
            items.append(records[member])
            scores.append(best_similarity.get(member, 1.0))
            labels.append(f"duplicate group {number} ({len(group)} files), similarity {scores[-1]:.3f}")
    order = np.arange(len(items), dtype=np.int64)
    return Ranking(items, order, rank_strengths(order, np.ones(len(items), bool)), scores, lambda i: labels[i])


def duplicate_threshold_for(model_id: str) -> float:
    """The duplicate cosine threshold of an encoder (longest matching prefix in DUPLICATE_THRESHOLDS)."""
    matches = [prefix for prefix in DUPLICATE_THRESHOLDS if model_id.startswith(prefix)]
    return DUPLICATE_THRESHOLDS[max(matches, key=len)] if matches else DEFAULT_DUPLICATE_THRESHOLD


def duplicate_groups(records: Sequence[Record], index: VectorIndex | None, threshold: float) -> tuple[list[list[int]], dict[int, float]]:
    """Connected groups (indices into records) of files sharing content or with cosine ≥ threshold.

    Biggest group first (ties: the group whose first path sorts first); inside a group the largest file comes
    first, then by path. Also returns each member's best similarity to another member of its group.
    """
    parent = list(range(len(records)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    best: dict[int, float] = {}
    by_hash: dict[Any, list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        if record.get("content_hash"):
            by_hash[record["content_hash"]].append(i)
    for members in by_hash.values():  # identical content: similarity 1
        for member in members[1:]:
            parent[find(member)] = find(members[0])
        if len(members) > 1:
            best.update({member: 1.0 for member in members})
    if index is not None and len(index):
        hashes = list(by_hash)
        positions = index.positions(hashes)
        present = positions >= 0
        owner_of_position = {int(p): by_hash[h][0] for h, p, ok in zip(hashes, positions, present) if ok}
        first, second, similarity = index.similar_pairs(positions[present], threshold,
                                                        exact_max=DUPLICATES_EXACT_MAX_ITEMS)
        for a, b, sim in zip(first.tolist(), second.tolist(), similarity.tolist()):
            left, right = owner_of_position[a], owner_of_position[b]
            parent[find(left)] = find(right)
            for member in (*by_hash[records[left]["content_hash"]], *by_hash[records[right]["content_hash"]]):
                best[member] = max(best.get(member, -1.0), min(sim, 1.0))
    grouped: dict[int, list[int]] = defaultdict(list)
    for i in range(len(records)):
        grouped[find(i)].append(i)
    groups = [sorted(members, key=lambda i: (-(records[i].get("size") or 0), str(records[i].get("path", ""))))
              for members in grouped.values() if len(members) > 1]
    groups.sort(key=lambda members: (-len(members), str(records[members[0]].get("path", ""))))
    return groups, best

