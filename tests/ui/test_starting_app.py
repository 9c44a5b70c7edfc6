"""The CLI beside a starting app (SPEC §1): the app announces itself before its page answers, and a command that
waits for the database lock forwards to an app that starts meanwhile instead of failing after 30 s."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from anagnorisis.remote import ROUTE, TOKEN_HEADER, app_file, forward
from tests.conftest import REPO, Cli
from tests.reliability.test_kill import ENV
from tests.ui.conftest import free_port, make_photos

STARTS = 20
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def page_answers(port: int, token: str) -> bool:
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={TOKEN_HEADER: token})
        with OPENER.open(request, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def start_serving(data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`python -m anagnorisis serve` as a user starts it, in a process of its own."""
    with open(log, "ab") as sink:
        return subprocess.Popen([sys.executable, "-m", "anagnorisis", "--data-dir", str(data), "serve", "--port",
                                 str(port), "--no-browser"], cwd=REPO, env=ENV, stdout=sink, stderr=sink)


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=60)


@pytest.mark.timeout(900)  # twenty starts of the app, each importing Gradio: minutes on a loaded machine
def test_a_rating_run_the_moment_the_page_first_answers_is_forwarded_and_stored(tmp_path: Path) -> None:
    from anagnorisis.ui.guard import load_or_create_token

    library, data, log = tmp_path / "library", tmp_path / "data", tmp_path / "app.log"
    photos = make_photos(library, count=STARTS)
    cli = Cli(data)
    cli.json("library", "add", "images", str(library))
    assert cli.json("scan", "images")["new"] == STARTS  # scanned once: each start finds nothing new
    token = load_or_create_token(data)  # the app keeps it across starts
    wanted = {str(photo): float((3 + index) % 11) for index, photo in enumerate(photos)}
    for index, (path, rating) in enumerate(wanted.items()):
        port = free_port()
        app = start_serving(data, port, log)
        try:
            while not page_answers(port, token):
                assert app.poll() is None, log.read_text()[-3000:]
                time.sleep(0.02)
            announced = json.loads(app_file(data).read_text())  # there before the first answer, not after
            assert (announced["pid"], announced["port"]) == (app.pid, port)
            rated = Cli(data).subprocess("--json", "rate", path, f"{rating:g}", timeout=90)
        finally:
            assert stop(app) == 0, log.read_text()[-3000:]
        assert rated.code == 0, (index, rated.stdout, rated.stderr)
        assert json.loads(rated.stdout)["record"]["user_rating"] == rating
        assert not app_file(data).exists(), "app.json is removed on exit"
    stored = cli.json("search", "images", "--rated", "--limit", str(STARTS))["results"]
    assert {item["path"]: item["user_rating"] for item in stored} == wanted


