"""A pool of decode workers that returns results in order with a bounded look-ahead, and survives a crash.

Process workers are the app's own: each has a pipe of its own to the parent, so the parent always knows which
task a worker was running when it died (a decoder crashing on a hostile file, the OOM killer) — that task is
split and re-run file by file, the file that kills a worker again is reported, and a fresh worker takes the
dead one's place. (The standard ProcessPoolExecutor marks the whole pool broken instead, and recovering from
that raced with its own clean-up threads on Python 3.11: closed descriptors, joins that never returned.)
Workers are not forked from the caller, which may hold CUDA and torch threads that a fork copies broken: they
come from a fork server that imported only numpy, Pillow and the decode functions, so each starts at once.

Imports only the standard library: the GPU benchmark runs where duckdb, av and gradio are missing.
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Generic, Iterable, Iterator, Sequence, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# Modules the fork server imports once, so every worker forked from it starts with them loaded.
WORKER_PRELOAD = ["numpy", "PIL.Image", "anagnorisis.embed.workers", "anagnorisis.embed.imaging"]
# Tasks queued in each worker's pipe beyond the one it runs: it starts the next the moment it sends a result,
# without waiting for the parent, whose Python code may be busy with the model for tens of milliseconds
# (one task is ~0.1 s of decoding). More would tie the look-ahead window up in pipes: with fewer tasks
# assigned than the window holds, a worker that finishes early finds work even while the oldest task runs.
QUEUED_PER_WORKER = 1
STOP_SECONDS = 5.0  # how long close() lets a worker finish before terminating it
# A task (up to a few dozen files) running longer than this has met a file that hangs its decoder: the worker
# is killed and the task re-run file by file, as after a crash. Generous: a slow disk must not trip it.
TASK_SECONDS_LIMIT = 120.0
CHECK_SECONDS = 5.0  # how often a waiting parent looks for hung workers


def default_workers() -> int:
    """Every usable core: decoding, not the model, limits image indexing (STACK-NOTES: 869 vs 7,400 images/s)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def chunks_of(items: Sequence[Item], size: int) -> Iterator[list[Item]]:
    for start in range(0, len(items), max(1, size)):
        yield list(items[start : start + size])


def _process_context() -> Any:
    if "forkserver" not in multiprocessing.get_all_start_methods():  # Windows
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(WORKER_PRELOAD)
    return context


def _pid(_: Any) -> int:
    return os.getpid()


def _worker_main(connection: Any) -> None:
    """A worker: run (task id, fn, items) messages until None or a closed pipe; an exception is returned."""
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        task_id, fn, items = message
        try:
            outcome: tuple[str, Any] = ("ok", fn(items))
        except BaseException as error:  # noqa: BLE001 - sent back and raised in the parent
            outcome = ("error", f"{type(error).__name__}: {error}")
        connection.send((task_id, outcome))


@dataclass
class _Part(Generic[Item]):
    """Some items of one chunk, run as one task."""

    items: list[Item]
    task_id: int
    results: list[Any] | None = None
    worker: "_Worker | None" = None


@dataclass
class _Entry(Generic[Item]):
    """A chunk in the look-ahead window: one part, or one part per item after a crash."""

    parts: list[_Part[Item]]

    def done(self) -> bool:
        return all(part.results is not None for part in self.parts)

    def results(self) -> list[Any]:
        return [result for part in self.parts for result in (part.results or [])]


@dataclass
class _Worker:
    process: Any
    connection: Any
    assigned: deque = field(default_factory=deque)  # parts sent, oldest (the running one) first
    since: float = 0.0  # when the running part started (as far as the parent can tell)


