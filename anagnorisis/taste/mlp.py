"""The MLP head of the taste model: a small ensemble trained in PyTorch, GPU when present.

Every network reads the embedding x and one more input, k(x): the similarity-weighted mean rating
of x's 10 nearest rated items (leaving the item itself out in training, and a CV fold's held-out
ratings out of that fold's network). out = v.x + a k(x) + c + W2 gelu(W1 x). Tastes mix a smooth
trend over the embedding (what ridge finds) with preferences for whole clusters (what neighbours
find); the head weighs both. The linear part starts at the closed-form ridge solution on (x, k)
with ridge's own alpha as its penalty and the MLP part starts at zero, so training begins from
that stacked ridge and early stopping on validation keeps it from doing worse.
The loss is MSE on ratings plus a logistic ranking loss on A/B choices (a squared gap for a tie).

Cross-validation and the final ensemble train as one batch of networks sharing each input batch:
network b < F is the model of CV fold b (its held-out rows weigh 0), the others are the ensemble
members trained on bootstrap weights of all ratings. The first layers of all networks are one wide
matrix, so an epoch of all of them is a single GEMM per batch. The epoch with the best pooled
validation error of the fold networks picks the members' snapshot: that is "the best model so far".
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from anagnorisis.taste.device import pick_device
from anagnorisis.taste.folds import CvSplits
from anagnorisis.taste.linear import (
    InputScaler,
    Preferences,
    RidgeSolution,
    as_preferences,
    preference_rows,
    preferences_within,
    rated_rows,
    ridge_from_state,
    ridge_to_state,
    solve_ridge,
    solve_stacked_ridge,
)
from anagnorisis.taste.neighbours import NeighbourLists, nearest_rated, neighbour_mean, unit_rows
from anagnorisis.taste.persist import State, read_state_for, write_model_file

# Below this many ratings there is no validation split; members train a fixed number of steps.
MIN_RATINGS_FOR_FOLDS = 4
# A network whose training ratings are all equal still needs a scale; 0.25 rating points is the
# smallest step a person would express (ratings come in 0.5 steps).
MIN_RATING_SCALE = 0.25
# Predict in chunks: a million files never need whole scaled copies, and kNN holds a 4096 x ratings block.
PREDICT_CHUNK_ROWS = 4096
# Below this many rated values (ratings x dimensions) torch runs on one thread: small products gain
# nothing from a second thread. Above it, on half the cores (at most 8): an OpenMP barrier waits
# for its slowest thread, so a thread descheduled by the app's other work stalls every product.
# Measured on 2 cores, 10k x 384: one thread 4.7 s idle and 5.9 s beside 5 busy processes; two
# threads 3.3 s idle but 24 s beside them (and a 300 x 64 fit: 0.6 s against 20 s).
ONE_THREAD_BELOW = 1_000_000
MAX_TRAINING_THREADS = 8
# A later epoch replaces the kept one only if it lowers the validation loss by this share: with
# few ratings the loss curve is noisy, and drifting off the ridge start on noise cost held-out
# SROCC on bench/taste.py (0.237 against 0.247 at 50 ratings).
MIN_RELATIVE_IMPROVEMENT = 0.01


@dataclass(frozen=True)
class MlpConfig:
    """Sizes and training knobs of the MLP ensemble; defaults keep 10k x 384 CV + fit within seconds."""

    members: int = 5
    hidden: int = 32
    dropout: float = 0.1
    learning_rate: float = 3e-3
    linear_learning_rate: float = 1e-3
    hidden_weight_decay: float = 1e-3  # L2 on the MLP part, per network
    preference_weight: float = 1.0  # an A/B choice weighs about as much as one rating
    preference_scale: float = 1.0  # rating points; a gap this size makes a choice 73 % sure
    rating_pair_weight: float = 0.0  # optional ranking loss on pairs of rated items
    batches_per_epoch: int = 16
    min_batch: int = 64
    max_batch: int = 1024
    max_steps: int = 1500  # with early stopping this is rarely reached
    patience_steps: int = 150
    min_patience_epochs: int = 5
    steps_without_validation: int = 200  # when there are too few ratings to hold any out


@dataclass
class EpochReport:
    epoch: int
    train_loss: float  # MSE (rating points^2) of the fold networks on their training rows
    val_loss: float  # pooled MSE of the fold networks on their held-out rows


@dataclass
class MlpTrainingReport:
    """What one training run of the ensemble did, for train.py's report."""

    epochs: int = 0
    best_epoch: int = 0
    best_val_mse: float = float("nan")  # pooled validation MSE at best_epoch (which picks the members)
    oof_predictions: np.ndarray | None = None  # (repeats, rated rows): each split's out-of-fold predictions
    oof_mse: float = float("nan")  # MSE of oof_predictions: honest, see _cross_validated_epochs
    stopped: bool = False  # should_stop() said stop
    budget_reached: bool = False
    history: list[EpochReport] = field(default_factory=list)


