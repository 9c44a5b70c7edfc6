"""Shared pieces of the taste models: A/B preference arrays, input scaling and a closed-form ridge solver.

Ridge is solved through an eigendecomposition of the (d x d) Gram matrix, so the exact leave-one-out
error of every alpha on a grid costs one pass over the data, and the same decomposition gives each
item's leverage, which is how far it lies from the rated data (used for uncertainty).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import numpy.typing as npt
import torch

# Re-exported: the models import the preference helpers from here with the ridge solver.
from anagnorisis.taste.prefs import (Preferences, Vectors, as_preferences, preferences_within, rated_rows,  # noqa: F401
                                     weak_rows)

# Alpha is searched relative to the number of ratings, because the Gram matrix grows with it and
# inputs are scaled to unit mean variance: 1e-3 is almost plain least squares, 1e3 almost the mean.
RELATIVE_ALPHA_GRID = tuple(float(a) for a in np.logspace(-3, 3, 19))
# The extra input of a stacked ridge is penalised this much per rating: enough to stay solvable,
# too little to shrink one strong column ...
FEATURE_RELATIVE_ALPHA = 1e-3
# ... and at least this share of the embedding's alpha: with few ratings (large alpha) the extra
# input's weight shrinks with the rest; with many it is almost free (measured on bench/taste.py:
# 1.0 lost the neighbours' gain at 500 ratings, 0.0 overfit it at 50).
FEATURE_ALPHA_SHARE = 0.1
# A 1 - leverage this close to zero means an interpolated point; clip so LOO stays finite.
MIN_ONE_MINUS_LEVERAGE = 1e-6


@dataclass
class InputScaler:
    """Centres inputs and scales them by one number so the mean feature variance is 1.

    One scalar (not per-feature whitening) keeps the geometry of L2-normalised embeddings, where
    low-variance dimensions are mostly noise, while still making alpha grids scale-free.
    """

    mean: np.ndarray
    scale: float

    @classmethod
    def fit(cls, X: np.ndarray) -> "InputScaler":
        X = np.asarray(X, dtype=np.float32)
        mean = X.mean(axis=0, dtype=np.float64)
        mean_variance = float(np.mean(X.var(axis=0, dtype=np.float64)))
        scale = 1.0 / np.sqrt(mean_variance) if mean_variance > 1e-20 else 1.0
        return cls(mean=mean.astype(np.float32), scale=float(scale))

    def transform(self, X: np.ndarray) -> np.ndarray:
        return ((np.asarray(X, dtype=np.float32) - self.mean) * np.float32(self.scale)).astype(np.float32)


@dataclass
class RidgeSolution:
    """A ridge fit in scaled input space, with what its uncertainty needs."""

    coef: np.ndarray  # (d,)
    intercept: float
    alpha: float
    loo_mse: float  # leave-one-out mean squared error at alpha (NaN for weighted fits)
    x_mean: np.ndarray  # (d,) mean of the rated rows the fit was centred on
    leverage_basis: np.ndarray  # (d, d): leverage(x) = ||(x - x_mean) @ basis||^2
    n: int
    loo_predictions: np.ndarray | None = None  # each rated row predicted without itself (not saved)

    def predict(self, Xs: np.ndarray) -> np.ndarray:
        return matmul(Xs, self.coef[:, None])[:, 0].astype(np.float64) + self.intercept

    def leverage(self, Xs: np.ndarray) -> np.ndarray:
        """x^T (G + alpha I)^-1 x for centred x: grows as x leaves the span of the rated data."""
        projected = matmul(Xs - self.x_mean.astype(np.float32), self.leverage_basis)
        return np.einsum("ij,ij->i", projected, projected).astype(np.float64) + 1.0 / max(self.n, 1)


def ridge_to_state(ridge: RidgeSolution) -> dict[str, Any]:
    """The arrays and numbers of a ridge fit, for a model file."""
    return {"coef": ridge.coef, "intercept": ridge.intercept, "alpha": ridge.alpha, "loo_mse": ridge.loo_mse,
            "x_mean": ridge.x_mean, "leverage_basis": ridge.leverage_basis, "n": ridge.n}


def ridge_from_state(state: dict[str, Any]) -> RidgeSolution:
    """A ridge fit back from ridge_to_state()."""
    return RidgeSolution(coef=state["coef"], intercept=float(state["intercept"]), alpha=float(state["alpha"]),
                         loo_mse=float(state["loo_mse"]), x_mean=state["x_mean"],
                         leverage_basis=state["leverage_basis"], n=int(state["n"]))


def preference_rows(
    Xs: np.ndarray, prefs: Preferences, margin: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each choice as a difference row x_winner - x_loser with target `margin` (0 for a tie)."""
    diffs = Xs[prefs[:, 0]].astype(np.float64) - Xs[prefs[:, 1]].astype(np.float64)
    targets = np.where(prefs[:, 2] != 0, 0.0, margin)
    return diffs, targets


