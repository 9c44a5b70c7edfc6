"""Background jobs (scan, embed, predict, download, video preparation): one job system (SPEC §13).

Every job runs on a thread of its own and reports progress; it can be paused, resumed and cancelled. Its work
says where it may stop: at each *checkpoint* (`Job.checkpoint()`, also called `should_stop()`, between two files
or two batches) a paused job blocks until it is resumed or cancelled, and a cancelled one is told to stop, keeping
what it committed so far. Each job keeps its recent log lines, read in the Jobs panel and by `jobs` in the CLI.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

log = logging.getLogger(__name__)

# Finished jobs stay listed this long so the status line can say how they ended, in seconds.
KEEP_FINISHED_SECONDS = 120.0
# Log lines a job keeps for the Jobs panel: enough to see what went wrong lately, bounded so a scan over a
# million unreadable files cannot fill the memory.
LOG_LINES_KEPT = 200
# How often a job waiting for the GPU looks whether it was cancelled meanwhile, in seconds.
GPU_WAIT_POLL_SECONDS = 0.2

ACTIVE_STATES = frozenset({"running", "paused"})  # the job's thread is still at work (or waits to go on)


class JobCancelled(Exception):
    """Raised by `Job.check()` (and while waiting for the GPU) once the job was cancelled: the job ends
    "cancelled", not "failed"."""


@dataclass
class Job:
    name: str
    done: int = 0
    total: int = 0
    message: str = ""
    state: str = "running"  # running | paused | done | failed | cancelled
    error: str | None = None
    result: Any = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    cancel_requested: bool = False
    label: str = ""  # what the status line calls it, when the name is a key (e.g. "prepare video 1a2b3c4d")
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_LINES_KEPT))
    # Called by the worker at every checkpoint, before it looks at pause and cancel (tests pause or cancel a job
    # at an exact point with it).
    on_checkpoint: Callable[[Job], None] | None = None
    _go: threading.Event = field(default_factory=threading.Event, repr=False)  # set: may run; clear: paused
    _halted: threading.Event = field(default_factory=threading.Event, repr=False)  # set: blocked while paused
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._go.set()

    @property
    def active(self) -> bool:
        """Still at work (running or paused): a job of the same name is not started beside it."""
        return self.state in ACTIVE_STATES

    @property
    def kind(self) -> str:
        """What sort of job this is ("scan", "embed", "download", "video preparation"…)."""
        return self.label or self.name.split(" ", 1)[0]

    @property
    def halted(self) -> bool:
        """True while the worker is blocked at a checkpoint, paused (a pause asked for but not reached: False)."""
        return self._halted.is_set()

    # ------------------------------------------------------------ what the worker calls

    def progress(self, done: int, total: int, message: str = "") -> None:
        self.done, self.total = done, total
        if message and message != self.message:
            self.note(message)

    def note(self, message: str) -> None:
        """Set the job's message and keep it as a log line."""
        self.message = message
        self.log_line(message)

    def log_line(self, text: str) -> None:
        self.lines.append(f"{time.strftime('%H:%M:%S')} {text}")

    def checkpoint(self) -> bool:
        """A place where the work may stop: blocks while the job is paused; True when it should stop (cancelled)."""
        if self.on_checkpoint is not None:
            self.on_checkpoint(self)
        if not self._go.is_set():
            self._halted.set()
            self._go.wait()
            self._halted.clear()
        return self.cancel_requested

    should_stop = checkpoint  # the name the workers' `should_stop` arguments know it by

    def check(self) -> None:
        """checkpoint() for work that can only stop by raising (inside a library's progress callback)."""
        if self.checkpoint():
            raise JobCancelled(f"{self.label or self.name} cancelled")

    def wait_until_halted(self, timeout: float = 60.0) -> bool:
        """Wait until a paused job's worker blocks at its checkpoint (nothing more is written until it resumes)."""
        return self._halted.wait(timeout)

    # ------------------------------------------------------------ what the user asks

    def pause(self) -> bool:
        """Pause at the next checkpoint; False when the job is not running."""
        with self._lock:
            if self.state != "running" or self.cancel_requested:
                return False
            self.state = "paused"
            self._go.clear()
        self.log_line("paused")
        return True

    def resume(self) -> bool:
        """Go on from the checkpoint where it waits; False when the job is not paused."""
        with self._lock:
            if self.state != "paused":
                return False
            self.state = "running"
            self._go.set()
        self.log_line("resumed")
        return True

    def cancel(self) -> bool:
        """Stop at the next checkpoint (a paused job wakes up to stop); False when the job is not at work."""
        with self._lock:
            if not self.active:
                return False
            self.cancel_requested = True
            self.state = "running"
            self._go.set()
        self.log_line("cancel asked; stopping at the next checkpoint")
        return True

    def end(self, state: str, error: str | None = None) -> None:
        with self._lock:
            self.state, self.error, self.finished = state, error, time.time()
            self._go.set()
        self.log_line(f"failed: {error}" if error else state)

    # ------------------------------------------------------------ how it is shown

    def describe(self) -> str:
        called = self.label or self.name
        share = f" {self.done}/{self.total}" if self.total else ""
        said = f" – {self.message}" if self.message else ""
        if self.state == "running":
            return f"{called}{share}{' cancelling' if self.cancel_requested else ''}{said}"
        if self.state == "paused":
            return f"{called} paused{share}{said}"
        if self.state == "failed":
            return f"{called} failed: {self.error}"
        return f"{called} {self.state}{said}"

    def as_dict(self) -> dict[str, Any]:
        """The job for `jobs --json` (SPEC §1): times are Unix seconds, `finished` null while it works."""
        return {"id": self.name, "name": self.name, "kind": self.kind, "label": self.label or self.name,
                "state": self.state, "done": self.done, "total": self.total, "message": self.message,
                "error": self.error, "started": self.started, "finished": self.finished,
                "cancel_requested": self.cancel_requested, "lines": len(self.lines)}