def predict_in_chunks(
    predict_chunk: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], X: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Apply a (rating, uncertainty) predictor to X in row chunks, so a million files never need
    several scaled copies of their whole embedding matrix at once."""
    parts = [predict_chunk(X[start:start + PREDICT_CHUNK_ROWS]) for start in range(0, len(X), PREDICT_CHUNK_ROWS)]
    if not parts:
        return np.zeros(0), np.zeros(0)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def training_threads(n_rated: int, dim: int, available: int | None = None) -> int:
    """Torch threads for training on n_rated x dim ratings (see ONE_THREAD_BELOW)."""
    available = torch.get_num_threads() if available is None else available
    if n_rated * dim < ONE_THREAD_BELOW:
        return 1
    return max(1, min(MAX_TRAINING_THREADS, available // 2))


@contextlib.contextmanager
def threads_for(n_rated: int, dim: int) -> Iterator[None]:
    """Run torch on one thread for small problems and on half the cores otherwise; restore after."""
    before = torch.get_num_threads()
    wanted = training_threads(n_rated, dim, before)
    if wanted != before:
        torch.set_num_threads(wanted)
    try:
        yield
    finally:
        if wanted != before:
            torch.set_num_threads(before)


class MlpEnsemble:
    """A few bootstrap members of a ridge-plus-MLP head; uncertainty = their spread + a distance term."""

    name = "mlp"

    def __init__(self, config: MlpConfig | None = None, *, device: str = "auto", seed: int = 0) -> None:
        self.config = config or MlpConfig()
        self.device_setting = device
        self.seed = seed
        self.scaler: InputScaler | None = None
        self.params: dict[str, np.ndarray] = {}
        self.leverage_ridge: RidgeSolution | None = None
        self.rated_vectors = np.zeros((0, 0), dtype=np.float32)  # unit rows, for the neighbour input
        self.ratings = np.zeros(0)
        self.sigma = 1.0
        self.report = MlpTrainingReport()

    def fit(self, X: np.ndarray, y: np.ndarray, prefs: object = None) -> "MlpEnsemble":
        """Fit with an internal 5-fold split choosing the number of epochs."""
        n_rated = int(rated_rows(y).sum())
        folds = min(5, n_rated) if n_rated >= MIN_RATINGS_FOR_FOLDS else 0
        self.fit_with_folds(X, y, prefs, CvSplits.make(n_rated, folds, 1, self.seed))
        return self

    def fit_with_folds(
        self,
        X: np.ndarray,
        y: np.ndarray,
        prefs: object,
        splits: CvSplits,
        *,
        scaler: InputScaler | None = None,
        fold_ridges: list[RidgeSolution] | None = None,
        full_ridge: RidgeSolution | None = None,
        epochs: int | None = None,
        deadline: float | None = None,
        on_epoch: Callable[[EpochReport], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        neighbours: NeighbourLists | None = None,
    ) -> MlpTrainingReport:
        """Train the fold networks and the members together; keep the members of the best epoch.

        `epochs` fixes the number of epochs (no early stopping); `deadline` (time.perf_counter())
        ends training with the best snapshot so far, as does `should_stop()`. `neighbours` (every
        row of X against the rated rows) is computed here unless the caller already has it.
        """
        y = np.asarray(y, dtype=np.float64)
        rated = rated_rows(y)
        self.scaler = scaler or InputScaler.fit(X)
        Xs = self.scaler.transform(X)
        pref_array = as_preferences(prefs, len(y))
        self.rated_vectors = unit_rows(np.asarray(X, dtype=np.float32)[rated])
        self.ratings = y[rated]
        with threads_for(int(rated.sum()), Xs.shape[1]):
            lists = neighbours if neighbours is not None else nearest_rated(X, self.rated_vectors)
            ridges = _RidgeInits.build(Xs, y, rated, pref_array, splits, fold_ridges, full_ridge)
            run = _BatchedRun(self.config, Xs, y, rated, pref_array, splits, ridges, lists, self.seed,
                              pick_device(self.device_setting))
            self.report = run.train(epochs, deadline, on_epoch, should_stop)
        self.params = run.best_member_params()
        self.leverage_ridge = ridges.full
        error = self.report.oof_mse if splits.networks else ridges.full.loo_mse
        self.sigma = math.sqrt(error) if math.isfinite(error) else float(np.nanstd(y))
        return self.report

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean rating over members, and sqrt(member variance + sigma^2 * leverage)."""
        if self.scaler is None or self.leverage_ridge is None:
            raise RuntimeError("the MLP ensemble is not fitted")
        return predict_in_chunks(self._predict_chunk, X)

    def _predict_chunk(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.scaler is not None and self.leverage_ridge is not None
        Xs = self.scaler.transform(X)
        neighbour_rating, _ = neighbour_mean(nearest_rated(X, self.rated_vectors), self.ratings)
        deviation = (neighbour_rating - self.ratings.mean()).astype(np.float32)
        with torch.no_grad():
            tensors = {k: torch.from_numpy(v) for k, v in self.params.items()}
            ratings = _member_ratings(torch.from_numpy(Xs), torch.from_numpy(deviation), tensors,
                                      self.config.hidden).numpy().astype(np.float64)
        spread = ratings.std(axis=1)
        distance_term = self.sigma ** 2 * self.leverage_ridge.leverage(Xs)
        return ratings.mean(axis=1), np.sqrt(spread ** 2 + distance_term)

    def save(self, path: str | Path) -> None:
        write_model_file(path, self.name, self.state())

    @classmethod
    def load(cls, path: str | Path) -> "MlpEnsemble":
        return cls.from_state(read_state_for(cls.name, path))

    def state(self) -> State:
        assert self.scaler is not None and self.leverage_ridge is not None
        ridge = self.leverage_ridge
        return {
            "config": asdict(self.config),
            "seed": self.seed,
            "device": self.device_setting,
            "scaler_mean": self.scaler.mean,
            "scaler_scale": self.scaler.scale,
            "params": dict(self.params),
            "sigma": self.sigma,
            "ridge": ridge_to_state(ridge),
            "rated_vectors": self.rated_vectors,
            "ratings": self.ratings,
        }

    @classmethod
    def from_state(cls, state: State) -> "MlpEnsemble":
        model = cls(MlpConfig(**state["config"]), device=state["device"], seed=int(state["seed"]))
        model.scaler = InputScaler(mean=state["scaler_mean"], scale=float(state["scaler_scale"]))
        model.params = {k: np.asarray(v, dtype=np.float32) for k, v in state["params"].items()}
        model.sigma = float(state["sigma"])
        model.leverage_ridge = ridge_from_state(state["ridge"])
        model.rated_vectors = np.asarray(state["rated_vectors"], dtype=np.float32)
        model.ratings = np.asarray(state["ratings"], dtype=np.float64)
        return model


def _member_ratings(x: torch.Tensor, neighbour_deviation: torch.Tensor, p: dict[str, torch.Tensor],
                    hidden: int) -> torch.Tensor:
    """(rows, members) ratings of the saved members, in eval mode."""
    k = neighbour_deviation[:, None] / p["sd"]
    z = _forward(x, k, p, hidden, dropout=0.0, training=False)
    return p["mu"] + p["sd"] * z


def _forward(
    x: torch.Tensor, k: torch.Tensor, p: dict[str, torch.Tensor], hidden: int, dropout: float, training: bool
) -> torch.Tensor:
    """Standardised scores (rows, networks) of all networks at once.

    x: (rows, d) scaled embeddings; k: (rows, networks) neighbour deviations over the rating scale;
    p: W1 (d, networks * hidden), b1, W2 (networks, hidden), V (d, networks), a, c (networks).
    """
    networks = p["W2"].shape[0]
    h = F.gelu(x @ p["W1"] + p["b1"]).view(len(x), networks, hidden)
    if training and dropout > 0:
        h = F.dropout(h, p=dropout, training=True)
    return (h * p["W2"]).sum(-1) + x @ p["V"] + k * p["a"] + p["c"]


@dataclass
class _RidgeInits:
    """Ridge solutions the networks start from: one per fold network, one on all ratings."""

    folds: list[RidgeSolution]
    full: RidgeSolution

    @classmethod
    def build(
        cls,
        Xs: np.ndarray,
        y: np.ndarray,
        rated: np.ndarray,
        prefs: Preferences,
        splits: CvSplits,
        fold_ridges: list[RidgeSolution] | None,
        full_ridge: RidgeSolution | None,
    ) -> "_RidgeInits":
        rated_index = np.flatnonzero(rated)
        if fold_ridges is None:
            fold_ridges = [
                _ridge_on_rows(Xs, y, rated_index[~splits.held_out(j)], prefs, rated) for j in range(splits.networks)
            ]
        if full_ridge is None:
            full_ridge = _ridge_on_rows(Xs, y, rated_index, prefs, rated)
        return cls(folds=list(fold_ridges), full=full_ridge)


def _ridge_on_rows(
    Xs: np.ndarray, y: np.ndarray, rows: np.ndarray, prefs: Preferences, rated: np.ndarray
) -> RidgeSolution:
    """Ridge fitted on the given rated rows plus the A/B choices among them and unrated items."""
    allowed = ~rated
    allowed[rows] = True
    diffs, targets = preference_rows(Xs, preferences_within(prefs, allowed), margin=1.0)
    return solve_ridge(Xs[rows], y[rows], pref_diffs=diffs, pref_targets=targets)


def _improves(loss: float, best: float) -> bool:
    """A new best epoch must lower the validation loss by MIN_RELATIVE_IMPROVEMENT."""
    return loss < best * (1.0 - MIN_RELATIVE_IMPROVEMENT)


def _best_epoch(curve: np.ndarray) -> int:
    """The epoch training would keep for this validation curve (the same rule as while training)."""
    best = 0
    for epoch in range(1, len(curve)):
        if _improves(float(curve[epoch]), float(curve[best])):
            best = epoch
    return best


class _Adam:
    """Plain Adam over a few tensors.

    torch.optim's first step imports torch._dynamo (1.6 s here), which would stall the first
    epoch of every fresh app process; the update itself is a handful of tensor operations.
    """

    def __init__(self, groups: list[tuple[list[torch.Tensor], float]], betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.groups = groups
        self.betas, self.eps, self.steps = betas, eps, 0
        self.moments = {id(p): (torch.zeros_like(p), torch.zeros_like(p)) for ps, _ in groups for p in ps}

    def zero_grad(self) -> None:
        for params, _ in self.groups:
            for p in params:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        beta1, beta2 = self.betas
        first_correction = 1 - beta1 ** self.steps
        second_correction = math.sqrt(1 - beta2 ** self.steps)
        for params, lr in self.groups:
            for p in params:
                if p.grad is None:
                    continue
                mean, square = self.moments[id(p)]
                mean.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                square.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                denominator = (square.sqrt() / second_correction).add_(self.eps)
                p.addcdiv_(mean, denominator, value=-lr / first_correction)


class _BatchedRun:
    """One batched training of the fold networks (repeats x folds) and M bootstrap members."""

    def __init__(
        self,
        config: MlpConfig,
        Xs: np.ndarray,
        y: np.ndarray,
        rated: np.ndarray,
        prefs: Preferences,
        splits: CvSplits,
        ridges: _RidgeInits,
        neighbours: NeighbourLists,
        seed: int,
        device: torch.device,
    ) -> None:
        self.config, self.splits, self.seed, self.device = config, splits, seed, device
        self.folds = splits.networks  # the first `folds` networks are fold networks
        self.networks = self.folds + config.members
        rng = np.random.default_rng(seed)
        self.rated_index = np.flatnonzero(rated)
        self.y_rated = y[self.rated_index]
        weights = self._row_weights(rng)
        self.X = torch.from_numpy(Xs).to(device)
        self.rated_index_t = torch.from_numpy(self.rated_index).to(device)
        self.weights = torch.from_numpy(weights.T.astype(np.float32)).to(device)  # (rated rows, networks)
        self.y = torch.from_numpy(self.y_rated.astype(np.float32)).to(device)
        self.prefs = torch.from_numpy(prefs).to(device)
        self.pair_valid = torch.from_numpy(self._pair_validity(prefs, rated)).to(device)
        mu, sd = self._target_scales(weights)
        self.mu = torch.from_numpy(mu).to(device)
        self.sd = torch.from_numpy(sd).to(device)
        self.penalty = torch.from_numpy(self._linear_penalties(ridges)).to(device)
        deviations = self._neighbour_deviations(neighbours)
        self.K = torch.from_numpy((deviations / sd).astype(np.float32)).to(device)
        starts = self._stacked_starts(Xs, deviations, prefs, rated, ridges)
        self.params = self._initial_params(Xs, starts, mu, sd)
        self.best_members = self._member_slice()
        self.network_of_t = torch.from_numpy(splits.network_of()).to(device)
        self._epoch_oof: list[np.ndarray] = []  # out-of-fold predictions after each epoch
        self._fold_squared_errors: list[np.ndarray] = []  # per fold, after each epoch

    def _row_weights(self, rng: np.random.Generator) -> np.ndarray:
        """(networks, rated rows): 1/0 for fold networks, bootstrap (Poisson 1) counts for members."""
        n = len(self.rated_index)
        weights = np.zeros((self.networks, n), dtype=np.float64)
        for j in range(self.folds):
            weights[j] = ~self.splits.held_out(j)
        for m in range(self.config.members):
            counts = rng.poisson(1.0, size=n).astype(np.float64)
            weights[self.folds + m] = counts if counts.sum() >= 2 else 1.0
        return weights

    def _pair_validity(self, prefs: Preferences, rated: np.ndarray) -> np.ndarray:
        """(choices, networks): a fold network never learns from a choice touching its held-out rows."""
        valid = np.ones((len(prefs), self.networks), dtype=bool)
        for j in range(self.folds):
            held_out = np.zeros(len(rated), dtype=bool)
            held_out[self.rated_index[self.splits.held_out(j)]] = True
            valid[:, j] = ~(held_out[prefs[:, 0]] | held_out[prefs[:, 1]])
        return valid

    def _target_scales(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        totals = weights.sum(axis=1)
        mu = (weights * self.y_rated[None, :]).sum(axis=1) / totals
        var = (weights * (self.y_rated[None, :] - mu[:, None]) ** 2).sum(axis=1) / totals
        return mu.astype(np.float32), np.maximum(np.sqrt(var), MIN_RATING_SCALE).astype(np.float32)

    def _linear_penalties(self, ridges: _RidgeInits) -> np.ndarray:
        """Ridge's alpha per rating as the L2 on the linear part (standardised units keep it exact)."""
        fold_alphas = [r.alpha / max(r.n, 1) for r in ridges.folds]
        member_alphas = [ridges.full.alpha / max(ridges.full.n, 1)] * self.config.members
        return np.asarray(fold_alphas + member_alphas, dtype=np.float32)

    def _neighbour_deviations(self, neighbours: NeighbourLists) -> np.ndarray:
        """(rows, networks) neighbour input: how far the neighbours' mean rating lies above the mean
        of the same ratings pool. Fold f's network sees only its training ratings, and no rated item
        counts itself (in either mean: with k close to n the neighbours' mean *is* the leave-one-out
        mean, which runs against the item's own rating and would teach a negative weight)."""
        own = np.full(len(neighbours.positions), -1)
        own[self.rated_index] = np.arange(len(self.rated_index))
        columns = [self._neighbour_deviation(neighbours, ~self.splits.held_out(j), own) for j in range(self.folds)]
        everyone = np.ones(len(self.rated_index), dtype=bool)
        columns += [self._neighbour_deviation(neighbours, everyone, own)] * self.config.members
        return np.stack(columns, axis=1)

    def _neighbour_deviation(self, neighbours: NeighbourLists, allowed: np.ndarray, own: np.ndarray) -> np.ndarray:
        """One network's neighbour input; 0 (no evidence either way) where no neighbour is left."""
        mean, _ = neighbour_mean(neighbours, self.y_rated, allowed, own)
        pool_sum, pool_size = float(self.y_rated[allowed].sum()), int(allowed.sum())
        counts_itself = (own >= 0) & allowed[np.maximum(own, 0)]
        own_rating = np.where(counts_itself, self.y_rated[np.maximum(own, 0)], 0.0)
        others = np.maximum(pool_size - counts_itself, 1)
        deviation = mean - (pool_sum - own_rating) / others
        return np.where(np.isnan(deviation), 0.0, deviation)

    def _stacked_starts(
        self, Xs: np.ndarray, deviations: np.ndarray, prefs: Preferences, rated: np.ndarray, ridges: _RidgeInits
    ) -> list[tuple[np.ndarray, float, float]]:
        """Ridge on (x, neighbour rating) per fold network and once for all members, at ridge's alpha."""
        starts = []
        for network, alpha in enumerate([r.alpha for r in ridges.folds] + [ridges.full.alpha]):
            training = self.rated_index[~self.splits.held_out(network)] if network < self.folds else self.rated_index
            allowed = ~rated
            allowed[training] = True
            choices = preferences_within(prefs, allowed)
            diffs, targets = preference_rows(Xs, choices, margin=1.0)
            feature = deviations[:, network]
            coef, feature_coef, intercept = solve_stacked_ridge(
                Xs[training], self.y_rated[np.searchsorted(self.rated_index, training)], feature[training], alpha,
                pref_diffs=diffs, pref_feature_diffs=feature[choices[:, 0]] - feature[choices[:, 1]],
                pref_targets=targets)
            if feature_coef < 0:  # see _clamp_neighbour_weight: start from plain ridge instead
                plain = ridges.folds[network] if network < self.folds else ridges.full
                coef, feature_coef, intercept = plain.coef, 0.0, plain.intercept
            starts.append((coef, feature_coef, intercept))
        return starts[: self.folds] + [starts[-1]] * self.config.members

    def _initial_params(
        self, Xs: np.ndarray, starts: list[tuple[np.ndarray, float, float]], mu: np.ndarray, sd: np.ndarray
    ) -> dict[str, torch.Tensor]:
        """Linear parts at the stacked ridge (each fold's own; the members all at the full one), MLP
        parts at zero.

        Members start where the validated fold networks start, so the ensemble that is kept is the
        model that was validated; they drift apart through their bootstrap weights and seeds.
        """
        d, hidden = Xs.shape[1], self.config.hidden
        V = np.stack([coef for coef, _, _ in starts], axis=1) / sd[None, :]
        a = np.asarray([feature_coef for _, feature_coef, _ in starts])
        intercepts = np.asarray([b for _, _, b in starts])
        c = (intercepts - mu) / sd
        generator = torch.Generator().manual_seed(self.seed)
        W1 = torch.randn(d, self.networks * hidden, generator=generator) * math.sqrt(2.0 / d)
        params = {
            "W1": W1,
            "b1": torch.zeros(self.networks * hidden),
            "W2": torch.zeros(self.networks, hidden),
            "V": torch.from_numpy(V.astype(np.float32)),
            "a": torch.from_numpy(a.astype(np.float32)),
            "c": torch.from_numpy(c.astype(np.float32)),
        }
        return {k: v.to(self.device).requires_grad_(True) for k, v in params.items()}

    def _member_slice(self) -> dict[str, torch.Tensor]:
        """A detached copy of the members' parameters (the networks after the fold networks)."""
        f, h, p = self.folds, self.config.hidden, self.params
        return {
            "W1": p["W1"][:, f * h:].detach().clone(),
            "b1": p["b1"][f * h:].detach().clone(),
            "W2": p["W2"][f:].detach().clone(),
            "V": p["V"][:, f:].detach().clone(),
            "a": p["a"][f:].detach().clone(),
            "c": p["c"][f:].detach().clone(),
        }

    def best_member_params(self) -> dict[str, np.ndarray]:
        out = {k: v.cpu().numpy().astype(np.float32) for k, v in self.best_members.items()}
        out["mu"] = self.mu[self.folds:].cpu().numpy()
        out["sd"] = self.sd[self.folds:].cpu().numpy()
        return out

    def train(
        self,
        epochs: int | None,
        deadline: float | None,
        on_epoch: Callable[[EpochReport], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> MlpTrainingReport:
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(self.seed)
            return self._train_loop(epochs, deadline, on_epoch, should_stop)

    def _train_loop(
        self,
        epochs: int | None,
        deadline: float | None,
        on_epoch: Callable[[EpochReport], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> MlpTrainingReport:
        cfg = self.config
        n = len(self.rated_index)
        batch = int(np.clip(math.ceil(n / cfg.batches_per_epoch), min(cfg.min_batch, n), cfg.max_batch))
        steps_per_epoch = math.ceil(n / batch)
        max_epochs, patience = self._epoch_limits(epochs, steps_per_epoch)
        optimiser = _Adam([
            ([self.params["W1"], self.params["b1"], self.params["W2"]], cfg.learning_rate),
            ([self.params["V"], self.params["a"], self.params["c"]], cfg.linear_learning_rate),
        ])
        report = MlpTrainingReport()
        if self.folds:
            report.best_val_mse = self._validate(0).val_loss
        generator = torch.Generator().manual_seed(self.seed + 1)
        since_best = 0
        for epoch in range(1, max_epochs + 1):
            self._one_epoch(optimiser, batch, generator, should_stop)
            report.epochs = epoch
            if self.folds:
                epoch_report = self._validate(epoch)
                report.history.append(epoch_report)
                if _improves(epoch_report.val_loss, report.best_val_mse):
                    report.best_val_mse, report.best_epoch = epoch_report.val_loss, epoch
                    self.best_members = self._member_slice()
                    since_best = 0
                else:
                    since_best += 1
                if on_epoch is not None:
                    on_epoch(epoch_report)
            else:
                self.best_members = self._member_slice()
                report.best_epoch = epoch
            if should_stop is not None and should_stop():
                report.stopped = True
                break
            if deadline is not None and time.perf_counter() >= deadline:
                report.budget_reached = True
                break
            if epochs is None and since_best >= patience:
                break
        if self.folds:
            report.oof_predictions = self._cross_validated_epochs()
            report.oof_mse = float(np.mean((report.oof_predictions - self.y_rated[None, :]) ** 2))
        return report

    def _cross_validated_epochs(self) -> np.ndarray:
        """Out-of-fold predictions (repeats, rated rows), each fold's taken at the epoch the *other*
        folds of its split found best.

        Picking the epoch on the same held-out rows that then score the MLP would flatter it against
        ridge (the best of many noisy epochs looks better than it is); this keeps its CV honest.
        """
        squared_errors = np.stack(self._fold_squared_errors)  # (epochs, fold networks)
        folds = self.splits.folds
        oof = np.empty((self.splits.repeats, len(self.y_rated)))
        for network in range(self.folds):
            repeat = self.splits.repeat_of(network)
            others = [j for j in range(repeat * folds, (repeat + 1) * folds) if j != network]
            held_out = [int(self.splits.held_out(j).sum()) for j in others]
            curve = squared_errors[:, others].sum(1) / max(sum(held_out), 1)
            rows = self.splits.held_out(network)
            oof[repeat, rows] = self._epoch_oof[_best_epoch(curve)][repeat, rows]
        return oof

    def _epoch_limits(self, epochs: int | None, steps_per_epoch: int) -> tuple[int, int]:
        cfg = self.config
        if epochs is not None:
            return max(int(epochs), 0), max(int(epochs), 1)
        if not self.folds:
            return max(1, math.ceil(cfg.steps_without_validation / steps_per_epoch)), 1
        patience = max(cfg.min_patience_epochs, math.ceil(cfg.patience_steps / steps_per_epoch))
        return max(1, math.ceil(cfg.max_steps / steps_per_epoch)), patience

    def _one_epoch(
        self,
        optimiser: "_Adam",
        batch: int,
        generator: torch.Generator,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        n = len(self.rated_index)
        order = torch.randperm(n, generator=generator).to(self.device)
        for start in range(0, n, batch):
            optimiser.zero_grad()
            loss = self._batch_loss(order[start:start + batch], generator)
            loss.backward()
            optimiser.step()
            self._clamp_neighbour_weight()
            if should_stop is not None and should_stop():
                return

    @torch.no_grad()
    def _clamp_neighbour_weight(self) -> None:
        """Keep the weight of the neighbours' rating non-negative: "like what resembles what you
        dislike" is never a taste, but with few ratings noise can fit it."""
        self.params["a"].clamp_(min=0.0)

    def _batch_loss(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Sum over networks of: weighted MSE + ridge L2 + hidden L2 + ranking losses."""
        cfg, p = self.config, self.params
        rows = self.rated_index_t[batch]
        pair_batch = self._preference_batch(generator)
        if pair_batch is not None:
            rows = torch.cat([rows, self.prefs[pair_batch, 0], self.prefs[pair_batch, 1]])
        z = _forward(self.X[rows], self.K[rows], p, cfg.hidden, cfg.dropout, training=True)
        z_rows = z[: len(batch)]
        weights = self.weights[batch]
        target = (self.y[batch][:, None] - self.mu) / self.sd
        per_network = (weights * (z_rows - target) ** 2).sum(0) / weights.sum(0).clamp_min(1e-8)
        per_network = per_network + self.penalty * (p["V"] ** 2).sum(0)
        hidden_sq = (p["W1"] ** 2).view(p["W1"].shape[0], self.networks, cfg.hidden).sum((0, 2))
        per_network = per_network + cfg.hidden_weight_decay * (hidden_sq + (p["W2"] ** 2).sum(1))
        if pair_batch is not None:
            per_network = per_network + self._preference_loss(z[len(batch):], pair_batch)
        if cfg.rating_pair_weight > 0:
            per_network = per_network + cfg.rating_pair_weight * self._rating_pair_loss(z_rows, batch, weights)
        return per_network.sum()

    def _preference_batch(self, generator: torch.Generator) -> torch.Tensor | None:
        """Up to 256 A/B choices drawn for this step (all of them when there are fewer)."""
        count = len(self.prefs)
        if count == 0 or self.config.preference_weight <= 0:
            return None
        if count <= 256:
            return torch.arange(count, device=self.device)
        return torch.randint(0, count, (256,), generator=generator).to(self.device)

    def _preference_loss(self, z_pairs: torch.Tensor, pair_batch: torch.Tensor) -> torch.Tensor:
        """Logistic loss on the winner's lead (a squared gap for a tie), weighted like ratings."""
        cfg = self.config
        half = len(pair_batch)
        gap = (z_pairs[:half] - z_pairs[half:]) * self.sd / cfg.preference_scale
        tie = self.prefs[pair_batch, 2].bool()[:, None]
        loss = torch.where(tie, 0.5 * gap ** 2, F.softplus(-gap))
        valid = self.pair_valid[pair_batch].float()
        mean_loss = (loss * valid).sum(0) / valid.sum(0).clamp_min(1.0)
        # Weight: the share of this network's evidence that its choices are, as if each were a rating.
        choices = self.pair_valid.float().sum(0)
        ratings = self.weights.sum(0)
        return cfg.preference_weight * choices / ratings.clamp_min(1.0) * mean_loss

    def _rating_pair_loss(self, z_rows: torch.Tensor, batch: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Logistic ranking loss on pairs of rated items within the batch (item i vs item i+1)."""
        partner = torch.roll(torch.arange(len(batch), device=self.device), 1)
        true_sign = torch.sign(self.y[batch] - self.y[batch][partner])[:, None]
        gap = (z_rows - z_rows[partner]) * self.sd / self.config.preference_scale
        valid = ((weights > 0) & (weights[partner] > 0) & (true_sign != 0)).float()
        loss = F.softplus(-true_sign * gap)
        return (loss * valid).sum(0) / valid.sum(0).clamp_min(1.0)

    def _validate(self, epoch: int) -> EpochReport:
        """Eval-mode fold networks on all rated rows: held-out rows give validation, the rest training."""
        p, f, h = self.params, self.folds, self.config.hidden
        with torch.no_grad():
            folds_only = {"W1": p["W1"][:, : f * h], "b1": p["b1"][: f * h], "W2": p["W2"][:f],
                          "V": p["V"][:, :f], "a": p["a"][:f], "c": p["c"][:f]}
            rows = self.rated_index_t
            z = _forward(self.X[rows], self.K[rows][:, :f], folds_only, h, 0.0, training=False)
            ratings = self.mu[:f] + self.sd[:f] * z
            squared = (ratings - self.y[:, None]) ** 2
            train_weights = self.weights[:, :f]
            train_mse = float(((squared * train_weights).sum(0) / train_weights.sum(0)).mean())
            network_of = self.network_of_t  # (repeats, rated rows)
            oof = ratings.T.gather(0, network_of)  # each rating as predicted by the network holding it out
            oof_squared = (oof - self.y[None, :]) ** 2
            per_network = torch.zeros(f, dtype=oof_squared.dtype, device=self.device)
            per_network.index_add_(0, network_of.reshape(-1), oof_squared.reshape(-1))
        self._epoch_oof.append(oof.cpu().numpy().astype(np.float32))
        self._fold_squared_errors.append(per_network.cpu().numpy().astype(np.float64))
        return EpochReport(epoch=epoch, train_loss=train_mse, val_loss=float(oof_squared.mean()))