def holds_file(pid: int, path: Path) -> bool:
    """Whether process pid has path open (Linux /proc)."""
    try:
        return any(os.path.realpath(f"/proc/{pid}/fd/{fd}") == str(path.resolve())
                   for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads open files from /proc")
def test_a_rating_run_while_the_app_holds_the_database_but_has_not_announced_itself_is_forwarded(
        tmp_path: Path) -> None:
    """The app opens the database, then builds its tabs and starts serving: a command run in between finds no app,
    waits for the lock, and forwards as soon as the app announces itself."""
    library, data, log = tmp_path / "library", tmp_path / "data", tmp_path / "app.log"
    photo = make_photos(library, count=1)[0]
    Cli(data).json("library", "add", "images", str(library))
    Cli(data).json("scan", "images")
    app = start_serving(data, free_port(), log)
    try:
        while not holds_file(app.pid, data / "anagnorisis.duckdb"):
            assert app.poll() is None, log.read_text()[-3000:]
            time.sleep(0.01)
        announced_before = app_file(data).exists()
        rated = Cli(data).subprocess("--json", "rate", str(photo), "6", timeout=90)
    finally:
        assert stop(app) == 0, log.read_text()[-3000:]
    assert rated.code == 0, (rated.stdout, rated.stderr)
    assert json.loads(rated.stdout)["record"]["user_rating"] == 6
    assert not announced_before, "the command was run before the app announced itself"
    assert Cli(data).json("search", "images", "--rated")["results"][0]["user_rating"] == 6


def test_an_app_that_cannot_take_its_port_leaves_no_announcement(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from anagnorisis.ui.app import build_app

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio-tmp"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        app = build_app(str(tmp_path / "data"), port=taken.getsockname()[1], lock_wait_seconds=2)
        try:
            with pytest.raises(OSError):
                app.launch(prevent_thread_lock=True, quiet=True)
            assert not app_file(tmp_path / "data").exists()
        finally:
            app.context.session.store.close()


# ---------------------------------------------------------------- a command waiting for the lock


class FakeApp:
    """A loopback server on ROUTE that answers as the app does: it records each argv and prints `forwarded`."""

    def __init__(self, token: str, port: int = 0) -> None:
        self.received: list[list[str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != ROUTE or self.headers.get(TOKEN_HEADER) != token:
                    self.send_error(403)
                    return
                fake.received.append(body["argv"])
                self.send_response(200)
                self.end_headers()
                for message in ({"stream": "stdout", "data": "forwarded\n"}, {"exit": 0}):
                    self.wfile.write((json.dumps(message) + "\n").encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def lock_holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the data dir's database, as a starting app does before it announces itself."""
    data = tmp_path / "data"
    Cli(data).json("library", "list")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb,sys,time; c=duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "time.sleep(60)", str(data / "anagnorisis.duckdb")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    try:
        yield holder
    finally:
        holder.kill()
        holder.wait()


def announce_later(data: Path, pid: int, port: int, token: str, after: float) -> threading.Timer:
    """app.json naming `pid` (the lock holder: a live process other than this one), written `after` seconds on."""
    timer = threading.Timer(after, lambda: app_file(data).write_text(
        json.dumps({"pid": pid, "port": port, "token": token})))
    timer.start()
    return timer


def test_a_command_waiting_for_the_lock_forwards_to_an_app_that_appears(tmp_path: Path,
                                                                         lock_holder: subprocess.Popen[str]) -> None:
    from anagnorisis.cli import run

    data = tmp_path / "data"
    fake = FakeApp("secret")
    timer = announce_later(data, lock_holder.pid, fake.port, "secret", after=0.5)
    out = io.StringIO()
    try:
        started = time.monotonic()
        code = run(["--data-dir", str(data), "--json", "library", "list"], stdout=out, stderr=io.StringIO())
        waited = time.monotonic() - started
    finally:
        timer.join()
        fake.close()
    assert (code, out.getvalue()) == (0, "forwarded\n")
    assert len(fake.received) == 1 and fake.received[0][-2:] == ["library", "list"]
    assert 0.5 <= waited < 5, "it looked again while it waited, every fraction of a second"


def test_a_rate_stdin_waiting_for_the_lock_forwards_every_line(tmp_path: Path,
                                                               lock_holder: subprocess.Popen[str]) -> None:
    """No line is read before the database is open (or the app has it), so none is lost on the way to the app."""
    from anagnorisis.cli import run

    data = tmp_path / "data"
    fake = FakeApp("secret")
    timer = announce_later(data, lock_holder.pid, fake.port, "secret", after=0.5)
    out = io.StringIO()
    try:
        code = run(["--data-dir", str(data), "rate", "--stdin"], stdin=io.StringIO("/a.jpg\t3\n/b.jpg\t4\n"),
                   stdout=out, stderr=io.StringIO())
    finally:
        timer.join()
        fake.close()
    assert (code, out.getvalue()) == (0, "ok\nok\n")
    assert [argv[-3:] for argv in fake.received] == [["rate", "/a.jpg", "3"], ["rate", "/b.jpg", "4"]]


def test_a_forwarded_command_retries_an_announced_app_until_it_listens() -> None:
    """app.json is written just before the port is bound: a refused connection to a live app is tried again."""
    port = free_port()
    fakes: list[FakeApp] = []
    server = threading.Timer(0.5, lambda: fakes.append(FakeApp("secret", port)))
    server.start()
    out = io.StringIO()
    try:
        code = forward({"pid": os.getpid(), "port": port, "token": "secret"}, ["library", "list"], out,
                       io.StringIO())
    finally:
        server.join()
        for fake in fakes:
            fake.close()
    assert (code, out.getvalue()) == (0, "forwarded\n")


def test_a_command_that_arrives_while_the_app_starts_waits_until_it_is_ready(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from fastapi import FastAPI
    from starlette.testclient import TestClient

    from anagnorisis.cli import open_library
    from anagnorisis.config import load_settings
    from anagnorisis.ui.forwarding import install_cli_route

    data = tmp_path / "data"
    store = open_library(load_settings({"data_dir": str(data)}))
    context = SimpleNamespace(session=SimpleNamespace(store=store, invalidate=lambda *_: None),
                              refresh_served_paths=lambda: None)
    ready = threading.Event()
    server_app = FastAPI()
    install_cli_route(server_app, context, "secret", ready)
    threading.Timer(0.5, ready.set).start()  # launch() finishes its start half a second after the request came
    try:
        with TestClient(server_app, client=("127.0.0.1", 50000)) as client:
            started = time.monotonic()
            response = client.post(ROUTE, json={"argv": ["--data-dir", str(data), "--json", "library", "list"]},
                                   headers={TOKEN_HEADER: "secret"})
            waited = time.monotonic() - started
    finally:
        store.close()
    messages = [json.loads(line) for line in response.text.splitlines()]
    assert messages[-1] == {"exit": 0}, messages
    assert "roots" in json.loads("".join(m["data"] for m in messages if m.get("stream") == "stdout"))
    assert waited >= 0.4, "it ran only once the app was ready"
