"""A real app on loopback over a generated library."""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.media import write_jpeg


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningApp:
    app: Any
    url: str
    data_dir: Path
    library: Path
    photos: list[Path]

    @property
    def token(self) -> str:
        return str(self.app.token)

    @property
    def owner_url(self) -> str:
        """The address printed at start: opening it trades the token for the owner's cookie."""
        return str(self.app.owner_url)

    @property
    def headers(self) -> dict[str, str]:
        """What a script sends to be let in."""
        return owner_headers(self.app)

    def client(self) -> Any:
        return owner_client(self.app, self.url)


def owner_headers(app: Any) -> dict[str, str]:
    return {"X-Anagnorisis-Token": str(app.token)}


def owner_client(app: Any, url: str) -> Any:
    """gradio_client on the app, with the owner's token; download_files=False: gradio_client otherwise fetches
    every dict with a "path" key as a file."""
    from gradio_client import Client

    return Client(bare_url(url), verbose=False, download_files=False, headers=owner_headers(app))


def bare_url(url: str) -> str:
    return url.split("?", 1)[0]


def make_photos(library: Path, count: int = 12) -> list[Path]:
    library.mkdir(parents=True, exist_ok=True)
    names = ["sunset beach", "mountain lake", "red car", "blue door", "green field", "city night"]
    return [
        write_jpeg(library / f"{names[index % len(names)]} {index:02d}.jpg",
                   color=((index * 47) % 256, (index * 89) % 256, (index * 23) % 256), size=(96, 72))
        for index in range(count)
    ]


def start_app(data_dir: Path, library: Path, **settings: Any) -> tuple[Any, str]:
    from anagnorisis.ui.app import build_app

    port = free_port()
    app = build_app(str(data_dir), images_roots=[str(library)], port=port, lock_wait_seconds=2, **settings)
    app.launch(prevent_thread_lock=True, quiet=True)
    job = app.context.jobs.wait("scan", timeout=60)
    assert job is not None and job.state == "done", job
    app.context.jobs.wait("embed", timeout=120)
    return app, app.owner_url  # the address with the token, as printed at start


@pytest.fixture
def running_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningApp]:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio-tmp"))
    library = tmp_path / "library"
    photos = make_photos(library)
    app, url = start_app(tmp_path / "data", library)
    try:
        yield RunningApp(app, bare_url(url), tmp_path / "data", library, photos)
    finally:
        app.close()
        time.sleep(0.2)
