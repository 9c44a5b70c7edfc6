"""The candidate taste models of SPEC §6, behind one interface.

Every candidate has `fit(X, y, prefs=None) -> self` and `predict(X) -> (rating, uncertainty)`,
and saves to / loads from one file. X holds one embedding per row; y the user's rating of that row,
NaN for an item known only from A/B choices; prefs rows of (winner_idx, loser_idx, tie) into X.
Uncertainty is in rating points and grows as an item lies farther from the rated data.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from anagnorisis.taste.features import FieldEncoder, FieldRow
from anagnorisis.taste.graph import GraphModel
from anagnorisis.taste.linear import (
    InputScaler,
    RidgeSolution,
    as_preferences,
    preference_rows,
    rated_rows,
    ridge_from_state,
    ridge_to_state,
    solve_ridge,
    weak_rows,
)
from anagnorisis.taste.mlp import MlpConfig, MlpEnsemble, predict_in_chunks
from anagnorisis.taste.neighbours import MAX_NEIGHBOURS, MIN_WEIGHT, nearest_rated, neighbour_mean, unit_rows
from anagnorisis.taste.persist import State, read_model_file, read_state_for, write_model_file

CANDIDATE_NAMES = ("mean", "knn", "ridge", "graph", "mlp")
BASELINE_NAMES = ("mean", "knn")
BLEND_NAME = "blend"  # a weighted blend of the single candidates, fitted on their cross-validated predictions

__all__ = [
    "CANDIDATE_NAMES",
    "BASELINE_NAMES",
    "TasteModel",
    "MeanModel",
    "KnnModel",
    "RidgeModel",
    "GraphModel",
    "MlpEnsemble",
    "MlpConfig",
    "BlendModel",
    "BLEND_NAME",
    "FieldsModel",
    "predict_files",
    "fit_blend_weights",
    "load_model",
]


class TasteModel(Protocol):
    name: str

    def fit(self, X: np.ndarray, y: np.ndarray, prefs: object = None) -> "TasteModel": ...

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def save(self, path: str | Path) -> None: ...

    def state(self) -> State: ...


class MeanModel:
    """Predicts the mean user rating for everything; uncertainty = the spread of the ratings."""

    name = "mean"

    def __init__(self) -> None:
        self.mean = 5.0
        self.spread = 0.0

    def fit(self, X: np.ndarray, y: np.ndarray, prefs: object = None) -> "MeanModel":
        ratings = np.asarray(y, dtype=np.float64)[rated_rows(y)]
        if ratings.size == 0:
            raise ValueError("no ratings to fit")
        self.mean = float(ratings.mean())
        self.spread = float(ratings.std()) * math.sqrt(1.0 + 1.0 / ratings.size)
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(X)
        return np.full(n, self.mean), np.full(n, self.spread)

    def save(self, path: str | Path) -> None:
        write_model_file(path, self.name, self.state())

    def state(self) -> State:
        return {"mean": self.mean, "spread": self.spread}

    @classmethod
    def from_state(cls, state: State) -> "MeanModel":
        model = cls()
        model.mean, model.spread = float(state["mean"]), float(state["spread"])
        return model

    @classmethod
    def load(cls, path: str | Path) -> "MeanModel":
        return cls.from_state(read_state_for(cls.name, path))


class KnnModel:
    """Cosine-similarity-weighted mean of the k = min(10, n) most similar rated items.

    Uncertainty = sqrt(weighted variance of the neighbours' ratings + (spread * distance)^2), where
    distance = 1 - the neighbours' mean cosine similarity: far from every rated item, it tends to
    the spread of all ratings.
    """

    name = "knn"

    def __init__(self, max_neighbours: int = MAX_NEIGHBOURS) -> None:
        self.max_neighbours = max_neighbours
        self.rated_vectors = np.zeros((0, 0), dtype=np.float32)
        self.ratings = np.zeros(0)
        self.spread = 0.0

    def fit(self, X: np.ndarray, y: np.ndarray, prefs: object = None) -> "KnnModel":
        rated = rated_rows(y)
        if not rated.any():
            raise ValueError("no ratings to fit")
        self.rated_vectors = unit_rows(np.asarray(X, dtype=np.float32)[rated])
        self.ratings = np.asarray(y, dtype=np.float64)[rated]
        self.spread = float(self.ratings.std())
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return predict_in_chunks(self._predict_chunk, X)

    def _predict_chunk(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lists = nearest_rated(X, self.rated_vectors, candidates=self.max_neighbours)
        mean, _ = neighbour_mean(lists, self.ratings, k=self.max_neighbours)
        sims = lists.similarity.astype(np.float64)
        weights = np.clip(sims, 0.0, None) + MIN_WEIGHT
        ratings = self.ratings[lists.positions]
        variance = (weights * (ratings - mean[:, None]) ** 2).sum(1) / weights.sum(1)
        distance = np.clip(1.0 - sims.mean(1), 0.0, 1.0)
        return mean, np.sqrt(variance + (self.spread * distance) ** 2)

    def save(self, path: str | Path) -> None:
        write_model_file(path, self.name, self.state())

    def state(self) -> State:
        return {"max_neighbours": self.max_neighbours, "rated_vectors": self.rated_vectors,
                "ratings": self.ratings, "spread": self.spread}

    @classmethod
    def from_state(cls, state: State) -> "KnnModel":
        model = cls(int(state["max_neighbours"]))
        model.rated_vectors = np.asarray(state["rated_vectors"], dtype=np.float32)
        model.ratings = np.asarray(state["ratings"], dtype=np.float64)
        model.spread = float(state["spread"])
        return model

    @classmethod
    def load(cls, path: str | Path) -> "KnnModel":
        return cls.from_state(read_state_for(cls.name, path))


class RidgeModel:
    """Closed-form ridge with alpha chosen by exact leave-one-out error; A/B choices as extra rows.

    A choice "A over B" adds the row x_A - x_B with target 1 rating point (0 for a tie), so the
    fit prefers a direction that puts A above B. Uncertainty = sigma * sqrt(leverage), the
    Bayesian linear-regression spread: small inside the span of the rated data, large outside.
    """

    name = "ridge"

    def __init__(self, *, scaler: InputScaler | None = None, preference_weight: float = 1.0,
                 preference_margin: float = 1.0, weak: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.weak = weak  # (label, weight) per row of X: play history as weak ratings (taste/features.py)
        self.fixed_scaler = scaler
        self.scaler: InputScaler | None = scaler
        self.preference_weight = preference_weight
        self.preference_margin = preference_margin
        self.solution: RidgeSolution | None = None
        self.sigma = 0.0

    def fit(self, X: np.ndarray, y: np.ndarray, prefs: object = None) -> "RidgeModel":
        y = np.asarray(y, dtype=np.float64)
        rated = rated_rows(y)
        if not rated.any():
            raise ValueError("no ratings to fit")
        self.scaler = self.fixed_scaler or InputScaler.fit(X)
        Xs = self.scaler.transform(X)
        diffs, targets = preference_rows(Xs, as_preferences(prefs, len(y)), self.preference_margin)
        diffs, targets = diffs * math.sqrt(self.preference_weight), targets * math.sqrt(self.preference_weight)
        weak = weak_rows(y, self.weak)
        if len(weak):  # rows of weight w enter the Gram matrix as sqrt(w) x (row - the rated rows' mean)
            labels, weights = self.weak  # type: ignore[misc]
            root = np.sqrt(weights[weak])[:, None]
            diffs = np.vstack([diffs, root * (Xs[weak] - Xs[rated].mean(axis=0))])
            targets = np.concatenate([targets, root[:, 0] * (labels[weak] - y[rated].mean())])
        self.solution = solve_ridge(Xs[rated], y[rated], pref_diffs=diffs, pref_targets=targets)
        self.sigma = math.sqrt(max(self.solution.loo_mse, 0.0)) if rated.sum() > 1 else 0.0
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.solution is None or self.scaler is None:
            raise RuntimeError("the ridge model is not fitted")
        return predict_in_chunks(self._predict_chunk, X)

    def _predict_chunk(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.solution is not None and self.scaler is not None
        Xs = self.scaler.transform(X)
        return self.solution.predict(Xs), self.sigma * np.sqrt(self.solution.leverage(Xs))

    def save(self, path: str | Path) -> None:
        write_model_file(path, self.name, self.state())

    def state(self) -> State:
        assert self.solution is not None and self.scaler is not None
        return {"scaler_mean": self.scaler.mean, "scaler_scale": self.scaler.scale, "sigma": self.sigma,
                "preference_weight": self.preference_weight, "preference_margin": self.preference_margin,
                "ridge": ridge_to_state(self.solution)}

    @classmethod
    def from_state(cls, state: State) -> "RidgeModel":
        model = cls(preference_weight=float(state["preference_weight"]),
                    preference_margin=float(state["preference_margin"]))
        model.scaler = InputScaler(mean=state["scaler_mean"], scale=float(state["scaler_scale"]))
        model.solution = ridge_from_state(state["ridge"])
        model.sigma = float(state["sigma"])
        return model

    @classmethod
    def load(cls, path: str | Path) -> "RidgeModel":
        return cls.from_state(read_state_for(cls.name, path))


def fit_blend_weights(predictions: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Non-negative weights and an intercept that best predict `y` from the columns of `predictions` (least
    squares; scipy's NNLS on centred columns). Non-negative: a blend never bets against one of its members."""
    from scipy.optimize import nnls

    P = np.asarray(predictions, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    centre = P.mean(axis=0)
    weights, _ = nnls(P - centre, y - y.mean())
    return weights, float(y.mean() - centre @ weights)


class BlendModel:
    """intercept + sum of weight x member prediction; the uncertainty is the weighted mean of the members'.

    The members are the other candidates fitted on all ratings; the weights were fitted on their
    cross-validated (out-of-fold) predictions, so they say how much each member adds on files it did not see.
    """

    name = BLEND_NAME

    def __init__(self, members: dict[str, Any], weights: np.ndarray, intercept: float) -> None:
        self.members = dict(members)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.intercept = float(intercept)
        if len(self.members) != len(self.weights):
            raise ValueError("a blend needs one weight per member")

    def fit(self, X: np.ndarray, y: np.ndarray, prefs: object = None) -> "BlendModel":
        """Refit every member on new ratings, keeping the blend's weights."""
        self.members = {name: member.fit(X, y, prefs) for name, member in self.members.items()}
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rating = np.full(len(X), self.intercept)
        spread = np.zeros(len(X))
        total = float(self.weights.sum())
        for weight, member in zip(self.weights, self.members.values(), strict=True):
            if weight == 0 and total > 0:
                continue
            member_rating, member_spread = member.predict(X)
            rating += weight * member_rating
            spread += (weight / total if total > 0 else 1.0 / len(self.members)) * member_spread
        return rating, spread

    def describe(self) -> str:
        """`ridge 0.62 · graph 0.41` (the members with a weight, largest first)."""
        pairs = sorted(zip(self.members, self.weights, strict=True), key=lambda pair: -pair[1])
        return " · ".join(f"{name} {weight:.2f}" for name, weight in pairs if weight > 0) or "none (the mean)"

    def save(self, path: str | Path) -> None:
        write_model_file(path, self.name, self.state())

    def state(self) -> State:
        return {"weights": self.weights, "intercept": self.intercept,
                "members": {name: {"model": member.name, "state": member.state()}
                            for name, member in self.members.items()}}

    @classmethod
    def from_state(cls, state: State) -> "BlendModel":
        members = {}
        for name, saved in state["members"].items():
            if saved["model"] not in MODEL_CLASSES or saved["model"] == BLEND_NAME:
                raise ValueError(f"a blend cannot hold a {saved['model']!r} model")
            members[name] = MODEL_CLASSES[saved["model"]].from_state(saved["state"])
        return cls(members, np.asarray(state["weights"]), float(state["intercept"]))

    @classmethod
    def load(cls, path: str | Path) -> "BlendModel":
        return cls.from_state(read_state_for(cls.name, path))


class FieldsModel:
    """A candidate trained on [embedding | field columns] (taste/features.py), with the encoder of its fields.

    `predict(X)` takes embeddings alone (the fields then count as an average file's) or the wide rows that
    `inputs(X, rows)` builds; `predict_files(X, rows)` does both in one call. A candidate that does not read
    fields (kNN, the mean) is wrapped too, so every model of a training run is called the same way.
    """

    name = "with_fields"

    def __init__(self, inner: Any, encoder: FieldEncoder, embedding_dim: int, column_scale: float,
                 takes_fields: bool = True) -> None:
        self.inner = inner
        self.encoder = encoder
        self.embedding_dim = int(embedding_dim)
        self.column_scale = float(column_scale)
        self.takes_fields = bool(takes_fields)

    def inputs(self, X: np.ndarray, rows: Sequence[FieldRow] | None) -> np.ndarray:
        """The rows this model's candidate reads: the embeddings, then (if it reads them) the field columns."""
        X = np.asarray(X, dtype=np.float32)[:, :self.embedding_dim]
        if not self.takes_fields:
            return X
        fields = (np.zeros((len(X), self.encoder.width), np.float32) if rows is None
                  else self.encoder.encode(rows) * np.float32(self.column_scale))
        return np.hstack([X, fields]).astype(np.float32)

    def fit(self, X: np.ndarray, y: np.ndarray, prefs: object = None) -> "FieldsModel":
        self.inner = self.inner.fit(X, y, prefs)
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X)
        wide = X.shape[1] > self.embedding_dim
        return self.inner.predict(X if wide == self.takes_fields else self.inputs(X, None))

    def predict_files(self, X: np.ndarray, rows: Sequence[FieldRow] | None) -> tuple[np.ndarray, np.ndarray]:
        return self.inner.predict(self.inputs(X, rows))

    def save(self, path: str | Path) -> None:
        write_model_file(path, self.name, self.state())

    def state(self) -> State:
        return {"inner": {"model": self.inner.name, "state": self.inner.state()}, "encoder": self.encoder.state(),
                "embedding_dim": self.embedding_dim, "column_scale": self.column_scale,
                "takes_fields": self.takes_fields}

    @classmethod
    def from_state(cls, state: State) -> "FieldsModel":
        inner = state["inner"]
        if inner["model"] not in MODEL_CLASSES or inner["model"] == cls.name:
            raise ValueError(f"a fields model cannot hold a {inner['model']!r} model")
        return cls(MODEL_CLASSES[inner["model"]].from_state(inner["state"]), FieldEncoder.from_state(state["encoder"]),
                   int(state["embedding_dim"]), float(state["column_scale"]), bool(state["takes_fields"]))

    @classmethod
    def load(cls, path: str | Path) -> "FieldsModel":
        return cls.from_state(read_state_for(cls.name, path))


def predict_files(model: Any, X: np.ndarray, rows: Sequence[FieldRow] | None) -> tuple[np.ndarray, np.ndarray]:
    """Any model's prediction for files with embeddings X and field rows (ignored by a model without fields)."""
    if isinstance(model, FieldsModel):
        return model.predict_files(X, rows)
    return model.predict(X)


MODEL_CLASSES: dict[str, Any] = {cls.name: cls for cls in (MeanModel, KnnModel, RidgeModel, GraphModel, MlpEnsemble,
                                                           BlendModel, FieldsModel)}


def load_model(path: str | Path) -> TasteModel:
    """Any candidate saved with `save(path)`, of whichever kind the file says."""
    name, state = read_model_file(path)
    if name not in MODEL_CLASSES:
        raise ValueError(f"{path} holds an unknown taste model {name!r}")
    return MODEL_CLASSES[name].from_state(state)
