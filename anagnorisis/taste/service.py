"""The taste model against the library: training sets from the store, versioned model files, predictions.

`train_kind` learns (embedding -> user rating) for one media kind from the vectors of its active encoder only
(never mixing two models), saves the winner as `<data-dir>/models/<kind>-v<version>.pt` and makes it the active
version of that kind; it does not predict. `predict_kind` lets the active version rate every present file of the
kind that has a vector of that version's embedding model, writing one `predictions` row per file; predictions of
other versions stay, and the records call them stale. `rollback` makes an older version active again.

No UI here: the CLI and the Train tab both call these functions.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import contextlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, NamedTuple

import duckdb
import numpy as np

from anagnorisis.config import noun
from anagnorisis.store.db import Store
from anagnorisis.store.files import (content_hashes_of_kind, file_fields_of_kind, played_hashes_of_kind,
                                     present_hashes)
from anagnorisis.store.models import (activate_model_version, active_model_version, add_active_model,
                                      model_versions_of, replace_predictions, stored_model)
from anagnorisis.store.ratings import choices_of_kind, ratings_of_kind
from anagnorisis.store.records import iso_utc
from anagnorisis.store.vectors import embedded_present_hashes, load_vectors

if TYPE_CHECKING:  # the taste core brings torch: imported only when training, so the app starts fast
    from anagnorisis.taste.train import Event, TrainResult

log = logging.getLogger(__name__)

# Fewer rated (and embedded) files than this cannot be cross-validated into anything meaningful: five folds
# need at least one held-out rating each.
MIN_RATINGS = 5
MODELS_FOLDER = "models"
# Files rated per step of `predict`: one step loads this many vectors (768-d float32: about 60 MB) and reports
# progress, so a million files never sit in memory at once and the progress bar moves.
PREDICT_CHUNK_FILES = 20_000
MIN_RATING, MAX_RATING = 0.0, 10.0

ProgressSink = Callable[[int, int], None]

# Taste work in this process runs one at a time (SPEC §6: GPU jobs one at a time), also when a CLI command is
# forwarded into the running app; the UI additionally holds the app's GPU lock shared with embedding.
_ONE_TASTE_JOB_AT_A_TIME = threading.Lock()


class TasteError(Exception):
    """Training or predicting cannot go on; the message says what the user should do."""


class TrainingSet(NamedTuple):
    """Rows of one kind's training data: rated files and files known only from A/B choices (rating NaN)."""

    hashes: list[str]
    X: np.ndarray  # (rows, dim) float32 vectors of one embedding model
    y: np.ndarray  # (rows,) user rating, NaN where only A/B choices know the file
    prefs: np.ndarray  # (choices, 3) int64: winner row, loser row, tie
    fields: list[dict[str, Any]] | None = None  # per row: what the file says about itself (taste/features.py)


@dataclass
class TrainOutcome:
    """What a training produced: the CLI's JSON document, the full result for the report, the data it saw."""

    document: dict[str, Any]
    result: TrainResult
    data: TrainingSet


# ---------------------------------------------------------------- the training set


def training_set(store: Store, kind: str, model_id: str,
                 vectors: Callable[[list[str]], tuple[list[str], np.ndarray]] | None = None) -> TrainingSet:
    """User ratings of a kind joined with that model's vectors, plus A/B choices mapped to row pairs.

    Files without a vector of `model_id` are left out (they are counted by `unembedded_ratings`); a choice
    counts only when both files are of this kind and have a vector. `vectors` (sorted hashes → the found ones
    and their rows) reads them from elsewhere than the store, e.g. a vector index already in memory.
    """

    played_kind = _is_played(kind)

    def read(conn: duckdb.DuckDBPyConnection) -> tuple[set[str], dict[str, float], list[tuple[str, str, bool]],
                                                       set[str], dict[str, tuple[str, str | None, int, int]]]:
        played = played_hashes_of_kind(conn, kind) if played_kind else set()
        return (content_hashes_of_kind(conn, kind), ratings_of_kind(conn, kind), choices_of_kind(conn, kind),
                played, file_fields_of_kind(conn, kind))

    of_kind, ratings, choices, played, files = store.read(read)
    choices = [c for c in choices if c[0] in of_kind and c[1] in of_kind and c[0] != c[1]]
    # Played but unrated files of music and videos come along: their plays are weak ratings (SPEC §6).
    wanted = sorted(set(ratings) | {h for c in choices for h in c[:2]} | played)
    read_vectors = vectors or (lambda wanted_hashes: load_vectors(store, model_id, wanted_hashes))
    hashes, X = read_vectors(wanted) if wanted else ([], np.zeros((0, 0), np.float32))
    row_of = {content_hash: row for row, content_hash in enumerate(hashes)}
    y = np.array([ratings.get(content_hash, np.nan) for content_hash in hashes], dtype=np.float64)
    prefs = np.array([(row_of[winner], row_of[loser], int(tie)) for winner, loser, tie in choices
                      if winner in row_of and loser in row_of],
                     dtype=np.int64).reshape(-1, 3)
    fields = [field_row(*files[content_hash], played=played_kind) if content_hash in files else {}
              for content_hash in hashes]
    return TrainingSet(hashes, X, y, prefs, fields)