def solve_ridge(
    Xs: np.ndarray,
    y: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    pref_diffs: np.ndarray | None = None,
    pref_targets: np.ndarray | None = None,
    pref_weight: float = 1.0,
    relative_alphas: Sequence[float] = RELATIVE_ALPHA_GRID,
) -> RidgeSolution:
    """Ridge on rated rows (Xs, y), plus A/B difference rows, with alpha picked by exact LOO error.

    With one relative alpha there is no search. `weights` (e.g. bootstrap counts) weight the rows;
    the LOO error is then not computed.
    """
    # The (n x d) products run in float32 (twice the speed; alpha >= 1e-3 n keeps the system well
    # conditioned); the small (d x d) eigenproblem and the LOO sums run in float64.
    X = _tensor(Xs, torch.float32)
    y_t = _tensor(y, torch.float64)
    w = torch.ones(len(y_t), dtype=torch.float64) if weights is None else _tensor(weights, torch.float64)
    n_eff = float(w.sum())
    x_mean = (w.float() @ X).double() / n_eff
    y_mean = float(w @ y_t) / n_eff
    Xc, yc = X - x_mean.float(), y_t - y_mean
    Xw = Xc if weights is None else Xc * w.float()[:, None]
    gram = (Xw.T @ Xc).double()
    rhs = (Xw.T @ yc.float()).double()
    if pref_diffs is not None and len(pref_diffs):
        diffs = _tensor(pref_diffs, torch.float64)
        gram += pref_weight * diffs.T @ diffs
        rhs += pref_weight * diffs.T @ _tensor(pref_targets, torch.float64)
    eigvals, eigvecs = torch.linalg.eigh(gram)
    eigvals = eigvals.clamp_min(0.0)
    rotated_rhs = eigvecs.T @ rhs
    alphas = [a * max(n_eff, 1.0) for a in relative_alphas]
    Z = Xc @ eigvecs.float()
    alpha, loo_mse = _alpha_with_lowest_loo(Z, yc, eigvals, rotated_rhs, alphas, weights is None)
    coef = eigvecs @ (rotated_rhs / (eigvals + alpha))
    loo = None if weights is not None else (y_t - _loo_residuals(Z.double(), yc, eigvals, rotated_rhs, alpha)).numpy()
    return RidgeSolution(
        coef=coef.numpy(),
        intercept=y_mean - float(x_mean @ coef),
        alpha=alpha,
        loo_mse=loo_mse,
        x_mean=x_mean.numpy(),
        leverage_basis=(eigvecs / torch.sqrt(eigvals + alpha)).numpy(),
        n=int(round(n_eff)),
        loo_predictions=loo,
    )


def _alpha_with_lowest_loo(
    Z: torch.Tensor,
    yc: torch.Tensor,
    eigvals: torch.Tensor,
    rotated_rhs: torch.Tensor,
    alphas: list[float],
    unweighted: bool,
) -> tuple[float, float]:
    """Exact leave-one-out MSE of each alpha: residual / (1 - hat diagonal), intercept included.

    All alphas at once: two (n x d) @ (d x alphas) products in float32 instead of two passes per
    alpha (float32 is ample to rank alphas; the chosen fit itself is solved in float64).
    """
    if not unweighted:
        if len(alphas) != 1:
            raise ValueError("a weighted ridge fit takes one alpha; LOO search is for unweighted rows")
        return alphas[0], float("nan")
    inverse = 1.0 / (eigvals[:, None] + torch.tensor(alphas, dtype=torch.float64)[None, :])  # (d, alphas)
    fitted = (Z @ (rotated_rhs[:, None] * inverse).float()).double()
    hat = ((Z * Z) @ inverse.float()).double() + 1.0 / len(yc)
    residual = (yc[:, None] - fitted) / (1.0 - hat).clamp_min(MIN_ONE_MINUS_LEVERAGE)
    mse = (residual * residual).mean(0)
    best = int(torch.argmin(mse))
    return alphas[best], float(mse[best])


