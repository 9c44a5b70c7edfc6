"""One library opened for work: settings, the store, and the in-memory caches search needs.

The UI keeps one Session for its lifetime; each CLI run makes its own. Records are cached per kind and patched
in place when a rating changes; vector indexes are kept per (kind, model) and refreshed from the store when
embeddings were added.

Vector indexes persist under ``<data dir>/index/<kind>-<model>/``: a start opens the saved one when its row count
and hash checksum match the stored vectors (one DuckDB aggregate, no vector read), catches up a save that only
lacks new vectors, and otherwise rebuilds from the store as before (the ANN in the background, exact meanwhile),
saving once the ANN serves. A plain meaning search asks the store only for the records of its top hits.
"""
from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from anagnorisis.config import Settings
from anagnorisis.store import Store
from anagnorisis.store.records import Record, present_files, records_for_hashes, records_for_paths

log = logging.getLogger(__name__)

# The chunk vectors of a text model are held in RAM for meaning search (SPEC §2). Past this size (≈ 650k chunks
# at 384 dimensions: 80k long documents) the search falls back to the files' mean vectors, with a warning,
# rather than let one index take gigabytes.
CHUNK_INDEX_MAX_BYTES = 1 << 30
# A meaning search whose page ends past this many hits takes the general path (every record of the kind).
TOP_HITS_MAX = 10_000
# When top hits have no present file (their embeddings outlive deleted files), ask the index for this many
# times more, until the page is full.
TOP_HITS_GROWTH = 4