class _JobLogs(logging.Handler):
    """Copies the log records a job's thread emits (a skipped file, a warning) into that job's lines."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.by_thread: dict[int, Job] = {}

    def emit(self, record: logging.LogRecord) -> None:
        job = self.by_thread.get(record.thread or 0)
        if job is not None:
            try:
                job.log_line(f"{record.levelname.lower()}: {record.getMessage()}")
            except Exception:  # pragma: no cover - a bad format string must not break the job
                self.handleError(record)


_JOB_LOGS = _JobLogs()
logging.getLogger("anagnorisis").addHandler(_JOB_LOGS)


class Jobs:
    """Runs named jobs on threads; one job per name at a time; GPU jobs share a lock to run one at a time."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self.gpu_lock = threading.Lock()
        self.on_checkpoint: Callable[[Job], None] | None = None  # given to every job started from now on

    def start(self, name: str, work: Callable[[Job], Any], *, on_done: Callable[[Job], None] | None = None,
              label: str = "") -> Job:
        """Start work(job) on a thread unless a job of this name is at work (then return that one)."""
        with self._lock:
            running = self._jobs.get(name)
            if running is not None and running.active:
                return running
            job = self._jobs[name] = Job(name, label=label, on_checkpoint=self.on_checkpoint)
        job.log_line("started")
        threading.Thread(target=self._run, args=(job, work, on_done), name=f"job-{name}", daemon=True).start()
        return job

    def _run(self, job: Job, work: Callable[[Job], Any], on_done: Callable[[Job], None] | None) -> None:
        _JOB_LOGS.by_thread[threading.get_ident()] = job
        try:
            job.result = work(job)
            job.end("cancelled" if job.cancel_requested else "done")
        except Exception as error:  # a failed job is reported on the status line, never crashes the app
            if job.cancel_requested:  # stopped by the cancel (JobCancelled, or a library wrapping it)
                job.end("cancelled")
            else:
                job.end("failed", str(error) or type(error).__name__)
                log.error("job %s failed: %s\n%s", job.name, job.error, traceback.format_exc())
        finally:
            _JOB_LOGS.by_thread.pop(threading.get_ident(), None)
            if not job.finished:  # pragma: no cover - a BaseException (interpreter exit) ended the thread
                job.end("failed", "stopped")
        if on_done is not None:
            try:
                on_done(job)
            except Exception:  # pragma: no cover - a follow-up failing must not hide the job's own result
                log.exception("after job %s", job.name)

    @contextlib.contextmanager
    def gpu_turn(self, job: Job) -> Iterator[None]:
        """Hold the GPU lock for the job's GPU work; while another job has it, wait (saying so) and give up with
        JobCancelled if this job is cancelled meanwhile. A paused job keeps its turn; cancelling it frees the GPU."""
        if not self.gpu_lock.acquire(blocking=False):
            said = job.message
            job.note("waiting for the GPU (another job uses it)")
            while not self.gpu_lock.acquire(timeout=GPU_WAIT_POLL_SECONDS):
                if job.cancel_requested:
                    raise JobCancelled(f"{job.label or job.name} cancelled while waiting for the GPU")
            job.message = said
        try:
            yield
        finally:
            self.gpu_lock.release()

    def _act(self, name: str, action: Callable[[Job], bool]) -> bool:
        job = self._jobs.get(name)
        return job is not None and action(job)

    def pause(self, name: str) -> bool:
        return self._act(name, Job.pause)

    def resume(self, name: str) -> bool:
        return self._act(name, Job.resume)

    def cancel(self, name: str) -> bool:
        return self._act(name, Job.cancel)

    def forget(self, name: str) -> bool:
        """Drop a finished job from the status line (its word no longer holds); one at work stays."""
        with self._lock:
            job = self._jobs.get(name)
            if job is None or job.active:
                return False
            del self._jobs[name]
            return True

    def get(self, name: str) -> Job | None:
        return self._jobs.get(name)

    def all(self) -> list[Job]:
        """Every job this app knows (the last of each name), oldest first."""
        return sorted(list(self._jobs.values()), key=lambda job: job.started)

    def visible(self) -> list[Job]:
        now = time.time()
        return [job for job in list(self._jobs.values())
                if job.active or (job.finished and now - job.finished < KEEP_FINISHED_SECONDS)]

    def status_line(self) -> str:
        jobs = self.visible()
        return " · ".join(job.describe() for job in jobs) if jobs else "idle"

    def wait(self, name: str, timeout: float = 60.0) -> Job | None:
        """The job once it has finished (or as it is after `timeout` seconds); a paused job does not finish."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            job = self._jobs.get(name)
            if job is not None and not job.active:
                return job
            time.sleep(0.05)
        return self._jobs.get(name)


def job_tqdm(job: Job) -> type:
    """A tqdm class for a library that reports progress through one (a model download): the bars feed the job's
    progress, and every update is a checkpoint (blocks while paused, raises JobCancelled once cancelled)."""
    from tqdm.auto import tqdm

    class JobBar(tqdm):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)  # huggingface_hub names its bars; tqdm itself refuses the keyword
            kwargs["disable"] = True  # nothing is drawn: the job is the display
            super().__init__(*args, **kwargs)
            self.counted = float(kwargs.get("initial") or 0)
            self.scale = 1e6 if kwargs.get("unit") == "B" else 1.0  # bytes are shown in MB

        def update(self, n: float | None = 1) -> bool | None:
            job.check()
            self.counted += float(n or 0)
            total = float(self.total or 0)
            if total >= self.counted:
                job.progress(int(self.counted / self.scale), int(total / self.scale))
            return None

    return JobBar
