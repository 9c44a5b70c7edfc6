"""A vector index per (kind, model): exact numpy search for small libraries, FAISS IVF-SQ8 beyond.

Rows are L2-normalised float32 vectors keyed by content hash; a row's position is its id everywhere (FAISS ids
included), and removing a row moves the last row into the hole, so positions stay dense. Callers map positions
back with ``index.hashes`` right after a search.

- Exact path: ``X @ q`` + ``argpartition`` on one contiguous in-RAM matrix. It serves alone while the index is
  small and, above ``ann_min_items``, until the background build of the ANN index is done.
- ANN path: ``IndexIVFScalarQuantizer`` (8 bits per dimension, a quarter of float32) probes ``nprobe`` lists and
  the best ``rerank`` candidates are re-scored exactly from the float32 rows. With a ``storage_dir`` those rows
  move to a file once the ANN index is ready and are read with ``pread`` (page cache, not process memory), which
  keeps 1M × 768 at about 0.8 GB of RSS instead of 3.1 GB.
- Persistence: ``save`` writes the hashes, the rows and the ANN index beside each other and ``load`` opens them
  without reading the rows (they stay in their file) or rebuilding anything. ``meta.json`` is the commit point:
  it says how many rows and hashes of the files are valid, the hash list's checksum (``hash_list_checksum``, the
  number DuckDB computes over the stored hashes, so a caller can tell a stale save without loading vectors)
  and how many rows the saved ANN file covers. A save after rows were only appended writes just the new rows and
  hashes past the valid ones and a new meta file; ``load`` adds the rows the ANN file lacks.
"""
from __future__ import annotations

import json
import logging
import math
import mmap
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

# Idle FAISS (OpenMP) threads otherwise spin for ~100 ms after each parallel region, and on a 2-core machine
# that spinning halves the speed of the numpy (OpenBLAS) exact path that runs next. FAISS ships its own libgomp,
# which reads this when ``faiss`` is first imported, so it must be set before that import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import faiss
import numpy as np
import numpy.typing as npt

from anagnorisis.store.vectors import hash_list_checksum  # noqa: E402

log = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]
Positions = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

# Exact top-10 is memory-bound: 100k × 768 float32 takes ≈ 6.5-13 ms p50 on 2 idle cores (STACK-NOTES, our first
# runs) and 200k twice that, past the 20 ms bar (SPEC §9) once anything else runs; with other jobs on the cores
# we measured 36-49 ms at 100k and 68-97 ms at 200k (bench/results/search.md, "exact p50 by size"). Below 100k
# rows exact search is fast enough, perfectly accurate and needs no build; above, IVF-SQ8 answers in 2-12 ms.
ANN_MIN_ITEMS = 100_000
# Allowed subsets up to this many rows are searched exactly (a gather + matmul of ≤ 30 MB at 768-d, a few ms)
# instead of through the ANN index, whose recall drops when only a small fraction of each probed list is allowed.
EXACT_SUBSET_MAX_ITEMS = 10_000
# An ANN index trained on n rows still partitions 2n well; beyond that the lists grow unevenly, so rebuild.
REBUILD_GROWTH_FACTOR = 2.0
# Below this fraction of ann_min_items the ANN index is dropped and the rows come back to RAM (hysteresis, so
# a library hovering around the threshold does not rebuild back and forth).
ANN_DROP_FRACTION = 0.5
# Share of the inverted lists a query scans. Recall is bounded by how many true neighbours sit in the scanned
# lists: on real MiniLM embeddings with few near-copies (bench, 100k rows) scanning 6 % of the lists gave
# recall@10 0.90-0.94 and 12 % gave 0.95-0.97; at 1M, 10 % of 1,024 lists is ≈ 100k SQ8 codes: p50 11-12 ms
# on 2 busy cores (bench/results/search.md), recall@10 0.985 and 1.0 on the two 1M sets.
PROBE_FRACTION = 0.1
MIN_PROBES = 32  # small indexes: 32 lists of a 256-list (100k) index is still only 12 % of the codes
# Candidates needing a re-rank read from a file: up to this many by pread calls, beyond by a temporary mapping
# (page faults are cheaper than syscalls in bulk; unmapping afterwards keeps them out of the process's RSS).
PREAD_MAX_ROWS = 512
ADD_CHUNK_ROWS = 32_768  # rows copied and added per FAISS call during a build: ≤ 100 MB of temporary memory at 768-d
READ_CHUNK_ROWS = 65_536  # rows read at once when scanning a file-backed matrix
# Rows appended since the ANN file was last written are added to the ANN again at load (≈ 1 s per 50k rows at
# 768-d); past this many an incremental save writes the whole ANN file again (≈ 0.8 GB at 1M × 768).
ANN_TAIL_MAX_ROWS = 50_000
FORMAT_VERSION = 2  # 2: hash checksum and ANN coverage in the meta file; rows and hashes past its count ignored
PRIVATE_FILE_MODE = 0o600  # saved indexes hold what the library contains: the owner's alone, like the database
PRIVATE_DIR_MODE = 0o700

VECTORS_FILE = "vectors.f32"
HASHES_FILE = "hashes.txt"
META_FILE = "meta.json"
ANN_FILE = "ann.faiss"


