"""`embed`: compute the vectors a kind is missing for an encoder, saving after every batch.

Vectors are keyed by (content hash, model id): a renamed or moved file keeps its vector, a changed file (new
hash) gets a new one, and files sharing content are encoded once. A kill loses at most the batch in progress.

Encoders that cut files into passages (``embeds_chunks``, the text encoder) also store each file's chunk vectors
with its vector. Files embedded before chunk vectors were kept have a vector but no chunks: a run fills their
chunks in (their vector is cached and stays as it is) and counts them in ``chunked``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from anagnorisis.embed.base import EncodeBatch, Encoder, iter_encode_files
from anagnorisis.store.records import present_files
from anagnorisis.store.vectors import chunked_hashes, embedded_hashes, save_chunks, save_vectors

log = logging.getLogger(__name__)

# Files handed to an encoder without a streaming pipeline of its own, per call (and so per save): a kill
# loses at most this many, and a save per 64 files costs well under 1 % of the encoding time.
BATCH_FILES = 64

Progress = Any  # a tqdm-like object (update(n), total) or a callable progress(done, total)


@dataclass
class _Run:
    """One embed run: what is left to do, and the counts so far."""

    todo: dict[str, list[Path]]  # content hash -> every present path with it (the first is read)
    chunks_only: dict[str, list[Path]] = field(default_factory=dict)  # has a vector, lacks its chunk vectors
    by_path: dict[Path, str] = field(default_factory=dict)
    embedded: int = 0
    chunked: int = 0
    done: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.by_path = {paths[0]: content_hash for content_hash, paths in {**self.todo, **self.chunks_only}.items()}

    @property
    def total(self) -> int:
        return sum(len(paths) for paths in self.todo.values()) + sum(len(p) for p in self.chunks_only.values())

    def paths_of(self, content_hash: str) -> list[Path]:
        return self.todo.get(content_hash) or self.chunks_only[content_hash]

    def record(self, batch: EncodeBatch) -> tuple[list[str], int]:
        """The hashes of the batch's vectors, and how many files the batch settled.

        A file that only lacked its chunk vectors and fails now keeps its vector: it is logged, not listed
        as failed, and asked again on the next run."""
        hashes = [self.by_path[path] for path in batch.paths]
        step = sum(len(self.paths_of(h)) for h in hashes)
        self.embedded += sum(len(self.todo[h]) for h in hashes if h in self.todo)
        self.chunked += sum(len(self.chunks_only[h]) for h in hashes if h in self.chunks_only)
        for failure in batch.failures:
            content_hash = self.by_path[failure.path]
            paths = self.paths_of(content_hash)
            if content_hash in self.todo:
                self.failed.extend({"path": str(path), "reason": failure.reason} for path in paths)
            step += len(paths)
        self.done += step
        return hashes, step

    def save(self, store: Any, model_id: str, hashes: list[str], batch: EncodeBatch) -> None:
        """Store the batch: new vectors with their chunks in one transaction, then chunks filled in."""
        fresh = [row for row, h in enumerate(hashes) if h in self.todo]
        chunks = batch.chunks
        if fresh:
            save_vectors(store, model_id, [hashes[row] for row in fresh], batch.vectors[fresh],
                         [chunks[row] for row in fresh] if chunks is not None else None)
        filled = [row for row, h in enumerate(hashes) if h in self.chunks_only]
        if filled and chunks is not None:
            save_chunks(store, model_id, [hashes[row] for row in filled], [chunks[row] for row in filled])


def _report(progress: Progress, done: int, step: int, total: int) -> None:
    if progress is None:
        return
    if not hasattr(progress, "update"):
        progress(done, total)
        return
    if hasattr(progress, "total") and progress.total != total:
        progress.total = total
        if hasattr(progress, "refresh"):
            progress.refresh()
    if step:
        progress.update(step)


def _files_to_embed(records: list[dict[str, Any]], done: set[str]) -> tuple[dict[str, list[Path]], int]:
    """Paths per content hash still to embed, and the number of files whose content has a vector already."""
    todo: dict[str, list[Path]] = {}
    cached = 0
    for record in records:
        content_hash = record.get("content_hash")
        if not content_hash:
            continue
        if content_hash in done:
            cached += 1
        else:
            todo.setdefault(content_hash, []).append(Path(record["path"]))
    return todo, cached


def _files_without_chunks(records: list[dict[str, Any]], done: set[str], store: Any,
                          encoder: Encoder) -> dict[str, list[Path]]:
    """For an encoder that stores chunk vectors: paths per content hash that has a vector but no chunk vectors
    (embedded before chunk vectors were kept)."""
    if not getattr(encoder, "embeds_chunks", False):
        return {}
    missing = done - chunked_hashes(store, encoder.model_id)
    todo: dict[str, list[Path]] = {}
    for record in records:
        if record.get("content_hash") in missing:
            todo.setdefault(record["content_hash"], []).append(Path(record["path"]))
    return todo


def embed_missing(
    store: Any,
    kind: str,
    encoder: Encoder,
    *,
    progress: Progress = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Embed the present files of `kind` that have no vector for `encoder.model_id`; SPEC §1 `embed` JSON:
    `{embedded, cached, failed: [{path, reason}], model, seconds}` plus `stopped` (true if should_stop ended it)
    and `chunked` (cached files whose chunk vectors were filled in now).

    Counts are of files: `embedded` files got a vector now (copies sharing content count each), `cached` files
    had one already, and every file of a failed content is listed with the reason. `should_stop` is asked
    after every saved batch.
    """
    started = time.monotonic()
    records = present_files(store, kind)
    done = embedded_hashes(store, encoder.model_id)
    todo, cached = _files_to_embed(records, done)
    chunks_only = _files_without_chunks(records, done, store, encoder)
    run = _Run(todo, chunks_only)
    _report(progress, 0, 0, run.total)
    stopped = False
    stream = iter_encode_files(encoder, list(run.by_path), BATCH_FILES)
    try:
        for batch in stream:
            hashes, step = run.record(batch)
            if hashes:
                run.save(store, encoder.model_id, hashes, batch)
            _report(progress, run.done, step, run.total)
            if should_stop is not None and run.done < run.total and should_stop():
                stopped = True
                break
    finally:
        stream.close()  # stops the encoder's look-ahead: decodes queued for batches never taken are cancelled
    if run.failed:
        log.warning("%s: %d file(s) could not be embedded with %s", kind, len(run.failed), encoder.model_id)
    return {
        "embedded": run.embedded,
        "cached": cached,
        "chunked": run.chunked,
        "failed": run.failed,
        "model": encoder.model_id,
        "seconds": round(time.monotonic() - started, 3),
        "stopped": stopped,
    }


def missing_count(store: Any, kind: str, model_id: str) -> int:
    """Present files of a kind without a vector for this model (the "not yet indexed" count)."""
    done = embedded_hashes(store, model_id)
    return sum(1 for record in present_files(store, kind) if record.get("content_hash") and record["content_hash"] not in done)


def embed_kinds(store: Any, kinds: Iterable[str], encoders: Callable[[str], Encoder], **options: Any) -> dict[str, dict[str, Any]]:
    """embed_missing for several kinds, each with the encoder `encoders(kind)` gives."""
    return {kind: embed_missing(store, kind, encoders(kind), **options) for kind in kinds}