def _is_played(kind: str) -> bool:
    from anagnorisis.kinds.registry import get_kind

    try:
        return bool(get_kind(kind).played)
    except (KeyError, ValueError):
        return False


def field_row(relative_path: str, metadata: str | None, full_plays: int = 0, skips: int = 0, *,
              played: bool = True) -> dict[str, Any]:
    """One file's fields for taste/features.py: its scanned metadata (a camera as make + model), the folder
    names of its path, and (for kinds with a play history) its full plays and skips."""
    try:
        row = dict(json.loads(metadata)) if metadata else {}
    except (ValueError, TypeError):
        row = {}
    exif = row.get("exif")
    if isinstance(exif, dict) and (exif.get("Make") or exif.get("Model")):
        row["camera"] = " ".join(str(exif.get(key) or "").strip() for key in ("Make", "Model")).strip()
    row["folder"] = [part for part in relative_path.replace("\\", "/").split("/")[:-1] if part]
    if played:
        row["full_plays"], row["skips"] = int(full_plays), int(skips)
    return row


def library_sample(store: Store, kind: str, model_id: str, size: int, seed: int = 0) -> np.ndarray:
    """Vectors of `model_id` for up to `size` files of the kind, drawn at random (seeded): the unrated
    library the graph model learns its neighbourhoods from."""

    hashes = embedded_present_hashes(store, kind, model_id)
    if len(hashes) > size:
        hashes = [hashes[i] for i in sorted(np.random.default_rng(seed).choice(len(hashes), size, replace=False))]
    return load_vectors(store, model_id, hashes)[1] if hashes else np.zeros((0, 0), np.float32)


def count_ratings(store: Store, kind: str) -> int:
    return len(store.read(lambda conn: ratings_of_kind(conn, kind)))


# ---------------------------------------------------------------- the models table


def models_dir(data_dir: Path) -> Path:
    return Path(data_dir) / MODELS_FOLDER


def model_path(data_dir: Path, stored: str) -> Path:
    """A models row's file: stored relative to the data dir, so a moved data dir keeps working."""
    path = Path(stored)
    return path if path.is_absolute() else Path(data_dir) / path


def active_version(store: Store, kind: str) -> int | None:
    return active_model_version(store, kind)


def active_model(store: Store, kind: str) -> dict[str, Any] | None:
    """The active version of a kind: version, created_at, winner, embedding_model, file and its saved report."""
    return _model_row(store, kind, None)


def _model_row(store: Store, kind: str, version: int | None) -> dict[str, Any] | None:
    row = stored_model(store, kind, version)
    if row is None:
        return None
    version_, kind_, embedding_model, created_at, winner, metrics, file, active = row
    return {"version": int(version_), "kind": kind_, "embedding_model": embedding_model,
            "created_at": iso_utc(created_at), "winner": winner, "report": json.loads(metrics) if metrics else {},
            "file": file, "active": bool(active)}


def model_versions(store: Store, kind: str) -> list[dict[str, Any]]:
    """Every trained version of a kind, newest first, with the winner's metrics and its prediction count."""
    rows = model_versions_of(store, kind)
    versions = []
    for version, embedding_model, created_at, winner, metrics, file, active, predicted in rows:
        report = json.loads(metrics) if metrics else {}
        versions.append({
            "version": int(version), "kind": kind, "embedding_model": embedding_model,
            "created_at": iso_utc(created_at), "winner": winner, "active": bool(active),
            "n_ratings": report.get("n_ratings"), "metrics": (report.get("metrics") or {}).get(winner, {}),
            "stopped_early": report.get("stopped_early"), "file": file, "predicted": int(predicted),
        })
    return versions


