"""Rate next, A/B questions and "why this rating" against the library (SPEC §1 `next`, `prefer`, `why`).

The picking itself is taste/active.py (numpy only); here: which files are candidates, their vectors of the kind's
active embedding model, the current ratings and A/B choices, and the records that go back to the CLI and the UI.
Every call reads the store afresh, so a rating made a second ago already changes the next proposal; only the
picker's feature map (PCA + landmarks, fitted on a sample of the library) is cached while the library's size
stays within 10 % of the size it was fitted on.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Sequence

import numpy as np

from anagnorisis.config import noun
from anagnorisis.store.db import Store, utc_now
from anagnorisis.store.ratings import add_preference, preference_pairs
from anagnorisis.store.records import Record, iso_utc, present_files, public_record
from anagnorisis.store.vectors import embedded_hashes, load_vectors
from anagnorisis.taste import active
from anagnorisis.taste.service import TasteError, active_embedding_model, training_set

log = logging.getLogger(__name__)

WHY_NEIGHBOURS = 10
MAX_NEXT = 200
# Best-predicted unrated files always among the candidates (exploitation), beside a random sample.
TOP_PREDICTED_CANDIDATES = 500
REFIT_CHANGE = 0.10

# Feature rows kept per fitted space (files x 192 floats: 6,500 candidates are about 10 MB).
MAX_CACHED_FEATURES = 50_000

_spaces: dict[tuple[str, str, str], tuple[int, active.FeatureSpace, np.ndarray, dict[str, np.ndarray]]] = {}
_spaces_lock = threading.Lock()


class _Library:
    """One kind's present files with a vector of the active embedding model, and ways to fetch vectors."""

    def __init__(self, store: Store, settings: Any, kind: str, session: Any = None) -> None:
        self.store, self.kind = store, kind
        self.model_id = active_embedding_model(kind, settings)
        records = session.records(kind) if session is not None else present_files(store, kind)
        self.index = None
        self._rows: dict[str, np.ndarray] | None = None  # feature rows of the fitted space (space() sets it)
        if session is not None:
            try:
                index = session.loaded_index(kind, self.model_id)
                if index is not None and getattr(index, "model_id", self.model_id) == self.model_id:
                    self.index = index
            except Exception:  # noqa: BLE001 - the store is the source of truth; the index only speeds it up
                log.exception("vector index of %s unavailable; reading vectors from the store", kind)
        embedded = set(self.index.hashes) if self.index is not None else embedded_hashes(store, self.model_id)
        self.by_hash: dict[str, Record] = {}
        for record in records:
            content_hash = record.get("content_hash")
            if content_hash in embedded and content_hash not in self.by_hash:
                self.by_hash[content_hash] = record
        self.hashes = sorted(self.by_hash)

    def vectors(self, hashes: Sequence[str]) -> tuple[list[str], np.ndarray]:
        if not hashes:
            return [], np.zeros((0, 0), np.float32)
        if self.index is not None:
            positions = self.index.positions(list(hashes))
            found = [h for h, p in zip(hashes, positions) if p >= 0]
            return found, self.index.vectors(positions[positions >= 0])
        return load_vectors(self.store, self.model_id, list(hashes))

    def space(self) -> tuple[active.FeatureSpace, np.ndarray]:
        """The picker's feature map and the features of a reference sample of the library (cached)."""
        key = (str(self.store.path), self.kind, self.model_id)
        with _spaces_lock:
            cached = _spaces.get(key)
            if cached is not None and abs(cached[0] - len(self.hashes)) <= REFIT_CHANGE * max(cached[0], 1):
                self._rows = cached[3]
                return cached[1], cached[2]
        rng = np.random.default_rng(0)
        sample = self.sample(rng, active.FIT_SAMPLE)
        _, X = self.vectors(sample)
        space = active.FeatureSpace.fit(X, seed=0)
        reference = space.transform(X[: active.REFERENCE_SAMPLE])
        self._rows = {}
        with _spaces_lock:
            _spaces[key] = (len(self.hashes), space, reference, self._rows)
        return space, reference

    def features(self, space: active.FeatureSpace, hashes: Sequence[str], X: np.ndarray) -> np.ndarray:
        """space.transform(X) for these files, each row computed once per fitted space (content hashes)."""
        rows = self._rows
        if rows is None:
            return space.transform(X)
        with _spaces_lock:
            missing = [i for i, h in enumerate(hashes) if h not in rows]
        computed = space.transform(X[missing]) if missing else None
        with _spaces_lock:  # requests run in parallel threads: one of them may clear the cache meanwhile
            if computed is not None:
                if len(rows) + len(missing) > MAX_CACHED_FEATURES:
                    rows.clear()
                rows.update((hashes[i], row) for i, row in zip(missing, computed))
            if any(h not in rows for h in hashes):
                return space.transform(X)
            return np.stack([rows[h] for h in hashes]) if len(hashes) else np.zeros((0, space.dim))

    def sample(self, rng: np.random.Generator, size: int, among: Sequence[str] | None = None) -> list[str]:
        pool = self.hashes if among is None else list(among)
        if len(pool) <= size:
            return list(pool)
        return [pool[i] for i in sorted(rng.choice(len(pool), size, replace=False))]


