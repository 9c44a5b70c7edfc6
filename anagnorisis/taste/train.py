"""Training the taste model (SPEC §6): cross-validate every candidate, pick the winner, say why.

Order of work, cheapest first, so that Stop at any moment leaves a usable model: the mean and kNN
baselines, ridge (closed form), the graph model (closed form, when the library's embeddings are given),
a ridge learning curve, then the MLP ensemble, whose fold networks and final members train together and
stream their losses. Pure numpy/torch: no database, no UI.

Every candidate is scored on the same k folds (evaluate.cross_validated_metrics: MAE over all
held-out ratings, SROCC and pairwise accuracy within each fold's held-out set). A blend of the candidates,
the mean of the learners' predictions, is one more candidate. The choice is about ranking, since the model's
job is to order the library (SPEC §6, choose_winner): the blend is kept unless, from 300 ratings on, a single
candidate's cross-validated SROCC leads it by more than three standard errors of the difference (a paired
bootstrap); without a blend the first candidate of PREFERENCE_ORDER within one standard error of the leader is
chosen. MAE is reported, never a veto: with a weak signal a good ranker shrinks toward the mean and ties it on
MAE. When nothing ranks above chance, a baseline is chosen and the report says the model is not useful yet.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from anagnorisis.taste.evaluate import Metrics, cross_validated_metrics, srocc
from anagnorisis.taste.features import FieldEncoder, FieldRow, plays_of, weak_ratings
from anagnorisis.taste.folds import CvSplits, repeats_for
from anagnorisis.taste.graph import GRAPH_SAMPLE, GraphFeatures, GraphModel
from anagnorisis.taste.linear import InputScaler, as_preferences, preferences_within, rated_rows, weak_rows
from anagnorisis.taste.mlp import EpochReport, MlpConfig, MlpEnsemble, threads_for
from anagnorisis.taste.models import (
    BLEND_NAME,
    BlendModel,
    FieldsModel,
    KnnModel,
    MeanModel,
    RidgeModel,
    TasteModel,
)
from anagnorisis.taste.neighbours import NeighbourLists, nearest_rated, neighbour_mean, unit_rows

log = logging.getLogger(__name__)

Event = dict[str, Any]
EventSink = Callable[[Event], None]

# With neither a budget nor epochs, training stops at this many seconds (best model kept), which
# keeps `train` on 10k x 384 ratings within SPEC §9's 10 s on a 2-core CPU.
DEFAULT_BUDGET_SECONDS = 7.0
# Without standard errors (too few ratings to bootstrap), a candidate within this of the leader's CV SROCC
# counts as tied with it: the MLP starts from ridge, so an MLP that never left ridge scores the same up to
# float32 rounding, and such a tie keeps the simpler model.
SIMPLER_MODEL_MARGIN = 0.002
# Ratings subsets of the learning curve (plus all the ratings not held out).
LEARNING_CURVE_SIZES = (10, 15, 20, 25, 35, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000,
                        7500, 10000, 20000, 50000)
# Each point of the learning curve is the mean (and standard deviation) over this many random held-out fifths,
# fewer when the ratings are many: at most LEARNING_CURVE_ROW_BUDGET training rows go through the curve's
# ridge fits in all (each split accumulates its nested subsets' Gram matrix in one pass over its rows).
LEARNING_CURVE_MAX_REPEATS = 10
LEARNING_CURVE_MIN_REPEATS = 2
LEARNING_CURVE_ROW_BUDGET = 24_000
MIN_RATINGS_FOR_CV = 4
# The candidates that learn (not baselines), for the report.
CONTENDERS = ("ridge", "graph", "mlp", BLEND_NAME)
# The blend: the equal-weight mean of these learners' predictions (those that were trained). Nothing about it is
# fitted to the ratings beyond its members, so its cross-validation is as honest as theirs, and averaging three
# different learners cancels part of each one's error. Replayed on the same runs (bench/results/choice.md), it
# stayed within 0.01 SROCC of the best single candidate on held-out files at every N from 50 to 200 on the
# simulated corpora and on real people, while every rule that picks one candidate by cross-validation did not:
# with a few hundred ratings the CV winner is mostly noise.
BLEND_MEMBERS = ("ridge", "graph", "mlp")
# So the blend is kept; from BLEND_REPLACEABLE_FROM ratings on, a single candidate replaces it when its CV SROCC
# leads the blend's by more than BLEND_MARGIN_STANDARD_ERRORS standard errors of the difference (a paired
# bootstrap). Below that, even leads of two or three such standard errors were noise on real people at 50
# ratings (regret 0.029 and 0.018 against 0.010 for the blend kept, bench/results/choice.md): the bootstrap over
# a few dozen files does not see how much the folds themselves vary.
BLEND_MARGIN_STANDARD_ERRORS = 3.0
BLEND_REPLACEABLE_FROM = 300
# Without a blend (fewer than two learners trained: a Stop, too few ratings), the one-standard-error rule picks
# the first of these within MARGIN_STANDARD_ERRORS standard errors of the leader's CV SROCC, the steadier model
# first: the graph model and ridge are closed-form linear models with one prior each, kNN has nothing to fit.
PREFERENCE_ORDER = ("graph", "ridge", "knn", BLEND_NAME, "mlp")
# Standard errors of CV SROCC differences: a paired bootstrap, BOOTSTRAP_DRAWS resamples of at most
# BOOTSTRAP_ROWS rated files.
MARGIN_STANDARD_ERRORS = 1.0
BOOTSTRAP_DRAWS = 200
BOOTSTRAP_ROWS = 2000
# The learning curve scores on a fifth of the ratings; below this there are too few to rank.
MIN_RATINGS_FOR_CURVE = 25
# Field columns (taste/features.py, standardised) enter ridge and the MLP beside the embedding scaled to this
# many times the variance of one embedding column: a genre is one column against hundreds of embedding
# dimensions, so at equal variance ridge's penalty would all but erase it.
FIELD_COLUMN_WEIGHT = 10.0
# ... and the graph model's Bayesian regression with this prior variance per column (a standardised rating's
# variance is 1; the embedding's features carry a prior variance of about 1 in all).
GRAPH_FIELD_VARIANCE = 0.05
# A field group is kept when its CV SROCC gain over the embedding alone (ridge, the same folds) exceeds this
# many standard errors of the gain (a paired bootstrap over the rated files).
FIELD_GAIN_STANDARD_ERRORS = 1.0
# The field groups are judged on a seeded sample of at most this many ratings (the same folds, restricted): one
# ridge cross-validation per group on 10k ratings cost 7.8 s of a 10 s training budget on 2 cores, while the
# gain a group brings is already resolved by 2,000 ratings (its standard error there is about 0.01).
FIELD_SELECTION_MAX_RATINGS = 2_000


@dataclass
class TrainResult:
    """The fitted winner and the report of how it was chosen."""

    model: TasteModel
    winner: str
    reason: str
    metrics: dict[str, Metrics]
    n_ratings: int
    stopped_early: bool
    seconds: float
    cv_predictions: dict[str, np.ndarray] = field(default_factory=dict)  # out-of-fold, per candidate
    cv_actual: np.ndarray = field(default_factory=lambda: np.zeros(0))  # the ratings they predict
    learning_curve: list[tuple[int, float]] = field(default_factory=list)  # (ratings, mean held-out SROCC)
    learning_curve_model: str = "ridge"
    learning_curve_sd: list[float] = field(default_factory=list)  # per point: SROCC's sd over the random splits
    learning_curve_repeats: int = 0  # how many random held-out splits each point averages
    candidates: dict[str, TasteModel] = field(default_factory=dict)  # every candidate, fit on all
    budget_reached: bool = False
    mlp_epochs: int = 0
    mlp_best_epoch: int = 0
    # Standard error of each candidate's CV SROCC minus the preferred model's (what choose_winner weighed).
    margins: dict[str, float] = field(default_factory=dict)
    # Field groups tried (taste/features.py): name -> {"gain": CV SROCC with - without it, "se", "kept"}.
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    weak_ratings: int = 0  # unrated files that play history gave a weak rating

    def scatter(self) -> tuple[np.ndarray, np.ndarray]:
        """(actual, predicted) ratings of the winner's cross-validation, for a scatter plot."""
        return self.cv_actual, self.cv_predictions.get(self.winner, np.zeros(0))

    def summary(self) -> dict[str, Any]:
        """The JSON-friendly part of the report (the CLI's `train --json` keys and a few more)."""
        return {
            "winner": self.winner,
            "reason": self.reason,
            "n_ratings": self.n_ratings,
            "metrics": {name: dict(values) for name, values in self.metrics.items()},
            "stopped_early": self.stopped_early,
            "budget_reached": self.budget_reached,
            "seconds": round(self.seconds, 3),
            "learning_curve": [list(point) for point in self.learning_curve],
            "learning_curve_model": self.learning_curve_model,
            "learning_curve_sd": list(self.learning_curve_sd),
            "learning_curve_repeats": self.learning_curve_repeats,
            "mlp_epochs": self.mlp_epochs,
            "mlp_best_epoch": self.mlp_best_epoch,
            "fields": {name: dict(values) for name, values in self.fields.items()},
            "weak_ratings": self.weak_ratings,
        }


