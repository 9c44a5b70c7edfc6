"""Walk the library roots, identify files by content, read metadata; mark-and-sweep what disappeared.

A rescan reuses the stored hash while (path, size, mtime) is unchanged, so an unchanged library rescans in
seconds. Every bad file is skipped with its reason; every valid file is indexed whatever its name.
"""
from __future__ import annotations

import json
import logging
import os
import stat
import time
from collections import defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import duckdb

from anagnorisis.kinds import MediaError, MediaKind, all_kinds, get_kind
from anagnorisis.library.hashing import HASH_ALGORITHM, content_hash
from anagnorisis.store.db import Store, utc_now
from anagnorisis.store.files import (insert_files, known_files, mark_file_missing, mark_files_present, rehome_files,
                                     sweep_files, update_file)
from anagnorisis.store.ratings import carry_hash
from anagnorisis.store.roots import Root, list_roots
from anagnorisis.store.skipped import replace_scan_issues

log = logging.getLogger(__name__)

# Files probed and hashed between two commits: small enough that a kill loses little work,
# large enough that commit overhead stays under a few percent of a first scan.
COMMIT_EVERY_FILES = 1000
# Probing is I/O and C-library bound (Pillow, PyAV, xxhash release the GIL), so a few threads per core pay off.
PROBE_THREADS = max(2, min(8, 2 * (os.cpu_count() or 1)))
# Probes queued ahead of the one being recorded: enough to keep every probe thread busy, few enough that a
# paused scan stops reading files within a moment.
PROBES_AHEAD = 4 * PROBE_THREADS

Progress = Callable[[int, int, str], None]  # (done, total, stage)
ShouldStop = Callable[[], bool]  # a checkpoint between two files: True ends the scan there (it may block, paused)


@dataclass
class ScanReport:
    new: int = 0
    changed: int = 0
    moved: int = 0
    missing: int = 0
    unchanged: int = 0
    carried: int = 0
    bad: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    stopped: bool = False  # should_stop() ended it: what it recorded stays, a later scan finishes the rest

    def as_dict(self) -> dict[str, Any]:
        return {
            "new": self.new, "changed": self.changed, "moved": self.moved, "missing": self.missing,
            "unchanged": self.unchanged, "carried": self.carried, "bad": self.bad, "warnings": self.warnings,
            "seconds": round(self.seconds, 3), "stopped": self.stopped,
        }


@dataclass(frozen=True)
class Walked:
    path_bytes: bytes
    root: str
    size: int
    mtime: float


@dataclass(frozen=True)
class Probed:
    walked: Walked
    content_hash: str | None = None
    metadata: dict[str, Any] | None = None
    warning: str | None = None
    bad_reason: str | None = None


@dataclass
class Known:
    """A files row as the scanner needs it."""

    id: int
    path_bytes: bytes
    size: int | None
    mtime: float | None
    content_hash: str | None
    missing: bool
    root: str | None = None


def display(path_bytes: bytes) -> str:
    """A printable, valid UTF-8 form of a path (invalid bytes become U+FFFD)."""
    return path_bytes.decode("utf-8", errors="replace")


def _is_within(inner: bytes, outer: bytes) -> bool:
    return inner == outer or inner.startswith(outer.rstrip(b"/") + b"/")


