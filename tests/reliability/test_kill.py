"""SIGKILL at random moments while the app scans, embeds, trains or predicts and ratings keep arriving:
no acknowledged rating is lost, the database opens, and the next scan (and train) completes."""
from __future__ import annotations

import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from anagnorisis.cli import COMMANDS
from anagnorisis.store import Store
from tests.conftest import REPO, Cli
from tests.media import write_jpeg
from tests.ui.conftest import free_port

ITERATIONS = 20
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
ENV = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}


def wait_served(url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            OPENER.open(url, timeout=2).close()
            return
        except urllib.error.HTTPError:  # it answers (403 to a request without the owner's token)
            return
        except OSError:
            assert process.poll() is None, "the app exited during start"
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.1)


def owner_token(data: Path) -> str:
    """The token a script reads from the data dir (written before the app serves)."""
    return (data / "token").read_text().strip()


def rate_over_http(url: str, path: str, rating: float, token: str) -> bool:
    """One /rate call through Gradio's HTTP API; True only when the app acknowledged the committed rating."""
    body = json.dumps({"data": [path, rating]}).encode()
    request = urllib.request.Request(f"{url}gradio_api/call/rate", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "X-Anagnorisis-Token": token})
    try:
        with OPENER.open(request, timeout=10) as response:
            event = json.loads(response.read())["event_id"]
        answer = urllib.request.Request(f"{url}gradio_api/call/rate/{event}", headers={"X-Anagnorisis-Token": token})
        with OPENER.open(answer, timeout=10) as response:
            text = response.read().decode()
    except (OSError, ValueError, KeyError, http.client.HTTPException):  # the kill cut the answer short
        return False
    return "event: complete" in text and f'"user_rating": {rating}' in text


def jobs_available() -> list[str]:
    return ["scan", "embed", *(command for command in ("train", "predict") if command in COMMANDS)]


@pytest.fixture
def library(tmp_path: Path) -> list[Path]:
    return [write_jpeg(tmp_path / "library" / f"photo {index:03d}.jpg", color=(index % 256, (index * 7) % 256, 90),
                       size=(320, 240)) for index in range(240)]


def test_sigkill_at_random_points_loses_no_acknowledged_rating(tmp_path: Path, library: list[Path]) -> None:
    rng = random.Random(20261126)
    data = tmp_path / "data"
    cli = Cli(data)
    cli.json("library", "add", "images", str(tmp_path / "library"))
    acknowledged: dict[str, float] = {}
    in_flight: dict[str, float] = {}  # sent, not acknowledged: may or may not have been committed before the kill
    for iteration in range(ITERATIONS):
        job = jobs_available()[iteration % len(jobs_available())]
        for photo in rng.sample(library, 3):  # changed content: the scan always has work to do
            write_jpeg(photo, color=(rng.randrange(256), rng.randrange(256), rng.randrange(256)), size=(320, 240))
        if job in ("train", "predict"):
            cli.json("scan")
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        app = subprocess.Popen([sys.executable, "app.py", "--data-dir", str(data), "--port", str(port)],
                               cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stop = threading.Event()

        def rate_continuously() -> None:
            while not stop.is_set():
                photo, rating = str(rng.choice(library)), rng.randrange(0, 21) / 2
                in_flight[photo] = rating
                if rate_over_http(url, photo, rating, owner_token(data)):
                    acknowledged[photo] = rating
                    del in_flight[photo]

        try:
            wait_served(url, app)
            rater = threading.Thread(target=rate_continuously)
            rater.start()
            if job != "scan":  # scan starts by itself at launch
                subprocess.Popen([sys.executable, "-m", "anagnorisis", "--data-dir", str(data), job, "images"],
                                 cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.3, 2.5))
            os.kill(app.pid, signal.SIGKILL)
            stop.set()
            rater.join()
        finally:
            stop.set()
            app.kill()
            app.wait()
        time.sleep(0.3)  # a forwarded command's client sees the app gone and exits
        check_every_acknowledged_rating(data, acknowledged, in_flight, iteration, job)
        acknowledged.update(stored_ratings(data, in_flight))  # what the kill left committed counts from now on
        in_flight.clear()
        assert cli.json("scan")["seconds"] >= 0, "the next scan completes"
    assert len(acknowledged) > 20
    if "train" in COMMANDS:
        cli.json("train", "images", "--seconds", "5")


def stored_ratings(data: Path, paths: dict[str, float] | None = None) -> dict[str, float]:
    with Store.open(data / "anagnorisis.duckdb", wait_seconds=30) as store:
        rows = store.read(lambda c: c.execute(
            "SELECT f.display_path, r.rating FROM files f JOIN ratings r USING (content_hash) WHERE NOT f.missing"
        ).fetchall())
    return {path: rating for path, rating in rows if paths is None or path in paths}


def check_every_acknowledged_rating(data: Path, acknowledged: dict[str, float], in_flight: dict[str, float],
                                    iteration: int, job: str) -> None:
    """Each acknowledged rating is stored, unless a later one for the same file was in flight at the kill and
    got committed (a commit the kill kept from being acknowledged)."""
    stored = stored_ratings(data)
    lost = {path: (rating, stored.get(path)) for path, rating in acknowledged.items()
            if stored.get(path) not in (rating, in_flight.get(path, rating))}
    assert not lost, f"iteration {iteration} (killed during {job}): lost (acknowledged, stored) {lost}"