def train_taste(
    X: np.ndarray,
    y: np.ndarray,
    prefs: object = None,
    *,
    budget_seconds: float | None = None,
    epochs: int | None = None,
    seed: int = 0,
    folds: int = 5,
    repeats: int | None = None,
    on_event: EventSink | None = None,
    should_stop: Callable[[], bool] | None = None,
    device: str = "auto",
    mlp_config: MlpConfig | None = None,
    learning_curve: bool = True,
    library: np.ndarray | GraphFeatures | None = None,
    fields: Sequence[FieldRow] | None = None,
) -> TrainResult:
    """Cross-validate mean, kNN, ridge, graph (with `library`) and the MLP ensemble on (X, y, prefs); the winner.

    y is NaN for rows known only from A/B choices (prefs: rows of winner, loser, tie). The budget
    bounds the whole call; `epochs` fixes the MLP's epochs instead of early stopping. `repeats`
    k-fold splits are averaged (None: more for fewer ratings, see folds.repeats_for). Events go to
    `on_event` as they happen; `should_stop()` ends training early with the best model so far.
    `library`: embeddings of (a sample of) the whole library, rated or not, or GraphFeatures already fitted
    on them; with it the graph model (taste/graph.py: Bayesian linear regression on the library's
    neighbourhood graph) is a candidate too.
    `fields`: one dict per row of X, what the file says about itself (taste/features.py); each group of
    columns it gives is kept only where cross-validation says it helps, and play history in it gives unrated
    files weak ratings. With fields kept, every candidate comes back as a FieldsModel (predict_files).
    """
    run = _TrainingRun(X, y, prefs, seed=seed, folds=folds, repeats=repeats, on_event=on_event,
                       should_stop=should_stop, fields=fields)
    if budget_seconds is None and epochs is None:
        budget_seconds = DEFAULT_BUDGET_SECONDS
    deadline = None if budget_seconds is None else run.started + float(budget_seconds)
    with threads_for(run.n_ratings, run.X.shape[1]):
        run.cross_validate_baselines()
        run.select_field_groups()
        run.cross_validate_ridge()
        run.cross_validate_graph(library)
        if learning_curve:
            run.compute_learning_curve()
        run.train_mlp(mlp_config or MlpConfig(), epochs=epochs, deadline=deadline, device=device)
        run.cross_validate_blend()
        return run.result()