def _posterior(library: _Library, settings: Any, space: active.FeatureSpace) -> tuple[active.Posterior, set[str], int]:
    """The picker's posterior from every rating and A/B choice of the kind; (posterior, rated hashes, choices)."""
    # With the index in memory the rated files' vectors come from it: reading them from the store would scan the
    # whole embeddings table and leave all its blocks cached in DuckDB again (≈ 110 MB at 70k × 384).
    data = training_set(library.store, library.kind, library.model_id,
                        vectors=library.vectors if library.index is not None else None)
    if not data.hashes:
        return active.Posterior(space.dim), set(), 0
    features = library.features(space, data.hashes, data.X)
    rated = np.isfinite(data.y)
    prefs = np.asarray(data.prefs).reshape(-1, 3)
    differences = features[prefs[:, 0]] - features[prefs[:, 1]] if len(prefs) else None
    targets = np.where(prefs[:, 2] != 0, 0.0, 1.0) if len(prefs) else None
    posterior = active.Posterior.fit(features[rated], data.y[rated], differences, targets)
    return posterior, {h for h, r in zip(data.hashes, rated) if r}, len(prefs)


def _predicted(record: Record) -> float | None:
    rating = record.get("model_rating")
    return None if rating is None or record.get("model_rating_stale") else float(rating)


def _reason(pick: active.Pick, model_rating: float | None) -> str:
    if pick.role == "cover":
        return "cold start: stands for a part of your library that nothing rated covers yet"
    if pick.role == "like":
        source = "the model" if model_rating is not None else "your ratings so far"
        return f"you will probably like it: {source} predict{'s' if model_rating is not None else ''} " \
               f"{pick.predicted:.1f} ± {pick.spread:.1f}"
    return f"rating it teaches the model most: it is unsure about this file and files like it (± {pick.spread:.1f})"


def _candidates(library: _Library, rated: set[str], rng: np.random.Generator) -> list[str]:
    unrated = [h for h in library.hashes if h not in rated and library.by_hash[h].get("user_rating") is None]
    chosen = set(library.sample(rng, active.MAX_CANDIDATES, unrated))
    predicted = [(r, h) for h in unrated if (r := _predicted(library.by_hash[h])) is not None]
    predicted.sort(reverse=True)
    chosen.update(h for _, h in predicted[:TOP_PREDICTED_CANDIDATES])
    return sorted(chosen)


def next_files(store: Store, settings: Any, kind: str, n: int = 10, *, session: Any = None) -> dict[str, Any]:
    """The rate-next queue: `{results: [record + {score, reason, role}], ...}`, most useful first."""
    if n < 1:
        raise ValueError("--n must be at least 1")
    n = min(int(n), MAX_NEXT)
    library = _Library(store, settings, kind, session)
    base = {"kind": kind, "n": n, "embedding_model": library.model_id}
    if not library.hashes:
        return {**base, "results": [], "cold_start": True, "n_ratings": 0, "n_preferences": 0,
                "message": f"no {noun(kind)} has a {library.model_id} embedding yet; scan and embed first"}
    if len(library.hashes) == 1:  # nothing to learn a feature map from: the one file is the whole queue
        return _single_file_queue(library, base)
    space, reference = library.space()
    posterior, rated, n_choices = _posterior(library, settings, space)
    candidates = _candidates(library, rated, np.random.default_rng(0))
    found, X = library.vectors(candidates)
    results: list[dict[str, Any]] = []
    if found:
        features = library.features(space, found, X)
        model_ratings = [_predicted(library.by_hash[h]) for h in found]
        mean = posterior.mean(features)
        predicted = np.array([m if m is not None else p for m, p in zip(model_ratings, mean)])
        cold = not rated and n_choices == 0
        for pick in active.propose(features, posterior, reference, n, predicted=predicted, cold=cold):
            record = library.by_hash[found[pick.index]]
            results.append({**public_record(record), "score": round(pick.score, 6), "role": pick.role,
                            "reason": _reason(pick, model_ratings[pick.index])})
    return {**base, "results": results, "cold_start": not rated and n_choices == 0, "n_ratings": len(rated),
            "n_preferences": n_choices,
            **({} if results else {"message": f"every embedded {noun(kind)} is rated already"})}


def _single_file_queue(library: _Library, base: dict[str, Any]) -> dict[str, Any]:
    """next_files of a kind with one embedded file: that file while it is unrated, else nothing left."""
    record = library.by_hash[library.hashes[0]]
    rated = record.get("user_rating") is not None
    results = [] if rated else [{**public_record(record), "score": 0.0, "role": "cover",
                                 "reason": "cold start: the only embedded file of this kind"}]
    return {**base, "results": results, "cold_start": not rated, "n_ratings": int(rated), "n_preferences": 0,
            **({"message": f"every embedded {library.kind} file is rated already"} if rated else {})}


