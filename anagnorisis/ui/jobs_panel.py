"""The Jobs panel under the status line, on every tab: each background job with its state and progress, Pause,
Resume and Cancel for the chosen one, and its recent log lines (SPEC §13)."""
from __future__ import annotations

import time
from typing import Any

import gradio as gr

from anagnorisis.jobs import Job
from anagnorisis.ui.context import AppContext
from anagnorisis.ui.safe import md

# How often the open panel reads the jobs again, in seconds (the status line above it has its own 1 s timer).
PANEL_REFRESH_SECONDS = 2.0
JOB_ACTIONS = ("pause", "resume", "cancel")
HEADERS = ["job", "state", "progress", "message", "started"]


def job_row(job: Job) -> list[str]:
    """One row of the table: plain text cells (a "str" Dataframe shows them literally)."""
    progress = f"{job.done}/{job.total}" if job.total else ""  # plain text: a Dataframe cell
    return [job.label or job.name, job.state + (" (cancelling)" if job.cancel_requested and job.active else ""),
            progress, job.error or job.message, time.strftime("%H:%M:%S", time.localtime(job.started))]


def jobs_rows(ctx: AppContext) -> list[list[str]]:
    return [job_row(job) for job in ctx.jobs.all()]


def job_names(ctx: AppContext) -> list[str]:
    return [job.name for job in ctx.jobs.all()]


def chosen_or_default(ctx: AppContext, chosen: str | None) -> str | None:
    """The chosen job while it is listed, else the latest one at work, else the latest one."""
    jobs = ctx.jobs.all()
    if chosen and any(job.name == chosen for job in jobs):
        return chosen
    working = [job for job in jobs if job.active]
    return (working or jobs)[-1].name if jobs else None


def job_log(ctx: AppContext, name: str | None) -> str:
    """The chosen job's recent log lines, oldest first (plain text for a Textbox)."""
    job = ctx.jobs.get(name) if name else None
    if job is None:
        return ""
    return "\n".join(job.lines)


def refresh(ctx: AppContext, chosen: str | None, shown: list[str] | None) -> tuple[Any, Any, str, list[str]]:
    """Handler (timer, panel opened): the table, the job choice (its list sent only when the jobs changed, so an
    open dropdown is not reset every tick), the chosen job's log lines, and the names now listed."""
    names = job_names(ctx)
    picked = chosen_or_default(ctx, chosen)
    choice = gr.update(choices=names, value=picked) if names != (shown or []) or picked != chosen else gr.update()
    return jobs_rows(ctx), choice, job_log(ctx, picked), names


def act(ctx: AppContext, action: str, name: str | None) -> tuple[str, list[list[str]], str]:
    """Handler: Pause, Resume or Cancel the chosen job; what happened (Markdown), the table, the job's log."""
    if action not in JOB_ACTIONS:
        raise ValueError(f"unknown job action {action!r}")  # plain text: a programming error
    job = ctx.jobs.get(name) if name else None
    if job is None:
        return "Choose a job first.", jobs_rows(ctx), ""
    called = job.label or job.name
    if getattr(ctx.jobs, action)(job.name):
        said = {"pause": "pauses at its next checkpoint", "resume": "goes on",
                "cancel": "stops at its next checkpoint; what it finished stays"}[action]
        return f"{md(called)} {said}.", jobs_rows(ctx), job_log(ctx, job.name)  # trusted: said is ours
    wanted = {"pause": "a running job", "resume": "a paused job", "cancel": "a running or paused job"}[action]
    message = f"{md(called)} is {md(job.state)}: only {wanted} can be {action}d."  # trusted: action and wanted are ours
    return message, jobs_rows(ctx), job_log(ctx, job.name)


def render(ctx: AppContext) -> None:
    """The panel (an accordion, closed at first: it reads the jobs only while open)."""
    with gr.Accordion("Jobs", open=False, elem_id="jobs-panel") as panel:
        table = gr.Dataframe(headers=HEADERS, datatype=["str"] * len(HEADERS), value=lambda: jobs_rows(ctx),
                             interactive=False, elem_id="jobs-table")
        with gr.Row():
            choice = gr.Dropdown(choices=[], value=None, label="Job", scale=3, elem_id="jobs-choice")
            buttons = {action: gr.Button(action.capitalize(), scale=1, elem_id=f"jobs-{action}")
                       for action in JOB_ACTIONS}
        said = gr.Markdown(elem_id="jobs-message")
        lines = gr.Textbox(label="Log", lines=8, max_lines=16, interactive=False, elem_id="jobs-log")
        shown = gr.State([])
        timer = gr.Timer(PANEL_REFRESH_SECONDS, active=False)
    read = (lambda chosen, names: refresh(ctx, chosen, names))
    timer.tick(read, [choice, shown], [table, choice, lines, shown], api_visibility="private",
               show_progress="hidden")
    panel.expand(read, [choice, shown], [table, choice, lines, shown], api_visibility="private")
    panel.expand(lambda: gr.Timer(active=True), None, timer, api_visibility="private")
    panel.collapse(lambda: gr.Timer(active=False), None, timer, api_visibility="private")
    choice.input(lambda name: job_log(ctx, name), choice, lines, api_visibility="private")
    for action, button in buttons.items():
        button.click(lambda name, action=action: act(ctx, action, name), choice, [said, table, lines],
                     api_visibility="private")
