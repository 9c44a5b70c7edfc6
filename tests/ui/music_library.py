"""A small generated music library, and the Music tab's context over it (in process, or as a running app)."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.media import write_flac, write_m4a, write_mp3, write_ogg, write_opus, write_wav

ROCK = {"artist": "The Testers", "album": "Firsts", "genre": "Rock"}


@dataclass
class Track:
    path: Path
    title: str
    seconds: float


def make_tracks(library: Path) -> list[Track]:
    """One track of each format, dated so that the default sort (date, newest first) is the order listed here."""
    library.mkdir(parents=True, exist_ok=True)
    made = [
        (write_ogg, "long song.ogg", "Long Song", 20.0, "2024", True),
        (write_flac, "short two.flac", "Short Two", 1.2, "2023", True),
        (write_mp3, "short one.mp3", "Short One", 1.0, "2022", False),
        (write_opus, "opus tune.opus", "Opus Tune", 1.0, "2021", True),
        (write_m4a, "aac tune.m4a", "Aac Tune", 1.0, "2020", True),
        (write_wav, "wave tune.wav", "Wave Tune", 1.0, "2019", False),
    ]
    tracks = []
    for index, (writer, name, title, seconds, year, cover) in enumerate(made):
        tags = {**ROCK, "title": title, "date": year}
        path = writer(library / name, freq=220.0 * (index + 1), seconds=seconds, tags=tags, cover=cover)
        tracks.append(Track(path, title, seconds))
    return tracks


def music_context(data_dir: Path, library: Path, **settings: Any) -> Any:
    """An AppContext over the library, scanned (no server, no browser)."""
    from anagnorisis.cli import open_library
    from anagnorisis.config import load_settings
    from anagnorisis.library.scan import scan
    from anagnorisis.session import Session
    from anagnorisis.ui.context import AppContext

    resolved = load_settings({"data_dir": str(data_dir), "music_roots": [str(library)], **settings})
    store = open_library(resolved)
    scan(store, ["music"])
    return AppContext(resolved, Session(resolved, store))


def closing(ctx: Any) -> Iterator[Any]:
    try:
        yield ctx
    finally:
        ctx.session.store.close()


def write_adpcm_wav(path: Path, seconds: float = 1.0, sr: int = 22050) -> Path:
    """IMA ADPCM in a WAV: valid audio that browsers do not decode (so the player must transcode it)."""
    import numpy as np
    import soundfile

    tone = 0.4 * np.sin(2 * np.pi * 330 * np.arange(int(seconds * sr)) / sr)
    soundfile.write(str(path), tone.astype(np.float32), sr, format="WAV", subtype="IMA_ADPCM")
    return path


def start_music_app(data_dir: Path, library: Path, **settings: Any) -> tuple[Any, str]:
    """The real app on a free loopback port, its library scanned."""
    from anagnorisis.ui.app import build_app
    from tests.ui.conftest import free_port

    port = free_port()
    app = build_app(str(data_dir), music_roots=[str(library)], port=port, lock_wait_seconds=2, **settings)
    app.launch(prevent_thread_lock=True, quiet=True)
    job = app.context.jobs.wait("scan", timeout=60)
    assert job is not None and job.state == "done", job
    app.context.jobs.wait("embed", timeout=120)
    return app, app.owner_url  # the address with the token, as printed at start
