"""The library's neighbourhood graph as features, and the taste model that learns on them (SPEC §6).

A person's files come in families: the tracks of an album, a photo session, the methods of one class.
Embeddings of one family sit close to each other without forming clean clusters, so a model that only
sees the rated files (kNN, ridge) learns a family from the few of its members that happen to be rated.
Here the unrated library takes part too:

- `GraphFeatures`, fitted on a sample of the library's embeddings:
  - the top principal components (the smooth trend a linear taste follows), and
  - the low-frequency eigenvectors of the sample's k-nearest-neighbour graph (normalised Laplacian
    L = I - D^-1/2 W D^-1/2, taken as random-walk eigenvectors D^-1/2 v), each scaled by
    1 / sqrt(lambda + delta). A linear model on these is a Gaussian process whose prior covariance
    (about (L + delta I)^-1) is large between files joined by many short paths in the graph: a rating
    spreads along the family of files it belongs to.
  A file outside the sample gets the similarity-weighted mean of its nearest sample files' rows (the
  usual out-of-sample extension), so any embedding maps to features, and the map is saved with a model.
- `BayesLinear`: Bayesian linear regression on those features. Ratings are rows; an A/B choice is the
  row phi_a - phi_b observing a difference of one rating point (0 for "equal"). The noise level is
  chosen by the marginal likelihood of the ratings, so nothing needs cross-validating inside.
- `GraphModel`: the taste candidate "graph" = GraphFeatures + BayesLinear, with the usual
  fit / predict (rating, uncertainty) / save / load. taste/active.py's picker uses the same features,
  so the files it asks about are the ones this model is unsure of.

Numpy and scipy only; the library sample comes from the caller (taste/service.py, taste/queue.py).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from anagnorisis.embed.base import l2_normalise
from anagnorisis.taste.prefs import as_preferences, rated_rows, weak_rows
from anagnorisis.taste.persist import State, read_state_for, write_model_file

# Library files the graph is built on: the graph costs O(sample^2 x dim) to build and every
# transformed file is compared with each sample file, so a million-file library costs as much as 4,000.
GRAPH_SAMPLE = 4000
# Principal components of the linear block, and graph eigenvectors of the graph block.
COMPONENTS = 64
EIGENVECTORS = 128
# Each sample file is joined to its NEIGHBOURS nearest (cosine); edge weight exp((cos - 1) / TEMPERATURE).
NEIGHBOURS = 6
TEMPERATURE = 0.1
# Regularises the Laplacian: the prior variance of the smoothest direction is 1 / DELTA times that of
# the roughest. Smaller lets one rating speak for a larger part of the graph.
DELTA = 0.01
# No file's graph row is longer than this times the median row (see GraphFeatures.fit).
ROW_NORM_CAP = 2.0
# Share of the prior variance given to the linear block (the graph block gets the rest).
LINEAR_SHARE = 0.3
# Noise variance of a standardised rating, relative to the prior variance of the taste: chosen among
# these by the marginal likelihood of the user's ratings.
NOISE_GRID = (0.125, 0.25, 0.5, 1.0, 2.0)
DEFAULT_NOISE = 0.5
MIN_RATINGS_FOR_EVIDENCE = 5
# Rows compared with the sample at a time (bounds the rows x sample similarity and its sort to ~25 MB).
TRANSFORM_CHUNK = 512


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Unit-length rows (embed.base.l2_normalise) in float64."""
    return l2_normalise(np.asarray(X, dtype=np.float32)).astype(np.float64)


