"""Only the library roots and the previews cache are served; exposure needs credentials; auth guards every route."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, Cli
from tests.ui.conftest import RunningApp, free_port, make_photos, start_app
from tests.media import write_jpeg

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def status_of(url: str, token: str | None = None) -> int:
    """The status of a GET, sent as the owner's script does (with the token) or as anyone else (without)."""
    request = urllib.request.Request(url, headers={"X-Anagnorisis-Token": token} if token else {})
    try:
        with OPENER.open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def file_url(base: str, path: str) -> str:
    """Gradio's file route; spaces are escaped, everything else (%2F, ..) is sent as the attacker wrote it."""
    return f"{base}gradio_api/file={path.replace(' ', '%20')}"


def test_library_files_are_served_in_place(running_app: RunningApp) -> None:
    assert status_of(file_url(running_app.url, str(running_app.photos[0])), running_app.token) == 200


def test_files_outside_the_roots_are_refused(running_app: RunningApp, tmp_path: Path) -> None:
    outside = write_jpeg(tmp_path / "outside.jpg")
    escape = running_app.library / "escape.jpg"
    escape.symlink_to(outside)
    root = str(running_app.library)
    attempts = [
        "/etc/passwd",
        str(outside),
        str(escape),
        f"{root}/../outside.jpg",
        f"{root}/..%2Foutside.jpg",
        f"{root}/%2e%2e/outside.jpg",
        urllib.parse.quote(f"{root}/../outside.jpg", safe=""),
        str(running_app.data_dir / "anagnorisis.duckdb"),
        str(running_app.data_dir / "app.json"),
        str(REPO / "app.py"),
    ]
    leaked = [path for path in attempts if status_of(file_url(running_app.url, path), running_app.token) == 200]
    assert leaked == []


def test_a_non_loopback_bind_or_share_without_credentials_refuses_to_start(tmp_path: Path) -> None:
    from anagnorisis.ui.app import build_app

    make_photos(tmp_path / "lib", 1)
    app = build_app(str(tmp_path / "data"), images_roots=[str(tmp_path / "lib")])
    try:
        with pytest.raises(PermissionError, match="ANAGNORISIS_USERNAME"):
            app.launch(server_name="0.0.0.0", prevent_thread_lock=True)
        with pytest.raises(PermissionError, match="share"):
            app.launch(share=True, prevent_thread_lock=True)
    finally:
        app.context.session.store.close()
    done = subprocess.run([sys.executable, "app.py", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "d2")],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 2 and "ANAGNORISIS_PASSWORD" in done.stderr


def test_with_credentials_an_unauthenticated_request_gets_nothing(tmp_path: Path) -> None:
    library = tmp_path / "library"
    photos = make_photos(library, 2)
    app, url = start_app(tmp_path / "data", library, username="alice", password="s3cret-pass")
    try:
        for path in ("config", "gradio_api/info", file_url("", str(photos[0])).lstrip("/"),
                     "gradio_api/call/search"):
            assert status_of(url + path) in (401, 403, 404, 405), path
        request = urllib.request.Request(url + "gradio_api/call/search", data=b'{"data": ["images"]}',
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            code = OPENER.open(request, timeout=10).status
        except urllib.error.HTTPError as error:
            code = error.code
        assert code in (401, 403)
    finally:
        app.close()


def test_the_serve_command_serves_the_app_and_refuses_an_unsafe_bind_as_app_py_does(tmp_path: Path) -> None:
    """`python -m anagnorisis serve` is what `python app.py` runs (SPEC §1): loopback by default, stops on SIGTERM."""
    import signal

    from tests.reliability.test_kill import ENV, wait_served

    done = subprocess.run([sys.executable, "-m", "anagnorisis", "--data-dir", str(tmp_path / "d1"), "serve",
                           "--host", "0.0.0.0"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 2 and "ANAGNORISIS_PASSWORD" in done.stderr
    port = free_port()
    data = tmp_path / "d2"
    process = subprocess.Popen([sys.executable, "-m", "anagnorisis", "serve", "--port", str(port),
                                "--data-dir", str(data)], cwd=REPO, env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_served(f"http://127.0.0.1:{port}/", process)
        deadline = time.monotonic() + 30  # written before the server answers (tests/ui/test_starting_app.py)
        while not (data / "app.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        announced = json.loads((data / "app.json").read_text())
        assert announced["port"] == port
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    assert code == 0, process.stderr.read().decode() if process.stderr else code
    assert not (data / "app.json").exists()


def test_a_folder_added_while_the_app_runs_is_served_in_place_and_a_removed_one_no_longer(
        running_app: RunningApp, tmp_path: Path) -> None:
    from anagnorisis.ui import settings as tab

    later = tmp_path / "later"
    photo = write_jpeg(later / "added later.jpg")
    assert status_of(file_url(running_app.url, str(photo)), running_app.token) == 403  # not a root yet
    message, _rows = tab.add_root(running_app.app.context, "images", str(later))
    assert message.startswith("added"), message
    assert status_of(file_url(running_app.url, str(photo)), running_app.token) == 200  # served at once, no restart
    message, _rows = tab.remove_root(running_app.app.context, "images", str(later))
    assert message.startswith("removed"), message
    assert status_of(file_url(running_app.url, str(photo)), running_app.token) == 403
    # from the CLI, forwarded to the running app
    cli = Cli(running_app.data_dir)
    assert cli.subprocess("library", "add", "images", str(later)).code == 0
    assert status_of(file_url(running_app.url, str(photo)), running_app.token) == 200
