"""The chunk vectors of one (kind, model) in one contiguous matrix, for scoring text files by their best passages.

SPEC §2: a file's score for a query is the smooth maximum of its chunk cosines, m + log(mean(exp(16 (s − m)))) / 16
with m = max(s) — near the best passage, a little higher for a file with several good passages. Rows are grouped
by file (file i owns rows ``starts[i]:starts[i+1]``), so one matrix product scores every chunk and
``np.maximum.reduceat`` / ``np.add.reduceat`` reduce the scores per file without a Python loop.

Kept in sync like the ``VectorIndex`` of file vectors: loaded once, then files embedded since are appended.
Exact brute force only (no ANN): at 384 dimensions 100k chunks take a few milliseconds (bench/text_search.py).
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from anagnorisis.embed.base import SMOOTH_MAX_SHARPNESS

Vectors = npt.NDArray[np.float32]
Positions = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

# Candidate files holding less than this share of all chunk rows are scored by gathering their rows (a copy of
# a few MB) instead of multiplying the whole matrix, as VectorIndex does for small allowed subsets.
GATHER_MAX_FRACTION = 0.25


@dataclass(frozen=True)
class PassageScores:
    """Per asked file: its smooth-max score, its best chunk's cosine, which chunk that is, and its chunk count."""

    smooth: Floats
    best: Floats
    best_chunk: Positions
    counts: Positions


class ChunkIndex:
    """Chunk vectors grouped by file; files are keyed by content hash and numbered in the order they were added."""

    def __init__(self, dim: int, *, kind: str = "", model_id: str = "") -> None:
        self.dim = dim
        self.kind = kind
        self.model_id = model_id
        self._lock = threading.RLock()
        self._matrix: Vectors = np.zeros((0, dim), dtype=np.float32)
        self._count = 0  # live rows of _matrix (the rest is spare capacity)
        self._starts: Positions = np.zeros(1, dtype=np.int64)  # first row of each file, then the row count
        self._hashes: list[str] = []
        self._position: dict[str, int] = {}

    # ----------------------------------------------------------------- contents

    def __len__(self) -> int:
        """The number of files."""
        return len(self._hashes)

    def __contains__(self, content_hash: object) -> bool:
        return content_hash in self._position

    @property
    def rows(self) -> int:
        """The number of chunk vectors."""
        return self._count

    @property
    def nbytes(self) -> int:
        return int(self._matrix.nbytes)

    def positions(self, content_hashes: Sequence[str]) -> Positions:
        """The file number of each hash, −1 where the hash has no chunks here."""
        lookup = self._position.get
        return np.fromiter((lookup(h, -1) for h in content_hashes), dtype=np.int64, count=len(content_hashes))

    def chunk_vectors(self, content_hash: str) -> Vectors | None:
        """A copy of one file's chunk vectors in chunk order, or None."""
        with self._lock:
            file = self._position.get(content_hash)
            if file is None:
                return None
            return self._matrix[self._starts[file] : self._starts[file + 1]].copy()

    # ----------------------------------------------------------------- changes

    def add(self, content_hashes: Sequence[str], starts: npt.ArrayLike, matrix: npt.ArrayLike) -> None:
        """Append files: file i of ``content_hashes`` owns rows ``starts[i]:starts[i+1]`` of ``matrix`` (rows are
        normalised here). A file already present gets its new chunks instead of the old ones."""
        bounds = np.asarray(starts, dtype=np.int64)
        rows = _normalised(np.asarray(matrix, dtype=np.float32).reshape(-1, self.dim))
        if len(bounds) != len(content_hashes) + 1 or bounds[0] != 0 or bounds[-1] != len(rows) or np.any(np.diff(bounds) <= 0):
            raise ValueError(f"starts must rise from 0 to {len(rows)} with one entry per file plus one")
        with self._lock:
            known = [h for h in content_hashes if h in self._position]
            if known:
                self._remove(known)
            self._append_rows(rows)
            for content_hash in content_hashes:
                self._position[content_hash] = len(self._hashes)
                self._hashes.append(content_hash)
            self._starts = np.concatenate([self._starts, self._starts[-1] + bounds[1:]])

    def _append_rows(self, rows: Vectors) -> None:
        needed = self._count + len(rows)
        if needed > len(self._matrix):
            grown = np.empty((max(needed, int(len(self._matrix) * 1.5) + 4096), self.dim), dtype=np.float32)
            grown[: self._count] = self._matrix[: self._count]
            self._matrix = grown
        self._matrix[self._count : needed] = rows
        self._count = needed

    def _remove(self, content_hashes: Sequence[str]) -> None:
        """Drop files and close the gaps (a copy of the rows; only re-embedded files come this way)."""
        gone = {self._position[h] for h in content_hashes}
        starts = self._starts
        keep_files = [f for f in range(len(self._hashes)) if f not in gone]
        keep_rows = _rows_of(starts, np.asarray(keep_files, dtype=np.int64))
        counts = np.diff(starts)[keep_files] if keep_files else np.zeros(0, np.int64)
        self._matrix = np.ascontiguousarray(self._matrix[keep_rows])
        self._count = len(keep_rows)
        self._hashes = [self._hashes[f] for f in keep_files]
        self._position = {h: i for i, h in enumerate(self._hashes)}
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    # ----------------------------------------------------------------- scoring

    def file_scores(self, query: npt.ArrayLike, files: Positions) -> PassageScores:
        """Smooth-max scores of the given files (file numbers, all ≥ 0) for a query vector (normalised here)."""
        q = _normalised(np.asarray(query, dtype=np.float32).reshape(1, -1))[0]
        files = np.asarray(files, dtype=np.int64)
        if not len(files):
            empty = np.zeros(0)
            return PassageScores(empty, empty, np.zeros(0, np.int64), np.zeros(0, np.int64))
        with self._lock:
            starts = self._starts
            counts = np.diff(starts)[files]
            if counts.sum() <= GATHER_MAX_FRACTION * self._count:
                scores = self._matrix[_rows_of(starts, files)] @ q
                local_starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
                return _reduce(scores, local_starts, counts)
            reduced = _reduce(self._matrix[: self._count] @ q, starts[:-1], np.diff(starts))
        return PassageScores(reduced.smooth[files], reduced.best[files], reduced.best_chunk[files],
                             reduced.counts[files])