def walk_root(root: str, extensions: frozenset[str], on_issue: Callable[[bytes, str], None]) -> Iterator[Walked]:
    """Regular files under root with one of the extensions; symlinks are followed only inside the root."""
    wanted = {ext.encode() for ext in extensions}
    root_bytes = os.fsencode(root)
    root_real = os.path.realpath(root_bytes)
    top = os.stat(root_bytes)
    visited = {(top.st_dev, top.st_ino)}
    stack = [root_bytes]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries_iter:
                entries = list(entries_iter)
        except OSError as error:
            on_issue(folder, f"cannot read folder: {error.strerror or error}")
            continue
        for entry in entries:
            relevant = os.path.splitext(entry.name)[1].lower() in wanted
            try:
                is_link = entry.is_symlink()
                if is_link and not _is_within(os.path.realpath(entry.path), root_real):
                    if relevant or entry.is_dir():
                        on_issue(entry.path, "symlink points outside the library root; not followed")
                    continue
                info = entry.stat()
            except FileNotFoundError:
                if relevant:
                    on_issue(entry.path, "broken symlink or file vanished during the scan")
                continue
            except OSError as error:
                if relevant:
                    on_issue(entry.path, f"cannot stat: {error.strerror or error}")
                continue
            if stat.S_ISDIR(info.st_mode):
                key = (info.st_dev, info.st_ino)
                if key in visited:
                    if is_link:
                        on_issue(entry.path, "symlink loop; not followed")
                    continue
                visited.add(key)
                stack.append(entry.path)
            elif not relevant:
                continue
            elif stat.S_ISREG(info.st_mode):
                yield Walked(entry.path, root, info.st_size, info.st_mtime)
            else:
                on_issue(entry.path, "not a regular file (FIFO, socket or device)")


def probe(kind: MediaKind, walked: Walked) -> Probed:
    """Validate and read one file; never raises."""
    path = Path(os.fsdecode(walked.path_bytes))
    if walked.size == 0:
        return Probed(walked, bad_reason="empty file")
    try:
        found = kind.read_metadata(path)
        digest = content_hash(walked.path_bytes)
    except MediaError as error:
        return Probed(walked, bad_reason=str(error) or "unreadable file")
    except OSError as error:
        return Probed(walked, bad_reason=f"cannot read: {error.strerror or error}")
    except Exception as error:  # a decoder library failing in an unexpected way must not stop the scan
        return Probed(walked, bad_reason=f"unreadable {kind.name} file ({type(error).__name__}: {error})")
    return Probed(walked, digest, found.metadata, found.warning)


def _load_known(conn: duckdb.DuckDBPyConnection, kind: str, path_bytes: bytes | None = None) -> dict[bytes, Known]:
    """The kind's files rows by path (only the one path, when given)."""
    rows = known_files(conn, kind, path_bytes)
    return {bytes(row[1]): Known(row[0], bytes(row[1]), *row[2:]) for row in rows}


@dataclass
class _KindScan:
    """Everything one kind's scan decides, applied chunk by chunk through the writer."""

    kind: MediaKind
    report: ScanReport
    known: dict[bytes, Known]
    vanished_by_hash: dict[str, list[Known]]
    vanished_ids: set[int]
    roots_by_path: dict[str, Root]
    now: datetime
    issues: dict[bytes, str] = field(default_factory=dict)

    def note_bad(self, path_bytes: bytes, reason: str) -> None:
        if path_bytes in self.issues:
            return
        self.issues[path_bytes] = reason
        log.warning("skipping %s: %s", display(path_bytes), reason)
        self.report.bad.append({"path": display(path_bytes), "reason": reason})


def _row_values(scan: _KindScan, item: Probed) -> dict[str, Any]:
    walked = item.walked
    root_bytes = os.fsencode(walked.root)
    relative = walked.path_bytes[len(root_bytes):].lstrip(b"/")
    return {
        "kind": scan.kind.name,
        "root": walked.root,
        "relative_path": display(relative),
        "path_bytes": walked.path_bytes,
        "display_path": display(walked.path_bytes),
        "size": walked.size,
        "mtime": walked.mtime,
        "content_hash": item.content_hash,
        "hash_algorithm": HASH_ALGORITHM,
        "metadata": json.dumps(item.metadata or {}, default=str, ensure_ascii=False),
    }


