"""Named endpoints and the CLI beside the running app (forwarded, same output as a direct run)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.csv as pa_csv
import pytest

from tests.conftest import REPO, Cli
from tests.ui.conftest import RunningApp


def test_the_rate_endpoint_commits_and_returns_the_record(running_app: RunningApp) -> None:
    client = running_app.client()
    photo = str(running_app.photos[0])
    document = client.predict(path=photo, rating=8.5, api_name="/rate")
    assert document["record"]["path"] == photo and document["record"]["user_rating"] == 8.5
    cleared = client.predict(path=photo, api_name="/unrate")
    assert cleared["record"]["user_rating"] is None


def test_the_search_endpoint_returns_the_cli_document(running_app: RunningApp) -> None:
    client = running_app.client()
    client.predict(path=str(running_app.photos[3]), rating=9, api_name="/rate")
    document = client.predict(kind="images", sort="rating", limit=5, api_name="/search")
    assert document["total"] == len(running_app.photos) and len(document["results"]) == 5
    assert document["results"][0]["path"] == str(running_app.photos[3])
    named = client.predict(kind="images", query="red car", mode="name", api_name="/search")
    assert "red car" in named["results"][0]["path"]


def test_a_bad_rating_through_the_endpoint_is_an_error_not_a_crash(running_app: RunningApp) -> None:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="outside|0 to 10"):
        running_app.client().predict(path=str(running_app.photos[0]), rating=11, api_name="/rate")


def test_the_app_announces_itself_and_cleans_up(running_app: RunningApp) -> None:
    info = json.loads((running_app.data_dir / "app.json").read_text())
    assert set(info) == {"pid", "port", "token"}
    assert (running_app.data_dir / "app.json").stat().st_mode & 0o777 == 0o600


def test_cli_commands_are_forwarded_to_the_running_app(running_app: RunningApp) -> None:
    cli = Cli(running_app.data_dir)
    photo = running_app.photos[1]
    rated = cli.subprocess("--json", "rate", str(photo), "6.5")
    assert rated.code == 0, rated.stderr
    assert json.loads(rated.stdout)["record"]["user_rating"] == 6.5
    forwarded = cli.subprocess("search", "images", "--sort", "rating", "--json", "--limit", "3")
    assert forwarded.code == 0, forwarded.stderr
    document = json.loads(forwarded.stdout)
    assert document["results"][0]["path"] == str(photo)
    export = running_app.data_dir.parent / "while-running.csv"
    assert cli.subprocess("export", str(export)).code == 0
    rows = {row["path"]: row["user_rating"] for row in pa_csv.read_csv(export).to_pylist()}
    assert rows[str(photo)] == 6.5
    usage = cli.subprocess("--json", "rate", str(photo), "12")
    assert usage.code == 2 and json.loads(usage.stdout)["error"]["code"] == "usage"

    running_app.app.close()
    direct = cli.subprocess("search", "images", "--sort", "rating", "--json", "--limit", "3")
    assert direct.code == 0, direct.stderr
    assert json.loads(direct.stdout) == document, "forwarded and direct runs print the same document"


def test_a_forwarded_rate_stdin_acknowledges_each_commit(running_app: RunningApp) -> None:
    lines = "".join(f"{photo}\t{index}\n" for index, photo in enumerate(running_app.photos[:4]))
    result = Cli(running_app.data_dir).subprocess("rate", "--stdin", stdin=lines)
    assert result.code == 0, result.stderr
    assert result.stdout.split() == ["ok"] * 4
    without_a_tab = Cli(running_app.data_dir).subprocess("rate", "--stdin", stdin=f"{running_app.photos[0]} 5\n")
    assert without_a_tab.code == 1
    assert without_a_tab.stdout.startswith("error: expected PATH<TAB>RATING, got "), without_a_tab.stdout


def run_into_a_closed_pipe(data_dir: Path, *args: str) -> tuple[int, str]:
    """Run the CLI with its stdout's reader gone before it writes (as `… | head` leaves it): (status, stderr)."""
    process = subprocess.Popen([sys.executable, "-m", "anagnorisis", "--data-dir", str(data_dir), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    code = process.wait(timeout=120)
    return code, process.stderr.read()


def test_output_piped_into_a_reader_that_leaves_ends_quietly(running_app: RunningApp, tmp_path: Path) -> None:
    """`search … | head`: no traceback, no blame on the running app, the status a shell gives SIGPIPE."""
    from anagnorisis.cli import OUTPUT_CLOSED_STATUS

    code, stderr = run_into_a_closed_pipe(running_app.data_dir, "search", "images", "--limit", "12")
    assert (code, stderr) == (OUTPUT_CLOSED_STATUS, ""), stderr  # forwarded: it used to say the app did not answer
    code, stderr = run_into_a_closed_pipe(tmp_path / "alone", "search", "images")
    assert (code, stderr) == (OUTPUT_CLOSED_STATUS, ""), stderr  # run here: it used to end in a BrokenPipeError


def test_a_foreign_lock_ends_with_the_holders_pid(tmp_path: Path) -> None:
    data = tmp_path / "data"
    Cli(data).json("library", "list")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb,sys,time; c=duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "time.sleep(60)", str(data / "anagnorisis.duckdb")],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "anagnorisis", "--data-dir", str(data), "--json", "library", "list"],
            capture_output=True, text=True, cwd=REPO, env={**__import__("os").environ,
                                                            "ANAGNORISIS_LOCK_WAIT_SECONDS": "2"},
        )
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"]["message"].startswith(f"database in use by PID {holder.pid}")
    assert waited >= 2


