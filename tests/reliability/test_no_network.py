"""A normal run — start, scan, embed, search, rate — opens no connection beyond loopback."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import REPO
from tests.media import write_jpeg, write_text, write_wav
from tests.ui.conftest import free_port

GUARD = Path(__file__).resolve().parent / "guard"


def test_a_normal_run_connects_to_nothing_but_loopback(tmp_path: Path) -> None:
    log = tmp_path / "network.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(GUARD), str(REPO)]),
           "ANAGNORISIS_NETWORK_LOG": str(log), "ANAGNORISIS_DATA_DIR": str(tmp_path / "data")}
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "GRADIO_ANALYTICS_ENABLED", "HF_HUB_DISABLE_TELEMETRY"):
        env.pop(key, None)  # the app must keep itself offline, not rely on the test's environment
    library = tmp_path / "library"
    topics = ["gardening and tomatoes", "sailing boats", "baking bread", "chess openings", "jazz piano", "rust"]
    for index in range(6):
        write_text(library / f"note {index}.txt", f"Note {index} about {topics[index]}.\n")
    for index in range(3):
        write_jpeg(library / f"p{index}.jpg", color=(index * 80, 10, 10))
        write_wav(library / f"t{index}.wav", freq=300 + 50 * index)

    def cli(*args: str) -> dict:
        done = subprocess.run([sys.executable, "-m", "anagnorisis", "--json", *args], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    for kind in ("images", "text", "music"):
        cli("library", "add", kind, str(library))
    cli("scan")
    port = free_port()
    app = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], env=env, cwd=REPO,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + 90
        while True:
            try:
                opener.open(f"http://127.0.0.1:{port}/", timeout=2).close()
                break
            except urllib.error.HTTPError:  # it answers: 403 without the owner's token
                break
            except OSError:
                assert app.poll() is None and time.monotonic() < deadline
                time.sleep(0.25)
        deadline = time.monotonic() + 120
        while cli("search", "text", "tomatoes in the garden", "--mode", "meaning")["not_indexed"]:  # forwarded
            assert time.monotonic() < deadline, "the app's background embedding did not finish"
            time.sleep(1)
        for index, path in enumerate(sorted(library.glob("*.txt"))):
            cli("rate", str(path), str(index + 2))
        cli("rate", str(library / "p0.jpg"), "7")
        trained = cli("train", "text", "--seconds", "3")  # forwarded: trains inside the app
        assert trained["n_ratings"] == 6
        cli("predict", "text")
    finally:
        app.terminate()
        app.wait(timeout=30)
    assert cli("search", "images", "--sort", "rating")["results"][0]["user_rating"] == 7
    assert not log.exists(), log.read_text()


def test_the_guard_itself_catches_a_lookup(tmp_path: Path) -> None:
    """Without this, a guard that never loaded would make the test above pass vacuously. The lookup is refused
    before anything leaves the machine."""
    log = tmp_path / "network.log"
    env = {**os.environ, "PYTHONPATH": str(GUARD), "ANAGNORISIS_NETWORK_LOG": str(log)}
    done = subprocess.run([sys.executable, "-c", "import socket; socket.getaddrinfo('example.invalid', 80)"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "refused by the test guard" in done.stderr
    assert "example.invalid" in log.read_text()