@dataclass
class GraphFeatures:
    """The fitted map from embeddings to [linear block | graph block] features."""

    sample: np.ndarray  # (s, d) float32 unit rows the graph is built on
    rows: np.ndarray  # (s, m) graph block of each sample file, already scaled
    mean: np.ndarray  # (d,) of the sample
    components: np.ndarray  # (c, d)
    linear_scale: float
    neighbours: int = NEIGHBOURS
    temperature: float = TEMPERATURE
    linear_share: float = LINEAR_SHARE
    # With fields (taste/features.py): inputs are [embedding (embedding_dim) | field columns (field_columns)], the
    # field columns passed on as extra features, times field_scale.
    embedding_dim: int = 0
    field_columns: int = 0
    field_scale: float = 0.0

    @classmethod
    def fit(cls, X: np.ndarray, seed: int = 0, *, sample_size: int = GRAPH_SAMPLE,
            eigenvectors: int = EIGENVECTORS, components: int = COMPONENTS, neighbours: int = NEIGHBOURS,
            temperature: float = TEMPERATURE, delta: float = DELTA,
            linear_share: float = LINEAR_SHARE) -> "GraphFeatures":
        """Fit on the embeddings of (a sample of) the library; X needs at least 2 rows."""
        X = np.asarray(X)
        if X.ndim != 2 or len(X) < 2:
            raise ValueError("the graph features need the embeddings of at least 2 files")
        rng = np.random.default_rng(seed)
        if len(X) > sample_size:
            X = X[np.sort(rng.choice(len(X), sample_size, replace=False))]
        S = unit_rows(X)
        n = len(S)
        mean = S.mean(axis=0)
        _, _, vt = np.linalg.svd(S - mean, full_matrices=False)
        c = max(1, min(components, n - 1, S.shape[1]))
        comps = vt[:c]
        Z = (S - mean) @ comps.T
        linear_scale = 1.0 / math.sqrt(max(float(np.mean(np.sum(Z * Z, axis=1))), 1e-12))
        k = max(1, min(neighbours, n - 1))
        adjacency, degree = _normalised_adjacency(S, k, temperature)
        values, vectors = _top_eigenpairs(adjacency, min(eigenvectors, n - 1), rng)
        # Eigenvalue mu of D^-1/2 W D^-1/2 is 1 - lambda of the normalised Laplacian. Its eigenvectors carry a
        # factor sqrt(degree); dividing it out (the random-walk eigenvectors) keeps a tight knot of
        # near-identical files from getting a larger prior variance, and the picker from oversampling it.
        rows = vectors / np.sqrt(np.maximum(1.0 - values, 0.0) + delta)[None, :] / np.sqrt(degree)[:, None]
        # The other way round, a loosely attached file would get a large one: capped at ROW_NORM_CAP times
        # the median, so that neither a knot nor a stray gets more prior variance than a typical file.
        norms = np.linalg.norm(rows, axis=1)
        cap = ROW_NORM_CAP * float(np.median(norms))
        rows *= np.minimum(1.0, cap / np.maximum(norms, 1e-300))[:, None]
        rows /= math.sqrt(max(float(np.mean(np.sum(rows * rows, axis=1))), 1e-12))
        return cls(S.astype(np.float32), rows, mean, comps, linear_scale, k, temperature, linear_share)

    @property
    def dim(self) -> int:
        return self.components.shape[0] + self.rows.shape[1] + self.field_columns

    def with_fields(self, embedding_dim: int, field_columns: int, field_scale: float) -> "GraphFeatures":
        """The same map for inputs [embedding | field columns]: the fields pass through, times field_scale."""
        return dataclasses.replace(self, embedding_dim=int(embedding_dim), field_columns=int(field_columns),
                                   field_scale=float(field_scale))

    def transform(self, X: np.ndarray) -> np.ndarray:
        """(n, dim) features of embeddings X (any scale: rows are normalised first), plus the field columns."""
        X = np.asarray(X)
        fields = None
        if self.field_columns:
            if X.shape[1] == self.embedding_dim:  # no fields given: an average file's (zeros)
                fields = np.zeros((len(X), self.field_columns))
            else:
                X, fields = X[:, :self.embedding_dim], X[:, self.embedding_dim:]
        out = np.empty((len(X), self.dim))
        graph = self.dim - self.field_columns
        for start in range(0, len(X), TRANSFORM_CHUNK):
            out[start:start + TRANSFORM_CHUNK, :graph] = self._transform_chunk(X[start:start + TRANSFORM_CHUNK])
        if fields is not None:
            out[:, graph:] = fields * self.field_scale
        return out

    def _transform_chunk(self, X: np.ndarray) -> np.ndarray:
        U = unit_rows(X)
        linear = (U - self.mean) @ self.components.T * (self.linear_scale * math.sqrt(self.linear_share))
        similarity = U.astype(np.float32) @ self.sample.T
        k = min(self.neighbours + 1, self.sample.shape[0])
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        closeness = np.take_along_axis(similarity, nearest, axis=1).astype(np.float64)
        weights = np.exp((closeness - closeness.max(axis=1, keepdims=True)) / self.temperature)
        weights /= weights.sum(axis=1, keepdims=True)
        graph = np.einsum("ij,ijk->ik", weights, self.rows[nearest]) * math.sqrt(1.0 - self.linear_share)
        return np.hstack([linear, graph])

    def state(self) -> State:
        return {"sample": self.sample, "rows": self.rows, "mean": self.mean, "components": self.components,
                "linear_scale": self.linear_scale, "neighbours": self.neighbours, "temperature": self.temperature,
                "linear_share": self.linear_share, "embedding_dim": self.embedding_dim,
                "field_columns": self.field_columns, "field_scale": self.field_scale}

    @classmethod
    def from_state(cls, state: State) -> "GraphFeatures":
        return cls(np.asarray(state["sample"], dtype=np.float32), np.asarray(state["rows"], dtype=np.float64),
                   np.asarray(state["mean"], dtype=np.float64), np.asarray(state["components"], dtype=np.float64),
                   float(state["linear_scale"]), int(state["neighbours"]), float(state["temperature"]),
                   float(state["linear_share"]), int(state.get("embedding_dim", 0)),
                   int(state.get("field_columns", 0)), float(state.get("field_scale", 0.0)))