@dataclass(frozen=True)
class AnnSettings:
    """Tuning of the IVF-SQ8 index; the defaults reach recall@10 ≥ 0.95 at 1M × 768 (bench/results/search.md)."""

    nlist: int | None = None  # inverted lists; None: √n rounded to a power of two (1,024 at 1M, 256 at 100k)
    nprobe: int | None = None  # lists scanned per query; None: PROBE_FRACTION of them, at least MIN_PROBES
    rerank: int = 100  # candidates re-scored exactly: SQ8 errors (~5e-4 in cosine) only reorder near-ties
    train_points_per_list: int = 40  # k-means sample size per list; FAISS warns below 39
    kmeans_iterations: int = 10  # centroids settle in ~10 passes; 25 (the default) triples training time
    max_probe_factor: int = 8  # with a filter, nprobe grows as 1/allowed-fraction up to this many times

    def lists_for(self, count: int) -> int:
        """How many inverted lists an index over ``count`` rows gets."""
        if self.nlist is not None:
            return max(1, min(self.nlist, count))
        # √n lists: at 1M the whole build (k-means ∝ nlist², then assigning every row) took 25 s on 2 cores,
        # against 122 s for 2·√n lists, with the same recall on both 1M bench sets.
        target = math.sqrt(max(count, 1))
        return int(max(1, min(2 ** round(math.log2(max(target, 1.0))), count // 39 or 1)))

    def probes_for(self, nlist: int) -> int:
        """How many lists a query scans in an index of ``nlist`` lists."""
        if self.nprobe is not None:
            return max(1, min(self.nprobe, nlist))
        return max(1, min(nlist, max(MIN_PROBES, round(nlist * PROBE_FRACTION))))


class _RamRows:
    """Rows in one contiguous in-RAM array with spare capacity, so appends are amortised O(1) per row."""

    def __init__(self, dim: int, initial: Vectors | None = None) -> None:
        self.dim = dim
        self._data: Vectors = np.zeros((0, dim), dtype=np.float32) if initial is None else initial
        self._count = 0 if initial is None else len(initial)

    def __len__(self) -> int:
        return self._count

    def view(self) -> Vectors:
        """The live rows, without copying."""
        return self._data[: self._count]

    def get(self, positions: Positions) -> Vectors:
        return self._data[positions]

    def read_range(self, start: int, stop: int) -> Vectors:
        return self._data[start : min(stop, self._count)]

    def append(self, vectors: Vectors) -> None:
        needed = self._count + len(vectors)
        if needed > len(self._data):
            self.reserve(max(needed, int(len(self._data) * 1.5) + 1024))
        self._data[self._count : needed] = vectors
        self._count = needed

    def reserve(self, capacity: int) -> None:
        """Make room for ``capacity`` rows in one allocation (one copy of the existing rows)."""
        if capacity > len(self._data):
            grown = np.empty((capacity, self.dim), dtype=np.float32)
            grown[: self._count] = self._data[: self._count]
            self._data = grown

    def set_rows(self, positions: Positions, vectors: Vectors) -> None:
        self._data[positions] = vectors

    def truncate(self, count: int) -> None:
        self._count = min(count, self._count)
        if len(self._data) > 4 * max(self._count, 1024):  # give memory back after a large removal
            self._data = self._data[: self._count].copy()

    def close(self) -> None:
        self._data = np.zeros((0, self.dim), dtype=np.float32)
        self._count = 0


class _FileRows:
    """Rows in a raw float32 file, read with pread so they sit in the page cache instead of the process."""

    def __init__(self, path: Path, dim: int, count: int) -> None:
        self.dim = dim
        self.path = path
        self._row_bytes = dim * 4
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._count = count
        os.ftruncate(self._fd, count * self._row_bytes)

    def __len__(self) -> int:
        return self._count

    def get(self, positions: Positions) -> Vectors:
        positions = np.asarray(positions, dtype=np.int64)
        if len(positions) > PREAD_MAX_ROWS and self._count:
            return self._get_mapped(positions)
        out = np.zeros((len(positions), self.dim), dtype=np.float32)
        order = np.argsort(positions, kind="stable")  # ascending offsets read faster from disk
        for slot in order:
            self._read_into(out[slot], int(positions[slot]))
        return out

    def _get_mapped(self, positions: Positions) -> Vectors:
        mapping = mmap.mmap(self._fd, self._count * self._row_bytes, prot=mmap.PROT_READ)
        try:
            view = np.frombuffer(mapping, dtype=np.float32).reshape(self._count, self.dim)
            out = np.array(view[np.clip(positions, 0, self._count - 1)], dtype=np.float32)
            del view
        finally:
            mapping.close()
        return out

    def _read_into(self, row: Vectors, position: int) -> None:
        data = os.pread(self._fd, self._row_bytes, position * self._row_bytes)
        row[: len(data) // 4] = np.frombuffer(data, dtype=np.float32)  # short read only if truncated meanwhile

    def read_range(self, start: int, stop: int) -> Vectors:
        stop = min(stop, self._count)
        out = np.zeros((max(stop - start, 0), self.dim), dtype=np.float32)
        view = out.data.cast("B")
        done = 0
        while done < len(view):
            read = os.preadv(self._fd, [view[done:]], start * self._row_bytes + done)
            if read <= 0:
                break
            done += read
        return out

    def append(self, vectors: Vectors) -> None:
        os.pwrite(self._fd, np.ascontiguousarray(vectors).tobytes(), self._count * self._row_bytes)
        self._count += len(vectors)

    def set_rows(self, positions: Positions, vectors: Vectors) -> None:
        for position, vector in zip(positions, vectors):
            os.pwrite(self._fd, np.ascontiguousarray(vector).tobytes(), int(position) * self._row_bytes)

    def truncate(self, count: int) -> None:
        self._count = min(count, self._count)
        os.ftruncate(self._fd, self._count * self._row_bytes)

    def flush(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass
class _PendingChange:
    """A change made while an ANN index was being built, replayed onto it before it goes live."""

    removed: Positions
    added: Positions
    vectors: Vectors


class VectorIndex:
    """Hashes and their vectors for one (kind, model), searchable by cosine similarity.

    Thread-safe: one lock serialises changes and searches; the ANN build runs in a background thread on a
    snapshot and replays the changes made meanwhile before it starts serving.
    """

    def __init__(
        self,
        dim: int,
        *,
        kind: str = "",
        model_id: str = "",
        ann_min_items: int = ANN_MIN_ITEMS,
        ann: AnnSettings | None = None,
        storage_dir: Path | str | None = None,
        background: bool = True,
        on_ready: Callable[[VectorIndex], None] | None = None,
    ) -> None:
        if dim <= 0:
            raise ValueError(f"vector dimension must be positive, not {dim}")
        self.dim = dim
        self.kind = kind
        self.model_id = model_id
        self.ann_min_items = ann_min_items
        self.ann_settings = ann or AnnSettings()
        self.storage_dir = Path(storage_dir) if storage_dir is not None else None
        self.background = background
        self._lock = threading.RLock()
        self._rows: _RamRows | _FileRows = _RamRows(dim)
        self._hashes: list[str] = []
        self._position_map: dict[str, int] | None = {}  # None: not built yet (a loaded index builds it on first use)
        self._ann: faiss.IndexIVFScalarQuantizer | None = None
        self._ann_mapped = False  # the ANN's lists are the saved file, memory-mapped read-only (copied before a change)
        self._ann_trained_on = 0
        self._pending: list[_PendingChange] | None = None  # not None while a build runs
        self._ready = threading.Event()
        self._ready.set()
        self._build_thread: threading.Thread | None = None
        self.last_build_seconds: float | None = None
        self.last_build_error: str | None = None
        self._dirty_marked = False
        self._checksum = 0  # hash_list_checksum of self._hashes, kept up to date by every change
        self._saved: _SavedState | None = None  # what a save in storage_dir holds that is still a valid prefix
        # Called (in the build thread, outside the lock) once an ANN build serves, e.g. to save it.
        self.on_ready = on_ready

    # ----------------------------------------------------------------- contents

    def __len__(self) -> int:
        return len(self._hashes)

    @property
    def _position(self) -> dict[str, int]:
        """Row of each hash. A loaded index builds it on first use (≈ 0.3 s at 1M), which a meaning search
        answered from the ANN never needs."""
        if self._position_map is None:
            with self._lock:
                if self._position_map is None:
                    self._position_map = {h: i for i, h in enumerate(self._hashes)}
        return self._position_map

    def __contains__(self, content_hash: object) -> bool:
        return content_hash in self._position

    @property
    def hashes(self) -> list[str]:
        """The hash of each row, by position (a live list: copy it before changing the index)."""
        return self._hashes

    @property
    def checksum(self) -> int:
        """``hash_list_checksum`` of the indexed hashes (an order-free fingerprint of the hash list)."""
        return self._checksum

    @property
    def uses_ann(self) -> bool:
        """Whether searches currently go through the ANN index (else exact)."""
        return self._ann is not None

    @property
    def building(self) -> bool:
        """Whether an ANN build is running in the background."""
        return self._pending is not None

    @property
    def rows_on_disk(self) -> bool:
        """Whether the float32 rows live in a file (ANN mode with a storage dir) rather than in RAM."""
        return isinstance(self._rows, _FileRows)

    def position(self, content_hash: str) -> int | None:
        """The row of a hash, or None."""
        return self._position.get(content_hash)

    def positions(self, content_hashes: Sequence[str]) -> Positions:
        """The row of each hash, −1 where the hash is not indexed."""
        lookup = self._position.get
        return np.fromiter((lookup(h, -1) for h in content_hashes), dtype=np.int64, count=len(content_hashes))

    def vector(self, content_hash: str) -> Vectors | None:
        """A copy of one hash's vector, or None when it is not indexed."""
        with self._lock:
            position = self._position.get(content_hash)
            return None if position is None else self._rows.get(np.array([position]))[0].copy()

    def vectors(self, positions: Positions) -> Vectors:
        """Copies of the rows at these positions."""
        with self._lock:
            return np.array(self._rows.get(np.asarray(positions, dtype=np.int64)), dtype=np.float32)

    def mask_of(self, content_hashes: Sequence[str]) -> Mask:
        """A boolean row mask selecting the given hashes (unknown ones are ignored)."""
        positions = self.positions(content_hashes)
        mask = np.zeros(len(self._hashes), dtype=bool)
        mask[positions[positions >= 0]] = True
        return mask

    # ------------------------------------------------------------------ changes

    def add(self, content_hashes: Sequence[str], vectors: npt.ArrayLike) -> None:
        """Insert or replace vectors (normalised here); a hash given twice keeps its last vector.

        Large batches are normalised a chunk at a time straight into the rows, so adding 1M × 768 (e.g. from a
        memory-mapped file) needs the 3 GB of rows and one chunk, not several full copies.
        """
        source = np.asarray(vectors)
        source = source.reshape(1, -1) if source.ndim == 1 else source
        if source.ndim != 2 or source.shape != (len(content_hashes), self.dim):
            raise ValueError(f"expected {len(content_hashes)} vectors of dimension {self.dim}, got {source.shape}")
        latest: dict[str, int] = {h: i for i, h in enumerate(content_hashes)}
        with self._lock:
            known = [(self._position[h], i) for h, i in latest.items() if h in self._position]
            new = [(h, i) for h, i in latest.items() if h not in self._position]
            if known:
                # Rows inside the saved prefix change: the save is stale and the next one writes everything.
                # New rows need neither: they go past the saved count, which only a later save commits.
                self._mark_dirty()
                self._saved = None
                where = np.array([p for p, _ in known], dtype=np.int64)
                replacement = _normalised(np.asarray(source[[i for _, i in known]], np.float32), self.dim)
                self._rows.set_rows(where, replacement)
                self._record_change(where, where, replacement)
            if new:
                self._append_rows(source, new, in_order=len(new) == len(content_hashes))
            self._maybe_change_engine()

    def _append_rows(self, source: npt.NDArray[Any], new: list[tuple[str, int]], *, in_order: bool) -> None:
        start = len(self._hashes)
        if isinstance(self._rows, _RamRows):
            self._rows.reserve(start + len(new))
        for offset in range(0, len(new), ADD_CHUNK_ROWS):
            part = new[offset : offset + ADD_CHUNK_ROWS]
            rows = source[offset : offset + len(part)] if in_order else source[[i for _, i in part]]
            chunk = _normalised(np.asarray(rows, dtype=np.float32), self.dim)
            self._rows.append(chunk)
            first = start + offset
            self._record_change(np.zeros(0, np.int64), np.arange(first, first + len(chunk), dtype=np.int64), chunk)
        for offset, (content_hash, _) in enumerate(new):
            self._position[content_hash] = start + offset
            self._hashes.append(content_hash)
        self._checksum ^= hash_list_checksum(h for h, _ in new)

    def remove(self, content_hashes: Sequence[str]) -> None:
        """Drop these hashes (unknown ones are ignored); the last rows move into the holes."""
        with self._lock:
            gone = np.unique(np.array([self._position[h] for h in set(content_hashes) if h in self._position],
                                      dtype=np.int64))
            if not len(gone):
                return
            self._mark_dirty()
            self._saved = None
            self._checksum ^= hash_list_checksum(self._hashes[p] for p in gone.tolist())
            new_count = len(self._hashes) - len(gone)
            holes = gone[gone < new_count]
            movers = np.setdiff1d(np.arange(new_count, len(self._hashes), dtype=np.int64), gone)
            moved = np.array(self._rows.get(movers), dtype=np.float32) if len(movers) else np.zeros((0, self.dim),
                                                                                                   np.float32)
            for position in gone:
                del self._position[self._hashes[position]]
            if len(movers):
                self._rows.set_rows(holes, moved)
                for hole, mover in zip(holes.tolist(), movers.tolist()):
                    self._hashes[hole] = self._hashes[mover]
                    self._position[self._hashes[hole]] = hole
            del self._hashes[new_count:]
            self._rows.truncate(new_count)
            self._record_change(np.union1d(gone, movers), holes, moved)
            self._maybe_change_engine()

    def _record_change(self, removed: Positions, added: Positions, vectors: Vectors) -> None:
        """Apply a row change to the live ANN index, and remember it for the one being built."""
        if self._ann is not None:
            self._unmap_ann()
            _apply_change(self._ann, removed, added, vectors)
        if self._pending is not None:
            self._pending.append(_PendingChange(removed.copy(), added.copy(), np.array(vectors, dtype=np.float32)))

    # ----------------------------------------------------------------- searches

    def search(self, query: npt.ArrayLike, k: int, allowed_mask: Mask | None = None) -> tuple[Positions, npt.NDArray[np.float32]]:
        """The k rows most similar to ``query`` (cosine), best first: (positions, scores).

        ``allowed_mask`` (one bool per row) restricts the result to the rows it selects.
        """
        q = _normalised(np.asarray(query, dtype=np.float32).reshape(1, -1), self.dim)[0]
        with self._lock:
            count = len(self._hashes)
            if allowed_mask is not None:
                allowed_mask = np.asarray(allowed_mask, dtype=bool)
                if len(allowed_mask) != count:
                    raise ValueError(f"allowed_mask has {len(allowed_mask)} entries for an index of {count} rows")
                allowed = int(allowed_mask.sum())
            else:
                allowed = count
            k = min(int(k), allowed)
            if k <= 0:
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            if self._ann is None or not self._ann_can_serve(k, allowed):
                return self._search_exact(q, k, allowed_mask, allowed)
            return self._search_ann(q, k, allowed_mask, allowed)

    def scores(self, query: npt.ArrayLike, positions: Positions | None = None) -> npt.NDArray[np.float32]:
        """Exact cosine of ``query`` with every row (or the given rows), in position order."""
        q = _normalised(np.asarray(query, dtype=np.float32).reshape(1, -1), self.dim)[0]
        with self._lock:
            if positions is not None:
                return self._rows.get(np.asarray(positions, dtype=np.int64)) @ q
            if isinstance(self._rows, _RamRows):
                return self._rows.view() @ q
            return np.concatenate([self._rows.read_range(a, a + READ_CHUNK_ROWS) @ q
                                   for a in range(0, len(self._rows), READ_CHUNK_ROWS)] or [np.zeros(0, np.float32)])

    def _ann_can_serve(self, k: int, allowed: int) -> bool:
        """ANN answers unless the allowed set is small (exact is then cheaper) or k reaches into most of it."""
        return allowed > EXACT_SUBSET_MAX_ITEMS and k + self.ann_settings.rerank <= allowed // 4

    def _search_exact(self, q: Vectors, k: int, mask: Mask | None, allowed: int) -> tuple[Positions, npt.NDArray[np.float32]]:
        count = len(self._hashes)
        if mask is None or (isinstance(self._rows, _RamRows) and allowed > count // 4):
            scores = self.scores(q)
            if mask is not None:
                scores = np.where(mask, scores, -np.inf).astype(np.float32)
            candidates = None
        else:
            candidates = np.flatnonzero(mask)
            scores = self.scores(q, candidates)
        best = _top_k(scores, k)
        positions = best if candidates is None else candidates[best]
        return positions.astype(np.int64), scores[best].astype(np.float32)

    def _search_ann(self, q: Vectors, k: int, mask: Mask | None, allowed: int) -> tuple[Positions, npt.NDArray[np.float32]]:
        assert self._ann is not None
        settings = self.ann_settings
        fetch = k + settings.rerank
        probes = settings.probes_for(self._ann.nlist)
        if mask is not None and allowed < len(self._hashes):
            probes = math.ceil(probes * min(settings.max_probe_factor, len(self._hashes) / max(allowed, 1)))
        average_list = max(1.0, len(self._hashes) / self._ann.nlist)
        probes = int(min(self._ann.nlist, max(probes, math.ceil(4 * fetch / average_list))))  # deep pages
        params = faiss.SearchParametersIVF()
        params.nprobe = probes
        bitmap = None
        if mask is not None and allowed < len(self._hashes):
            bitmap = np.packbits(mask, bitorder="little")
            params.sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bitmap))
        _, found = self._ann.search(q.reshape(1, -1), fetch, params=params)
        del bitmap  # the selector points into it until the search returns
        candidates = found[0][found[0] >= 0]
        exact = self._rows.get(candidates) @ q
        best = _top_k(exact, min(k, len(candidates)))
        return candidates[best].astype(np.int64), exact[best].astype(np.float32)

    def similar_pairs(self, positions: Positions, threshold: float, *, exact_max: int = 20_000) -> tuple[Positions, Positions, npt.NDArray[np.float32]]:
        """All pairs (i < j) among ``positions`` whose cosine is at least ``threshold``: (i, j, cosine).

        Up to ``exact_max`` rows the pairs are exact (blockwise matmul); beyond, a temporary IVF-SQ8 index over
        the rows answers range queries, which can miss a pair split across lists (rare at duplicate thresholds).
        """
        positions = np.asarray(positions, dtype=np.int64)
        if len(positions) < 2:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
        if len(positions) <= exact_max:
            return _pairs_exact(self.vectors(positions), positions, threshold)
        return self._pairs_by_range_search(positions, threshold)

    def _pairs_by_range_search(self, positions: Positions, threshold: float) -> tuple[Positions, Positions, npt.NDArray[np.float32]]:
        settings = AnnSettings(nprobe=8)  # duplicates sit in the same or a neighbouring list; 8 probes find them
        index = _new_ivf(self.dim, settings.lists_for(len(positions)))
        index.train(self.vectors(np.sort(positions[_training_sample(len(positions), index.nlist, settings)])))
        for start in range(0, len(positions), ADD_CHUNK_ROWS):
            chunk = positions[start : start + ADD_CHUNK_ROWS]
            index.add_with_ids(self.vectors(chunk), np.arange(start, start + len(chunk), dtype=np.int64))
        index.nprobe = settings.probes_for(index.nlist)
        firsts: list[Positions] = []
        seconds: list[Positions] = []
        for start in range(0, len(positions), ADD_CHUNK_ROWS):
            chunk = positions[start : start + ADD_CHUNK_ROWS]
            limits, _, labels = index.range_search(self.vectors(chunk), float(threshold))
            owners = np.repeat(np.arange(start, start + len(chunk)), np.diff(limits).astype(np.int64))
            keep = labels > owners
            firsts.append(owners[keep])
            seconds.append(labels[keep])
        first, second = positions[np.concatenate(firsts)], positions[np.concatenate(seconds)]
        # The codes are approximate: confirm each candidate pair with the float32 rows.
        exact = np.concatenate([np.einsum("ij,ij->i", self.vectors(first[a : a + READ_CHUNK_ROWS]),
                                          self.vectors(second[a : a + READ_CHUNK_ROWS]))
                                for a in range(0, len(first), READ_CHUNK_ROWS)] or [np.zeros(0, np.float32)])
        keep = exact >= threshold
        return first[keep], second[keep], exact[keep].astype(np.float32)

    # ------------------------------------------------------------------ the ANN

    def _unmap_ann(self) -> None:
        """Replace a memory-mapped ANN (read-only: FAISS aborts the process on a change) by an in-RAM copy of the
        same saved file; the saved state stays valid, the copy holding exactly what the file holds."""
        if not self._ann_mapped or self._ann is None:
            return
        assert self.storage_dir is not None
        mapped = self._ann
        self._ann = _read_ann(self.storage_dir / ANN_FILE, self.dim, int(mapped.ntotal))
        self._ann_mapped = False
        if self._saved is not None and self._saved.ann is mapped:
            self._saved = replace(self._saved, ann=self._ann)

    def _maybe_change_engine(self) -> None:
        """Start an ANN build when the index has grown past the threshold, drop the ANN when it shrank a lot."""
        count = len(self._hashes)
        if self._pending is not None:
            return
        if self._ann is None and count >= self.ann_min_items or self._ann is not None and count >= REBUILD_GROWTH_FACTOR * self._ann_trained_on:
            self._start_build()
        elif self._ann is not None and count < self.ann_min_items * ANN_DROP_FRACTION:
            self._ann = None
            self._ann_mapped = False
            self._ann_trained_on = 0
            if isinstance(self._rows, _FileRows):
                self._rows = _back_to_ram(self._rows)

    def _start_build(self) -> None:
        self._pending = []
        self._ready.clear()
        self.last_build_error = None
        if self.background:
            self._build_thread = threading.Thread(target=self._build, name=f"ann-{self.kind}-{self.model_id}",
                                                  daemon=True)
            self._build_thread.start()
        else:
            self._build()

    def rebuild(self) -> None:
        """Build the ANN index again now (e.g. after tuning), in the background unless ``background`` is off."""
        with self._lock:
            if self._pending is None and len(self._hashes) >= self.ann_min_items:
                self._start_build()

    def wait_until_ready(self, timeout: float | None = None) -> bool:
        """Block until no ANN build is running; False on timeout."""
        return self._ready.wait(timeout)

    def _build(self) -> None:
        started = time.perf_counter()
        try:
            # Rows are copied out under the lock, a chunk at a time, and FAISS works outside it: changes made
            # meanwhile land in self._pending and are replayed by _go_live, so torn or stale reads do no harm.
            with self._lock:
                count = len(self._hashes)
                index = _new_ivf(self.dim, self.ann_settings.lists_for(count))
                sample = np.sort(_training_sample(count, index.nlist, self.ann_settings))
                training = np.array(self._rows.get(sample[sample < len(self._rows)]), dtype=np.float32)
            index.cp.niter = self.ann_settings.kmeans_iterations
            index.train(training)
            del training
            for start in range(0, count, ADD_CHUNK_ROWS):
                with self._lock:
                    chunk = np.array(self._rows.read_range(start, min(start + ADD_CHUNK_ROWS, count)), np.float32)
                if len(chunk):
                    index.add_with_ids(chunk, np.arange(start, start + len(chunk), dtype=np.int64))
            self._go_live(index, count)
            self.last_build_seconds = time.perf_counter() - started
            log.info("ANN index for %s/%s: %d rows in %.1f s", self.kind, self.model_id, count,
                     self.last_build_seconds)
            if self.on_ready is not None:
                self.on_ready(self)
        except Exception as error:  # the exact path keeps serving; the error is shown in the status line
            log.exception("building the ANN index for %s/%s failed", self.kind, self.model_id)
            with self._lock:
                self.last_build_error = str(error)
                self._pending = None
        finally:
            self._ready.set()

    def _go_live(self, index: faiss.IndexIVFScalarQuantizer, built_on: int) -> None:
        """Replay the changes made during the build, swap the new index in and move the rows to disk."""
        with self._lock:
            for change in self._pending or []:
                # The build may already hold a row added meanwhile (it read past the snapshot): drop it first.
                _apply_change(index, np.union1d(change.removed, change.added), change.added, change.vectors)
            self._pending = None
            self._ann = index
            self._ann_mapped = False
            self._ann_trained_on = max(built_on, 1)
            if self.storage_dir is not None and isinstance(self._rows, _RamRows):
                self._rows = self._spill_rows(self._rows)

    def _spill_rows(self, rows: _RamRows) -> _FileRows:
        """Write the in-RAM rows to ``storage_dir`` and serve them from there."""
        assert self.storage_dir is not None
        _private_dir(self.storage_dir)
        self._write_meta(clean=False)  # the rows file of an earlier save is overwritten next
        self._saved = None
        path = self.storage_dir / VECTORS_FILE
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE), "wb") as handle:
            handle.writelines(rows.read_range(start, start + READ_CHUNK_ROWS).tobytes() for start in range(0, len(rows), READ_CHUNK_ROWS))
        spilled = _FileRows(path, self.dim, len(rows))
        rows.close()
        self._dirty_marked = True
        return spilled

    # ------------------------------------------------------------- persistence

    def save(self, directory: Path | str | None = None) -> None:
        """Write hashes, rows, the ANN index (when one serves) and a meta file marking the set consistent.

        Into ``storage_dir`` by default. When the directory holds this index's last save and rows were only
        appended since, only the new rows and hashes are written (the ANN file too once it lacks more than
        ``ANN_TAIL_MAX_ROWS`` rows); else every file is written to a temporary name and renamed over the old."""
        target = Path(directory) if directory is not None else self.storage_dir
        if target is None:
            raise ValueError("save needs a directory: this index has no storage_dir")
        _private_dir(target)
        with self._lock:
            saved = self._saved
            if saved is not None and saved.directory == target.resolve() and saved.count <= len(self._hashes) \
                    and saved.ann is self._ann:
                self._save_appended(target, saved)
            else:
                self._save_everything(target)
            if self.storage_dir is not None and target.resolve() == self.storage_dir.resolve():
                self._dirty_marked = False

    def _save_everything(self, directory: Path) -> None:
        self._write_meta(clean=False, directory=directory)
        vectors_path = directory / VECTORS_FILE
        if isinstance(self._rows, _FileRows) and self._rows.path.resolve() == vectors_path.resolve():
            self._rows.flush()
        else:
            _write_rows(self._rows, vectors_path)
        text = "".join(h + "\n" for h in self._hashes)
        _atomic_write_bytes(directory / HASHES_FILE, text.encode())
        ann_path = directory / ANN_FILE
        if self._ann is not None:
            self._unmap_ann()  # FAISS writes a mapped index as a reference to its file, not as its lists
            _write_ann(self._ann, ann_path)
        elif ann_path.exists():
            ann_path.unlink()
        self._commit_save(directory, hashes_bytes=len(text.encode()))

    def _save_appended(self, directory: Path, saved: _SavedState) -> None:
        """Rows and hashes past the saved count go after the valid ones; meta.json, written last, commits them."""
        vectors_path = directory / VECTORS_FILE
        if isinstance(self._rows, _FileRows) and self._rows.path.resolve() == vectors_path.resolve():
            self._rows.flush()  # appends went straight to the saved file, past its valid rows
        else:
            _write_rows_from(self._rows, vectors_path, saved.count)
        added = "".join(h + "\n" for h in self._hashes[saved.count :]).encode()
        _write_from(directory / HASHES_FILE, saved.hashes_bytes, added)
        ann_rows = saved.ann_rows
        if self._ann is not None and len(self._hashes) - (ann_rows or 0) > ANN_TAIL_MAX_ROWS:
            self._unmap_ann()
            _write_ann(self._ann, directory / ANN_FILE)
            ann_rows = None
        self._commit_save(directory, hashes_bytes=saved.hashes_bytes + len(added), ann_rows=ann_rows)

    def _commit_save(self, directory: Path, *, hashes_bytes: int, ann_rows: int | None = None) -> None:
        if self._ann is not None and ann_rows is None:
            ann_rows = len(self._hashes)  # the ANN file was written now, with every row
        self._write_meta(clean=True, directory=directory, ann_rows=ann_rows)
        self._saved = _SavedState(directory.resolve(), len(self._hashes), hashes_bytes, self._ann, ann_rows)

    @classmethod
    def load(cls, directory: Path | str, *, ann_min_items: int = ANN_MIN_ITEMS, ann: AnnSettings | None = None,
             background: bool = True, on_ready: Callable[[VectorIndex], None] | None = None) -> VectorIndex:
        """Open an index saved by ``save``; it keeps its rows in ``directory`` when they are too many for RAM.

        The rows are not read when an ANN index serves (the re-rank reads the few it needs from the file).
        Raises ``IndexNotReusable`` when the directory holds no consistent save (crashed mid-change, an old
        format, a truncated or corrupt file): rebuild from the stored embeddings then.
        """
        directory = Path(directory)
        meta = _read_meta(directory)
        try:
            return cls._open_saved(directory, meta, ann_min_items, ann, background, on_ready)
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as error:  # FAISS reports corruption as RuntimeError
            raise IndexNotReusable(f"{directory}: {type(error).__name__}: {error}") from error

    @classmethod
    def _open_saved(cls, directory: Path, meta: dict[str, Any], ann_min_items: int, ann: AnnSettings | None,
                    background: bool, on_ready: Callable[[VectorIndex], None] | None) -> VectorIndex:
        dim, count = int(meta["dim"]), int(meta["count"])
        data = (directory / HASHES_FILE).read_bytes()
        parts = data.decode().split("\n", count) if count else [data.decode()]
        hashes, beyond = parts[:count], parts[count:]  # lines past the count: an append the meta never committed
        hashes_bytes = len(data) - (len(beyond[0].encode()) if beyond else 0)
        vectors_path = directory / VECTORS_FILE
        if len(hashes) != count or vectors_path.stat().st_size < count * dim * 4:
            raise IndexNotReusable(f"{directory}: the saved hashes or vectors are fewer than its meta file says")
        index = cls(dim, kind=meta.get("kind", ""), model_id=meta.get("model_id", ""), ann_min_items=ann_min_items,
                    ann=ann or AnnSettings(**meta.get("ann_settings", {})), storage_dir=directory,
                    background=background, on_ready=on_ready)
        index._hashes = hashes
        index._position_map = None
        same_function = meta.get("checksum_function") == _checksum_function()
        index._checksum = int(meta["checksum"]) if same_function else hash_list_checksum(hashes)
        ann_rows = meta.get("ann_rows")
        if ann_rows is not None and count >= ann_min_items * ANN_DROP_FRACTION:
            index._rows = _FileRows(vectors_path, dim, count)
            # Without rows to add, the lists are mapped rather than read: 0.01 s instead of ≈ 2 s at 1M × 768.
            index._ann_mapped = ann_rows == count
            index._ann = _read_ann(directory / ANN_FILE, dim, int(ann_rows), mapped=index._ann_mapped)
            index._ann_trained_on = int(meta.get("ann_trained_on") or count)
            if ann_rows < count:  # rows appended after the ANN file was written
                for start in range(int(ann_rows), count, ADD_CHUNK_ROWS):
                    chunk = index._rows.read_range(start, min(start + ADD_CHUNK_ROWS, count))
                    index._ann.add_with_ids(chunk, np.arange(start, start + len(chunk), dtype=np.int64))
            index._saved = _SavedState(directory.resolve(), count, hashes_bytes, index._ann, int(ann_rows))
        else:
            ram = _RamRows(dim, np.fromfile(vectors_path, dtype=np.float32, count=count * dim).reshape(count, dim))
            index._rows = ram
            index._saved = _SavedState(directory.resolve(), count, hashes_bytes, None, None)
            with index._lock:
                index._maybe_change_engine()
        return index

    def _mark_dirty(self) -> None:
        """Before the first change to rows stored in ``storage_dir``, mark its saved set as no longer valid."""
        if not self._dirty_marked and isinstance(self._rows, _FileRows) and self.storage_dir is not None:
            self._write_meta(clean=False)
            self._dirty_marked = True

    def _write_meta(self, *, clean: bool, directory: Path | None = None, ann_rows: int | None = None) -> None:
        directory = directory or self.storage_dir
        assert directory is not None
        meta = {
            "format": FORMAT_VERSION,
            "clean": clean,
            "dim": self.dim,
            "count": len(self._hashes),
            "checksum": str(self._checksum),  # a string: JSON readers other than Python lose 64-bit integers
            "checksum_function": _checksum_function(),
            "ann_rows": ann_rows,
            "kind": self.kind,
            "model_id": self.model_id,
            "ann_trained_on": self._ann_trained_on if self._ann is not None else None,
            "ann_settings": asdict(self.ann_settings),
        }
        _atomic_write_bytes(directory / META_FILE, json.dumps(meta).encode())

    def close(self) -> None:
        """Wait for a running build and release the rows file."""
        if self._build_thread is not None:
            self._build_thread.join()
        with self._lock:
            self._rows.close()
            self._ann = None
            self._ann_mapped = False

    def stats(self) -> dict[str, Any]:
        """What the status line shows about this index."""
        return {
            "kind": self.kind, "model_id": self.model_id, "count": len(self), "dim": self.dim,
            "engine": "ann" if self._ann is not None else "exact", "building": self.building,
            "rows_on_disk": self.rows_on_disk, "last_build_seconds": self.last_build_seconds,
            "last_build_error": self.last_build_error,
        }


class IndexNotReusable(Exception):
    """A saved index that cannot be trusted; the message says why."""


@dataclass(frozen=True)
class _SavedState:
    """What this index last saved: ``count`` rows and hashes (``hashes_bytes`` of text) valid in ``directory``,
    and the ANN object of that time, whose file covers ``ann_rows`` rows (None: no ANN file)."""

    directory: Path
    count: int
    hashes_bytes: int
    ann: Any
    ann_rows: int | None


def _checksum_function() -> str:
    import duckdb

    return f"duckdb {duckdb.__version__} bit_xor(hash)"


# ----------------------------------------------------------------------- helpers


def _normalised(matrix: Vectors, dim: int) -> Vectors:
    """A C-contiguous float32 copy with unit rows (zero rows stay zero); checks the dimension."""
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise ValueError(f"expected vectors of dimension {dim}, got shape {matrix.shape}")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.ascontiguousarray(matrix / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def _top_k(scores: npt.NDArray[np.floating[Any]], k: int) -> Positions:
    """Indices of the k largest scores, largest first (ties by index)."""
    if k <= 0:
        return np.zeros(0, np.int64)
    if k < len(scores):
        part = np.argpartition(-scores, k - 1)[:k]
    else:
        part = np.arange(len(scores))
    return part[np.lexsort((part, -scores[part]))]


def _new_ivf(dim: int, nlist: int) -> faiss.IndexIVFScalarQuantizer:
    quantizer = faiss.IndexFlatIP(dim)
    # by_residual=False: codes quantise the vector itself, so scanning a list needs no per-list precomputation.
    index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                          faiss.METRIC_INNER_PRODUCT, False)
    index.own_fields = True
    quantizer.this.disown()  # type: ignore[attr-defined]  # the index owns and frees its quantizer
    return index


def _training_sample(count: int, nlist: int, settings: AnnSettings) -> Positions:
    size = min(count, max(nlist * settings.train_points_per_list, 10_000))
    return np.random.default_rng(0).choice(count, size=size, replace=False).astype(np.int64)


def _apply_change(index: faiss.IndexIVFScalarQuantizer, removed: Positions, added: Positions, vectors: Vectors) -> None:
    if len(removed):
        index.remove_ids(faiss.IDSelectorBatch(len(removed), faiss.swig_ptr(np.ascontiguousarray(removed, np.int64))))
    if len(added):
        index.add_with_ids(np.ascontiguousarray(vectors, np.float32), np.ascontiguousarray(added, np.int64))


def _pairs_exact(matrix: Vectors, positions: Positions, threshold: float, block: int = 1024) -> tuple[Positions, Positions, npt.NDArray[np.float32]]:
    firsts, seconds, sims = [], [], []
    for start in range(0, len(matrix), block):
        similarity = matrix[start : start + block] @ matrix.T
        rows, cols = np.nonzero(similarity >= threshold)
        rows_global = rows + start
        keep = cols > rows_global
        firsts.append(positions[rows_global[keep]])
        seconds.append(positions[cols[keep]])
        sims.append(similarity[rows[keep], cols[keep]])
    return np.concatenate(firsts), np.concatenate(seconds), np.concatenate(sims).astype(np.float32)


def _back_to_ram(rows: _FileRows) -> _RamRows:
    ram = _RamRows(rows.dim, rows.read_range(0, len(rows)))
    rows.close()
    return ram


def _private_dir(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)


def _private_temporary(path: Path) -> tuple[Path, Any]:
    """A temporary file beside ``path``, open for writing, readable by the owner only (whatever the umask)."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    os.fchmod(descriptor, PRIVATE_FILE_MODE)  # an older temporary file keeps its mode through O_CREAT
    return temporary, os.fdopen(descriptor, "wb")


def _write_rows(rows: _RamRows | _FileRows, path: Path) -> None:
    temporary, handle = _private_temporary(path)
    with handle:
        handle.writelines(np.ascontiguousarray(rows.read_range(start, start + READ_CHUNK_ROWS)).tobytes() for start in range(0, len(rows), READ_CHUNK_ROWS))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _write_rows_from(rows: _RamRows | _FileRows, path: Path, first: int) -> None:
    """Write rows ``first``… past the valid rows of a saved file (whose first ``first`` rows stay untouched)."""
    data = b"".join(np.ascontiguousarray(rows.read_range(start, start + READ_CHUNK_ROWS)).tobytes()
                    for start in range(first, len(rows), READ_CHUNK_ROWS))
    _write_from(path, first * rows.dim * 4, data)


def _write_from(path: Path, offset: int, data: bytes) -> None:
    """Replace what follows ``offset`` in an existing file by ``data`` and make it durable."""
    descriptor = os.open(path, os.O_WRONLY)
    try:
        written = 0
        while written < len(data):
            written += os.pwrite(descriptor, data[written:], offset + written)
        os.ftruncate(descriptor, offset + len(data))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    temporary, handle = _private_temporary(path)
    with handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _write_ann(index: faiss.IndexIVFScalarQuantizer, path: Path) -> None:
    temporary, handle = _private_temporary(path)
    with handle:
        faiss.write_index(index, faiss.PyCallbackIOWriter(handle.write))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _read_ann(path: Path, dim: int, rows: int, *, mapped: bool = False) -> faiss.IndexIVFScalarQuantizer:
    index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP if mapped else 0)
    if not isinstance(index, faiss.IndexIVFScalarQuantizer) or index.d != dim or index.ntotal != rows:
        raise IndexNotReusable(f"{path}: an ANN index of {index.ntotal} rows of dimension {index.d}, "
                               f"expected {rows} of dimension {dim}")
    return index


def _read_meta(directory: Path) -> dict[str, Any]:
    try:
        meta = json.loads((directory / META_FILE).read_text())
    except (OSError, ValueError) as error:
        raise IndexNotReusable(f"{directory}: no readable {META_FILE} ({error})") from error
    if meta.get("format") != FORMAT_VERSION:
        raise IndexNotReusable(f"{directory}: saved in format {meta.get('format')}, this version reads {FORMAT_VERSION}")
    if not meta.get("clean"):
        raise IndexNotReusable(f"{directory}: changed after its last save (the app stopped mid-update)")
    return meta


__all__ = ["ANN_MIN_ITEMS", "AnnSettings", "IndexNotReusable", "VectorIndex", "hash_list_checksum"]
