"""Background jobs (SPEC §13): listed with progress, paused, resumed and cancelled at their checkpoints. They live
in the running app (`Session.jobs`); a process without an app has none."""
from __future__ import annotations

from typing import Any

from anagnorisis.service.errors import Failed

ACTIONS = ("pause", "resume", "cancel")
AFTER = {"pause": "pauses at its next checkpoint", "resume": "goes on",
         "cancel": "stops at its next checkpoint, keeping what it finished"}


def jobs_of(session: Any) -> Any:
    """The app's Jobs, or None (a CLI process alone runs no background jobs)."""
    return getattr(session, "jobs", None) if session is not None else None


def list_jobs(session: Any) -> list[Any]:
    jobs = jobs_of(session)
    return [] if jobs is None else jobs.all()


def job_named(session: Any, name: str, doing: str) -> Any:
    """The app's job of this name (names may hold spaces: "download images"), or Failed saying why not."""
    jobs = jobs_of(session)
    if jobs is None:
        raise Failed(f"no app is running, so there are no background jobs to {doing}; jobs run in the app "
                     "(python app.py)")
    job = jobs.get(name)
    if job is None:
        known = ", ".join(repr(job.name) for job in jobs.all()) or "none"
        raise Failed(f"no job named {name!r} (jobs: {known})")
    return job


def act(session: Any, name: str, action: str) -> Any:
    """Pause, resume or cancel a job; the job, or Failed when its state does not allow it."""
    if action not in ACTIONS:
        raise Failed(f"unknown job action {action!r}; expected one of {', '.join(ACTIONS)}")
    job = job_named(session, name, action)
    if not getattr(job, action)():
        wanted = "paused" if action == "resume" else "running" if action == "pause" else "running or paused"
        raise Failed(f"job {job.name!r} is {job.state}; only a {wanted} job can be {action}d")
    return job
