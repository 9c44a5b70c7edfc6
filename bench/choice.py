"""Which model-choice rule and which blend hold up on every protocol? An offline comparison (SPEC §6, §9).

    python bench/choice.py --jobs 2          # printed and written to bench/results/choice.md

For each run (simulated users of bench/taste.py's corpora A and B, MovieLens people of bench/people.py) and each
N, train_taste is called once; its cross-validated metrics and out-of-fold predictions, and every single
candidate's held-out predictions, are kept. Choice rules and blends are then replayed on those numbers without
training again, so every rule is judged on the same runs:

- rules: the leader on CV SROCC; the one-standard-error rule with graph first (train.py's PREFERENCE_ORDER);
  the same with ridge first;
- blends, weights fitted on the out-of-fold predictions and applied to the members' held-out predictions:
  non-negative least squares with an intercept (train.py's blend); convex weights (non-negative, summing to 1);
  equal weights of ridge, graph and mlp.

Reported: mean held-out SROCC per N and the regret against the best single candidate (its mean minus the rule's,
± the standard error of the paired difference).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import people  # noqa: E402  bench/people.py
import taste as simulated  # noqa: E402  bench/taste.py

from anagnorisis.taste.evaluate import srocc  # noqa: E402
from anagnorisis.taste.graph import GraphFeatures  # noqa: E402
from anagnorisis.taste.models import fit_blend_weights  # noqa: E402
from anagnorisis.taste.train import MARGIN_STANDARD_ERRORS, SIMPLER_MODEL_MARGIN, train_taste  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "choice.md"
SIZES = (50, 100, 200)
SINGLE = ("knn", "ridge", "graph", "mlp")
EQUAL_MEMBERS = ("ridge", "graph", "mlp")
BOOTSTRAP_DRAWS = 200


def convex_weights(P: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Non-negative weights summing to 1 (and a free intercept) that best predict y from the columns of P."""
    from scipy.optimize import nnls

    centred, target = P - P.mean(axis=0), y - y.mean()
    penalty = 1e3 * max(float(np.abs(centred).max()), 1.0)
    A = np.vstack([centred, penalty * np.ones((1, P.shape[1]))])
    b = np.concatenate([target, [penalty]])
    weights, _ = nnls(A, b)
    weights = weights / max(weights.sum(), 1e-12)
    return weights, float(y.mean() - P.mean(axis=0) @ weights)


