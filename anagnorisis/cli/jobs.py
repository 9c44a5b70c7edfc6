"""`jobs [list|log|pause|resume|cancel NAME]`: the running app's background jobs. Forwarded into the app, the
command reaches its jobs through the app's session; run with no app there are none (`list` says so, the others
fail) and the database is not opened."""
from __future__ import annotations

import argparse
from typing import Any

from anagnorisis.cli.context import Context, Parser
from anagnorisis.service import jobs


def _row(job: Any) -> str:
    share = f"{job.done}/{job.total}" if job.total else ""
    return f"{job.name:<22} {job.state:<9} {share:>11}  {job.error or job.message}"


def cmd_jobs(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    """SPEC §1 `jobs` · `jobs pause|resume|cancel NAME`, and `jobs log NAME` (a job's recent log lines)."""
    session = ctx.app_session
    command = args.jobs_command or "list"
    if command == "list":
        if jobs.jobs_of(session) is None:
            ctx.say(f"no app is running on {ctx.data_dir}: there are no background jobs")
            return {"jobs": []}
        listed = jobs.list_jobs(session)
        ctx.say("\n".join(_row(job) for job in listed) if listed else "no background jobs")
        return {"jobs": [job.as_dict() for job in listed]}
    name = " ".join(args.name)
    if command == "log":
        job = jobs.job_named(session, name, "read")
        lines = list(job.lines)
        ctx.say("\n".join(lines) if lines else f"{job.name}: no log lines")
        return {"job": job.as_dict(), "lines": lines}
    job = jobs.act(session, name, command)
    ctx.say(f"{job.name}: {jobs.AFTER[command]}")
    return {"job": job.as_dict(), "jobs": [one.as_dict() for one in jobs.list_jobs(session)]}


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("jobs", parents=[common], help="the running app's background jobs")
    jobs_commands = parser.add_subparsers(dest="jobs_command", required=False, parser_class=Parser)
    jobs_commands.add_parser("list", parents=[common], help="jobs with state and progress (the default)")
    for name, what in (("log", "a job's recent log lines"), ("pause", "pause a job at its next checkpoint"),
                       ("resume", "resume a paused job"), ("cancel", "stop a job, keeping what it finished")):
        sub = jobs_commands.add_parser(name, parents=[common], help=what)
        sub.add_argument("name", nargs="+", help="the job's name, as `jobs list` shows it (e.g. scan, embed)")


COMMANDS = {"jobs": cmd_jobs}
