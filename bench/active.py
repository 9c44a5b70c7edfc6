"""Rate next (active learning) and A/B choices against random choice, on bench/taste.py's fixed protocol.

    python bench/active.py              # full protocol; table printed and written to bench/results/active.md
    python bench/active.py --quick      # 2 users x 1 seed, printed only
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python bench/active.py --jobs 16   # parallel processes
    python bench/active.py --corpus 0 --users 0:5 --save-runs a.json   # a part; --report-from joins parts

Same corpora, simulated users, rating noise, held-out 1,000 files and training (train_taste, its chosen
winner scored on the held-out files) as bench/taste.py. Three ways to spend the user's actions:

- random: N files drawn at random from the pool (bench/taste.py's own draw), rated;
- rate next: the app's queue (anagnorisis.taste.active.propose, exploitation share included) asked for
  STEP files at a time, each batch rated before the next request, as a person paging through the queue;
- A/B: the first A_B_RATINGS actions are rate-next ratings, every later action is one A/B choice of the
  app's pair picker (propose_pair); the simulated user picks the file whose noisy taste is higher
  (noise N(0, 1) per look, as for a rating; equal after rounding to 0.5 = "equal").

Reported: held-out SROCC (mean +- std over users x seeds) at each budget; the ratings rate next needs to
reach the SROCC random reaches with 200 ratings (per run against that run's own random@200, linearly
interpolated between budgets; a run that never gets there within the largest budget counts as that
budget and is flagged); and SROCC for the same budget spent on A/B choices.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import taste as protocol_module  # noqa: E402  bench/taste.py: corpora and simulated users

from anagnorisis.taste.active import EXPLOIT_SHARE, FeatureSpace, Posterior, asked_mask, propose, propose_pair  # noqa: E402
from anagnorisis.taste.evaluate import srocc  # noqa: E402
from anagnorisis.taste.graph import GraphFeatures  # noqa: E402
from anagnorisis.taste.train import train_taste  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "active.md"
BUDGETS = (10, 25, 50, 75, 100, 150, 200)
STEP = 5
A_B_RATINGS = 10
TARGET_RANDOM_BUDGET = 200

_CORPORA: dict[int, object] = {}


def corpus_for(corpus_id: int, quick: bool):
    if corpus_id not in _CORPORA:
        p = protocol_module.QUICK if quick else protocol_module.FULL
        _CORPORA[corpus_id] = (protocol_module.docstring_corpus(p.max_docstrings) if corpus_id == 0
                               else protocol_module.image_corpus(p.images))
    return _CORPORA[corpus_id]


def held_out_rows(n: int, corpus_id: int, held_out: int) -> np.ndarray:
    return np.sort(np.random.default_rng([corpus_id, 12345]).choice(n, held_out, replace=False))


def score(X: np.ndarray, y: np.ndarray, prefs: np.ndarray | None, rows: np.ndarray, held_out: np.ndarray,
          truth: np.ndarray, seed: int, library: GraphFeatures) -> float:
    """Held-out SROCC of the model train_taste chooses on these rows (y NaN where only A/B knows a row)."""
    result = train_taste(X[rows], y, prefs, seed=seed, learning_curve=False, budget_seconds=3.0, library=library)
    return srocc(truth, result.model.predict(X[held_out])[0])


def score_ridge_too(X: np.ndarray, y: np.ndarray, prefs: np.ndarray | None, rows: np.ndarray, held_out: np.ndarray,
                    truth: np.ndarray, seed: int, library: GraphFeatures) -> tuple[float, float, float]:
    """(winner's, ridge's, graph's) held-out SROCC: ridge and graph always use the A/B choices, the CV-chosen
    winner may not."""
    result = train_taste(X[rows], y, prefs, seed=seed, learning_curve=False, budget_seconds=3.0, library=library)
    return (srocc(truth, result.model.predict(X[held_out])[0]),
            srocc(truth, result.candidates["ridge"].predict(X[held_out])[0]),
            srocc(truth, result.candidates["graph"].predict(X[held_out])[0]))


def active_order(space_features: np.ndarray, pool: np.ndarray, reference: np.ndarray, ratings: np.ndarray,
                 budget: int) -> list[int]:
    """The files the queue proposes, STEP at a time, each batch rated before the next request."""
    chosen: list[int] = []
    available = np.ones(len(space_features), dtype=bool)
    available[np.setdiff1d(np.arange(len(space_features)), pool)] = False
    while len(chosen) < budget:
        rated = np.array(chosen, dtype=np.int64)
        posterior = Posterior.fit(space_features[rated], ratings[rated]) if len(rated) else \
            Posterior(space_features.shape[1])
        candidates = np.flatnonzero(available)
        picks = propose(space_features[candidates], posterior, reference, min(STEP, budget - len(chosen)),
                        cold=len(rated) == 0)
        for pick in picks:
            chosen.append(int(candidates[pick.index]))
            available[candidates[pick.index]] = False
    return chosen


def ab_run(space_features: np.ndarray, pool: np.ndarray, reference: np.ndarray, ratings: np.ndarray,
           taste: np.ndarray, rng: np.random.Generator, first: list[int], budget: int,
           checkpoints: tuple[int, ...]) -> dict[int, tuple[list[int], list[tuple[int, int, int]]]]:
    """Rated files = first A_B_RATINGS of the queue, then one A/B choice per action; state at each checkpoint."""
    rated = list(first[:A_B_RATINGS])
    choices: list[tuple[int, int, int]] = []
    asked: set[tuple[int, int]] = set()
    in_pool = np.zeros(len(space_features), dtype=bool)
    in_pool[pool] = True
    states = {}
    actions = len(rated)
    while actions < budget:
        r = np.array(rated)
        differences = np.array([space_features[a] - space_features[b] for a, b, _ in choices]).reshape(
            -1, space_features.shape[1])
        targets = np.array([0.0 if tie else 1.0 for _, _, tie in choices])
        posterior = Posterior.fit(space_features[r], ratings[r], differences, targets)
        # First file: an unrated pool file; partner: any pool file (rated ones anchor the scale).
        cand = np.flatnonzero(in_pool)
        sample = cand if len(cand) <= 1500 else rng.choice(cand, 1500, replace=False)
        firsts = sample[: min(len(sample), 600)]
        excluded = asked_mask(firsts.tolist(), sample.tolist(), asked)
        pair = propose_pair(space_features[firsts], space_features[sample], posterior, reference, excluded=excluded)
        if pair is None:
            break
        a, b = int(firsts[pair[0]]), int(sample[pair[1]])
        asked.add((min(a, b), max(a, b)))
        seen_a = np.round((taste[a] + rng.normal()) * 2) / 2
        seen_b = np.round((taste[b] + rng.normal()) * 2) / 2
        if seen_a == seen_b:
            choices.append((a, b, 1))
        else:
            choices.append((a, b, 0) if seen_a > seen_b else (b, a, 0))
        actions += 1
        if actions in checkpoints:
            states[actions] = (list(rated), list(choices))
    return states


def run_one(job: tuple[int, int, int, bool]) -> dict:
    corpus_id, user, seed, quick = job
    p = protocol_module.QUICK if quick else protocol_module.FULL
    corpus = corpus_for(corpus_id, quick)
    X = corpus.vectors
    n = len(X)
    held_out = held_out_rows(n, corpus_id, p.held_out)
    pool = np.setdiff1d(np.arange(n), held_out)
    taste = protocol_module.user_taste(corpus, user, corpus_id)
    rng = np.random.default_rng([corpus_id, user, seed, 1])
    ratings = protocol_module.noisy_ratings(taste, rng)
    order = rng.permutation(pool)  # bench/taste.py's random draw, exactly
    truth = ratings[held_out]
    budgets = tuple(b for b in BUDGETS if b <= max(BUDGETS))
    started = time.perf_counter()
    space = FeatureSpace.fit(X, seed=0)
    features = space.transform(X)
    library = GraphFeatures.fit(X, seed=0)  # the taste model's own map (the app fits it on its whole library)
    ref_rng = np.random.default_rng(99)
    reference = features[ref_rng.choice(n, min(2000, n), replace=False)]
    picking_started = time.perf_counter()
    active = active_order(features, pool, reference, ratings, max(budgets))
    picking_seconds = time.perf_counter() - picking_started
    out = {"corpus": corpus_id, "user": user, "seed": seed, "random": {}, "active": {}, "ab": {}, "ab_ridge": {},
           "ab_graph": {}}
    for budget in budgets:
        rows = order[:budget]
        out["random"][budget] = score(X, ratings[rows], None, rows, held_out, truth, seed, library)
        rows = np.array(active[:budget])
        out["active"][budget] = score(X, ratings[rows], None, rows, held_out, truth, seed, library)
    ab_rng = np.random.default_rng([corpus_id, user, seed, 2])
    ab_budgets = tuple(b for b in budgets if b > A_B_RATINGS)
    states = ab_run(features, pool, reference, ratings, taste, ab_rng, active, max(ab_budgets), ab_budgets)
    for budget, (rated, choices) in states.items():
        rows = np.array(sorted(set(rated) | {i for c in choices for i in c[:2]}))
        position = {row: i for i, row in enumerate(rows)}
        y = np.full(len(rows), np.nan)
        for row in rated:
            y[position[row]] = ratings[row]
        prefs = np.array([(position[a], position[b], tie) for a, b, tie in choices], dtype=np.int64)
        out["ab"][budget], out["ab_ridge"][budget], out["ab_graph"][budget] = score_ridge_too(
            X, y, prefs, rows, held_out, truth, seed, library)
    out["seconds"] = time.perf_counter() - started
    out["picking_seconds"] = picking_seconds
    return out


def ratings_needed(active: dict[int, float], target: float) -> tuple[float, bool]:
    """First budget (linear interpolation) where the active curve reaches target; (largest budget, False) if never."""
    budgets = sorted(active)
    previous_b, previous_s = 0, -1.0
    for b in budgets:
        s = active[b]
        if s >= target:
            if previous_s < 0 or s == previous_s:
                return float(b), True
            return previous_b + (b - previous_b) * (target - previous_s) / (s - previous_s), True
        previous_b, previous_s = b, s
    return float(budgets[-1]), False


def report(runs: list[dict], quick: bool, seconds: float, where: str | None = None) -> str:
    p = protocol_module.QUICK if quick else protocol_module.FULL
    names = {0: "A: stdlib docstrings (MiniLM, 384-d)", 1: "B: generated images (basic features, 184-d)"}
    lines = ["# Rate next and A/B choices vs random choice", "",
             f"bench/taste.py's protocol: {p.users} users x {p.seeds} seeds per corpus, {p.held_out} held-out files "
             "never offered; the model is train_taste's chosen winner (3 s budget per fit), scored by held-out SROCC. "
             f"Rate next asks the queue for {STEP} files at a time and rates them before asking again "
             f"(exploitation share {int(100 * EXPLOIT_SHARE)} % included). A/B: the first {A_B_RATINGS} actions are "
             "rate-next ratings, every later action one A/B choice from the pair picker; scored as the chosen winner "
             "(chosen by cross-validation on the ratings only, so it may ignore the choices) and as ridge and the "
             "graph model, which always learn from them. train_taste is given the corpus's GraphFeatures (all its "
             "files, as the app gives it a sample of the library), so the graph model is a candidate.", ""]
    for corpus_id in sorted({r["corpus"] for r in runs}):
        mine = [r for r in runs if r["corpus"] == corpus_id]
        budgets = sorted(mine[0]["random"])
        lines += [f"## {names[corpus_id]}", "", "| actions | random ratings | rate-next ratings | "
                  f"{A_B_RATINGS} ratings + A/B choices (winner) | same, ridge | same, graph |",
                  "|---:|---|---|---|---|---|"]
        for b in budgets:
            cells = []
            for key in ("random", "active", "ab", "ab_ridge", "ab_graph"):
                values = [r[key][b] for r in mine if b in r[key]]
                cells.append(f"{np.mean(values):.3f} ± {np.std(values):.3f}" if values else "–")
            lines.append(f"| {b} | " + " | ".join(cells) + " |")
        target = TARGET_RANDOM_BUDGET if TARGET_RANDOM_BUDGET in budgets else budgets[-1]
        needed = [ratings_needed(r["active"], r["random"][target]) for r in mine]
        values = np.array([v for v, _ in needed])
        missed = sum(1 for _, ok in needed if not ok)
        mean_random = float(np.mean([r["random"][target] for r in mine]))
        mean_curve = {b: float(np.mean([r["active"][b] for r in mine])) for b in budgets}
        pooled, pooled_ok = ratings_needed(mean_curve, mean_random)
        lines += ["", f"Ratings rate next needs to reach random's SROCC at {target} ratings (per run, against that "
                  f"run's own random@{target}): **{values.mean():.1f} ± {values.std():.1f}**"
                  + (f" ({missed} of {len(mine)} runs never reached it within {budgets[-1]}; counted as {budgets[-1]}, "
                     "so the mean is a lower bound)"
                     if missed else "")
                  + f"; on the mean curves: {pooled:.1f}" + ("" if pooled_ok else " (not reached)")
                  + f" (random@{target} mean {mean_random:.3f}).",
                  f"Picking time per run ({max(budgets)} picks in steps of {STEP}): "
                  f"{np.mean([r['picking_seconds'] for r in mine]):.2f} s mean.", ""]
    where = where or f"{platform.node()} ({os.cpu_count()} cores)"
    lines += [f"Whole bench: {seconds / 60:.1f} min of wall time on {where}.", ""]
    return "\n".join(lines)


def _keys_to_int(run: dict) -> dict:
    return {key: ({int(k): v for k, v in value.items()} if isinstance(value, dict) else value)
            for key, value in run.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--corpus", type=int, choices=(0, 1))
    parser.add_argument("--users", metavar="FIRST:END", help="only these simulated users (to split a run in parts)")
    parser.add_argument("--out", help="write the table here too")
    parser.add_argument("--save-runs", metavar="JSON", help="also save every run's numbers")
    parser.add_argument("--report-from", nargs="+", metavar="JSON", help="only build the report from saved runs")
    args = parser.parse_args(argv)
    if args.report_from:
        saved = [json.loads(Path(f).read_text()) for f in args.report_from]
        runs = [_keys_to_int(run) for part in saved for run in part["runs"]]
        text = report(runs, args.quick, sum(part["seconds"] for part in saved),
                      ", ".join(sorted({part["machine"] for part in saved})))
        print(text)
        if not args.quick:
            RESULTS.write_text(text)
        return 0
    p = protocol_module.QUICK if args.quick else protocol_module.FULL
    corpora = [args.corpus] if args.corpus is not None else [0, 1]
    for corpus_id in corpora:
        corpus_for(corpus_id, args.quick)  # build (and cache) before forking
    first, end = (int(x) for x in args.users.split(":")) if args.users else (0, p.users)
    jobs = [(c, u, s, args.quick) for c in corpora for u in range(first, end) for s in range(p.seeds)]
    started = time.perf_counter()
    runs = []
    def save() -> None:  # after every run, so a run cut short by a time limit keeps what it finished
        if args.save_runs:
            Path(args.save_runs).write_text(json.dumps({"runs": runs, "seconds": time.perf_counter() - started,
                                                        "machine": f"{platform.node()} ({os.cpu_count()} cores)"}))

    if args.jobs > 1:
        # Set OMP_NUM_THREADS / OPENBLAS_NUM_THREADS=1 in the environment before starting: numpy's BLAS
        # has chosen its thread count by now, and jobs x all-cores threads would thrash.
        with ProcessPoolExecutor(args.jobs) as pool:
            for run in pool.map(run_one, jobs):
                runs.append(run)
                save()
                print(f"  corpus {run['corpus']} user {run['user']} seed {run['seed']}: "
                      f"{run['seconds']:.0f} s", file=sys.stderr, flush=True)
    else:
        for job in jobs:
            runs.append(run_one(job))
            save()
            print(f"  {job}: {runs[-1]['seconds']:.0f} s", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started
    save()
    text = report(runs, args.quick, seconds)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    elif not args.quick and args.corpus is None:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