def _apply_chunk(conn: duckdb.DuckDBPyConnection, scan: _KindScan, chunk: list[Probed]) -> None:
    inserts: list[dict[str, Any]] = []
    for item in chunk:
        path_bytes = item.walked.path_bytes
        known = scan.known.get(path_bytes)
        if item.bad_reason is not None:
            scan.note_bad(path_bytes, item.bad_reason)
            if known is not None and not known.missing:
                mark_file_missing(conn, known.id)
            continue
        if item.warning:
            log.warning("indexing %s with a warning: %s", display(path_bytes), item.warning)
            scan.report.warnings.append({"path": display(path_bytes), "warning": item.warning})
        values = _row_values(scan, item)
        if known is not None:
            if known.content_hash and known.content_hash != item.content_hash:
                scan.report.changed += 1
                if carry_hash(conn, known.content_hash, item.content_hash, scan.now):
                    scan.report.carried += 1
            else:
                scan.report.unchanged += 1
            update_file(conn, known.id, values, scan.now)
            continue
        twins = scan.vanished_by_hash.get(item.content_hash or "")
        if twins:
            moved = twins.pop()
            scan.vanished_ids.discard(moved.id)
            scan.report.moved += 1
            update_file(conn, moved.id, values, scan.now)
            continue
        scan.report.new += 1
        inserts.append(values)
    insert_files(conn, inserts, scan.now)


def _finish_kind(conn: duckdb.DuckDBPyConnection, scan: _KindScan) -> None:
    """Sweep: files not seen are missing; everything still present was seen now; refresh the issue list."""
    sweep_files(conn, scan.kind.name, scan.vanished_ids, scan.now)
    scan.report.missing += len(scan.vanished_ids)
    replace_scan_issues(conn, scan.kind.name, scan.issues, scan.now)


def _probe_ahead(pool: ThreadPoolExecutor, kind: MediaKind, items: list[Walked]) -> Iterator[Probed]:
    """probe() of each item, in order, at most PROBES_AHEAD in flight: a paused scan stops hashing soon after,
    and closing the iterator drops the probes not started."""
    pending: deque[Future[Probed]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(probe, kind, item))
            if len(pending) >= PROBES_AHEAD:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def _walk_roots(roots: list[Root], scan: _KindScan, should_stop: ShouldStop) -> list[Walked] | None:
    """Every file of the kind under its roots; None when should_stop() ended the walk."""
    walked: list[Walked] = []
    for root in roots:
        if not os.path.isdir(root.path):
            log.warning("library root %s (%s) is not reachable; its files are marked missing", root.path, scan.kind.name)
            continue
        for item in walk_root(root.path, scan.kind.extensions, scan.note_bad):
            if should_stop():
                return None
            walked.append(item)
    return walked


def _record_probed(store: Store, scan: _KindScan, results: Iterable[Probed], total: int,
                   progress: Progress | None, should_stop: ShouldStop) -> bool:
    """Write the probed files chunk by chunk; on a stop, the files probed so far are written and True returned."""
    done = 0
    chunk: list[Probed] = []
    stopped = False
    for item in results:
        chunk.append(item)
        stopped = should_stop()
        if len(chunk) >= COMMIT_EVERY_FILES or stopped:
            store.write(lambda conn: _apply_chunk(conn, scan, chunk))
            done += len(chunk)
            chunk = []
            if progress:
                progress(done, total, scan.kind.name)
        if stopped:
            return True
    if chunk:
        store.write(lambda conn: _apply_chunk(conn, scan, chunk))
        if progress:
            progress(done + len(chunk), total, scan.kind.name)
    return False