def _reduce(scores: npt.NDArray[np.floating], starts: Positions, counts: Positions) -> PassageScores:
    """Per group of consecutive scores (group g starts at starts[g], has counts[g] > 0 rows): the smooth maximum,
    the maximum and the offset of the maximum inside the group."""
    scores = np.asarray(scores, dtype=np.float64)
    best = np.maximum.reduceat(scores, starts)
    shifted = scores - np.repeat(best, counts)
    mean = np.add.reduceat(np.exp(SMOOTH_MAX_SHARPNESS * shifted), starts) / counts
    smooth = best + np.log(mean) / SMOOTH_MAX_SHARPNESS
    # The first row of each group that reaches its maximum: argmax per group without a loop.
    at_best = np.flatnonzero(shifted == 0.0)
    owner = np.searchsorted(starts, at_best, side="right") - 1
    first = np.concatenate([[True], owner[1:] != owner[:-1]])
    best_chunk = at_best[first] - starts
    return PassageScores(smooth, best, best_chunk.astype(np.int64), counts.astype(np.int64))


def _rows_of(starts: Positions, files: Positions) -> Positions:
    """The row numbers of the given files, file after file (a vectorised concatenation of aranges)."""
    counts = starts[files + 1] - starts[files]
    total = int(counts.sum())
    if not total:
        return np.zeros(0, np.int64)
    offsets = np.repeat(starts[files] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    return np.arange(total, dtype=np.int64) + offsets


def _normalised(matrix: Vectors) -> Vectors:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.ascontiguousarray(matrix / np.where(norms > 0, norms, 1.0), dtype=np.float32)


__all__ = ["ChunkIndex", "PassageScores"]
