"""`python -m anagnorisis jobs`: forwarded to the running app it lists and controls the app's jobs; with no app
there are none."""
from __future__ import annotations

import io
import json
from pathlib import Path

from anagnorisis.jobs import Job
from tests.conftest import Cli, CliResult
from tests.ui.conftest import RunningApp

FIELDS = {"name", "label", "state", "done", "total", "message", "error", "started", "finished", "id", "kind"}


class Forwarded(Cli):
    """The CLI beside the running app, in this process: the command goes to the app as `forward` sends it (a CLI
    run in the app's own process would not forward)."""

    def __call__(self, *args: str, stdin: str = "") -> CliResult:
        from anagnorisis.remote import forward

        info = json.loads((self.data_dir / "app.json").read_text())
        out = io.StringIO()
        code = forward(info, ["--data-dir", str(self.data_dir), *args], out, out)
        return CliResult(code, out.getvalue())


def test_without_an_app_there_are_no_jobs_and_nothing_to_control(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "data")
    assert cli.json("jobs") == {"jobs": []}
    listed = cli("jobs", "list")
    assert listed.code == 0 and "no app is running" in listed.stdout
    for action in ("pause", "resume", "cancel"):
        result = cli("--json", "jobs", action, "scan")
        assert result.code == 1
        assert "no app is running" in result.json["error"]["message"]
    assert not (tmp_path / "data" / "anagnorisis.duckdb").exists(), "listing jobs opens no database"


def test_jobs_lists_and_controls_the_running_apps_jobs(running_app: RunningApp) -> None:
    jobs = running_app.app.context.jobs
    reached = []

    def pause_at_first_file(job: Job) -> None:
        if job.name == "scan" and not reached:
            reached.append(job.pause())

    jobs.on_checkpoint = pause_at_first_file
    scan = running_app.app.context.start_scan(["images"])
    assert scan.wait_until_halted(30)
    jobs.on_checkpoint = None
    cli = Forwarded(running_app.data_dir)
    listed = cli.json("jobs", "list")
    by_name = {job["name"]: job for job in listed["jobs"]}
    assert by_name["scan"]["state"] == "paused" and set(by_name["scan"]) >= FIELDS
    assert by_name["embed"]["state"] == "done", "the first start's embed is listed too"
    human = cli("jobs")
    assert human.code == 0 and "scan" in human.stdout and "paused" in human.stdout

    again = cli("--json", "jobs", "pause", "scan")
    assert again.code == 1 and "only a running job" in again.json["error"]["message"]
    resumed = cli.json("jobs", "resume", "scan")
    assert resumed["job"]["name"] == "scan"
    assert jobs.wait("scan", 60) is scan and scan.state == "done"
    late = cli("--json", "jobs", "cancel", "scan")
    assert late.code == 1 and "is done" in late.json["error"]["message"]
    unknown = cli("--json", "jobs", "cancel", "download", "music")
    assert unknown.code == 1 and "no job named 'download music'" in unknown.json["error"]["message"]
    log = cli.json("jobs", "log", "scan")
    assert [line.split(" ", 1)[1] for line in log["lines"]][:3] == ["started", "paused", "resumed"]
    assert json.loads(cli.subprocess("--json", "jobs").stdout)["jobs"], "from another process too"
