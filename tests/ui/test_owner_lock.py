"""The app answers its owner only: every route refuses a request without the token, a foreign Host is refused even
with it, the data dir is the owner's alone, and another Unix account can neither read it nor use the app (SPEC §8)."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from anagnorisis.ui.guard import host_rule, split_host
from tests.ui.conftest import RunningApp, bare_url, make_photos, start_app

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


RAW = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)


def call(url: str, *, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None,
         opener: urllib.request.OpenerDirector = OPENER) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with opener.open(request, timeout=20) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def route_kinds(app: RunningApp) -> list[tuple[str, str, str, bytes | None]]:
    """(what, method, path, body): one of each kind of route the server has."""
    photo = str(app.photos[0])
    rate = json.dumps({"data": [photo, 9]}).encode()
    return [
        ("page", "GET", "", None),
        ("page config", "GET", "config", None),
        ("API description", "GET", "gradio_api/info", None),
        ("named endpoint /rate", "POST", "gradio_api/call/rate", rate),
        ("named endpoint /search", "POST", "gradio_api/call/search", json.dumps({"data": ["images"]}).encode()),
        ("queue", "POST", "gradio_api/queue/join", json.dumps({"data": [], "fn_index": 0,
                                                              "session_hash": "x"}).encode()),
        ("file route", "GET", f"gradio_api/file={photo.replace(' ', '%20')}", None),
        ("upload", "POST", "gradio_api/upload", b""),
        ("theme", "GET", "theme.css", None),
        ("forwarded CLI command", "POST", "anagnorisis/cli", json.dumps({"argv": ["rate", photo, "9"]}).encode()),
    ]


def rating_of(app: RunningApp, path: Path) -> float | None:
    """The stored rating of a file, read from the app's own open store."""
    return app.app.context.session.store.read(lambda c: c.execute(
        "SELECT r.rating FROM files f LEFT JOIN ratings r USING (content_hash) WHERE f.display_path = ?",
        [str(path)]).fetchone()[0])


def test_every_kind_of_route_refuses_a_request_without_the_token(running_app: RunningApp) -> None:
    refused_before = running_app.app._guard.refused
    for what, method, path, body in route_kinds(running_app):
        for headers in ({}, {"X-Anagnorisis-Token": "not-the-token"}, {"Authorization": "Bearer wrong"},
                        {"Cookie": f"anagnorisis-token-{running_app.app.server_port}=wrong"}):
            status, _, page = call(running_app.url + path, method=method, headers={
                "Content-Type": "application/json", **headers}, body=body)
            assert status == 403, (what, headers, status)
            assert b"token" in page, what
    assert running_app.app._guard.refused - refused_before == 4 * len(route_kinds(running_app))
    assert rating_of(running_app, running_app.photos[0]) is None, "the refused /rate and CLI rate changed nothing"


def test_the_token_opens_every_route_as_a_header_a_bearer_or_the_cookie_its_address_gives(
        running_app: RunningApp) -> None:
    token = running_app.token
    status, headers, _ = call(running_app.owner_url, opener=RAW)
    assert status == 303 and headers["location"] == "/", "the token leaves the address bar"
    cookie = headers["set-cookie"]
    assert cookie.startswith(f"anagnorisis-token-{running_app.app.server_port}={token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    cookie_header = {"Cookie": cookie.split(";", 1)[0]}
    for headers in ({"X-Anagnorisis-Token": token}, {"Authorization": f"Bearer {token}"}, cookie_header):
        status, answer, page = call(running_app.url, headers=headers)
        assert status == 200 and b"<html" in page.lower()
        assert "default-src 'self'" in answer["content-security-policy"]
        assert answer["x-content-type-options"] == "nosniff" and answer["referrer-policy"] == "no-referrer"
        assert call(running_app.url + "config", headers=headers)[0] == 200
    photo = running_app.photos[0]
    assert call(f"{running_app.url}gradio_api/file={str(photo).replace(' ', '%20')}", headers=cookie_header)[0] == 200
    client = running_app.client()  # gradio_client with the header, as wiki/privacy.md shows
    assert client.predict(path=str(photo), rating=8, api_name="/rate")["record"]["user_rating"] == 8
    assert rating_of(running_app, photo) == 8


def test_a_foreign_host_is_refused_even_with_the_token_and_a_matching_origin(running_app: RunningApp) -> None:
    """DNS rebinding: a site whose name now points at 127.0.0.1 is same-origin with the app in the browser's eyes."""
    port = running_app.app.server_port
    token = running_app.token
    photo = str(running_app.photos[1])
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}", f"10.1.2.3:{port}"):
        status, _, _ = call(running_app.url + "gradio_api/call/rate", method="POST",
                            headers={"Host": host, "Origin": f"http://{host}", "X-Anagnorisis-Token": token,
                                     "Content-Type": "application/json"},
                            body=json.dumps({"data": [photo, 3]}).encode())
        assert status == 403, host
    time.sleep(0.5)
    assert rating_of(running_app, Path(photo)) is None
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
        assert call(running_app.url, headers={"Host": host, "X-Anagnorisis-Token": token})[0] == 200, host