def bootstrap_se(truth: np.ndarray, a: np.ndarray, b: np.ndarray, seed: int = 0) -> float:
    """Standard error of SROCC(a) - SROCC(b) against truth, by a paired bootstrap over the rows."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(truth), (BOOTSTRAP_DRAWS, len(truth)))
    gaps = [srocc(truth[d], a[d]) - srocc(truth[d], b[d]) for d in draws]
    return float(np.std(gaps))


def one_run(job: tuple) -> list[dict]:
    """Every N of one (setting, user, seed): CV numbers and held-out predictions, then every rule replayed."""
    setting, user, seed = job
    if setting == "people":
        X_all, movies, y_all = people._STATE["X"], *people.user_ratings(user)
        X_user = X_all[movies]
        library = people._user_library(user, movies)
        order = np.random.default_rng([user, seed, 1]).permutation(len(movies))
        pool, held = order, None
    else:
        corpus = _corpus(setting)
        corpus_id = 0 if setting == "A" else 1
        n = len(corpus.vectors)
        held = np.sort(np.random.default_rng([corpus_id, 12345]).choice(n, 1000, replace=False))
        rng = np.random.default_rng([corpus_id, user, seed, 1])
        y_all = simulated.noisy_ratings(simulated.user_taste(corpus, user, corpus_id), rng)
        X_user = corpus.vectors
        pool = rng.permutation(np.setdiff1d(np.arange(n), held))
        library = _LIBRARY[setting]
    rows = []
    for N in SIZES:
        rated = pool[:N]
        held_out = pool[N:] if held is None else held
        result = train_taste(X_user[rated], y_all[rated], seed=seed, learning_curve=False, library=library)
        truth = y_all[held_out]
        held_pred = {name: result.candidates[name].predict(X_user[held_out])[0] for name in SINGLE
                     if name in result.candidates}
        cv = {name: result.cv_predictions[name] for name in SINGLE if name in result.cv_predictions}
        actual = result.cv_actual
        scores = {name: srocc(truth, p) for name, p in held_pred.items()}
        members = [name for name in SINGLE if name in cv and name in held_pred]
        P_cv = np.column_stack([cv[name] for name in members])
        P_held = np.column_stack([held_pred[name] for name in members])
        w, c = fit_blend_weights(P_cv, actual)
        scores["blend nnls"] = srocc(truth, c + P_held @ w)
        w, c = convex_weights(P_cv, actual)
        scores["blend convex"] = srocc(truth, c + P_held @ w)
        equal = [members.index(name) for name in EQUAL_MEMBERS if name in members]
        scores["blend equal"] = srocc(truth, P_held[:, equal].mean(axis=1))
        cv_scores = {name: result.metrics[name]["srocc"] for name in members}
        leader = max(cv_scores, key=cv_scores.__getitem__)
        ses = {name: bootstrap_se(actual, cv[leader], cv[name], seed) for name in members if name != leader}
        scores["rule: leader"] = scores[leader]
        # The equal blend as a candidate: its out-of-fold predictions are the members' averaged (nothing fitted).
        with_equal = dict(cv)
        with_equal["blend equal"] = np.mean([cv[name] for name in EQUAL_MEMBERS if name in cv], axis=0)
        folds = {name: srocc(actual, prediction) for name, prediction in with_equal.items()}
        top = max(folds, key=folds.__getitem__)
        top_ses = {name: bootstrap_se(actual, with_equal[top], with_equal[name], seed) for name in folds if name != top}
        scores["rule: leader incl. equal blend"] = scores[top]
        for label, order_ in (("rule: 1-SE equal blend first", ("blend equal", "graph", "ridge", "knn", "mlp")),
                              ("rule: 1-SE graph, then equal blend", ("graph", "blend equal", "ridge", "knn", "mlp"))):
            chosen = next(name for name in order_ if name in folds and (
                name == top or folds[top] - folds[name] <= max(MARGIN_STANDARD_ERRORS * top_ses[name],
                                                               SIMPLER_MODEL_MARGIN)))
            scores[label] = scores[chosen]
        for margin in (2.0, 3.0):  # the equal blend kept unless another leads it by more than `margin` SEs
            blend_ses = {name: bootstrap_se(actual, with_equal["blend equal"], with_equal[name], seed)
                         for name in folds if name != "blend equal"}
            ahead = [name for name in folds if name != "blend equal"
                     and folds[name] - folds["blend equal"] > max(margin * blend_ses[name], SIMPLER_MODEL_MARGIN)]
            best_ahead = max(ahead, key=folds.__getitem__) if ahead else "blend equal"
            scores[f"rule: equal blend unless beaten by {margin:.0f} SE"] = scores[best_ahead]
        for label, order_ in (("rule: 1-SE graph first", ("graph", "ridge", "knn", "mlp")),
                              ("rule: 1-SE ridge first", ("ridge", "graph", "knn", "mlp"))):
            chosen = next(name for name in order_ if name in cv_scores and (
                name == leader or cv_scores[leader] - cv_scores[name]
                <= max(MARGIN_STANDARD_ERRORS * ses[name], SIMPLER_MODEL_MARGIN)))
            scores[label] = scores[chosen]
        scores["train.py's winner"] = srocc(truth, result.model.predict(X_user[held_out])[0])
        rows.append({"setting": setting, "user": user, "seed": seed, "N": N, "scores": scores})
    return rows


_CORPORA: dict[str, object] = {}
_LIBRARY: dict[str, GraphFeatures] = {}


def _corpus(setting: str):
    if setting not in _CORPORA:
        _CORPORA[setting] = (simulated.docstring_corpus(None) if setting == "A"
                             else simulated.image_corpus(simulated.IMAGES))
        _LIBRARY[setting] = GraphFeatures.fit(_CORPORA[setting].vectors, seed=0)
    return _CORPORA[setting]


def _initialise() -> None:
    import torch

    torch.set_num_threads(1)
    data = people.load_movielens()
    vectors, _model = people.movie_vectors(data)
    people._setup(vectors, data)


def report(rows: list[dict], seconds: float, users: int, seeds: int) -> str:
    lines = ["# Model choice: rules and blends replayed on the same runs", "",
             f"{users} users x {seeds} seeds per setting (A: docstrings, B: images, people: MovieLens); held-out "
             "SROCC, mean over runs; regret = the best single candidate's mean minus the row's, ± the standard "
             f"error of the paired difference. {seconds / 60:.1f} min on {os.cpu_count()} cores.", ""]
    names = list(rows[0]["scores"])
    for setting in ("A", "B", "people"):
        mine = [row for row in rows if row["setting"] == setting]
        if not mine:
            continue
        lines += [f"## {setting}", "", "| model or rule | " + " | ".join(f"N={N}" for N in SIZES) + " |",
                  "|---|" + "---|" * len(SIZES)]
        best_single = {}
        for N in SIZES:
            at = [row["scores"] for row in mine if row["N"] == N]
            best_single[N] = max(SINGLE, key=lambda name: np.mean([s[name] for s in at]))
        for name in names:
            cells = []
            for N in SIZES:
                at = [row["scores"] for row in mine if row["N"] == N]
                value = np.mean([s[name] for s in at])
                gaps = np.array([s[best_single[N]] - s[name] for s in at])
                cells.append(f"{value:.3f} (regret {gaps.mean():+.3f} ± {gaps.std(ddof=1) / np.sqrt(len(gaps)):.3f})")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += ["", "Best single candidate: " + ", ".join(f"N={N}: {best_single[N]}" for N in SIZES), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    data = people.load_movielens()
    user_ids = people.choose_users(data, args.users)
    jobs = ([(setting, user, seed) for setting in ("A", "B") for user in range(args.users)
             for seed in range(args.seeds)]
            + [("people", user, seed) for user in user_ids for seed in range(args.seeds)])
    with ProcessPoolExecutor(max_workers=args.jobs, initializer=_initialise) as executor:
        rows = [row for part in executor.map(one_run, jobs) for row in part]
    text = report(rows, time.perf_counter() - started, args.users, args.seeds)
    print(text)
    RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
