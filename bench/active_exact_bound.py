"""Ratings saved by choosing what to rate, when the learner knows the simulated user's prior.

    python bench/active_exact_bound.py 0 10    # corpus A (docstrings), 10 users, seed 0
    python bench/active_exact_bound.py 1 10    # corpus B (generated images)

bench/taste.py's simulated taste is 0.5 x a U(0, 10) value per group plus 0.5 x a min-max-scaled w.x, rated with
N(0, 1) noise rounded to 0.5. Here the learner is the Gaussian process with that covariance (group variance 25/12
on "same group", s^2 x x.x' for the linear half with s^2 averaged over the users, noise 1 + 1/48): the
best predictor there is for this protocol, up to the uniform and rounding details. Files are chosen at random
or by greedy V-optimal design on the same covariance (label-independent, so one order serves every user).
Two priors:
- exact: the group term ("same group" covariance) and the linear term, as the user was drawn;
- embedding only: the linear term alone, the group term counted as noise (25/12 more variance). This is what a
  learner on the embedding alone (SPEC §6: embedding -> rating) can know where the embedding does not reveal
  the groups: on B a file's nearest neighbour shares its family only 49 % of the time (73 % of the modules on A).
Held-out SROCC, mean over users. Not a product path: it says how far any learner and picker could go.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import active as bench_active  # noqa: E402
from active_bound import print_table  # noqa: E402
import taste as protocol  # noqa: E402

from anagnorisis.taste.evaluate import srocc  # noqa: E402

BUDGETS = (25, 50, 75, 100, 125, 150, 200)
NOISE = 1.0 + 1.0 / 48  # N(0, 1) plus rounding to 0.5
GROUP_VARIANCE = 25 / 12  # of 0.5 x U(0, 10)


def v_optimal(K: np.ndarray, pool: np.ndarray, budget: int, noise: float = NOISE) -> np.ndarray:
    """Greedy picks that most reduce the summed posterior variance over every file."""
    covariance, chosen, candidates = K.copy(), [], pool.copy()
    for _ in range(budget):
        column = covariance[:, candidates]
        gain = (column ** 2).sum(axis=0) / (covariance[candidates, candidates] + noise)
        pick = int(candidates[np.argmax(gain)])
        chosen.append(pick)
        c = covariance[:, pick].copy()
        covariance -= np.outer(c, c) / (c[pick] + noise)
        candidates = candidates[candidates != pick]
    return np.array(chosen)


def posterior_mean(K: np.ndarray, rows: np.ndarray, ratings: np.ndarray, noise: float = NOISE) -> np.ndarray:
    mean = ratings[rows].mean()
    weights = np.linalg.solve(K[np.ix_(rows, rows)] + noise * np.eye(len(rows)), ratings[rows] - mean)
    return mean + K[:, rows] @ weights


def main(corpus_id: int, users: int) -> None:
    corpus = protocol.docstring_corpus(None) if corpus_id == 0 else protocol.image_corpus(protocol.IMAGES)
    X, groups = corpus.vectors.astype(np.float64), corpus.groups
    held_out = bench_active.held_out_rows(len(X), corpus_id, protocol.HELD_OUT)
    pool = np.setdiff1d(np.arange(len(X)), held_out)
    scales = []
    for user in range(users):  # the linear half's scale, as user_taste draws it
        rng = np.random.default_rng([corpus_id, user])
        rng.uniform(0, 10, len(corpus.group_names))
        linear = X @ rng.normal(size=X.shape[1])
        scales.append(5.0 / (linear.max() - linear.min()))
    centred = X - X.mean(axis=0)
    linear = np.mean(np.square(scales)) * (centred @ centred.T)
    priors = {"exact prior": (GROUP_VARIANCE * (groups[:, None] == groups[None, :]) + linear, NOISE),
              "embedding-only prior": (linear, NOISE + GROUP_VARIANCE)}
    scores: dict[str, dict[int, list[float]]] = {}
    for prior, (K, noise) in priors.items():
        design = v_optimal(K, pool, max(BUDGETS), noise)
        for user in range(users):
            rng = np.random.default_rng([corpus_id, user, 0, 1])
            ratings = protocol.noisy_ratings(protocol.user_taste(corpus, user, corpus_id), rng)
            random_order = rng.permutation(pool)
            for budget in BUDGETS:
                for choice, rows in (("random", random_order[:budget]), ("V-optimal", design[:budget])):
                    predicted = posterior_mean(K, rows, ratings, noise)
                    scores.setdefault(f"{prior}, {choice}", {}).setdefault(budget, []).append(
                        srocc(ratings[held_out], predicted[held_out]))
    print(f"{corpus.name}: Gaussian process learners, {users} users, held-out SROCC")
    print_table("prior, choice", BUDGETS, scores)
    for prior in priors:
        random_curve = {b: float(np.mean(v)) for b, v in scores[f"{prior}, random"].items()}
        best_curve = {b: float(np.mean(v)) for b, v in scores[f"{prior}, V-optimal"].items()}
        needed, reached = bench_active.ratings_needed(best_curve, random_curve[max(BUDGETS)])
        print(f"- {prior}: V-optimal needs {needed:.0f} ratings{'' if reached else ' (not reached)'} to reach "
              f"random@{max(BUDGETS)} = {random_curve[max(BUDGETS)]:.3f} (mean curves)")

if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0, int(sys.argv[2]) if len(sys.argv) > 2 else 10)
