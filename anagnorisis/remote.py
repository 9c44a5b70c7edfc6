"""The CLI beside a running app: the app owns the database file and runs forwarded commands (SPEC §1).

The app writes `<data-dir>/app.json` {pid, port, token} (mode 0600) and removes it on exit. A CLI command that
finds a live app posts its argv to a loopback-only route that requires the token; the app runs the same command
code on its own store and streams stdout, stderr and the exit status back as JSON lines.

The app announces itself before its server accepts a connection (from the server's startup hook), so whoever sees
its page answer also finds app.json; a command that arrives in the moment between the announcement and the server
listening tries again, and one that arrives before the app has finished starting waits on the route until it has.
"""
from __future__ import annotations

import json
import os
import queue
import secrets
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

APP_FILE = "app.json"
ROUTE = "/anagnorisis/cli"
TOKEN_HEADER = "X-Anagnorisis-Token"
# How long a forwarded command keeps trying an announced app whose server does not listen yet, in seconds: app.json
# is written just before the port is bound, and a loaded machine may take a while between the two.
STARTING_WAIT_SECONDS = 30.0
STARTING_RETRY_SECONDS = 0.1


def app_file(data_dir: Path) -> Path:
    return Path(data_dir) / APP_FILE


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_app(data_dir: Path) -> dict[str, Any] | None:
    """The running app's {pid, port, token}, or None when there is none (a stale file is ignored)."""
    try:
        info = json.loads(app_file(data_dir).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not {"pid", "port", "token"} <= set(info):
        return None
    if info["pid"] == os.getpid() or not _pid_alive(int(info["pid"])):
        return None
    return info


def write_app_file(data_dir: Path, port: int, token: str | None = None) -> str:
    """Announce this process as the owner of the data dir; returns the token forwarded commands must carry (the
    owner's token, the same one the browser's address holds)."""
    token = token or secrets.token_urlsafe(32)
    path = app_file(data_dir)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump({"pid": os.getpid(), "port": port, "token": token}, file)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return token


def remove_app_file(data_dir: Path, token: str) -> None:
    """Remove app.json if it is still ours."""
    try:
        info = json.loads(app_file(data_dir).read_text())
        if info.get("token") == token:
            app_file(data_dir).unlink()
    except (OSError, ValueError):
        pass


class OutputClosed(Exception):
    """The reader of this command's output went away (`… | head`): not the app's fault; stop quietly."""


def _copy(target: TextIO, data: str) -> None:
    try:
        target.write(data)
        target.flush()
    except BrokenPipeError as error:  # a ConnectionError too: it must not be taken for the app's silence
        raise OutputClosed from error


def forward(info: dict[str, Any], argv: list[str], stdout: TextIO, stderr: TextIO) -> int:
    """Run argv in the live app; copy its streams here; return its exit status."""
    body = json.dumps({"argv": argv}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{info['port']}{ROUTE}", data=body, method="POST",
        headers={"Content-Type": "application/json", TOKEN_HEADER: str(info["token"])},
    )
    try:
        with _open_when_listening(request, info) as response:
            for raw in response:
                message = json.loads(raw)
                if "exit" in message:
                    return int(message["exit"])
                _copy(stdout if message.get("stream") == "stdout" else stderr, message["data"])
    except urllib.error.HTTPError as error:
        print(f"error: the running app (PID {info['pid']}) refused the command: {_reason(error)}", file=stderr)
        return 1
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        print(f"error: the running app (PID {info['pid']}) did not answer: {error}", file=stderr)
        return 1
    print("error: the running app closed the connection before the command finished", file=stderr)
    return 1


def _open_when_listening(request: urllib.request.Request, info: dict[str, Any]) -> Any:
    """Send the request; while the connection is refused and the announced app still runs, it is starting: try
    again (nothing reached it, so nothing can run twice)."""
    # A loopback call must never go through a proxy named in the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + STARTING_WAIT_SECONDS
    while True:
        try:
            return opener.open(request, timeout=3600)
        except urllib.error.URLError as error:
            starting = isinstance(error.reason, ConnectionRefusedError) and _pid_alive(int(info["pid"]))
            if not starting or time.monotonic() >= deadline:
                raise
        time.sleep(STARTING_RETRY_SECONDS)


def _reason(error: urllib.error.HTTPError) -> str:
    """The app's own words for a refusal ({"error": …}), else the HTTP status."""
    try:
        return str(json.loads(error.read())["error"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"HTTP {error.code}"


class _QueueWriter:
    """A text stream whose writes become messages on a queue."""

    def __init__(self, name: str, sink: "queue.Queue[dict[str, Any] | None]") -> None:
        self.name = name
        self.sink = sink

    def write(self, data: str) -> int:
        if data:
            self.sink.put({"stream": self.name, "data": data})
        return len(data)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def stream_command(run_command: Callable[[list[str], TextIO, TextIO], int], argv: list[str]) -> Iterator[bytes]:
    """Run a command on a worker thread and yield its output as JSON lines, ending with {"exit": code}."""
    sink: "queue.Queue[dict[str, Any] | None]" = queue.Queue()

    def work() -> None:
        code = 1
        try:
            code = run_command(argv, _QueueWriter("stdout", sink), _QueueWriter("stderr", sink))  # type: ignore[arg-type]
        except Exception as error:  # pragma: no cover - reported to the caller, never lost
            sink.put({"stream": "stderr", "data": f"error: {error}\n"})
        sink.put({"exit": code})
        sink.put(None)

    threading.Thread(target=work, name="forwarded-cli", daemon=True).start()
    while (message := sink.get()) is not None:
        yield (json.dumps(message) + "\n").encode()