def _scan_kind(store: Store, kind: MediaKind, report: ScanReport, progress: Progress | None,
               should_stop: ShouldStop) -> bool:
    """Scan one kind; True when should_stop() ended it (then nothing is swept: a later scan does it)."""
    roots = list_roots(store, kind.name)
    known = store.read(lambda conn: _load_known(conn, kind.name))
    scan = _KindScan(kind, report, known, {}, set(), {root.path: root for root in roots}, utc_now())
    walked = _walk_roots(roots, scan, should_stop)
    if walked is None:
        return True
    seen = {item.path_bytes for item in walked}
    for row in known.values():
        if not row.missing and row.path_bytes not in seen:
            scan.vanished_ids.add(row.id)
            if row.content_hash:
                scan.vanished_by_hash.setdefault(row.content_hash, []).append(row)
    to_probe: list[Walked] = []
    reappeared: list[int] = []
    rehomed: list[tuple[int, str, str]] = []  # under another root than its row says (a root replaced by its parent)
    for item in walked:
        row = known.get(item.path_bytes)
        if row and row.content_hash and row.size == item.size and row.mtime == item.mtime:
            report.unchanged += 1
            if row.missing:
                reappeared.append(row.id)
            if row.root != item.root:
                relative = item.path_bytes[len(os.fsencode(item.root)):].lstrip(b"/")
                rehomed.append((row.id, item.root, display(relative)))
        else:
            to_probe.append(item)
    if reappeared:
        mark_files_present(store, reappeared)
    if rehomed:
        rehome_files(store, rehomed)
    with ThreadPoolExecutor(PROBE_THREADS) as pool:
        results = _probe_ahead(pool, kind, to_probe)
        try:
            stopped = _record_probed(store, scan, results, len(to_probe), progress, should_stop)
        finally:
            results.close()  # after a stop: the probes not started yet are dropped, not waited for
    if stopped:
        # No sweep: files not reached yet are not missing. Every row written is as a full scan writes it, and
        # the next scan sees those files unchanged and probes only the rest.
        return True
    store.write(lambda conn: _finish_kind(conn, scan))
    return False


def scan(store: Store, kinds: list[str] | None = None, progress: Progress | None = None, *,
         should_stop: ShouldStop | None = None) -> ScanReport:
    """Scan the roots of the given kinds (all by default) and return SPEC §1's scan report.

    `should_stop` is asked between two files (a job's checkpoint: it may block while the job is paused); when it
    says stop, the files probed so far are recorded, the scan ends with `stopped` set, and a later scan finishes
    the job (it finds the recorded files unchanged)."""
    started = time.perf_counter()
    report = ScanReport()
    selected = [get_kind(name) for name in kinds] if kinds else all_kinds()
    for kind in selected:
        if _scan_kind(store, kind, report, progress, should_stop or (lambda: False)):
            report.stopped = True
            break
    report.seconds = time.perf_counter() - started
    return report


def index_file(store: Store, path: str) -> tuple[str, str]:
    """Make sure one file under a root is indexed now; returns (kind, content_hash). Raises MediaError if bad."""
    path_bytes = os.fsencode(os.path.abspath(path))
    info = os.stat(path_bytes)
    ext = os.path.splitext(path)[1].lower()
    for root in list_roots(store):
        kind = get_kind(root.kind)
        if ext not in kind.extensions or not _is_within(path_bytes, os.fsencode(root.path)):
            continue
        known = store.read(lambda conn: _load_known(conn, kind.name, path_bytes))
        row = known.get(path_bytes)
        if row and row.content_hash and not row.missing and (row.size, row.mtime) == (info.st_size, info.st_mtime):
            return kind.name, row.content_hash
        walked = Walked(path_bytes, root.path, info.st_size, info.st_mtime)
        item = probe(kind, walked)
        if item.bad_reason is not None:
            raise MediaError(item.bad_reason)
        scan = _KindScan(kind, ScanReport(), known, {}, set(), {root.path: root}, utc_now())
        store.write(lambda conn: _apply_chunk(conn, scan, [item]))
        return kind.name, item.content_hash or ""
    raise MediaError(f"{path} is not a {ext or 'extension-less'} file under any library root of a kind that takes it")


def kinds_with_roots(store: Store) -> list[str]:
    present = defaultdict(int)
    for root in list_roots(store):
        present[root.kind] += 1
    return [kind.name for kind in all_kinds() if present[kind.name]]