def rollback(store: Store, kind: str, version: int) -> dict[str, Any]:
    """Make an older (or any) version of this kind the active one; its own predictions become current again."""
    row = _model_row(store, kind, int(version))
    if row is None:
        known = ", ".join(str(v["version"]) for v in model_versions(store, kind)) or "none yet"
        raise TasteError(f"there is no {kind} model version {version} (versions: {known})")
    data_dir = store.path.parent
    if not model_path(data_dir, row["file"]).is_file():
        raise TasteError(f"the file of {kind} model v{version} is missing ({model_path(data_dir, row['file'])})")
    previous = active_version(store, kind)

    activate_model_version(store, kind, int(version))
    return {"kind": kind, "model_version": int(version), "previous_version": previous,
            "embedding_model": row["embedding_model"], "winner": row["winner"]}


# ---------------------------------------------------------------- training


@contextlib.contextmanager
def _one_at_a_time(gpu_lock: ContextManager[Any] | None) -> Iterator[None]:
    with gpu_lock if gpu_lock is not None else contextlib.nullcontext():
        with _ONE_TASTE_JOB_AT_A_TIME:
            yield


def active_embedding_model(kind: str, settings: Any) -> str:
    """The model id whose vectors serve this kind now (the configured encoder, else its fallback)."""
    from anagnorisis.embed.registry import resolve_encoder

    encoder, _status = resolve_encoder(kind, settings)
    return str(encoder.model_id)


def _refuse_too_little(store: Store, kind: str, model_id: str, data: TrainingSet) -> None:
    rated = int(np.isfinite(data.y).sum())
    if rated >= MIN_RATINGS:
        return
    total = count_ratings(store, kind)
    if total < MIN_RATINGS:
        raise TasteError(
            f"only {total} {noun(kind, total)} {'are' if total != 1 else 'is'} rated; rate at least {MIN_RATINGS} "
            f"(0–10, in the {kind.capitalize()} tab or with `python -m anagnorisis rate PATH RATING`), "
            "then train again")
    raise TasteError(
        f"{total} {noun(kind, total)} are rated but only {rated} have a {model_id} embedding; "
        f"run `python -m anagnorisis embed {kind}` (or wait for the background embedding), then train again")


def train_kind(store: Store, settings: Any, kind: str, **options: Any) -> dict[str, Any]:
    """Train, save and activate a new version for `kind` (options as train_and_save); the SPEC §1 `train`
    JSON document (plus extras)."""
    return train_and_save(store, settings, kind, **options).document