def test_the_host_rule_for_each_kind_of_bind() -> None:
    loopback = host_rule("127.0.0.1")
    assert all(loopback(name) for name in ("localhost", "127.0.0.1", "::1", "127.0.0.2", "app.localhost"))
    assert not any(loopback(name) for name in ("evil.example", "192.168.1.5", "127.0.0.1.evil.example", ""))
    wildcard = host_rule("0.0.0.0")  # the Docker image: reached by whatever address publishes it
    assert wildcard("192.168.1.5") and wildcard("::1") and wildcard("localhost")
    assert not wildcard("evil.example")
    named = host_rule("192.168.1.5", extra=["media.home.arpa"])
    assert named("192.168.1.5") and named("media.home.arpa") and named("MEDIA.home.arpa.") and named("localhost")
    assert not named("192.168.1.6") and not named("evil.example")
    shared = host_rule("127.0.0.1", share=True)
    assert shared("abc123.gradio.live") and not shared("gradio.live.evil.example")
    assert split_host("[::1]:7860") == "::1" and split_host("example.org:80") == "example.org"


def test_with_a_password_login_gradio_guards_the_app_and_no_token_is_asked(tmp_path: Path) -> None:
    library = tmp_path / "library"
    make_photos(library, 2)
    app, url = start_app(tmp_path / "data", library, username="alice", password="s3cret-pass")
    try:
        assert "token" not in url
        status, _, page = call(url + "config")
        assert status in (401, 403) and b"locked to its owner" not in page  # Gradio's login answers, not the token
        assert call(url, headers={"Host": "evil.example"})[0] == 403  # the Host rule still holds
    finally:
        app.close()


def test_the_token_is_kept_across_restarts_and_revoked_by_deleting_its_file(tmp_path: Path) -> None:
    library = tmp_path / "library"
    make_photos(library, 1)
    first, _ = start_app(tmp_path / "data", library)
    token = first.token
    first.close()
    again, url = start_app(tmp_path / "data", library)
    try:
        assert again.token == token, "an open page survives a restart"
        assert json.loads((tmp_path / "data" / "app.json").read_text())["token"] == token  # the CLI forwards with it
    finally:
        again.close()
    (tmp_path / "data" / "token").unlink()
    third, _ = start_app(tmp_path / "data", library)
    try:
        assert third.token != token
        assert call(bare_url(third.owner_url), headers={"X-Anagnorisis-Token": token})[0] == 403
    finally:
        third.close()