class Session:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._records: dict[str, list[Record]] = {}
        self._indexes: dict[tuple[str, str], Any] = {}
        self._stale_indexes: set[str] = set()
        self._chunk_indexes: dict[tuple[str, str], Any] = {}
        self._stale_chunks: set[str] = set()
        self._file_counts: dict[tuple[str, str], tuple[int, int]] = {}
        self._lock = threading.RLock()
        self._save_lock = threading.Lock()
        self._saves: list[threading.Thread] = []
        # The running app sets this to its GPU lock, so a CLI command forwarded into the app (train, predict,
        # embed) waits for the UI's GPU work instead of running beside it; a CLI run alone leaves it None.
        self.gpu_lock: Any = None
        # The running app sets this to its background jobs (anagnorisis.jobs.Jobs), so `jobs` forwarded from the
        # CLI lists and controls them; a CLI run alone leaves it None (no app, no background jobs).
        self.jobs: Any = None
        # Rows from which vector indexes answer through the ANN (None: the index's own default); tests lower it.
        self.ann_min_items: int | None = None

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
            self._file_counts.clear()
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
        encoder, _status = self.encoder(kind)
        return self._index_of(kind, encoder.model_id)

    def _index_of(self, kind: str, model_id: str) -> Any:
        from anagnorisis.store.vectors import vector_fingerprint

        key = (kind, model_id)
        with self._lock:
            index = self._indexes.get(key)
            if index is None:
                index = self._open_index(kind, model_id)
                if index is not None:
                    self._indexes[key] = index
                return index
            if kind not in self._stale_indexes:
                return index
            self._stale_indexes.discard(kind)
            if vector_fingerprint(self.store, model_id) != (len(index), index.checksum):
                self._add_missing_vectors(index, model_id)
            return index

    def index_dir(self, kind: str, model_id: str) -> Path:
        """Where the vector index of (kind, model) is saved."""
        return self.data_dir / "index" / re.sub(r"[^A-Za-z0-9._-]+", "_", f"{kind}-{model_id}")

    def _open_index(self, kind: str, model_id: str) -> Any:
        """The saved index when it matches the stored vectors (caught up when it only lacks some), else a new
        one built from the store; None when the model has no stored vectors."""
        from anagnorisis.store.vectors import vector_fingerprint

        count, checksum = vector_fingerprint(self.store, model_id)
        if not count:
            return None
        storage = self.index_dir(kind, model_id)
        index = self._saved_index(storage, model_id, count, checksum)
        return index if index is not None else self._build_index(kind, model_id, storage)

    def _saved_index(self, storage: Path, model_id: str, count: int, checksum: int) -> Any:
        from anagnorisis.search.vector_index import META_FILE, IndexNotReusable, VectorIndex

        if not (storage / META_FILE).exists():
            log.info("no saved vector index in %s: building it from the stored vectors", storage)
            return None
        try:
            index = VectorIndex.load(storage, on_ready=self._save_in_background, **self._index_options())
        except IndexNotReusable as error:
            log.warning("rebuilding the vector index from the stored vectors: %s", error)
            return None
        if index.model_id == model_id and (len(index), index.checksum) == (count, checksum):
            log.info("opened the saved vector index %s (%d vectors)", storage, count)
            return index
        saved_count = len(index)
        if index.model_id == model_id and saved_count < count and self._add_missing_vectors(index, model_id, count,
                                                                                           checksum):
            log.info("caught up the saved vector index %s: %d vectors added", storage, count - saved_count)
            return index
        log.warning("rebuilding the vector index %s from the stored vectors: it holds %d vectors (checksum %d), "
                    "the store %d (checksum %d)", storage, len(index), index.checksum, count, checksum)
        index.close()
        return None

    def _build_index(self, kind: str, model_id: str, storage: Path) -> Any:
        from anagnorisis.search.vector_index import VectorIndex
        from anagnorisis.store.vectors import load_vectors

        hashes, vectors = load_vectors(self.store, model_id)
        if not hashes:
            return None
        # Rows move to a file under the data dir once the ANN index serves, so a 1M library keeps only the
        # quantised codes in RAM; the whole index is saved there once the ANN serves (or now, when none is needed).
        index = VectorIndex(vectors.shape[1], kind=kind, model_id=model_id, storage_dir=storage,
                            on_ready=self._save_in_background, **self._index_options())
        index.add(hashes, vectors)
        del vectors
        # The rows now live in the index: the embeddings table's blocks DuckDB cached while reading them would
        # be a second copy (≈ 110 MB at 70k × 384).
        self.store.release_cache()
        if not index.building:
            self._save_in_background(index)
        return index

    def _index_options(self) -> dict[str, Any]:
        return {} if self.ann_min_items is None else {"ann_min_items": self.ann_min_items}

    def _add_missing_vectors(self, index: Any, model_id: str, count: int | None = None,
                             checksum: int | None = None) -> bool:
        """Add the stored vectors the index lacks and save it; False (nothing added) when the index holds a hash
        the store no longer has, or, given the store's (count, checksum), when adding would not reach them."""
        from anagnorisis.search.vector_index import hash_list_checksum
        from anagnorisis.store.vectors import embedded_hashes, load_vectors

        stored = embedded_hashes(self.store, model_id)
        missing = [h for h in stored if h not in index]
        if count is not None and (len(index) + len(missing) != count
                                  or index.checksum ^ hash_list_checksum(missing) != checksum):
            return False
        if missing:
            hashes, vectors = load_vectors(self.store, model_id, missing)
            if hashes:
                index.add(hashes, np.asarray(vectors))
                self._save_in_background(index)
            self.store.release_cache()
        return True

    def _save_in_background(self, index: Any) -> None:
        """Save an index (rows appended since its last save: only those) without holding up the caller; a
        command that ends meanwhile waits for the save before the process exits."""
        if index.building:
            return  # saved when the build is done (on_ready)
        thread = threading.Thread(target=self._save_index, args=(index,), name=f"save-{index.kind}")
        with self._lock:
            self._saves = [t for t in self._saves if t.is_alive()] + [thread]
        thread.start()

    def _save_index(self, index: Any) -> None:
        with self._save_lock:
            try:
                index.save()
            except Exception:  # noqa: BLE001 - the index serves on from memory; the next start rebuilds it
                log.exception("saving the vector index of %s/%s failed", index.kind, index.model_id)

    def wait_for_saves(self) -> None:
        """Block until every index save started so far is written."""
        with self._lock:
            saves = list(self._saves)
        for thread in saves:
            thread.join()

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

        fast = self._search_top_hits(request)
        if fast is not None:
            return fast
        index = self.index(request.kind)
        # Chunk vectors serve meaning search only: a sort or a name search never loads them.
        wants_chunks = request.query and str(request.mode or "auto").strip().lower() in ("auto", "meaning")
        return run_search(request, self.records(request.kind), index=index,
                          encode_text=self.text_encoder(request.kind),
                          chunks=self.chunk_index(request.kind) if wants_chunks else None)

    # ------------------------------------------------------------ meaning search from the top hits

    def _search_top_hits(self, request: Any) -> Any:
        """A plain meaning search (no filter, T = 0, best first, a page within TOP_HITS_MAX) answered from the
        index's top hits and their records alone, as the general path would rank them; None for any other
        request.

        The text model loads before the index opens, not beside it: on 2 cores, loading both at once made a
        fresh CLI search at 1M × 768 slower (9-10 s against 6 s, bench/results/cold-search.md)."""
        from anagnorisis.search import run_search, validate_request

        request = validate_request(request)
        if not self._plain_meaning_search(request):
            return None
        encoder, query_vector = self._encode_query(request.kind, request.query)
        if query_vector is None:
            return None  # no text tower, or passages to score: the general path serves (or says why not)
        index = self._index_of(request.kind, encoder.model_id)
        if index is None or len(query_vector) != index.dim:
            return None
        records = self._top_hit_records(request, index, query_vector)
        result = run_search(request, records, index=index, encode_text=lambda _query: query_vector)
        total, not_indexed = self._files_with_vectors(request.kind, encoder.model_id)
        return replace(result, total=total, not_indexed=not_indexed)

    def _plain_meaning_search(self, request: Any) -> bool:
        plain = (request.query is not None and request.temperature == 0 and request.order == "desc"
                 and request.offset + request.limit <= TOP_HITS_MAX
                 and (request.folder, request.rated, request.rating, request.model_rating, request.ext)
                 == (None,) * 5)
        if not plain or request.mode not in ("auto", "meaning"):
            return False
        return request.mode == "meaning" or not self._names_a_file(request.kind, request.query)

    def _encode_query(self, kind: str, query: str) -> tuple[Any, Any]:
        """(the encoder serving the kind, the query's vector), the vector None when the encoder has no text tower
        or scores texts by their passages (the general path handles both)."""
        encoder, _status = self.encoder(kind)
        if not getattr(encoder, "has_text_tower", False) or getattr(encoder, "embeds_chunks", False):
            return encoder, None
        return encoder, np.asarray(encoder.encode_texts([query])[0], dtype=np.float32).reshape(-1)

    def _names_a_file(self, kind: str, query: str) -> bool:
        """Whether auto mode would read the query as a file (similar-to) rather than words."""
        absolute = os.path.normpath(os.path.abspath(os.path.expanduser(query)))
        return os.path.isfile(absolute) or bool(records_for_paths(self.store, kind, [os.fsencode(query),
                                                                                    os.fsencode(absolute)]))

    def _top_hit_records(self, request: Any, index: Any, query_vector: Any) -> list[Record]:
        """The present records of the index's best hits, enough of them to fill the page."""
        wanted = request.offset + request.limit
        hits = wanted
        while True:
            positions, _scores = index.search(query_vector, hits)
            hashes = [index.hashes[p] for p in positions.tolist()]
            records = records_for_hashes(self.store, request.kind, hashes) if hashes else []
            if len({record["content_hash"] for record in records}) >= wanted or hits >= len(index):
                return records
            hits = min(len(index), hits * TOP_HITS_GROWTH)

    def _files_with_vectors(self, kind: str, model_id: str) -> tuple[int, int]:
        """(present files of the kind with a vector, without one), cached until the next invalidate."""
        from anagnorisis.store.vectors import count_files_with_vectors

        key = (kind, model_id)
        with self._lock:
            counts = self._file_counts.get(key)
        if counts is None:  # read without the session's lock: it runs beside an index being opened
            counts = count_files_with_vectors(self.store, kind, model_id)
            with self._lock:
                self._file_counts[key] = counts
        return counts