def _normalised_adjacency(S: np.ndarray, k: int, temperature: float) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """(D^-1/2 W D^-1/2, degrees) of the symmetrised k-nearest-neighbour graph of the unit rows S."""
    n = len(S)
    S32 = S.astype(np.float32)
    nearest = np.empty((n, k), dtype=np.int64)
    closeness = np.empty((n, k))
    for start in range(0, n, TRANSFORM_CHUNK):  # row blocks: a full n x n similarity would cost 64 MB+
        similarity = S32[start:start + TRANSFORM_CHUNK] @ S32.T
        np.fill_diagonal(similarity[:, start:], -np.inf)
        block = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        nearest[start:start + TRANSFORM_CHUNK] = block
        closeness[start:start + TRANSFORM_CHUNK] = np.take_along_axis(similarity, block, axis=1)
    source = np.repeat(np.arange(n), k)
    weight = np.exp((closeness.ravel() - 1.0) / temperature)
    W = scipy.sparse.csr_matrix((weight, (source, nearest.ravel())), shape=(n, n))
    W = W.maximum(W.T)
    degree = np.asarray(W.sum(axis=1)).ravel()
    scale = scipy.sparse.diags(1.0 / np.sqrt(np.maximum(degree, 1e-300)))
    return (scale @ W @ scale).tocsr(), np.maximum(degree, 1e-300)