def test_the_next_prefer_and_why_endpoints_return_the_cli_documents(running_app: RunningApp) -> None:
    client = running_app.client()
    photos = [str(p) for p in running_app.photos]
    queue = client.predict(kind="images", n=3, api_name="/next")
    assert len(queue["results"]) == 3 and all(item["reason"] for item in queue["results"])
    assert queue["cold_start"] is True
    client.predict(path=photos[0], rating=9, api_name="/rate")
    client.predict(path=photos[1], rating=2, api_name="/rate")
    after = client.predict(kind="images", n=len(photos), api_name="/next")
    assert {item["path"] for item in after["results"]}.isdisjoint(photos[:2]) and after["n_ratings"] == 2
    choice = client.predict(a=photos[2], b=photos[3], api_name="/prefer")["preference"]
    assert choice["winner_path"] == photos[2] and choice["loser_path"] == photos[3] and choice["tie"] is False
    assert client.predict(a=photos[3], b=photos[4], tie=True, api_name="/prefer")["preference"]["tie"] is True
    explained = client.predict(path=photos[2], api_name="/why")
    assert explained["record"]["path"] == photos[2]
    assert {n["path"] for n in explained["neighbours"]} == set(photos[:2])
    similarities = [n["similarity"] for n in explained["neighbours"]]
    assert similarities == sorted(similarities, reverse=True)


def _bare_call(url: str, api: str, data: list[object], token: str) -> object:
    """One call through Gradio's two-step HTTP API with no session hash, as a curl script makes it."""
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(f"{url}gradio_api/call/{api}", data=json.dumps({"data": data}).encode(),
                                     headers={"Content-Type": "application/json", "X-Anagnorisis-Token": token},
                                     method="POST")
    with opener.open(request, timeout=30) as response:
        event_id = json.loads(response.read())["event_id"]
    answer = urllib.request.Request(f"{url}gradio_api/call/{api}/{event_id}", headers={"X-Anagnorisis-Token": token})
    with opener.open(answer, timeout=30) as response:
        body = response.read().decode()
    assert "event: complete" in body, body[:300]
    return json.loads(body.split("data:", 1)[1].strip().splitlines()[0])[0]


def test_bare_api_calls_do_not_pile_up_sessions_and_a_returning_client_keeps_its_own(running_app: RunningApp) -> None:
    """Each bare HTTP call is a new Gradio session (a copy of the app's whole configuration): a script rating a
    library through /rate must not grow the app without bound, while a client that comes back keeps its session."""
    from anagnorisis.ui.app import ONE_SHOT_SESSIONS

    holder = running_app.app.state_holder
    client = running_app.client()
    client.predict(path=str(running_app.photos[0]), rating=7, api_name="/rate")
    assert client.session_hash in holder.session_data
    for index in range(ONE_SHOT_SESSIONS + 40):
        photo = str(running_app.photos[index % len(running_app.photos)])
        document = _bare_call(running_app.url, "rate", [photo, float(index % 11)], running_app.token)
        assert document["record"]["user_rating"] == float(index % 11)  # type: ignore[index]
    assert len(holder.session_data) <= ONE_SHOT_SESSIONS + 2, "one-shot sessions beyond the latest ones are dropped"
    assert client.session_hash in holder.session_data, "the returning client's session is kept"
    assert client.predict(path=str(running_app.photos[1]), rating=3, api_name="/rate")["record"]["user_rating"] == 3


def test_a_relative_data_dir_is_the_callers_when_a_command_is_forwarded(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The app runs in its own folder: a relative --data-dir (here one named `rate`, like the command) must be
    resolved where the command was typed, and forwarded `rate --stdin` must still find its command."""
    from anagnorisis.cli import _absolute_globals
    from tests.ui.conftest import make_photos, start_app

    assert _absolute_globals(["--data-dir", "rate", "rate", "--config=c.yaml", "--stdin"], "/home/u") == [
        "--data-dir", "/home/u/rate", "rate", "--config=/home/u/c.yaml", "--stdin"]
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio-tmp"))
    photos = make_photos(tmp_path / "library", 2)
    app, _url = start_app(tmp_path / "rate", tmp_path / "library")
    try:
        done = subprocess.run([sys.executable, "-m", "anagnorisis", "rate", "--stdin", "--data-dir", "rate"],
                              input=f"{photos[0]}\t4\n", capture_output=True, text=True, cwd=tmp_path, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        assert (done.returncode, done.stdout) == (0, "ok\n"), done.stderr
        assert app.context.session.record_by_path("images", str(photos[0]))["user_rating"] == 4
        assert not (REPO / "rate").exists()  # nothing written relative to the app's own folder
    finally:
        app.close()
