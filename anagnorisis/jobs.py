"""Background jobs (scan, embed, predict, download) with progress, errors and cancel, for the status line."""
from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)

# Finished jobs stay listed this long so the status line can say how they ended, in seconds.
KEEP_FINISHED_SECONDS = 120.0


@dataclass
class Job:
    name: str
    done: int = 0
    total: int = 0
    message: str = ""
    state: str = "running"  # running | done | failed | cancelled
    error: str | None = None
    result: Any = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    cancel_requested: bool = False
    label: str = ""  # what the status line calls it, when the name is a key (e.g. "prepare video 1a2b3c4d")

    def progress(self, done: int, total: int, message: str = "") -> None:
        self.done, self.total = done, total
        if message:
            self.message = message

    def should_stop(self) -> bool:
        return self.cancel_requested

    def describe(self) -> str:
        called = self.label or self.name
        if self.state == "running":
            share = f" {self.done}/{self.total}" if self.total else ""
            return f"{called}{share}{' – ' + self.message if self.message else ''}"
        if self.state == "failed":
            return f"{called} failed: {self.error}"
        return f"{called} {self.state}{' – ' + self.message if self.message else ''}"


class Jobs:
    """Runs named jobs on threads; one job per name at a time; GPU jobs can share a lock to run one at a time."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self.gpu_lock = threading.Lock()

    def start(self, name: str, work: Callable[[Job], Any], *, on_done: Callable[[Job], None] | None = None,
              label: str = "") -> Job:
        """Start work(job) on a thread unless a job of this name is running (then return that one)."""
        with self._lock:
            running = self._jobs.get(name)
            if running is not None and running.state == "running":
                return running
            job = self._jobs[name] = Job(name, label=label)
        threading.Thread(target=self._run, args=(job, work, on_done), name=f"job-{name}", daemon=True).start()
        return job

    def _run(self, job: Job, work: Callable[[Job], Any], on_done: Callable[[Job], None] | None) -> None:
        try:
            job.result = work(job)
            job.state = "cancelled" if job.cancel_requested else "done"
        except Exception as error:  # a failed job is reported on the status line, never crashes the app
            job.state, job.error = "failed", str(error) or type(error).__name__
            log.error("job %s failed: %s\n%s", job.name, job.error, traceback.format_exc())
        finally:
            job.finished = time.time()
        if on_done is not None:
            try:
                on_done(job)
            except Exception:  # pragma: no cover - a follow-up failing must not hide the job's own result
                log.exception("after job %s", job.name)

    def cancel(self, name: str) -> bool:
        job = self._jobs.get(name)
        if job is None or job.state != "running":
            return False
        job.cancel_requested = True
        return True

    def forget(self, name: str) -> bool:
        """Drop a finished job from the status line (its word no longer holds); a running one stays."""
        with self._lock:
            job = self._jobs.get(name)
            if job is None or job.state == "running":
                return False
            del self._jobs[name]
            return True

    def get(self, name: str) -> Job | None:
        return self._jobs.get(name)

    def visible(self) -> list[Job]:
        now = time.time()
        return [job for job in list(self._jobs.values())
                if job.state == "running" or (job.finished and now - job.finished < KEEP_FINISHED_SECONDS)]

    def status_line(self) -> str:
        jobs = self.visible()
        return " · ".join(job.describe() for job in jobs) if jobs else "idle"

    def wait(self, name: str, timeout: float = 60.0) -> Job | None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            job = self._jobs.get(name)
            if job is not None and job.state != "running":
                return job
            time.sleep(0.05)
        return self._jobs.get(name)