class _TrainingRun:
    """The state of one train_taste call, stage by stage."""

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        prefs: object,
        *,
        seed: int,
        folds: int,
        repeats: int | None,
        on_event: EventSink | None,
        should_stop: Callable[[], bool] | None,
        fields: Sequence[FieldRow] | None = None,
    ) -> None:
        self.started = time.perf_counter()
        self.X = np.ascontiguousarray(X, dtype=np.float32)
        self.X_embedding = self.X  # kNN and the graph's map read the embedding alone; self.X gains the fields
        self.fields = list(fields) if fields is not None else None
        if self.fields is not None and len(self.fields) != len(self.X):
            raise ValueError(f"fields must have one row per row of X; got {len(self.fields)} for {len(self.X)}")
        self.field_encoder: FieldEncoder | None = None
        self.field_report: dict[str, dict[str, Any]] = {}
        self.column_scale = 1.0
        self.y = np.asarray(y, dtype=np.float64).ravel()
        if self.X.ndim != 2 or len(self.X) != len(self.y):
            raise ValueError(f"X must be (n, d) with one row per rating; got {self.X.shape} and {self.y.shape}")
        self.rated = rated_rows(self.y)
        self.n_ratings = int(self.rated.sum())
        if self.n_ratings == 0:
            raise ValueError("no ratings to train on: rate a few files first")
        self.prefs = as_preferences(prefs, len(self.y))
        labels, weights = weak_ratings(self.y, plays_of(self.fields, len(self.y)))
        self.weak = (labels, weights) if (weights > 0).any() else None
        self.seed = seed
        self.folds = min(folds, self.n_ratings) if self.n_ratings >= MIN_RATINGS_FOR_CV else 0
        self.splits = CvSplits.make(self.n_ratings, self.folds, repeats or repeats_for(self.n_ratings), seed)
        self.rated_index = np.flatnonzero(self.rated)
        self._neighbours: NeighbourLists | None = None
        self.scaler = InputScaler.fit(self.X)
        self.emit = on_event or (lambda event: None)
        self.should_stop = should_stop or (lambda: False)
        self.stopped = False
        self.budget_reached = False
        self.metrics: dict[str, Metrics] = {}
        self.oof: dict[str, np.ndarray] = {}  # out-of-fold predictions, averaged over the repeated splits
        self.oof_runs: dict[str, np.ndarray] = {}  # (repeats, ratings): each split's own
        self.candidates: dict[str, TasteModel] = {}
        self.fold_ridges: list[Any] = []
        self.curve: list[tuple[int, float]] = []
        self.curve_sd: list[float] = []
        self.curve_repeats = 0
        self.mlp_epochs = self.mlp_best_epoch = 0

    # -- stages -----------------------------------------------------------------------------

    def cross_validate_baselines(self) -> None:
        repeated = f", repeated {self.splits.repeats} times" if self.splits.repeats > 1 else ""
        self._stage(f"{self.n_ratings} ratings, {len(self.prefs)} A/B choices, "
                    f"{self.folds}-fold cross-validation{repeated}")
        self._cross_validate("mean", MeanModel)
        if not self._stop_requested():
            self._cross_validate_knn()

    def select_field_groups(self) -> None:
        """Each field group's CV SROCC gain to ridge over the embedding alone, on the shared folds; the groups
        that gain more than FIELD_GAIN_STANDARD_ERRORS standard errors are appended to X for the learners."""
        if self._stop_requested() or not self.fields or not self.splits.networks:
            return
        encoder = FieldEncoder.fit([self.fields[row] for row in self.rated_index])
        if not encoder.groups:
            return
        self._stage(f"cross-validating the file's fields: {encoder.describe()}")
        embedding_variance = float(np.mean(self.X_embedding.var(axis=0, dtype=np.float64)))
        self.column_scale = math.sqrt(FIELD_COLUMN_WEIGHT * max(embedding_variance, 1e-12))
        sample = self._field_selection_sample()
        base = self._ridge_out_of_fold(self.X_embedding, sample)
        base_srocc = self._cv_srocc(base, sample)
        kept = []
        for name in encoder.names:
            columns = encoder.only([name]).encode(self.fields) * np.float32(self.column_scale)
            with_group = self._ridge_out_of_fold(np.hstack([self.X_embedding, columns]), sample)
            gain = self._cv_srocc(with_group, sample) - base_srocc
            se = _paired_srocc_se(self.y[self.rated][sample], base.mean(axis=0)[sample],
                                  with_group.mean(axis=0)[sample], self.seed)
            keep = gain > max(FIELD_GAIN_STANDARD_ERRORS * se, 0.0)
            self.field_report[name] = {"gain": round(gain, 4), "se": round(se, 4), "kept": bool(keep)}
            kept += [name] if keep else []
            if self._stop_requested():
                break
        if kept:
            self.field_encoder = encoder.only(kept)
            fields = self.field_encoder.encode(self.fields) * np.float32(self.column_scale)
            self.X = np.ascontiguousarray(np.hstack([self.X_embedding, fields]), dtype=np.float32)
            self.scaler = InputScaler.fit(self.X)

    def cross_validate_ridge(self) -> None:
        if self._stop_requested():
            return
        self._cross_validate("ridge", lambda: RidgeModel(scaler=self.scaler, weak=self.weak))

    def cross_validate_graph(self, library: np.ndarray | GraphFeatures | None) -> None:
        if self._stop_requested() or library is None:
            return
        if isinstance(library, GraphFeatures):
            features = library
        elif len(library) < 2:
            return
        else:
            self._stage(f"building the neighbourhood graph of {min(len(library), GRAPH_SAMPLE)} library files")
            features = GraphFeatures.fit(library, seed=self.seed)
        if self.field_encoder is not None:
            features = features.with_fields(self.X_embedding.shape[1], self.field_encoder.width,
                                            math.sqrt(GRAPH_FIELD_VARIANCE) / self.column_scale)
        Phi = features.transform(self.X)
        self._stage("cross-validating graph")
        if self.splits.networks:
            oof = np.empty((self.splits.repeats, self.n_ratings))
            for network in range(self.splits.networks):
                held_out = self.splits.held_out(network)
                rows = self.rated_index[held_out]
                model = GraphModel(features, weak=self.weak).fit_features(Phi, *self._hiding(rows))
                assert model.posterior is not None
                oof[self.splits.repeat_of(network), held_out] = model.posterior.mean(Phi[rows])
            self._record_metrics("graph", oof)
        self.candidates["graph"] = GraphModel(features, weak=self.weak).fit_features(Phi, self.y, self.prefs)

    def compute_learning_curve(self) -> None:
        """SROCC of ridge on a random fifth of the ratings, trained on nested random subsets of the rest;
        each point the mean and standard deviation over several such splits (seeded).

        Ridge is the cheap proxy for every candidate: closed form, at its own alpha per rating on all
        ratings (searching alpha again at every size would cost more for a picture that barely changes).
        """
        if self._stop_requested() or self.n_ratings < MIN_RATINGS_FOR_CURVE or "ridge" not in self.candidates:
            return
        ridge = self.candidates["ridge"].solution  # type: ignore[attr-defined]
        relative_alpha = ridge.alpha / max(ridge.n, 1)
        Xs = self.scaler.transform(self.X[self.rated_index])
        y = self.y[self.rated_index]
        n_held_out = self.n_ratings // 5
        pool_size = self.n_ratings - n_held_out
        sizes = [s for s in LEARNING_CURVE_SIZES if s < pool_size] + [pool_size]
        repeats = int(np.clip(LEARNING_CURVE_ROW_BUDGET // pool_size, LEARNING_CURVE_MIN_REPEATS,
                              LEARNING_CURVE_MAX_REPEATS))
        rng = np.random.default_rng(self.seed + 7)
        scores = np.empty((repeats, len(sizes)))
        for repeat in range(repeats):
            order = rng.permutation(self.n_ratings)
            held_out, pool = order[:n_held_out], order[n_held_out:]
            predictions = _nested_ridge_predictions(Xs[pool], y[pool], Xs[held_out], sizes, relative_alpha)
            scores[repeat] = [srocc(y[held_out], prediction) for prediction in predictions]
        means, sds = scores.mean(axis=0), scores.std(axis=0, ddof=1)
        self.curve = [(size, float(mean)) for size, mean in zip(sizes, means)]
        self.curve_sd = [float(sd) for sd in sds]
        self.curve_repeats = repeats
        self.emit({"type": "learning_curve", "model": "ridge", "points": [list(p) for p in self.curve],
                   "sd": self.curve_sd, "repeats": repeats})

    def train_mlp(self, config: MlpConfig, *, epochs: int | None, deadline: float | None, device: str) -> None:
        if self._stop_requested() or "ridge" not in self.candidates:
            return
        self._stage(f"training the MLP ensemble ({config.members} members + {self.splits.networks} fold networks)")
        model = MlpEnsemble(config, device=device, seed=self.seed)
        report = model.fit_with_folds(
            self.X, self.y, self.prefs, self.splits, scaler=self.scaler,
            fold_ridges=self.fold_ridges or None,
            full_ridge=self.candidates["ridge"].solution,  # type: ignore[attr-defined]
            epochs=epochs, deadline=deadline, on_epoch=self._emit_epoch, should_stop=self.should_stop,
            neighbours=self.neighbours() if self.field_encoder is None else nearest_rated(
                self.X, unit_rows(self.X[self.rated])),
        )
        self.stopped = self.stopped or report.stopped
        self.budget_reached = report.budget_reached
        self.mlp_epochs, self.mlp_best_epoch = report.epochs, report.best_epoch
        self.candidates["mlp"] = model
        if self.splits.networks and report.oof_predictions is not None:
            self._record_metrics("mlp", report.oof_predictions)

    def cross_validate_blend(self) -> None:
        """The blend as one more candidate: the mean of the learners' predictions, equal weights. Its out-of-fold
        predictions are its members' averaged, so it is cross-validated on exactly their folds."""
        members = [name for name in BLEND_MEMBERS if name in self.oof_runs and name in self.candidates]
        if self._stop_requested() or len(members) < 2 or not self.splits.networks:
            return
        self._stage(f"cross-validating the blend of {', '.join(members)}")
        self._record_metrics(BLEND_NAME, np.mean([self.oof_runs[name] for name in members], axis=0))
        weights = np.full(len(members), 1.0 / len(members))
        self.candidates[BLEND_NAME] = BlendModel({name: self.candidates[name] for name in members}, weights, 0.0)

    # -- the result -------------------------------------------------------------------------

    def result(self) -> TrainResult:
        reference = BLEND_NAME if BLEND_NAME in self.metrics else best_ranker(self.metrics)
        margins = self._margins_over(reference) if reference is not None else {}
        winner, reason = choose_winner(self.metrics, self.n_ratings, margins=margins)
        reason += self._fields_text()
        self._stage(f"winner: {winner}. {reason}")
        candidates = self._candidates_with_fields()
        return TrainResult(
            model=candidates[winner],
            winner=winner,
            reason=reason,
            metrics=self.metrics,
            n_ratings=self.n_ratings,
            stopped_early=self.stopped,
            seconds=time.perf_counter() - self.started,
            cv_predictions=self.oof,
            cv_actual=self.y[self.rated],
            learning_curve=self.curve,
            learning_curve_sd=self.curve_sd,
            learning_curve_repeats=self.curve_repeats,
            candidates=candidates,
            budget_reached=self.budget_reached,
            mlp_epochs=self.mlp_epochs,
            mlp_best_epoch=self.mlp_best_epoch,
            margins=margins,
            fields=self.field_report,
            weak_ratings=len(weak_rows(self.y, self.weak)),
        )

    def _candidates_with_fields(self) -> dict[str, TasteModel]:
        """With field groups kept, every candidate wrapped with their encoder (kNN and the mean read none)."""
        if self.field_encoder is None:
            return self.candidates
        return {name: FieldsModel(model, self.field_encoder, self.X_embedding.shape[1], self.column_scale,
                                  takes_fields=name not in ("mean", "knn"))
                for name, model in self.candidates.items()}

    def _fields_text(self) -> str:
        """'. Fields kept: genre (+0.031 ± 0.012 CV SROCC); dropped: …' for the report."""
        if not self.field_report:
            return ""

        def listed(keep: bool) -> str:
            return ", ".join(f"{name} ({values['gain']:+.3f} ± {values['se']:.3f})"
                             for name, values in self.field_report.items() if values["kept"] == keep)

        kept, dropped = listed(True), listed(False)
        text = ". The file's fields (CV SROCC gain of ridge with each group over the embedding alone): "
        text += f"kept {kept}" if kept else "none kept"
        text += f"; dropped {dropped}, no gain beyond one standard error" if dropped else ""
        weak = len(weak_rows(self.y, self.weak))
        return text + (f". {weak} unrated files played or skipped count as weak ratings" if weak else "")

    # -- helpers ----------------------------------------------------------------------------

    def neighbours(self) -> NeighbourLists:
        """Every row's nearest rated rows, computed once for kNN's CV and the MLP's neighbour input."""
        if self._neighbours is None:
            self._neighbours = nearest_rated(self.X_embedding, unit_rows(self.X_embedding[self.rated]))
        return self._neighbours

    def _cross_validate(self, name: str, make: Callable[[], TasteModel]) -> None:
        """Out-of-fold predictions of a candidate (each fold's ratings hidden as NaN), then a fit on all."""
        self._stage(f"cross-validating {name}")
        if self.splits.networks:
            oof = np.empty((self.splits.repeats, self.n_ratings))
            for network in range(self.splits.networks):
                held_out = self.splits.held_out(network)
                model = self._fit_without(make(), self.rated_index[held_out])
                oof[self.splits.repeat_of(network), held_out] = model.predict(self.X[self.rated_index[held_out]])[0]
                if name == "ridge":
                    self.fold_ridges.append(model.solution)  # type: ignore[attr-defined]
            self._record_metrics(name, oof)
        self.candidates[name] = make().fit(self.X, self.y, self.prefs)

    def _cross_validate_knn(self) -> None:
        """kNN's out-of-fold predictions from the shared neighbour lists: the same answers as
        KnnModel fitted on each fold's training ratings, for one similarity pass instead of one per fold."""
        self._stage("cross-validating knn")
        if self.splits.networks:
            lists = self.neighbours().rows(self.rated_index)
            y_rated = self.y[self.rated]
            oof = np.empty((self.splits.repeats, self.n_ratings))
            for network in range(self.splits.networks):
                held_out = self.splits.held_out(network)
                training = ~held_out
                mean, _ = neighbour_mean(lists.rows(np.flatnonzero(held_out)), y_rated, training)
                oof[self.splits.repeat_of(network), held_out] = np.where(
                    np.isnan(mean), y_rated[training].mean(), mean)
            self._record_metrics("knn", oof)
        self.candidates["knn"] = KnnModel().fit(self.X_embedding, self.y, self.prefs)

    def _field_selection_sample(self) -> np.ndarray:
        """Positions (into the ratings) the field groups are judged on: all of them, or a seeded sample of
        FIELD_SELECTION_MAX_RATINGS."""
        if self.n_ratings <= FIELD_SELECTION_MAX_RATINGS:
            return np.arange(self.n_ratings)
        rng = np.random.default_rng(self.seed + 17)
        return np.sort(rng.choice(self.n_ratings, FIELD_SELECTION_MAX_RATINGS, replace=False))

    def _ridge_out_of_fold(self, X: np.ndarray, sample: np.ndarray | None = None) -> np.ndarray:
        """(repeats, ratings) out-of-fold predictions of ridge on inputs X, on the shared folds; with `sample`
        (positions into the ratings) the folds are restricted to it: ridge learns from the sample's other folds
        only, and rows outside it stay NaN."""
        scaler = InputScaler.fit(X)
        oof = np.full((self.splits.repeats, self.n_ratings), np.nan)
        outside = np.setdiff1d(np.arange(self.n_ratings), sample) if sample is not None else np.zeros(0, int)
        for network in range(self.splits.networks):
            held_out = np.flatnonzero(self.splits.held_out(network))
            tested = held_out if sample is None else np.intersect1d(held_out, sample)
            if not len(tested):
                continue
            rows = self.rated_index[tested]
            hidden = self.rated_index[np.union1d(held_out, outside)]
            model = RidgeModel(scaler=scaler, weak=self.weak).fit(X, *self._hiding(hidden))
            oof[self.splits.repeat_of(network), tested] = model.predict(X[rows])[0]
        return oof

    def _cv_srocc(self, oof: np.ndarray, sample: np.ndarray | None = None) -> float:
        """CV SROCC as _record_metrics computes it: within each fold, averaged over folds and repeats (over the
        `sample` positions only, when given)."""
        y_rated = self.y[self.rated]
        chosen = slice(None) if sample is None else sample
        return float(np.mean([cross_validated_metrics(y_rated[chosen], oof[r][chosen], self.splits.fold_of[r][chosen],
                                                      seed=self.seed)["srocc"]
                              for r in range(self.splits.repeats)]))

    def _fit_without(self, model: TasteModel, held_out: np.ndarray) -> TasteModel:
        return model.fit(self.X, *self._hiding(held_out))

    def _margins_over(self, preferred: str) -> dict[str, float]:
        """For each other cross-validated candidate, the standard error of (its CV SROCC - the leader's),
        by a paired bootstrap over the rated files (out-of-fold predictions, ranks fixed: Pearson on ranks)."""
        if preferred not in self.oof:
            return {}
        y = self.y[self.rated]
        rng = np.random.default_rng(self.seed + 11)
        rows = rng.choice(len(y), min(len(y), BOOTSTRAP_ROWS), replace=False)
        draws = rng.integers(0, len(rows), (BOOTSTRAP_DRAWS, len(rows)))
        truth = _ranks(y[rows])[draws]

        def correlations(prediction: np.ndarray) -> np.ndarray:
            ranked = _ranks(prediction[rows])[draws]
            a = truth - truth.mean(axis=1, keepdims=True)
            b = ranked - ranked.mean(axis=1, keepdims=True)
            denominator = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
            return np.where(denominator > 0, (a * b).sum(axis=1) / np.maximum(denominator, 1e-300), 0.0)

        base = correlations(self.oof[preferred])
        return {name: float(np.std(correlations(oof) - base)) for name, oof in self.oof.items()
                if name not in (preferred, "mean")}

    def _hiding(self, held_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(y, prefs) with the held-out rows' ratings hidden (NaN) and every choice touching them dropped."""
        y = self.y.copy()
        y[held_out] = np.nan
        allowed = np.ones(len(y), dtype=bool)
        allowed[held_out] = False  # a choice touching a held-out item would leak its rating
        return y, preferences_within(self.prefs, allowed)

    def _record_metrics(self, name: str, oof: np.ndarray) -> None:
        """Metrics of out-of-fold predictions (repeats, ratings), averaged over the repeated splits."""
        y_rated = self.y[self.rated]
        per_split = [cross_validated_metrics(y_rated, oof[r], self.splits.fold_of[r], seed=self.seed)
                     for r in range(self.splits.repeats)]
        self.metrics[name] = Metrics(
            mae=float(np.mean([m["mae"] for m in per_split])),
            srocc=float(np.mean([m["srocc"] for m in per_split])),
            pairwise_accuracy=float(np.mean([m["pairwise_accuracy"] for m in per_split])),
        )
        self.oof[name] = oof.mean(axis=0)
        self.oof_runs[name] = oof
        self.emit({"type": "metrics", "candidate": name, **self.metrics[name], "seconds": self._elapsed()})

    def _emit_epoch(self, report: EpochReport) -> None:
        self.emit({"type": "loss", "candidate": "mlp", "epoch": report.epoch, "train_loss": report.train_loss,
                   "val_loss": report.val_loss, "seconds": self._elapsed()})

    def _stage(self, message: str) -> None:
        log.info("taste training: %s", message)
        self.emit({"type": "stage", "message": message, "seconds": self._elapsed()})

    def _stop_requested(self) -> bool:
        if not self.stopped and self.should_stop():
            self.stopped = True
            self._stage("stopped: keeping the best model so far")
        return self.stopped

    def _elapsed(self) -> float:
        return round(time.perf_counter() - self.started, 3)


def _nested_ridge_predictions(
    X: np.ndarray, y: np.ndarray, X_held_out: np.ndarray, sizes: Sequence[int], relative_alpha: float
) -> list[np.ndarray]:
    """Ridge (intercept unpenalised, alpha = relative_alpha x rows) fitted on the first `size` rows of
    (X, y) for each size, predicting X_held_out: the same fit as linear.solve_ridge at one alpha.

    Cheap for many nested sizes: below d rows the (rows x rows) dual is solved from one Gram matrix of the
    first rows, centred per size; from d rows on, the raw sums grow with the rows, so those fits cost one pass
    over X plus a (d x d) solve each. Torch, so the caller's thread setting (threads_for) holds.
    """
    X_t, held_t = torch.from_numpy(np.ascontiguousarray(X, np.float32)), torch.from_numpy(
        np.ascontiguousarray(X_held_out, np.float32))
    y_t = torch.from_numpy(np.asarray(y, dtype=np.float64))
    d = X_t.shape[1]
    out = []
    small = [size for size in sizes if size < d]
    if small:
        first = X_t[: max(small)]
        K, K_held = (first @ first.T).double(), (held_t @ first.T).double()
        for size in small:
            row_means = K[:size, :size].mean(1)
            total = row_means.mean()
            centred = K[:size, :size] - row_means[:, None] - row_means[None, :] + total
            held = K_held[:, :size] - K_held[:, :size].mean(1, keepdim=True) - row_means[None, :] + total
            y_mean = float(y_t[:size].mean())
            dual = torch.linalg.solve(centred + relative_alpha * size * torch.eye(size, dtype=torch.float64),
                                      y_t[:size] - y_mean)
            out.append((y_mean + held @ dual).numpy())
    gram, x_sum = torch.zeros((d, d), dtype=torch.float64), torch.zeros(d, dtype=torch.float64)
    xy, y_sum, done = torch.zeros(d, dtype=torch.float64), 0.0, 0
    for size in (size for size in sizes if size >= d):
        new_X, new_y = X_t[done:size], y_t[done:size]
        gram += (new_X.T @ new_X).double()
        x_sum += new_X.double().sum(0)
        xy += new_X.double().T @ new_y
        y_sum += float(new_y.sum())
        done = size
        x_mean, y_mean = x_sum / size, y_sum / size
        centred = gram - size * torch.outer(x_mean, x_mean)
        coef = torch.linalg.solve(centred + relative_alpha * size * torch.eye(d, dtype=torch.float64),
                                  xy - size * x_mean * y_mean)
        out.append((y_mean + (held_t.double() - x_mean) @ coef).numpy())
    return out


def _paired_srocc_se(y: np.ndarray, a: np.ndarray, b: np.ndarray, seed: int) -> float:
    """Standard error of SROCC(b) - SROCC(a) against y, by a paired bootstrap over the rows (ranks fixed)."""
    rng = np.random.default_rng(seed + 13)
    rows = rng.choice(len(y), min(len(y), BOOTSTRAP_ROWS), replace=False)
    draws = rng.integers(0, len(rows), (BOOTSTRAP_DRAWS, len(rows)))
    truth = _ranks(y[rows])[draws]
    a_c = truth - truth.mean(axis=1, keepdims=True)

    def correlations(prediction: np.ndarray) -> np.ndarray:
        ranked = _ranks(prediction[rows])[draws]
        b_c = ranked - ranked.mean(axis=1, keepdims=True)
        denominator = np.sqrt((a_c * a_c).sum(axis=1) * (b_c * b_c).sum(axis=1))
        return np.where(denominator > 0, (a_c * b_c).sum(axis=1) / np.maximum(denominator, 1e-300), 0.0)

    return float(np.std(correlations(b) - correlations(a)))


def _ranks(values: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(values, kind="stable"), kind="stable").astype(np.float64)


def best_ranker(metrics: dict[str, Metrics]) -> str | None:
    """The candidate with the best cross-validated SROCC (then pairwise accuracy), the mean aside."""
    ranked = [name for name in PREFERENCE_ORDER if name in metrics]
    if not ranked:
        return None
    return max(ranked, key=lambda name: (metrics[name]["srocc"], metrics[name]["pairwise_accuracy"],
                                         -PREFERENCE_ORDER.index(name)))


def choose_winner(metrics: dict[str, Metrics], n_ratings: int | None = None,
                  margins: dict[str, float] | None = None) -> tuple[str, str]:
    """The chosen candidate and why, with numbers (SPEC §6: chosen by ranking, cross-validated SROCC).

    With a blend, `margins` holds the standard error of each other candidate's CV SROCC minus the blend's, and
    the blend is kept unless one leads it by more than BLEND_MARGIN_STANDARD_ERRORS of them (then the best such
    one is chosen). Without a blend, `margins` is relative to the leader (the best CV SROCC), and the first
    candidate of PREFERENCE_ORDER within MARGIN_STANDARD_ERRORS of the leader is chosen. Without margins, only a
    tie within SIMPLER_MODEL_MARGIN counts. MAE is reported, never a veto. When even the leader ranks no better
    than chance, a baseline is chosen (_best_baseline) and the report says so.
    """
    if "mean" not in metrics:
        return "mean", "too few ratings to cross-validate; predicting their mean"
    leader = best_ranker(metrics)
    if leader is None:
        return "mean", "stopped before any model that orders files could be evaluated; predicting the mean rating"
    if metrics[leader]["srocc"] <= 0:
        if BLEND_NAME in metrics:  # kNN ranked no better and fell further behind the blend on real people
            return BLEND_NAME, _not_useful_yet_blend(metrics)
        if "knn" not in metrics:
            return "mean", "no model orders your ratings better than chance in cross-validation; predicting the mean"
        return _best_baseline(metrics, n_ratings)
    margins = margins or {}
    if BLEND_NAME in metrics:  # kept even when it scores below chance in CV: with so few ratings, so is the rest
        return _keep_the_blend_unless_beaten(metrics, margins, n_ratings)

    def within(name: str) -> bool:
        gap = metrics[leader]["srocc"] - metrics[name]["srocc"]
        allowed = MARGIN_STANDARD_ERRORS * margins[name] if name in margins else SIMPLER_MODEL_MARGIN
        return gap <= max(allowed, SIMPLER_MODEL_MARGIN)

    chosen = next(name for name in PREFERENCE_ORDER if name in metrics and (name == leader or within(name)))
    return chosen, _choice_reason(chosen, leader, metrics, margins)


def _not_useful_yet_blend(metrics: dict[str, Metrics]) -> str:
    """The report when nothing ranks above chance but the learners were trained: the blend is kept."""
    blend = metrics[BLEND_NAME]
    tried = ", ".join(f"{name} {metrics[name]['srocc']:.3f}" for name in PREFERENCE_ORDER
                      if name in metrics and name != BLEND_NAME)
    return (f"not useful yet: no model orders your ratings better than chance in cross-validation (SROCC: blend "
            f"{blend['srocc']:.3f}, {tried}; the mean's MAE {metrics['mean']['mae']:.2f}). The blend (the mean of "
            "the learners' predictions) is kept rather than kNN: with this few ratings cross-validation cannot tell "
            "them apart, and on real people the blend did better on held-out files (bench/results/choice.md)")


def _keep_the_blend_unless_beaten(metrics: dict[str, Metrics], margins: dict[str, float],
                                  n_ratings: int | None) -> tuple[str, str]:
    blend = metrics[BLEND_NAME]
    replaceable = n_ratings is None or n_ratings >= BLEND_REPLACEABLE_FROM

    def lead(name: str) -> float:
        return metrics[name]["srocc"] - blend["srocc"]

    singles = [name for name in PREFERENCE_ORDER if name in metrics and name != BLEND_NAME]
    beaten_by = [name for name in singles if replaceable
                 and lead(name) > max(BLEND_MARGIN_STANDARD_ERRORS * margins.get(name, 0.0), SIMPLER_MODEL_MARGIN)]
    if beaten_by:
        chosen = max(beaten_by, key=lambda name: (metrics[name]["srocc"], metrics[name]["pairwise_accuracy"]))
        m, se = metrics[chosen], margins.get(chosen)
        reason = (f"{chosen} was chosen: its cross-validated SROCC {m['srocc']:.3f} leads the blend's "
                  f"{blend['srocc']:.3f} by {lead(chosen):.3f}"
                  + (f", {lead(chosen) / se:.1f} standard errors of the difference (a real lead)" if se else "")
                  + f"; pairwise accuracy {m['pairwise_accuracy']:.3f}, MAE {m['mae']:.2f} "
                  f"(the mean's {metrics['mean']['mae']:.2f})")
    else:
        chosen = BLEND_NAME
        reason = (f"blend (the mean of the learners' predictions) was chosen: cross-validated SROCC "
                  f"{blend['srocc']:.3f}, pairwise accuracy {blend['pairwise_accuracy']:.3f}, MAE {blend['mae']:.2f} "
                  f"(the mean's {metrics['mean']['mae']:.2f})")
        closest = max(singles, key=lead) if singles else None
        if closest is not None and lead(closest) > 0:
            se = margins.get(closest)
            reason += (f". {closest} scored {lead(closest):.3f} higher"
                       + (f" (± {se:.3f}, {lead(closest) / se:.1f} standard errors)" if se else ""))
            reason += (f", within {BLEND_MARGIN_STANDARD_ERRORS:g} standard errors of the difference: not a lead the "
                       "ratings can confirm" if replaceable else
                       f"; with fewer than {BLEND_REPLACEABLE_FROM} ratings such leads are mostly noise")
            reason += ", and averaging the learners is steadier than picking one"
        elif closest is not None:
            reason += f". No single model scored higher (the best, {closest}, {metrics[closest]['srocc']:.3f})"
    reason += _knn_baseline_text(metrics, chosen)
    reason += _others_text([name for name in PREFERENCE_ORDER if name in metrics and name != chosen], metrics)
    return chosen, reason


def _choice_reason(chosen: str, leader: str, metrics: dict[str, Metrics], margins: dict[str, float]) -> str:
    m, mean = metrics[chosen], metrics["mean"]
    reason = (f"{chosen} was chosen for how well it orders your ratings in cross-validation: SROCC {m['srocc']:.3f}, "
              f"pairwise accuracy {m['pairwise_accuracy']:.3f} (MAE {m['mae']:.2f}; the mean's {mean['mae']:.2f})")
    reason += _knn_baseline_text(metrics, chosen)
    if chosen != leader:
        lead = metrics[leader]["srocc"] - m["srocc"]
        se = margins.get(chosen)
        reason += (f". {leader} scored {lead:.3f} higher, within one standard error of the difference"
                   + (f" (± {se:.3f})" if se is not None else "") + f", so the simpler {chosen} is kept")
        return reason + _others_text([name for name in PREFERENCE_ORDER if name in metrics and name != chosen],
                                     metrics)
    others = sorted((name for name in PREFERENCE_ORDER if name in metrics and name != chosen),
                    key=lambda name: -metrics[name]["srocc"])
    if not others:
        return reason
    reason += _others_text(others, metrics)
    runner_up = others[0]
    lead = m["srocc"] - metrics[runner_up]["srocc"]
    se = margins.get(runner_up)
    reason += f". It leads {runner_up} by {lead:.3f} SROCC"
    if se:
        reason += f" ({lead / se:.1f} standard errors of the difference: " + (
            "a clear lead)" if lead > 2 * se else "a lead, not a certain one)" if lead > se else "within the noise)")
    return reason


def _knn_baseline_text(metrics: dict[str, Metrics], chosen: str) -> str:
    """'; the kNN baseline: SROCC …', what the chosen model is measured against (empty when it is kNN)."""
    if "knn" not in metrics or chosen == "knn":
        return ""
    knn = metrics["knn"]
    return f"; the kNN baseline: SROCC {knn['srocc']:.3f}, pairwise accuracy {knn['pairwise_accuracy']:.3f}"


def _others_text(names: Sequence[str], metrics: dict[str, Metrics]) -> str:
    return "; the others' SROCC: " + ", ".join(f"{name} {metrics[name]['srocc']:.3f}" for name in names)


def _best_baseline(metrics: dict[str, Metrics], n_ratings: int | None) -> tuple[str, str]:
    """kNN, unless cross-validation shows it misorders the ratings beyond noise.

    A recommender has to order files and the mean orders nothing, so the mean wins only against
    a kNN whose SROCC is below chance by more than two standard errors (about 2 / sqrt(n)) and
    whose pairwise accuracy is below one half: with 50 ratings CV cannot confirm a small edge.
    """
    knn, mean = metrics["knn"], metrics["mean"]
    tried = ", ".join(
        f"{name} SROCC {metrics[name]['srocc']:.3f} / pairwise {metrics[name]['pairwise_accuracy']:.3f} / "
        f"MAE {metrics[name]['mae']:.2f}"
        for name in CONTENDERS if name in metrics
    ) or "no other model was evaluated"
    noise = 2.0 / math.sqrt(max(n_ratings - 1, 1)) if n_ratings else 0.0
    misorders = knn["srocc"] < -noise and knn["pairwise_accuracy"] < 0.5
    name = "mean" if misorders else "knn"
    why = (f"kNN orders the ratings worse than chance (SROCC {knn['srocc']:.3f})" if misorders
           else "it orders files by their nearest rated neighbours, while the mean orders nothing")
    return name, (
        f"no model orders your ratings better than chance in cross-validation (kNN: SROCC {knn['srocc']:.3f}, "
        f"pairwise {knn['pairwise_accuracy']:.3f}; mean: MAE {mean['mae']:.2f}); {tried}. "
        f"Falling back to the {name} baseline: {why}"
    )
