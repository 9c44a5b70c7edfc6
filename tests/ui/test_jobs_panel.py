"""The Jobs panel's handlers: the table, the chosen job's log, Pause / Resume / Cancel, and escaping."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import pytest

from anagnorisis.cli import open_library
from anagnorisis.config import load_settings
from anagnorisis.jobs import Job
from anagnorisis.session import Session
from anagnorisis.ui import jobs_panel as panel
from anagnorisis.ui.context import AppContext

HOSTILE = "<img src=//example.com/x.png> *bold* [link](http://example.com)"


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[AppContext]:
    settings = load_settings({"data_dir": str(tmp_path / "data")})
    store = open_library(settings)
    context = AppContext(settings, Session(settings, store))
    yield context
    for job in context.jobs.all():
        job.cancel()
        context.jobs.wait(job.name, 10)
    store.close()


def _held(ctx: AppContext, name: str, label: str = "") -> Job:
    """A job that reports 1/4 with a hostile message and then waits at checkpoints until cancelled."""
    started = threading.Event()

    def work(job: Job) -> None:
        job.progress(1, 4, f"reading {HOSTILE}")
        started.set()
        while not job.checkpoint():
            threading.Event().wait(0.01)

    job = ctx.jobs.start(name, work, label=label)
    assert started.wait(10)
    return job


def test_the_table_lists_each_job_with_state_and_progress_as_plain_text(ctx: AppContext) -> None:
    _held(ctx, "scan")
    rows = panel.jobs_rows(ctx)
    assert [row[:4] for row in rows] == [["scan", "running", "1/4", f"reading {HOSTILE}"]]  # a "str" cell: literal
    table, choice, log, names = panel.refresh(ctx, None, [])
    assert table == rows and names == ["scan"]
    assert choice["value"] == "scan" and choice["choices"] == ["scan"]
    assert "started" in log and HOSTILE in log
    _table, unchanged, _log, _names = panel.refresh(ctx, "scan", names)
    assert unchanged == {"__type__": "update"}, "an open dropdown is not reset while the jobs stay the same"


def test_pause_resume_and_cancel_act_on_the_chosen_job(ctx: AppContext) -> None:
    job = _held(ctx, "embed")
    message, rows, _log = panel.act(ctx, "pause", "embed")
    assert "pauses at its next checkpoint" in message and rows[0][1] == "paused"
    assert job.wait_until_halted(10)
    assert "paused" in ctx.jobs.status_line()
    message, rows, log = panel.act(ctx, "pause", "embed")
    assert "only a running job can be paused" in message
    message, rows, log = panel.act(ctx, "resume", "embed")
    assert rows[0][1] == "running" and log.splitlines()[-1].endswith("resumed")
    message, _rows, _log = panel.act(ctx, "cancel", "embed")
    assert "stops at its next checkpoint" in message
    assert ctx.jobs.wait("embed", 10) is job and job.state == "cancelled"
    assert panel.jobs_rows(ctx)[0][1] == "cancelled"
    message, _rows, _log = panel.act(ctx, "resume", "embed")
    assert "is cancelled" in message
    assert panel.act(ctx, "cancel", None)[0] == "Choose a job first."


def test_a_job_named_by_the_library_is_escaped_in_the_panels_markdown(ctx: AppContext) -> None:
    _held(ctx, "prepare video 1234", label=HOSTILE)
    message, _rows, _log = panel.act(ctx, "pause", "prepare video 1234")
    assert "<" not in message and "*" not in message and "[" not in message
    assert "&#60;img" in message


def test_the_chosen_job_stays_chosen_and_a_vanished_one_gives_way_to_the_latest_at_work(ctx: AppContext) -> None:
    _held(ctx, "scan")
    ctx.jobs.start("download images", lambda job: None)
    ctx.jobs.wait("download images", 10)
    assert panel.chosen_or_default(ctx, "download images") == "download images"
    assert panel.chosen_or_default(ctx, "gone") == "scan", "the latest job at work"
    assert panel.job_log(ctx, "gone") == ""
