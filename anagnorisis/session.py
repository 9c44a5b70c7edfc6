"""One library opened for work: settings, the store, and the in-memory caches search needs.

The UI keeps one Session for its lifetime; each CLI run makes its own. Records are cached per kind and patched
in place when a rating changes; vector indexes are kept per (kind, model) and refreshed from the store when
embeddings were added.
"""
from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from anagnorisis.config import Settings
from anagnorisis.store import Store
from anagnorisis.store.records import Record, present_files, records_for_paths

log = logging.getLogger(__name__)

# The chunk vectors of a text model are held in RAM for meaning search (SPEC §2). Past this size (≈ 650k chunks
# at 384 dimensions: 80k long documents) the search falls back to the files' mean vectors, with a warning,
# rather than let one index take gigabytes.
CHUNK_INDEX_MAX_BYTES = 1 << 30


class Session:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._records: dict[str, list[Record]] = {}
        self._indexes: dict[tuple[str, str], Any] = {}
        self._stale_indexes: set[str] = set()
        self._chunk_indexes: dict[tuple[str, str], Any] = {}
        self._stale_chunks: set[str] = set()
        self._lock = threading.RLock()
        # The running app sets this to its GPU lock, so a CLI command forwarded into the app (train, predict,
        # embed) waits for the UI's GPU work instead of running beside it; a CLI run alone leaves it None.
        self.gpu_lock: Any = None
        # The running app sets this to its background jobs (anagnorisis.jobs.Jobs), so `jobs` forwarded from the
        # CLI lists and controls them; a CLI run alone leaves it None (no app, no background jobs).
        self.jobs: Any = None

    @property
    def data_dir(self) -> Path:
        return self.settings.data_path

    @property
    def previews_dir(self) -> Path:
        return self.data_dir / "previews"

    # ------------------------------------------------------------ records

    def records(self, kind: str) -> list[Record]:
        with self._lock:
            if kind not in self._records:
                self._records[kind] = present_files(self.store, kind)
            return self._records[kind]

    def invalidate(self, kind: str | None = None) -> None:
        """Forget cached records (after a scan, an embed or a predict)."""
        with self._lock:
            kinds = list(self._records) + [key[0] for key in self._indexes] if kind is None else [kind]
            kinds += [key[0] for key in self._chunk_indexes] if kind is None else []
            for name in kinds:
                self._records.pop(name, None)
                self._stale_indexes.add(name)
                self._stale_chunks.add(name)
        # A scan, embed or predict read through the tables; their blocks stay cached in DuckDB otherwise.
        self.store.release_cache()

    def record_by_path(self, kind: str, path: str) -> Record | None:
        found = records_for_paths(self.store, kind, [os.fsencode(path)])
        return found[0] if found else None

    def rate(self, kind: str, path: str, rating: float | None) -> Record:
        """Commit a rating for the indexed file at path, as a tab shows it, and return its fresh record
        (`anagnorisis.service.ratings.rate`, the one implementation the CLI and the endpoints use too)."""
        from anagnorisis.service.ratings import rate

        return rate(self, os.path.abspath(path), rating, kind=kind)

    def note_rating(self, kind: str, fresh: Record) -> None:
        """Patch the cached records sharing fresh's content with its rating (no reload of the whole kind)."""
        with self._lock:
            for cached in self._records.get(kind, []):
                if cached["content_hash"] == fresh["content_hash"]:
                    cached["user_rating"], cached["rated_at"] = fresh["user_rating"], fresh["rated_at"]

    # ------------------------------------------------------------ encoders and vectors

    def encoder(self, kind: str) -> tuple[Any, Any]:
        """(encoder, status) serving this kind now (the configured model, else its fallback)."""
        from anagnorisis.embed.registry import resolve_encoder

        return resolve_encoder(kind, self.settings)

    def index(self, kind: str) -> Any:
        """The vector index of the active model for this kind, synced with the store; None when nothing is embedded."""
        from anagnorisis.search.vector_index import VectorIndex
        from anagnorisis.store.vectors import embedded_hashes, load_vectors

        encoder, _status = self.encoder(kind)
        key = (kind, encoder.model_id)
        with self._lock:
            index = self._indexes.get(key)
            if index is None:
                hashes, vectors = load_vectors(self.store, encoder.model_id)
                if not hashes:
                    return None
                # Rows move to a file under the data dir once the ANN index serves, so a 1M library keeps
                # only the quantised codes in RAM.
                storage = self.data_dir / "index" / re.sub(r"[^A-Za-z0-9._-]+", "_", f"{kind}-{encoder.model_id}")
                index = VectorIndex(vectors.shape[1], kind=kind, model_id=encoder.model_id, storage_dir=storage)
                index.add(hashes, vectors)
                del vectors
                self._indexes[key] = index
                # The rows now live in the index: the embeddings table's blocks DuckDB cached while reading
                # them would be a second copy (≈ 110 MB at 70k × 384).
                self.store.release_cache()
                return index
            if kind not in self._stale_indexes:
                return index
            self._stale_indexes.discard(kind)
            missing = [h for h in embedded_hashes(self.store, encoder.model_id) if h not in index]
            if missing:
                hashes, vectors = load_vectors(self.store, encoder.model_id, missing)
                if hashes:
                    index.add(hashes, np.asarray(vectors))
                self.store.release_cache()
            return index

    def loaded_index(self, kind: str, model_id: str) -> Any:
        """The vector index of (kind, model) if a search has built it already, synced with the store; else None.

        Rate next and why read a few thousand vectors: they use the index when it is there, but never build one
        (100k x 768 floats would be 300 MB of RAM just to propose twelve files)."""
        with self._lock:
            if (kind, model_id) not in self._indexes:
                return None
        return self.index(kind)

    def chunk_index(self, kind: str) -> Any:
        """The chunk vectors of the active text model for this kind, synced with the store (empty while none are
        stored); None when the encoder keeps none or they exceed CHUNK_INDEX_MAX_BYTES."""
        from anagnorisis.search.chunk_index import ChunkIndex
        from anagnorisis.store.vectors import chunked_hashes, count_chunks, load_chunks

        encoder, _status = self.encoder(kind)
        if not getattr(encoder, "embeds_chunks", False):
            return None
        key = (kind, encoder.model_id)
        with self._lock:
            chunks = self._chunk_indexes.get(key)
            if chunks is not None and kind not in self._stale_chunks:
                return chunks
            self._stale_chunks.discard(kind)
            rows, dim = count_chunks(self.store, encoder.model_id)
            if rows * dim * 4 > CHUNK_INDEX_MAX_BYTES:
                log.warning("%s: %d chunk vectors of %s exceed %d MB; meaning search ranks by whole-file vectors",
                            kind, rows, encoder.model_id, CHUNK_INDEX_MAX_BYTES >> 20)
                self._chunk_indexes.pop(key, None)
                return None
            if chunks is None:
                if not rows:  # texts embedded before chunk vectors were kept: all rank by their file vectors
                    return ChunkIndex(0, kind=kind, model_id=encoder.model_id)
                chunks = ChunkIndex(dim, kind=kind, model_id=encoder.model_id)
                self._chunk_indexes[key] = chunks
                missing = None
            else:
                missing = [h for h in chunked_hashes(self.store, encoder.model_id) if h not in chunks]
            if missing is None or missing:
                stored = load_chunks(self.store, encoder.model_id, missing)
                if stored.hashes:
                    chunks.add(stored.hashes, stored.starts, stored.matrix)
                del stored
                self.store.release_cache()
            return chunks

    def text_encoder(self, kind: str) -> Any:
        """A callable query -> vector, or None when the active encoder has no text tower."""
        encoder, _status = self.encoder(kind)
        if not getattr(encoder, "has_text_tower", False):
            return None
        return lambda text: encoder.encode_texts([text])[0]

    def search(self, request: Any) -> Any:
        from anagnorisis.search import run_search

        index = self.index(request.kind)
        # Chunk vectors serve meaning search only: a sort or a name search never loads them.
        wants_chunks = request.query and str(request.mode or "auto").strip().lower() in ("auto", "meaning")
        return run_search(request, self.records(request.kind), index=index,
                          encode_text=self.text_encoder(request.kind),
                          chunks=self.chunk_index(request.kind) if wants_chunks else None)
