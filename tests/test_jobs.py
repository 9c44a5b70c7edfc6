"""One job system: every background job reports progress and can be paused, resumed and cancelled at its
checkpoints; a cancelled scan or embed keeps what it finished, and a later run completes it to the same result.

Pauses and cancels are placed with a checkpoint hook (`Jobs.on_checkpoint`, run by the worker at each checkpoint),
so each test knows exactly which batch or file the job stopped after; no sleep races the worker.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest

from anagnorisis.cli import open_library
from anagnorisis.config import load_settings
from anagnorisis.jobs import Job, JobCancelled, Jobs, job_tqdm
from anagnorisis.library.scan import scan
from anagnorisis.session import Session
from anagnorisis.store.vectors import embedded_hashes, load_vectors
from anagnorisis.ui.context import AppContext
from tests.media import write_jpeg

PHOTOS = 5


# ---------------------------------------------------------------- the Job itself


def _stepper(steps: int, seen: list[int]) -> Callable[[Job], str]:
    """Work of `steps` steps with a checkpoint after each; `seen` gets each finished step."""

    def work(job: Job) -> str:
        for step in range(1, steps + 1):
            seen.append(step)
            job.progress(step, steps)
            if job.checkpoint():
                return "stopped"
        return "finished"

    return work


def _at_step(step: int, action: Callable[[Job], bool]) -> Callable[[Job], None]:
    """A checkpoint hook that does `action` to the job once, at the checkpoint after `step` steps."""
    fired = threading.Event()

    def hook(job: Job) -> None:
        if job.done == step and not fired.is_set():
            fired.set()
            action(job)

    return hook


def test_a_paused_job_waits_at_its_checkpoint_until_resumed() -> None:
    jobs, seen = Jobs(), []
    jobs.on_checkpoint = _at_step(2, Job.pause)
    job = jobs.start("steps", _stepper(5, seen))
    assert job.wait_until_halted(10)
    assert (job.state, seen, job.done) == ("paused", [1, 2], 2)
    assert "paused" in jobs.status_line()
    assert jobs.resume("steps")
    finished = jobs.wait("steps", 10)
    assert finished is not None and (finished.state, finished.result, seen) == ("done", "finished", [1, 2, 3, 4, 5])
    assert [line.split(" ", 1)[1] for line in finished.lines] == ["started", "paused", "resumed", "done"]


def test_a_cancelled_job_stops_at_its_next_checkpoint() -> None:
    jobs, seen = Jobs(), []
    jobs.on_checkpoint = _at_step(3, Job.cancel)
    job = jobs.start("steps", _stepper(5, seen))
    assert jobs.wait("steps", 10) is job
    assert (job.state, job.result, seen) == ("cancelled", "stopped", [1, 2, 3])
    assert "cancelled" in job.describe() and job.finished is not None


def test_cancelling_a_paused_job_wakes_it_to_stop() -> None:
    jobs, seen = Jobs(), []
    jobs.on_checkpoint = _at_step(1, Job.pause)
    job = jobs.start("steps", _stepper(5, seen))
    assert job.wait_until_halted(10)
    assert jobs.cancel("steps")
    assert jobs.wait("steps", 10) is job and job.state == "cancelled" and seen == [1]


def test_only_a_job_at_work_can_be_paused_resumed_or_cancelled() -> None:
    jobs = Jobs()
    job = jobs.start("quick", lambda job: 42)
    assert jobs.wait("quick", 10) is job and job.state == "done"
    assert not jobs.pause("quick") and not jobs.resume("quick") and not jobs.cancel("quick")
    assert not jobs.pause("unknown")
    assert job.as_dict()["state"] == "done"


def test_a_paused_job_of_a_name_is_not_started_twice() -> None:
    jobs, seen = Jobs(), []
    jobs.on_checkpoint = _at_step(1, Job.pause)
    job = jobs.start("steps", _stepper(3, seen))
    assert job.wait_until_halted(10)
    assert jobs.start("steps", _stepper(3, [])) is job
    jobs.resume("steps")
    assert jobs.wait("steps", 10) is job and job.state == "done"


def test_a_job_keeps_its_recent_log_lines_and_its_threads_warnings() -> None:
    import logging

    jobs = Jobs()

    def work(job: Job) -> None:
        for index in range(500):
            job.log_line(f"line {index}")
        logging.getLogger("anagnorisis.library.scan").warning("skipping %s: %s", "/a/b.jpg", "empty file")

    job = jobs.start("chatty", work)
    jobs.wait("chatty", 10)
    lines = list(job.lines)
    assert len(lines) == job.lines.maxlen, "bounded"
    assert lines[-2].endswith("warning: skipping /a/b.jpg: empty file") and lines[-1].endswith("done")
    other = jobs.start("quiet", lambda job: None)
    jobs.wait("quiet", 10)
    assert not any("skipping" in line for line in other.lines), "another job's thread logs elsewhere"


def test_a_failed_job_says_why_and_a_cancel_that_ends_in_an_exception_is_a_cancel() -> None:
    jobs = Jobs()
    failing = jobs.start("failing", lambda job: 1 / 0)
    assert jobs.wait("failing", 10) is failing and failing.state == "failed" and "division" in (failing.error or "")

    def wrapped(job: Job) -> None:  # a library that wraps the callback's exception in its own
        job.cancel()
        try:
            job.check()
        except JobCancelled as error:
            raise RuntimeError("conversion failed") from error

    job = jobs.start("wrapped", wrapped)
    assert jobs.wait("wrapped", 10) is job and (job.state, job.error) == ("cancelled", None)


def test_a_job_waiting_for_the_gpu_can_be_cancelled_while_another_holds_it() -> None:
    jobs = Jobs()
    ran = []

    def work(job: Job) -> None:
        with jobs.gpu_turn(job):
            ran.append(job.name)

    with jobs.gpu_lock:
        job = jobs.start("embed", work)
        deadline = time.monotonic() + 10
        while "waiting for the GPU" not in job.message and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "waiting for the GPU" in jobs.status_line()
        jobs.cancel("embed")
        assert jobs.wait("embed", 10) is job and job.state == "cancelled"
    assert ran == [] and not jobs.gpu_lock.locked()


def test_a_download_bar_is_a_checkpoint_for_pause_and_cancel() -> None:
    jobs, received = Jobs(), []

    def download(job: Job) -> str:
        bar = job_tqdm(job)(total=10_000_000, unit="B", name="huggingface_hub.snapshot_download")
        for _chunk in range(10):
            bar.update(1_000_000)
            received.append(1)
        return "folder"

    jobs.on_checkpoint = _at_step(3, Job.pause)  # checked before the chunk is counted: 3 MB in, paused
    job = jobs.start("download images", download)
    assert job.wait_until_halted(10) and (job.done, job.total, len(received)) == (3, 10, 3)
    assert job.kind == "download" and job.as_dict()["state"] == "paused"
    jobs.on_checkpoint = None
    job.on_checkpoint = _at_step(6, Job.cancel)
    jobs.resume("download images")
    assert jobs.wait("download images", 10) is job
    assert (job.state, len(received)) == ("cancelled", 6)


# ---------------------------------------------------------------- embed and scan as jobs of the app


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppContext]:
    import anagnorisis.embed.pipeline as pipeline
    import anagnorisis.library.scan as scanning

    monkeypatch.setattr(pipeline, "BATCH_FILES", 2)
    monkeypatch.setattr(scanning, "COMMIT_EVERY_FILES", 2)
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(PHOTOS):
        write_jpeg(photos / f"photo {index}.jpg", color=(40 * index, 200 - 30 * index, 90))
    settings = load_settings({"data_dir": str(tmp_path / "data"), "images_roots": [str(photos)]})
    store = open_library(settings)
    context = AppContext(settings, Session(settings, store))
    try:
        yield context
    finally:
        for job in context.jobs.all():
            job.cancel()
        for job in context.jobs.all():
            context.jobs.wait(job.name, 30)
        store.close()


def _vectors(ctx: AppContext) -> dict[str, np.ndarray]:
    model = next(iter(ctx.session.store.read(lambda c: c.execute(
        "SELECT DISTINCT model_id FROM embeddings").fetchall())))[0]
    hashes, vectors = load_vectors(ctx.session.store, model)
    return dict(zip(hashes, vectors))


def _uninterrupted_vectors(tmp_path: Path) -> dict[str, np.ndarray]:
    """The vectors of the same photos embedded in one go, in a library of its own."""
    settings = load_settings({"data_dir": str(tmp_path / "other"), "images_roots": [str(tmp_path / "photos")]})
    store = open_library(settings)
    try:
        scan(store, ["images"])
        other = AppContext(settings, Session(settings, store))
        job = other.start_embed(["images"])
        assert other.jobs.wait("embed", 120) is job and job.state == "done"
        return _vectors(other)
    finally:
        store.close()


def _embedded(ctx: AppContext) -> int:
    return ctx.session.store.read(lambda c: c.execute("SELECT count(*) FROM embeddings").fetchone()[0])


def test_a_cancelled_embed_keeps_every_finished_batch_and_a_later_one_completes_it(ctx: AppContext,
                                                                                    tmp_path: Path) -> None:
    scan(ctx.session.store, ["images"])
    ctx.jobs.on_checkpoint = _at_step(4, Job.cancel)  # after the second batch of two
    job = ctx.start_embed(["images"])
    assert ctx.jobs.wait("embed", 120) is job and job.state == "cancelled", job.describe()
    assert _embedded(ctx) == 4, "both finished batches are in the store"
    assert job.result["images"]["stopped"] is True
    ctx.jobs.on_checkpoint = None
    again = ctx.start_embed(["images"])
    assert ctx.jobs.wait("embed", 120) is again and again.state == "done"
    assert (again.result["images"]["embedded"], again.result["images"]["cached"]) == (PHOTOS - 4, 4)
    finished, uninterrupted = _vectors(ctx), _uninterrupted_vectors(tmp_path)
    assert set(finished) == set(uninterrupted) and len(finished) == PHOTOS
    assert all(np.allclose(finished[key], uninterrupted[key]) for key in finished)


def test_a_paused_embed_writes_nothing_until_resumed_then_completes(ctx: AppContext, tmp_path: Path) -> None:
    scan(ctx.session.store, ["images"])
    ctx.jobs.on_checkpoint = _at_step(2, Job.pause)
    job = ctx.start_embed(["images"])
    assert job.wait_until_halted(120)
    assert (job.state, _embedded(ctx)) == ("paused", 2)
    assert "paused" in ctx.jobs.status_line()
    assert ctx.jobs.gpu_lock.locked(), "a paused embed keeps its turn on the GPU"
    assert ctx.jobs.resume("embed")
    assert ctx.jobs.wait("embed", 120) is job and job.state == "done"
    assert job.result["images"]["embedded"] == PHOTOS
    finished, uninterrupted = _vectors(ctx), _uninterrupted_vectors(tmp_path)
    assert set(finished) == set(uninterrupted)
    assert all(np.allclose(finished[key], uninterrupted[key]) for key in finished)


def _files(ctx_or_store: Any) -> set[tuple[Any, ...]]:
    store = ctx_or_store.session.store if isinstance(ctx_or_store, AppContext) else ctx_or_store
    return set(store.read(lambda c: c.execute(
        "SELECT relative_path, content_hash, size, missing, metadata FROM files").fetchall()))


def _uninterrupted_files(tmp_path: Path) -> set[tuple[Any, ...]]:
    settings = load_settings({"data_dir": str(tmp_path / "other"), "images_roots": [str(tmp_path / "photos")]})
    store = open_library(settings)
    try:
        assert scan(store, ["images"]).new == PHOTOS
        return _files(store)
    finally:
        store.close()


def _probe_checkpoint_after(files: int, action: Callable[[Job], bool]) -> Callable[[Job], None]:
    """A hook for the scan: act once at the first checkpoint after `files` files were recorded."""
    return _at_step(files, action)


def test_a_cancelled_scan_keeps_what_it_recorded_and_a_later_scan_finishes_it(ctx: AppContext,
                                                                                tmp_path: Path) -> None:
    ctx.jobs.on_checkpoint = _probe_checkpoint_after(2, Job.cancel)
    job = ctx.start_scan(["images"])
    assert ctx.jobs.wait("scan", 60) is job and job.state == "cancelled", job.describe()
    assert job.result["stopped"] is True
    recorded = _files(ctx)
    assert 2 <= len(recorded) < PHOTOS and len(recorded) == job.done, "what was probed is recorded, nothing more"
    assert not any(missing for _path, _hash, _size, missing, _meta in recorded), "no sweep after a cancel"
    assert ctx.jobs.get("embed") is None, "a cancelled scan starts no embed"
    ctx.jobs.on_checkpoint = None
    report = scan(ctx.session.store, ["images"])
    assert (report.new, report.unchanged, report.missing, report.stopped) == (PHOTOS - len(recorded),
                                                                              len(recorded), 0, False)
    assert _files(ctx) == _uninterrupted_files(tmp_path)


def test_a_paused_scan_records_nothing_more_until_resumed_then_completes(ctx: AppContext, tmp_path: Path) -> None:
    ctx.jobs.on_checkpoint = _probe_checkpoint_after(2, Job.pause)
    job = ctx.start_scan(["images"])
    assert job.wait_until_halted(60)
    assert job.state == "paused" and len(_files(ctx)) == 2
    assert ctx.jobs.resume("scan")
    assert ctx.jobs.wait("scan", 60) is job and job.state == "done"
    assert (job.result["new"], job.result["stopped"]) == (PHOTOS, False)
    assert _files(ctx) == _uninterrupted_files(tmp_path)
    ctx.jobs.on_checkpoint = None
    assert ctx.jobs.wait("embed", 120) is not None  # the scan's follow-up embed, before the store closes