def modes(data: Path) -> dict[str, int]:
    """The permission bits of everything the app created in its data dir (the default library folders aside)."""
    found = {".": stat.S_IMODE(data.stat().st_mode)}
    for folder, subfolders, files in os.walk(data):
        here = Path(folder)
        if here == data:
            subfolders[:] = [name for name in subfolders if name != "library"]
        for name in subfolders + files:
            path = here / name
            found[str(path.relative_to(data))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def test_everything_the_app_creates_is_the_owners_alone(running_app: RunningApp) -> None:
    from anagnorisis.store.backup import backup_now

    app = running_app.app
    app.context.session.previews_dir.mkdir(parents=True, exist_ok=True)
    running_app.client().predict(path=str(running_app.photos[0]), rating=6, api_name="/rate")
    backup_now(app.context.session.store, running_app.data_dir)
    found = modes(running_app.data_dir)
    names = set(found)
    assert {"anagnorisis.duckdb", "app.json", "token", "previews", "backups"} <= names, names
    assert any(name.startswith("backups/") for name in names)
    loose = {name: oct(mode) for name, mode in found.items()
             if mode & 0o077 or mode != (0o700 if (running_app.data_dir / name).is_dir() else 0o600)}
    assert loose == {}


def test_a_data_dir_left_readable_by_an_earlier_version_is_tightened_at_start(tmp_path: Path) -> None:
    from tests.conftest import Cli

    data = tmp_path / "data"
    old = os.umask(0o022)
    try:
        Cli(data).json("library", "list")  # creates the data dir, its database and the default folders
        os.chmod(data, 0o755)
        for path in [data / "anagnorisis.duckdb", *data.glob("*")]:
            if path.is_file():
                os.chmod(path, 0o644)
        (data / "previews" / "ab").mkdir(parents=True)
        (data / "previews" / "ab" / "x.jpg").write_bytes(b"x")
        os.chmod(data / "previews", 0o755)
        os.chmod(data / "previews" / "ab" / "x.jpg", 0o644)
        mine = data / "library" / "images" / "mine.jpg"
        mine.write_bytes(b"y")
        os.chmod(mine, 0o644)
        assert any(mode & 0o077 for mode in modes(data).values())
    finally:
        os.umask(old)
    Cli(data).json("library", "list")
    assert {name: oct(mode) for name, mode in modes(data).items() if mode & 0o077} == {}
    assert stat.S_IMODE(mine.stat().st_mode) == 0o644, "the user's own media is not the app's to change"


# ------------------------------------------------------------------ another Unix account


def _nobody_can_run() -> bool:
    if os.geteuid() != 0 or not shutil.which("runuser") or not Path("/usr/bin/python3").exists():
        return False
    try:
        return subprocess.run(["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", "pass"],
                              timeout=30, capture_output=True).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.fixture
def shared_place() -> Iterator[Path]:
    """A folder every account can reach, as a home folder or /srv is on a shared machine (pytest's own tmp_path
    is private to root, which would make the test below prove nothing)."""
    place = Path(tempfile.mkdtemp(prefix="anagnorisis-shared-", dir="/tmp"))
    os.chmod(place, 0o755)
    try:
        yield place
    finally:
        shutil.rmtree(place, ignore_errors=True)


AS_NOBODY = r"""
import json, os, sys, urllib.error, urllib.request
data, url, photo = sys.argv[1], sys.argv[2], sys.argv[3]
seen = {"reach": os.path.isdir(data)}
for name in ("token", "app.json", "anagnorisis.duckdb"):
    try:
        open(os.path.join(data, name), "rb").read(1)
        seen[name] = "read"
    except OSError as error:
        seen[name] = type(error).__name__
try:
    os.listdir(data)
    seen["list"] = "listed"
except OSError as error:
    seen["list"] = type(error).__name__
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
for what, path in (("page", ""), ("config", "config"), ("file", "gradio_api/file=" + photo.replace(" ", "%20")),
                   ("api", "gradio_api/info")):
    try:
        seen[what] = opener.open(url + path, timeout=20).status
    except urllib.error.HTTPError as error:
        seen[what] = error.code
print(json.dumps(seen))
"""


def test_another_account_can_neither_read_the_data_dir_nor_use_the_app(shared_place: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    if not _nobody_can_run():
        pytest.skip("needs root, runuser and /usr/bin/python3 to act as the account 'nobody'")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(shared_place / "gradio-tmp"))
    library = shared_place / "library"
    photos = make_photos(library, 2)
    os.chmod(library, 0o755)
    data = shared_place / "data"
    app, _ = start_app(data, library)
    try:
        url = f"http://127.0.0.1:{app.server_port}/"
        done = subprocess.run(["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", AS_NOBODY, str(data), url,
                               str(photos[0])], capture_output=True, text=True, timeout=120, cwd="/")
        assert done.returncode == 0, done.stderr
        seen = json.loads(done.stdout)
    finally:
        app.close()
    assert seen["reach"] is True, "nobody can reach the folder: the refusals below are the app's doing"
    assert seen["list"] == "PermissionError"
    assert {seen[name] for name in ("token", "app.json", "anagnorisis.duckdb")} == {"PermissionError"}
    assert (seen["page"], seen["config"], seen["file"], seen["api"]) == (403, 403, 403, 403)
