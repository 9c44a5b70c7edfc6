"""How much can choosing what to rate help at all, on bench/taste.py's simulated users? An oracle bound.

    python bench/active_bound.py 0 6     # corpus A (docstrings), 6 users, seed 0
    python bench/active_bound.py 1 6     # corpus B (generated images)

The simulated taste is half a per-group preference (module / image family) and half a linear function of the
embedding. An oracle that knows the groups chooses what to rate by the greedy drop of the group-mean error
(first ratings go to the largest unrated groups, later ones spread by size), and is scored with three learners:
ridge and kNN (what the app trains, blind to the groups) and a shrunken per-group mean (which sees them). Held-out
SROCC, mean over users. Not a product path: it bounds the benefit of any choice of files for a given learner.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import active as bench_active  # noqa: E402
import taste as protocol  # noqa: E402

from anagnorisis.taste.evaluate import srocc  # noqa: E402
from anagnorisis.taste.models import KnnModel, RidgeModel  # noqa: E402

BUDGETS = (50, 100, 200)
GROUP_VARIANCE = 2.08  # (0.5 * U(0, 10)) has variance 25 / 12
RESIDUAL_VARIANCE = 1.5  # rating noise plus the linear half within a group, roughly
PRIOR_WEIGHT = 0.7  # the per-group mean shrinks towards the overall mean by this many pseudo-ratings


def group_mean_prediction(rows: np.ndarray, ratings: np.ndarray, groups: np.ndarray) -> np.ndarray:
    overall = ratings[rows].mean()
    out = np.full(len(groups), overall)
    for group in np.unique(groups[rows]):
        members = rows[groups[rows] == group]
        out[groups == group] = (ratings[members].sum() + overall * PRIOR_WEIGHT) / (len(members) + PRIOR_WEIGHT)
    return out


def oracle_order(pool: np.ndarray, groups: np.ndarray, rng: np.random.Generator, budget: int) -> np.ndarray:
    share = np.bincount(groups, minlength=groups.max() + 1) / len(groups)
    available = {g: list(rng.permutation(pool[groups[pool] == g])) for g in range(len(share))}
    counts = np.zeros(len(share))

    def error(k: np.ndarray) -> np.ndarray:
        return share * GROUP_VARIANCE * RESIDUAL_VARIANCE / (RESIDUAL_VARIANCE + k * GROUP_VARIANCE)

    order = []
    while len(order) < budget:
        gain = error(counts) - error(counts + 1)
        gain[[not available[g] for g in range(len(share))]] = -1.0
        g = int(np.argmax(gain))
        order.append(available[g].pop())
        counts[g] += 1
    return np.array(order)


def main(corpus_id: int, users: int) -> None:
    corpus = protocol.docstring_corpus(None) if corpus_id == 0 else protocol.image_corpus(protocol.IMAGES)
    X, groups = corpus.vectors, corpus.groups
    held_out = bench_active.held_out_rows(len(X), corpus_id, protocol.HELD_OUT)
    pool = np.setdiff1d(np.arange(len(X)), held_out)
    scores: dict[str, dict[int, list[float]]] = {}
    for user in range(users):
        taste = protocol.user_taste(corpus, user, corpus_id)
        rng = np.random.default_rng([corpus_id, user, 0, 1])
        ratings = protocol.noisy_ratings(taste, rng)
        random_order = rng.permutation(pool)
        oracle = oracle_order(pool, groups, rng, max(BUDGETS))
        for budget in BUDGETS:
            for choice, rows in (("random", random_order[:budget]), ("oracle", oracle[:budget])):
                predictions = {
                    "ridge": RidgeModel().fit(X[rows], ratings[rows]).predict(X[held_out])[0],
                    "kNN": KnnModel().fit(X[rows], ratings[rows]).predict(X[held_out])[0],
                    "group mean (sees the groups)": group_mean_prediction(rows, ratings, groups)[held_out],
                }
                for learner, predicted in predictions.items():
                    key = f"{choice} choice, {learner}"
                    scores.setdefault(key, {}).setdefault(budget, []).append(srocc(ratings[held_out], predicted))
    print(f"{corpus.name}: {len(np.unique(groups))} groups, {users} users, held-out SROCC")
    print_table("choice, learner", BUDGETS, scores)


def print_table(first_column: str, budgets: tuple[int, ...], scores: dict[str, dict[int, list[float]]]) -> None:
    """One markdown row per key: the mean score at each budget."""
    print(f"| {first_column} | " + " | ".join(str(b) for b in budgets) + " |")
    print("|---|" + "---:|" * len(budgets))
    for key, by_budget in scores.items():
        print(f"| {key} | " + " | ".join(f"{np.mean(by_budget[b]):.3f}" for b in budgets) + " |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0, int(sys.argv[2]) if len(sys.argv) > 2 else 6)