def _loo_residuals(
    Z: torch.Tensor,
    yc: torch.Tensor,
    eigvals: torch.Tensor,
    rotated_rhs: torch.Tensor,
    alpha: float,
) -> torch.Tensor:
    """Residual of each rated row when it is left out: (y - fitted) / (1 - hat diagonal)."""
    inverse = 1.0 / (eigvals + alpha)
    fitted = Z @ (rotated_rhs * inverse)
    hat = (Z * Z) @ inverse + 1.0 / len(yc)
    return (yc - fitted) / (1.0 - hat).clamp_min(MIN_ONE_MINUS_LEVERAGE)


def solve_stacked_ridge(
    Xs: np.ndarray,
    y: np.ndarray,
    feature: np.ndarray,
    alpha: float,
    *,
    pref_diffs: np.ndarray | None = None,
    pref_feature_diffs: np.ndarray | None = None,
    pref_targets: np.ndarray | None = None,
    pref_weight: float = 1.0,
) -> tuple[np.ndarray, float, float]:
    """Ridge on the embedding plus one extra input (e.g. the neighbours' mean rating), fixed alpha.

    The extra input is standardised and penalised less than the embedding (FEATURE_ALPHA_SHARE):
    it is one strong, well-conditioned column, while alpha tames the many embedding dimensions.
    Returns (embedding coefficients, extra-input coefficient, intercept), in the input's own units.
    """
    X = _tensor(Xs, torch.float32)
    k = _tensor(feature, torch.float64)
    k_mean, k_scale = float(k.mean()), float(k.std()) if len(k) > 1 else 1.0
    k_scale = k_scale if k_scale > 1e-9 else 1.0
    A = torch.cat([X, ((k - k_mean) / k_scale).float()[:, None]], dim=1)
    y_t = _tensor(y, torch.float64)
    a_mean, y_mean = A.mean(0), float(y_t.mean())
    Ac = A - a_mean
    gram = (Ac.T @ Ac).double()
    rhs = (Ac.T @ (y_t - y_mean).float()).double()
    if pref_diffs is not None and len(pref_diffs):
        diffs = torch.cat([_tensor(pref_diffs, torch.float64),
                           _tensor(pref_feature_diffs, torch.float64)[:, None] / k_scale], dim=1)
        gram += pref_weight * diffs.T @ diffs
        rhs += pref_weight * diffs.T @ _tensor(pref_targets, torch.float64)
    penalty = torch.full((A.shape[1],), float(alpha), dtype=torch.float64)
    penalty[-1] = max(FEATURE_RELATIVE_ALPHA * len(y_t), float(alpha) * FEATURE_ALPHA_SHARE)
    coef = torch.linalg.solve(gram + torch.diag(penalty), rhs)
    feature_coef = float(coef[-1]) / k_scale
    intercept = y_mean - float(a_mean.double() @ coef) - feature_coef * k_mean
    return coef[:-1].numpy(), feature_coef, intercept


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b in float32 through torch.

    Heavy products in this package all go through torch: torch's OpenMP threads and numpy's
    OpenBLAS threads spin-wait for each other on a 2-core machine, which made alternating
    numpy and torch work up to 20x slower.
    """
    return (_tensor(a, torch.float32) @ _tensor(b, torch.float32)).numpy()


def _tensor(array: np.ndarray | None, dtype: torch.dtype) -> torch.Tensor:
    numpy_dtype = np.float32 if dtype == torch.float32 else np.float64
    return torch.from_numpy(np.ascontiguousarray(array, dtype=numpy_dtype))
