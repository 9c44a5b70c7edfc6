"""Learning from fewer ratings (SPEC §6): which files to rate next, which two to compare, and why.

The picker keeps its own small Bayesian model of the user's taste, refit from the current ratings and
A/B choices at every call (no training needed, so a rating made a second ago already counts):

- Features. taste/graph.py's GraphFeatures, the same map the "graph" taste model learns on: the
  library's top principal components (the smooth trend a linear taste follows) and the low-frequency
  eigenvectors of its nearest-neighbour graph (the "this family of files" part of a taste).
- Posterior. Bayesian linear regression on those features: precision A = PRIOR_PRECISION * I plus one
  rank-1 term per rating (phi) and per A/B choice (phi_a - phi_b, which observes the difference).
  A file's uncertainty is proportional to sqrt(phi' A^-1 phi): large far from everything rated.
- Rate next. Greedy batch selection by the expected drop of the mean posterior variance over a sample of
  the library (V-optimal design): a file is worth rating when many files resemble it and the model is
  unsure about all of them. After each pick A is updated as if it had been rated (the rating's value
  does not change a linear-Gaussian variance), so the batch spreads out instead of proposing ten
  near-duplicates. With no ratings at all the same rule covers the library: its first picks represent
  its densest, most distinct regions. A share of the slots (EXPLOIT_SHARE) goes to files the user will
  probably like, so rating is not all homework: of the candidates predicted in the top tenth, the one whose
  rating teaches most (measured on bench/taste.py's corpus A, users outside bench/active.py's: 5 fewer ratings
  to reach random@200 than taking the highest predicted rating plus one standard deviation).
- A/B pairs. The first file is the most informative one; its partner has a predicted rating close to
  it and a large uncertainty of the difference: a choice whose outcome the model cannot foresee.

Pure numpy: the store-facing part is taste/queue.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Sequence

import numpy as np

from anagnorisis.taste.graph import GRAPH_SAMPLE, GraphFeatures, unit_rows  # noqa: F401  (unit_rows: queue.py)

# Rows used to fit the features (the graph) and to measure the library's variance: enough to be
# stable, small enough that a million-file library costs the same as a ten-thousand-file one.
FIT_SAMPLE = GRAPH_SAMPLE
REFERENCE_SAMPLE = 2000
# Share of the prior variance on the linear block when choosing files. More than the taste model's own
# (graph.LINEAR_SHARE): a picker that trusts the graph alone chases its densest regions (measured on
# bench/taste.py's corpora: 0.5 picked better files than 0.3 on both, for the graph model to learn from).
PICKER_LINEAR_SHARE = 0.5
# Candidates scored per call; larger libraries are sampled (plus the best-predicted files for exploitation).
MAX_CANDIDATES = 6000
# Prior precision of the feature weights: a rating near a file removes about half its uncertainty.
PRIOR_PRECISION = 1.0
# One slot in five goes to a file the user will probably like: one predicted in the top LIKE_QUANTILE.
EXPLOIT_SHARE = 0.2
LIKE_QUANTILE = 0.9
# Two files this similar (cosine) are one file twice: never paired.
NEAR_DUPLICATE = 0.985


class FeatureSpace(GraphFeatures):
    """The picker's features: taste/graph.py's GraphFeatures (principal components + the eigenvectors of the
    library's neighbourhood graph), with PICKER_LINEAR_SHARE of the prior variance on the linear block."""

    @classmethod
    def fit(cls, X: np.ndarray, seed: int = 0, **options: Any) -> "FeatureSpace":
        options.setdefault("linear_share", PICKER_LINEAR_SHARE)
        return super().fit(X, seed, **options)  # type: ignore[return-value]


class Posterior:
    """Bayesian linear regression on picker features: ratings and A/B choices in, mean and spread out."""

    def __init__(self, dim: int, prior_precision: float = PRIOR_PRECISION) -> None:
        self.covariance = np.eye(dim) / prior_precision
        self.moment = np.zeros(dim)
        self.offset = 5.0  # the mean rating: the model explains deviations from it
        self.noise = 1.5  # rating points; refit from the ratings when there are some

    @classmethod
    def fit(cls, features_rated: np.ndarray, ratings: np.ndarray, pref_differences: np.ndarray | None = None,
            pref_targets: np.ndarray | None = None) -> "Posterior":
        """From (rated files x dim) features and their ratings, plus one row phi_a - phi_b per A/B choice
        with target 1 (a won) or 0 (equal)."""
        dim = features_rated.shape[1]
        posterior = cls(dim)
        ratings = np.asarray(ratings, dtype=np.float64)
        if len(ratings):
            posterior.offset = float(ratings.mean())
            posterior.noise = max(float(ratings.std()), 0.5) if len(ratings) > 1 else 1.5
        rows = [features_rated]
        targets = [(ratings - posterior.offset) / posterior.noise]
        if pref_differences is not None and len(pref_differences):
            rows.append(pref_differences)
            targets.append(np.asarray(pref_targets, dtype=np.float64) / posterior.noise)
        Phi, t = np.vstack(rows), np.concatenate(targets)
        if len(Phi):
            posterior.covariance = np.linalg.inv(np.eye(dim) * PRIOR_PRECISION + Phi.T @ Phi)
            posterior.moment = Phi.T @ t
        return posterior

    def mean(self, features: np.ndarray) -> np.ndarray:
        """Predicted rating of each feature row."""
        return self.offset + self.noise * (features @ (self.covariance @ self.moment))

    def spread(self, features: np.ndarray) -> np.ndarray:
        """Predictive standard deviation of the taste (rating points), without the rating noise."""
        variance = np.einsum("ij,jk,ik->i", features, self.covariance, features)
        return self.noise * np.sqrt(np.maximum(variance, 0.0))


@dataclass
class Pick:
    """One proposal: a candidate index, its score and why it was chosen."""

    index: int
    score: float
    role: str  # "learn" (teaches the model most), "like" (you will probably like it), "cover" (cold start)
    predicted: float | None
    spread: float


def _variance_reduction(candidates: np.ndarray, covariance: np.ndarray, second_moment: np.ndarray) -> np.ndarray:
    """Mean drop of the reference variance if each candidate were rated (in units of the noise)."""
    projected = candidates @ covariance  # (c, dim): Sigma phi
    numerator = np.einsum("ij,jk,ik->i", projected, second_moment, projected)
    return numerator / (1.0 + np.einsum("ij,ij->i", projected, candidates))


class _GreedyState:
    """Per-candidate quantities of the greedy batch, updated in O(candidates x dim) per pick.

    With Q = C Sigma: spread^2 = diag(Q C'), gain numerator = diag(Q S Q'). Observing r (p = Sigma r,
    k = 1 + r'p, a = Q r) changes Sigma by -pp'/k, so Q by -a p'/k; both diagonals follow in closed form.
    """

    def __init__(self, candidates: np.ndarray, covariance: np.ndarray, second_moment: np.ndarray) -> None:
        self.C = candidates
        self.S = second_moment
        self.Q = candidates @ covariance
        self.QS = self.Q @ second_moment
        self.variance = np.einsum("ij,ij->i", self.Q, candidates)
        self.numerator = np.einsum("ij,ij->i", self.QS, self.Q)

    def gain(self) -> np.ndarray:
        return self.numerator / (1.0 + self.variance)

    def observe(self, best: int) -> None:
        row, p = self.C[best], self.Q[best].copy()
        k = 1.0 + float(row @ p)
        a = self.Q @ row
        Sp = self.S @ p
        self.numerator = self.numerator - 2.0 * (a / k) * (self.Q @ Sp) + (a / k) ** 2 * float(p @ Sp)
        self.variance = self.variance - a * a / k
        self.Q -= np.outer(a / k, p)
        self.QS -= np.outer(a / k, Sp)


def propose(
    candidates: np.ndarray,
    posterior: Posterior,
    reference: np.ndarray,
    n: int,
    *,
    predicted: np.ndarray | None = None,
    exploit_share: float = EXPLOIT_SHARE,
    cold: bool = False,
) -> list[Pick]:
    """Up to n picks among candidate feature rows, best first, diverse by construction.

    `reference`: feature rows of a sample of the library, whose variance the picks should reduce.
    `predicted`: a better estimate of each candidate's rating than the posterior's (the trained taste
    model's), used for exploitation; None uses the posterior mean. Each pick counts as rated for the
    next one (in the greedy state; the caller's posterior is left as it is).
    """
    n = min(n, len(candidates))
    if n <= 0:
        return []
    second_moment = reference.T @ reference / max(len(reference), 1)
    predicted = posterior.mean(candidates) if predicted is None else np.asarray(predicted, dtype=np.float64)
    exploit = 0 if cold else int(math.floor(n * exploit_share + 0.5))
    # Exploitation slots are spread through the batch (every 1/share-th), not stacked at its end.
    exploit_slots = {int(round((i + 1) / exploit_share)) - 1 for i in range(exploit)} if exploit else set()
    state = _GreedyState(candidates, posterior.covariance, second_moment)
    taken = np.zeros(len(candidates), dtype=bool)
    liked = predicted >= np.quantile(predicted, LIKE_QUANTILE) if exploit else taken
    picks: list[Pick] = []
    for slot in range(n):
        spread = posterior.noise * np.sqrt(np.maximum(state.variance, 0.0))
        if slot in exploit_slots:
            # Among the files you will probably like, the one that teaches most; once those are all
            # taken, the best predicted of the rest.
            left = liked & ~taken
            score = np.where(left, state.gain(), -np.inf) if left.any() else predicted
            role = "like"
        else:
            score, role = state.gain(), ("cover" if cold else "learn")
        score = np.where(taken, -np.inf, score)
        best = int(np.argmax(score))
        if not np.isfinite(score[best]):
            break
        taken[best] = True
        picks.append(Pick(best, float(score[best]), role, float(predicted[best]), float(spread[best])))
        state.observe(best)
    return picks


def propose_pair(
    first_choices: np.ndarray,
    partners: np.ndarray,
    posterior: Posterior,
    reference: np.ndarray,
    *,
    predicted_first: np.ndarray | None = None,
    predicted_partners: np.ndarray | None = None,
    similarity: np.ndarray | None = None,
    excluded: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[int, int, float] | None:
    """(first index, partner index, expected information) of the most informative A/B question.

    The first file is the candidate whose rating would teach most; its partner maximises the spread of the
    predicted difference times the chance that the answer is not foregone (close predicted ratings).
    `similarity` (first x partners cosine) rules out near-duplicates; `excluded` (first x partners, bool)
    rules out pairs already compared or a file paired with itself. With `rng`, every value is multiplied by
    log-normal noise, so a skipped question is followed by another good one rather than the same one.
    """
    if len(first_choices) == 0 or len(partners) == 0:
        return None
    second_moment = reference.T @ reference / max(len(reference), 1)
    gain = _variance_reduction(first_choices, posterior.covariance, second_moment)
    if rng is not None:
        gain = gain * rng.lognormal(0.0, 0.5, len(gain))
    mu_first = posterior.mean(first_choices) if predicted_first is None else np.asarray(predicted_first, float)
    mu_partner = posterior.mean(partners) if predicted_partners is None else np.asarray(predicted_partners, float)
    best: tuple[int, int, float] | None = None
    for a in np.argsort(-gain)[: min(8, len(gain))]:
        difference = first_choices[a][None, :] - partners
        variance = np.einsum("ij,jk,ik->i", difference, posterior.covariance, difference) * posterior.noise ** 2
        spread = np.sqrt(np.maximum(variance, 1e-12))
        gap = mu_first[a] - mu_partner
        value = spread * np.exp(-0.5 * (gap / (spread + posterior.noise * 0.5)) ** 2)
        if rng is not None:
            value = value * rng.lognormal(0.0, 0.5, len(value))
        if similarity is not None:
            value = np.where(similarity[a] >= NEAR_DUPLICATE, -np.inf, value)
        if excluded is not None:
            value = np.where(excluded[a], -np.inf, value)
        b = int(np.argmax(value))
        if np.isfinite(value[b]) and (best is None or value[b] > best[2]):
            best = (int(a), b, float(value[b]))
    return best


def asked_mask(firsts: Sequence[Hashable], partners: Sequence[Hashable],
               asked: Iterable[tuple[Hashable, Hashable]]) -> np.ndarray:
    """(firsts x partners) bool: True where the two are one file or the pair was asked already (either order)."""
    where_first = {key: i for i, key in enumerate(firsts)}
    where_partner = {key: j for j, key in enumerate(partners)}
    mask = np.zeros((len(firsts), len(partners)), dtype=bool)
    for key, j in where_partner.items():
        if key in where_first:
            mask[where_first[key], j] = True
    for x, z in asked:
        for one, other in ((x, z), (z, x)):
            if one in where_first and other in where_partner:
                mask[where_first[one], where_partner[other]] = True
    return mask


def nearest_rated_neighbours(query: np.ndarray, rated: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(positions into `rated`, cosine similarities) of the k rated vectors nearest to `query`, best first."""
    if len(rated) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    similarity = unit_rows(rated) @ unit_rows(np.asarray(query)[None, :])[0]
    k = min(k, len(rated))
    top = np.argpartition(-similarity, k - 1)[:k]
    order = top[np.argsort(-similarity[top], kind="stable")]
    return order.astype(np.int64), similarity[order]
