"""`embed`: compute the vectors a kind is missing for an encoder, saving after every batch.

Vectors are keyed by (content hash, model id): a renamed or moved file keeps its vector, a changed file (new
hash) gets a new one, and files sharing content are encoded once. A kill loses at most the batch in progress.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from anagnorisis.embed.base import EncodeBatch, Encoder, iter_encode_files
from anagnorisis.store.records import present_files
from anagnorisis.store.vectors import embedded_hashes, save_vectors

log = logging.getLogger(__name__)

# Files handed to an encoder without a streaming pipeline of its own, per call (and so per save): a kill
# loses at most this many, and a save per 64 files costs well under 1 % of the encoding time.
BATCH_FILES = 64

Progress = Any  # a tqdm-like object (update(n), total) or a callable progress(done, total)


@dataclass
class _Run:
    """One embed run: what is left to do, and the counts so far."""

    todo: dict[str, list[Path]]  # content hash -> every present path with it (the first is read)
    by_path: dict[Path, str] = field(default_factory=dict)
    embedded: int = 0
    done: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.by_path = {paths[0]: content_hash for content_hash, paths in self.todo.items()}

    @property
    def total(self) -> int:
        return sum(len(paths) for paths in self.todo.values())

    def record(self, batch: EncodeBatch) -> tuple[list[str], int]:
        """The hashes of the batch's vectors, and how many files the batch settled."""
        hashes = [self.by_path[path] for path in batch.paths]
        step = sum(len(self.todo[h]) for h in hashes)
        self.embedded += step
        for failure in batch.failures:
            paths = self.todo[self.by_path[failure.path]]
            self.failed.extend({"path": str(path), "reason": failure.reason} for path in paths)
            step += len(paths)
        self.done += step
        return hashes, step


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


def embed_missing(
    store: Any,
    kind: str,
    encoder: Encoder,
    *,
    progress: Progress = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Embed the present files of `kind` that have no vector for `encoder.model_id`; SPEC §1 `embed` JSON:
    `{embedded, cached, failed: [{path, reason}], model, seconds}` plus `stopped` (true if should_stop ended it).

    Counts are of files: `embedded` files got a vector now (copies sharing content count each), `cached` files
    had one already, and every file of a failed content is listed with the reason. `should_stop` is asked
    after every saved batch.
    """
    started = time.monotonic()
    todo, cached = _files_to_embed(present_files(store, kind), embedded_hashes(store, encoder.model_id))
    run = _Run(todo)
    _report(progress, 0, 0, run.total)
    stopped = False
    stream = iter_encode_files(encoder, list(run.by_path), BATCH_FILES)
    try:
        for batch in stream:
            hashes, step = run.record(batch)
            if hashes:
                save_vectors(store, encoder.model_id, hashes, batch.vectors)
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