class WorkerPool:
    """Runs `fn(chunk) -> list of per-item results` over chunks, in order, with at most `in_flight` chunks
    submitted and not yet consumed.

    kind: "process" (parallel, crash-proof: see the module docstring), "thread" (for work that releases the
    GIL, no start-up cost) or "inline" (tests). One `ordered` run at a time per pool.
    """

    def __init__(self, workers: int | None = None, kind: str = "process", queued_per_worker: int = QUEUED_PER_WORKER) -> None:
        if kind not in ("process", "thread", "inline"):
            raise ValueError(f"unknown worker kind {kind!r}")
        self.workers = max(1, workers or default_workers())
        self.kind = kind
        self.queued_per_worker = max(0, queued_per_worker)
        self._threads: ThreadPoolExecutor | None = None
        self._processes: list[_Worker] = []
        self._task_ids = 0

    # ------------------------------------------------------------ lifecycle

    def warm_up(self) -> None:
        """Start every worker now, so a timed run measures the work only."""
        if self.kind == "process":
            self._ensure_processes()
            for worker in self._processes:
                worker.connection.send((-1, _pid, None))
            for worker in self._processes:
                worker.connection.recv()

    def pids(self) -> list[int]:
        return [worker.process.pid for worker in self._processes]

    def _ensure_processes(self) -> None:
        """Replace idle workers that died; a dead worker with tasks is left for _collect to bury (re-queue)."""
        self._processes = [worker for worker in self._processes if worker.process.is_alive() or worker.assigned]
        while sum(1 for worker in self._processes if worker.process.is_alive()) < self.workers:
            self._processes.append(self._start_worker())

    def _start_worker(self) -> _Worker:
        context = _process_context()
        parent, child = context.Pipe(duplex=True)
        process = context.Process(target=_worker_main, args=(child,), daemon=True, name="anagnorisis-decode")
        process.start()
        child.close()
        return _Worker(process, parent)

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=True, cancel_futures=True)
            self._threads = None
        for worker in self._processes:
            try:
                worker.connection.send(None)
            except OSError:
                pass
        for worker in self._processes:
            worker.process.join(STOP_SECONDS)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(STOP_SECONDS)
            worker.connection.close()
        self._processes = []

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ running

    def ordered(
        self,
        fn: Callable[[Any], list[Result]],
        chunks: Iterable[list[Item]],
        in_flight: int,
        on_crash: Callable[[Item], Result],
    ) -> Generator[list[Result], None, None]:
        """Results chunk by chunk in input order. `on_crash(item)` stands in for the result of an item whose
        worker died twice on it (process pools only)."""
        if self.kind == "inline":
            for chunk in chunks:
                yield fn(chunk)
        elif self.kind == "thread":
            yield from self._ordered_in_threads(fn, chunks, in_flight)
        else:
            yield from self._ordered_in_processes(fn, chunks, in_flight, on_crash)

    def _ordered_in_threads(self, fn: Callable, chunks: Iterable[list[Item]], in_flight: int) -> Iterator[list[Result]]:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="decode")
        source = iter(chunks)
        pending: deque = deque()
        try:
            while True:
                while len(pending) < max(1, in_flight) and (chunk := next(source, None)) is not None:
                    pending.append(self._threads.submit(fn, chunk))
                if not pending:
                    return
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()

    def _ordered_in_processes(
        self, fn: Callable, chunks: Iterable[list[Item]], in_flight: int, on_crash: Callable[[Item], Result]
    ) -> Iterator[list[Result]]:
        self._ensure_processes()
        source = iter(chunks)
        window: deque[_Entry] = deque()
        try:
            while True:
                while len(window) < max(1, in_flight) and (chunk := next(source, None)) is not None:
                    window.append(_Entry([self._part(chunk)]))
                if not window:
                    return
                # Workers are fed on every step, not only while waiting: a consumer catching up on finished
                # chunks after a slow model step must not leave them idle meanwhile.
                self._collect(window, on_crash, timeout=0)
                self._assign(fn, window)
                while not window[0].done():
                    self._collect(window, on_crash, timeout=CHECK_SECONDS)
                    self._assign(fn, window)
                yield window.popleft().results()
        finally:
            self._abandon(window)

    def _part(self, items: list[Item]) -> _Part:
        self._task_ids += 1
        return _Part(items, self._task_ids)

    def _assign(self, fn: Callable, window: deque[_Entry]) -> None:
        """Hand unassigned parts, oldest first, to workers with room in their pipe."""
        waiting = (part for entry in window for part in entry.parts if part.results is None and part.worker is None)
        for worker in sorted((w for w in self._processes if w.process.is_alive()), key=lambda w: len(w.assigned)):
            while len(worker.assigned) <= self.queued_per_worker:
                part = next(waiting, None)
                if part is None:
                    return
                try:
                    worker.connection.send((part.task_id, fn, part.items))
                except OSError:
                    break  # the worker is dead; _collect finds out and re-queues its parts
                part.worker = worker
                if not worker.assigned:
                    worker.since = time.monotonic()
                worker.assigned.append(part)

    def _collect(self, window: deque[_Entry], on_crash: Callable[[Item], Result], timeout: float) -> None:
        """Take note of workers that answered or died, waiting up to `timeout` seconds for one."""
        by_connection = {worker.connection: worker for worker in self._processes}
        by_sentinel = {worker.process.sentinel: worker for worker in self._processes}
        ready = multiprocessing.connection.wait([*by_connection, *by_sentinel], timeout=timeout)
        if not ready and timeout > 0:
            self._kill_hung_workers()
        for handle in ready:
            if handle in by_connection:
                self._receive(by_connection[handle], window, on_crash)
        for handle in ready:
            if handle in by_sentinel and by_sentinel[handle] in self._processes:
                self._bury(by_sentinel[handle], window, on_crash)

    def _receive(self, worker: _Worker, window: deque[_Entry], on_crash: Callable[[Item], Result]) -> None:
        try:
            task_id, (status, payload) = worker.connection.recv()
        except (EOFError, OSError):
            self._bury(worker, window, on_crash)
            return
        part = worker.assigned.popleft()
        worker.since = time.monotonic()
        if part.task_id != task_id:  # a pipe delivers in order; anything else is a bug worth stopping on
            raise RuntimeError(f"worker answered task {task_id}, expected {part.task_id}")
        if status != "ok":
            raise RuntimeError(f"a decode worker failed: {payload}")
        part.results = payload

    def _kill_hung_workers(self) -> None:
        now = time.monotonic()
        for worker in self._processes:
            if worker.assigned and now - worker.since > TASK_SECONDS_LIMIT:
                worker.process.terminate()  # its sentinel fires next: buried like a crashed worker

    def _bury(self, worker: _Worker, window: deque[_Entry], on_crash: Callable[[Item], Result]) -> None:
        """A worker died: the part it was running crashed it; the parts queued behind it go to others."""
        if worker not in self._processes:
            return
        self._processes.remove(worker)
        worker.connection.close()
        worker.process.join(STOP_SECONDS)
        if worker.assigned:
            self._split_or_report(worker.assigned.popleft(), window, on_crash)
        for part in worker.assigned:
            part.worker = None
        self._ensure_processes()

    def _split_or_report(self, crashed: _Part, window: deque[_Entry], on_crash: Callable[[Item], Result]) -> None:
        if len(crashed.items) == 1:
            crashed.results = [on_crash(crashed.items[0])]
            return
        for entry in window:
            if crashed in entry.parts:
                index = entry.parts.index(crashed)
                entry.parts[index : index + 1] = [self._part([item]) for item in crashed.items]
                return

    def _abandon(self, window: deque[_Entry]) -> None:
        """The consumer stopped early: workers still busy with its parts are replaced rather than waited for."""
        busy = [worker for worker in self._processes if worker.assigned]
        for worker in busy:
            worker.process.terminate()
            worker.process.join(STOP_SECONDS)
            worker.connection.close()
            self._processes.remove(worker)