def train_and_save(
    store: Store,
    settings: Any,
    kind: str,
    *,
    seconds: float | None = None,
    epochs: int | None = None,
    on_event: Callable[[Event], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    model_id: str | None = None,
    gpu_lock: ContextManager[Any] | None = None,
) -> TrainOutcome:
    """train_kind, returning the full TrainResult too (the Train tab plots its scatter and learning curve)."""
    started = time.perf_counter()
    model_id = model_id or active_embedding_model(kind, settings)
    data = training_set(store, kind, model_id)
    _refuse_too_little(store, kind, model_id, data)
    with _one_at_a_time(gpu_lock):
        from anagnorisis.taste.graph import GRAPH_SAMPLE
        from anagnorisis.taste.train import train_taste

        library = library_sample(store, kind, model_id, GRAPH_SAMPLE)
        result = train_taste(data.X, data.y, data.prefs, budget_seconds=seconds, epochs=epochs, seed=0,
                             on_event=on_event, should_stop=should_stop,
                             device=str(getattr(settings, "device", "auto") or "auto"),
                             library=library if len(library) >= 2 else None, fields=data.fields)
    version, file = _save_version(store, kind, model_id, result, n_preferences=len(data.prefs))
    document = {
        "model_version": version,
        "winner": result.winner,
        "n_ratings": result.n_ratings,
        "metrics": {name: dict(values) for name, values in result.metrics.items()},
        "stopped_early": result.stopped_early,
        "seconds": round(time.perf_counter() - started, 3),
        "reason": result.reason,
        "kind": kind,
        "embedding_model": model_id,
        "n_preferences": int(len(data.prefs)),
        "training_seconds": round(result.seconds, 3),
        "budget_reached": result.budget_reached,
        "learning_curve": [list(point) for point in result.learning_curve],
        "model_file": str(file),
    }
    log.info("trained %s model v%d (%s) on %d ratings", kind, version, result.winner, result.n_ratings)
    return TrainOutcome(document, result, data)


def _save_version(
    store: Store, kind: str, model_id: str, result: TrainResult, *, n_preferences: int
) -> tuple[int, Path]:
    """Write the model file and its models row (the next version, the only active one of its kind)."""
    data_dir = store.path.parent
    folder = models_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f".{kind}-training-{os.getpid()}-{threading.get_ident()}.pt"
    result.model.save(staging)  # saved before the row exists: a kill here leaves no row without a file
    report = {**result.summary(), "n_preferences": n_preferences}

    def place(version: int) -> str:
        final = folder / f"{kind}-v{version}.pt"
        os.replace(staging, final)
        return str(final.relative_to(data_dir))

    try:
        version = add_active_model(store, kind, model_id, result.winner, json.dumps(report), place)
        return version, folder / f"{kind}-v{version}.pt"
    finally:
        staging.unlink(missing_ok=True)


# ---------------------------------------------------------------- predicting


def load_active_model(store: Store, kind: str) -> tuple[dict[str, Any], Any]:
    """(models row, fitted model) of the active version of a kind."""
    from anagnorisis.taste.models import load_model

    row = _model_row(store, kind, None)
    if row is None:
        raise TasteError(f"there is no trained {kind} model yet; run `python -m anagnorisis train {kind}` first")
    path = model_path(store.path.parent, row["file"])
    try:
        return row, load_model(path)
    except (OSError, ValueError, RuntimeError) as error:
        raise TasteError(f"cannot load {kind} model v{row['version']} from {path}: {error}; "
                         f"train again or roll back to another version") from None


def _write_predictions(store: Store, kind: str, version: int, hashes: list[str], ratings: np.ndarray,
                       uncertainty: np.ndarray) -> None:
    """Replace this version's predictions with the new ones (clipped to the rating scale)."""
    replace_predictions(store, kind, version, hashes, np.clip(ratings, MIN_RATING, MAX_RATING), uncertainty)


def _fields_reader(store: Store, kind: str, model: Any) -> Callable[[str], dict[str, Any]] | None:
    """For a model trained with the file's fields (taste.models.FieldsModel): content hash -> its field row."""
    if not hasattr(model, "predict_files"):
        return None
    files = store.read(lambda conn: file_fields_of_kind(conn, kind))
    played = _is_played(kind)
    return lambda content_hash: field_row(*files[content_hash], played=played) if content_hash in files else {}


def predict_kind(
    store: Store,
    settings: Any,
    kind: str,
    *,
    progress: ProgressSink | None = None,
    should_stop: Callable[[], bool] | None = None,
    gpu_lock: ContextManager[Any] | None = None,
) -> dict[str, Any]:
    """The active model rates every present file of the kind with a vector (rated ones too).

    `{model_version, predicted, seconds}` plus `not_embedded` (present files without a vector of the model's
    embedding model) and `embedding_model`. If `should_stop()` ends it early nothing is written (the earlier
    predictions stay) and the document says `stopped`.
    """
    started = time.perf_counter()
    row, model = load_active_model(store, kind)
    wanted = present_hashes(store, kind)
    found: list[str] = []
    ratings: list[np.ndarray] = []
    spreads: list[np.ndarray] = []
    report = progress or (lambda done, total: None)
    report(0, len(wanted))
    fields_of = _fields_reader(store, kind, model)
    with _one_at_a_time(gpu_lock):
        for start in range(0, len(wanted), PREDICT_CHUNK_FILES):
            if should_stop is not None and should_stop():
                return {"model_version": row["version"], "predicted": 0, "stopped": True, "kind": kind,
                        "seconds": round(time.perf_counter() - started, 3)}  # nothing written: earlier rows stay
            hashes, X = load_vectors(store, row["embedding_model"], wanted[start:start + PREDICT_CHUNK_FILES])
            if hashes:
                rating, uncertainty = (model.predict(X) if fields_of is None
                                       else model.predict_files(X, [fields_of(h) for h in hashes]))
                found += hashes
                ratings.append(np.asarray(rating, dtype=np.float64))
                spreads.append(np.asarray(uncertainty, dtype=np.float64))
            report(min(start + PREDICT_CHUNK_FILES, len(wanted)), len(wanted))
    all_ratings = np.concatenate(ratings) if ratings else np.zeros(0)
    all_spreads = np.concatenate(spreads) if spreads else np.zeros(0)
    _write_predictions(store, kind, row["version"], found, all_ratings, all_spreads)
    return {"model_version": row["version"], "predicted": len(found),
            "seconds": round(time.perf_counter() - started, 3), "kind": kind,
            "not_embedded": len(wanted) - len(found), "embedding_model": row["embedding_model"]}