def _top_eigenpairs(A: scipy.sparse.csr_matrix, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The m largest eigenpairs of the symmetric A (dense for small graphs, Lanczos otherwise; seeded)."""
    n = A.shape[0]
    if n <= 600 or m >= n // 2:
        values, vectors = np.linalg.eigh(A.toarray())
        return values[::-1][:m], vectors[:, ::-1][:, :m]
    values, vectors = scipy.sparse.linalg.eigsh(A, k=m, which="LA", v0=rng.uniform(-1, 1, n), tol=1e-6)
    order = np.argsort(-values)
    return values[order], vectors[:, order]


class BayesLinear:
    """Bayesian linear regression on feature rows: ratings and A/B choices in, mean and spread out.

    Ratings are standardised (offset = their mean, scale = their spread); the weights have a unit normal
    prior and each observation unit-free noise variance `noise`, chosen by the marginal likelihood.
    """

    def __init__(self, dim: int, *, offset: float = 5.0, scale: float = 1.5, noise: float = DEFAULT_NOISE) -> None:
        self.dim = dim
        self.offset, self.scale, self.noise = offset, scale, noise
        self.weights = np.zeros(dim)
        self.covariance = np.eye(dim)

    @classmethod
    def fit(cls, features_rated: np.ndarray, ratings: np.ndarray, pref_differences: np.ndarray | None = None,
            pref_targets: np.ndarray | None = None, *, noise: float | None = None) -> "BayesLinear":
        """From (rated files x dim) features and their ratings, plus one row phi_a - phi_b per A/B choice
        with target 1 (a won) or 0 (equal), in rating points. `noise` None: chosen by the evidence."""
        dim = features_rated.shape[1]
        ratings = np.asarray(ratings, dtype=np.float64)
        offset = float(ratings.mean()) if len(ratings) else 5.0
        scale = max(float(ratings.std()), 0.5) if len(ratings) > 1 else 1.5
        rows, targets = [features_rated], [(ratings - offset) / scale]
        if pref_differences is not None and len(pref_differences):
            rows.append(pref_differences)
            targets.append(np.asarray(pref_targets, dtype=np.float64) / scale)
        Phi, t = np.vstack(rows), np.concatenate(targets)
        model = cls(dim, offset=offset, scale=scale, noise=DEFAULT_NOISE if noise is None else noise)
        if not len(Phi):
            return model
        # One eigendecomposition of Phi'Phi serves the evidence of every noise level and the posterior.
        values, vectors = np.linalg.eigh(Phi.T @ Phi)
        values = np.maximum(values, 0.0)
        projected = vectors.T @ (Phi.T @ t)
        if noise is None and len(ratings) >= MIN_RATINGS_FOR_EVIDENCE:
            model.noise = _evidence_noise(values, projected, t)
        shrink = 1.0 / (1.0 + values / model.noise)
        model.covariance = (vectors * shrink) @ vectors.T
        model.weights = vectors @ (shrink * projected) / model.noise
        return model

    def mean(self, features: np.ndarray) -> np.ndarray:
        """Predicted rating of each feature row."""
        return self.offset + self.scale * (features @ self.weights)

    def spread(self, features: np.ndarray) -> np.ndarray:
        """Predictive standard deviation of the taste (rating points), without the rating noise."""
        variance = np.einsum("ij,jk,ik->i", features, self.covariance, features)
        return self.scale * np.sqrt(np.maximum(variance, 0.0))

    def state(self) -> State:
        return {"offset": self.offset, "scale": self.scale, "noise": self.noise, "weights": self.weights,
                "covariance": self.covariance}

    @classmethod
    def from_state(cls, state: State) -> "BayesLinear":
        weights = np.asarray(state["weights"], dtype=np.float64)
        model = cls(len(weights), offset=float(state["offset"]), scale=float(state["scale"]),
                    noise=float(state["noise"]))
        model.weights, model.covariance = weights, np.asarray(state["covariance"], dtype=np.float64)
        return model


def _evidence_noise(values: np.ndarray, projected: np.ndarray, t: np.ndarray) -> float:
    """The NOISE_GRID value with the highest log marginal likelihood of the targets t under t = Phi w + e,
    w ~ N(0, I), e ~ N(0, noise I); `values`, `projected`: eigenvalues of Phi'Phi and V'Phi't."""
    n = len(t)
    best, best_score = DEFAULT_NOISE, -np.inf
    for noise in NOISE_GRID:
        # log|noise I + Phi Phi'|: Phi Phi' shares Phi'Phi's eigenvalues, the rest are 0 (whether n >= dim or not).
        log_det = (n - len(values)) * math.log(noise) + float(np.sum(np.log(noise + values)))
        quadratic = (float(t @ t) - float(np.sum(projected ** 2 / (noise + values)))) / noise
        score = -0.5 * (log_det + quadratic)
        if score > best_score:
            best, best_score = noise, score
    return best


def preference_differences(features: np.ndarray, prefs: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(phi_winner - phi_loser rows, targets: 1 rating point, 0 for a tie) of A/B choice rows."""
    if len(prefs) == 0:
        return None, None
    return features[prefs[:, 0]] - features[prefs[:, 1]], np.where(prefs[:, 2] != 0, 0.0, 1.0)


class GraphModel:
    """Taste candidate "graph": Bayesian linear regression on the library's GraphFeatures."""

    name = "graph"

    def __init__(self, features: GraphFeatures, weak: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.features = features
        self.weak = weak  # (label, weight) per row: play history as weak ratings (taste/features.py)
        self.posterior: BayesLinear | None = None

    def fit(self, X: np.ndarray, y: np.ndarray, prefs: object = None) -> "GraphModel":
        return self.fit_features(self.features.transform(X), y, prefs)

    def fit_features(self, Phi: np.ndarray, y: np.ndarray, prefs: object = None) -> "GraphModel":
        """fit() from features.transform(X) already computed (cross-validation reuses them for every fold)."""
        y = np.asarray(y, dtype=np.float64)
        rated = rated_rows(y)
        if not rated.any():
            raise ValueError("no ratings to fit")
        differences, targets = preference_differences(Phi, as_preferences(prefs, len(y)))
        weak = weak_rows(y, self.weak)
        if len(weak):  # a weak rating of weight w: its row and target times sqrt(w), the noise of it / w
            labels, weights = self.weak  # type: ignore[misc]
            root = np.sqrt(weights[weak])
            offset = float(y[rated].mean())
            differences = np.vstack([d for d in (differences, root[:, None] * Phi[weak]) if d is not None])
            targets = np.concatenate([t for t in (targets, root * (labels[weak] - offset)) if t is not None])
        self.posterior = BayesLinear.fit(Phi[rated], y[rated], differences, targets)
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.posterior is None:
            raise RuntimeError("the graph model is not fitted")
        Phi = self.features.transform(X)
        return self.posterior.mean(Phi), self.posterior.spread(Phi)

    def save(self, path: str | Path) -> None:
        write_model_file(path, self.name, self.state())

    def state(self) -> State:
        assert self.posterior is not None
        return {"features": self.features.state(), "posterior": self.posterior.state()}

    @classmethod
    def from_state(cls, state: State) -> "GraphModel":
        model = cls(GraphFeatures.from_state(state["features"]))
        model.posterior = BayesLinear.from_state(state["posterior"])
        return model

    @classmethod
    def load(cls, path: str | Path) -> "GraphModel":
        return cls.from_state(read_state_for(cls.name, path))