def next_pair(store: Store, settings: Any, kind: str, *, session: Any = None, seed: int = 0) -> dict[str, Any]:
    """The most informative A/B question: `{a: record, b: record, reason, score}`."""
    library = _Library(store, settings, kind, session)
    if len(library.hashes) < 2:
        raise TasteError(f"A/B needs two embedded {noun(kind, 2)}; scan and embed your library first")
    space, reference = library.space()
    posterior, rated, _ = _posterior(library, settings, space)
    rng = np.random.default_rng(seed)
    unrated = [h for h in library.hashes if h not in rated]
    firsts = library.sample(rng, 600, unrated or library.hashes)
    partners = sorted(set(library.sample(rng, 1500)) | set(firsts))
    first_found, X_first = library.vectors(firsts)
    partner_found, X_partner = library.vectors(partners)
    excluded = active.asked_mask(first_found, partner_found, _asked_pairs(store))
    similarity = active.unit_rows(X_first) @ active.unit_rows(X_partner).T
    features_first = library.features(space, first_found, X_first)
    features_partner = library.features(space, partner_found, X_partner)

    def predictions(hashes: list[str], features: np.ndarray) -> np.ndarray:
        mean = posterior.mean(features)
        model = (_predicted(library.by_hash[h]) for h in hashes)
        return np.array([m if m is not None else p for m, p in zip(model, mean)])

    pair = active.propose_pair(features_first, features_partner, posterior, reference,
                               predicted_first=predictions(first_found, features_first),
                               predicted_partners=predictions(partner_found, features_partner),
                               similarity=similarity, excluded=excluded,
                               rng=None if seed == 0 else np.random.default_rng(seed))
    if pair is None:
        raise TasteError(f"no {kind} pair is left to compare: every likely pair was answered already")
    a, b, value = pair
    return {"kind": kind, "a": public_record(library.by_hash[first_found[a]]),
            "b": public_record(library.by_hash[partner_found[b]]), "score": round(value, 6),
            "reason": "the model cannot tell which of these you prefer: close predicted ratings, large uncertainty"}


def _asked_pairs(store: Store) -> set[tuple[str, str]]:
    rows = preference_pairs(store)
    return {(min(w, l), max(w, l)) for w, l in rows}


def record_preference(store: Store, kind: str, winner: Record, loser: Record, *, tie: bool,
                      source: str = "user") -> dict[str, Any]:
    """Store an A/B choice (winner over loser, or equal); `{preference}` as SPEC §1 prints it."""
    if winner["content_hash"] == loser["content_hash"]:
        raise ValueError("A and B are the same content; choose two different files")
    add_preference(store, winner["content_hash"], loser["content_hash"], tie=tie, kind=kind, source=source)
    return {"preference": {"winner_hash": winner["content_hash"], "loser_hash": loser["content_hash"],
                           "tie": bool(tie), "kind": kind, "chosen_at": iso_utc(utc_now()), "source": source,
                           "winner_path": winner.get("path"), "loser_path": loser.get("path")}}


def why(store: Store, settings: Any, kind: str, record: Record, *, session: Any = None,
        k: int = WHY_NEIGHBOURS) -> dict[str, Any]:
    """The user's rated files nearest to this one (cosine of the active embedding model), with the uncertainty."""
    library = _Library(store, settings, kind, session)
    content_hash = record["content_hash"]
    found, vector = library.vectors([content_hash])
    if not found:
        raise TasteError(f"{record.get('display_path') or record.get('path')} has no {library.model_id} embedding "
                         f"yet; run `python -m anagnorisis embed {kind}`")
    rated = [h for h in library.hashes if library.by_hash[h].get("user_rating") is not None and h != content_hash]
    rated_found, rated_X = library.vectors(rated)
    positions, similarity = active.nearest_rated_neighbours(vector[0], rated_X, k)
    neighbours = [{**public_record(library.by_hash[rated_found[p]]), "similarity": round(float(s), 6)}
                  for p, s in zip(positions, similarity)]
    weights = np.clip(similarity, 0, None) + 1e-6
    ratings = np.array([n["user_rating"] for n in neighbours], dtype=np.float64)
    estimate = float((weights * ratings).sum() / weights.sum()) if len(neighbours) else None
    return {"record": public_record(record), "neighbours": neighbours, "uncertainty": record.get("uncertainty"),
            "model_rating": record.get("model_rating"), "model_rating_stale": record.get("model_rating_stale"),
            "model_version": record.get("model_version"), "embedding_model": library.model_id,
            "neighbour_estimate": None if estimate is None else round(estimate, 3),
            "n_rated": len(rated_found)}
