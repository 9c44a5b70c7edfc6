"""The Docker set-up: the compose file validates with the original app's .env and ours; the image's entry command
runs (outside Docker) with the image's environment."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.ui.conftest import free_port

ORIGINAL_ENV = """\
CONTAINER_NAME=anagnorisis-app
EXTERNAL_PORT=5001
PROJECT_CONFIG_FOLDER_PATH=/path/to/folder/Anagnorisis-app
IMAGES_MODULE_DATA_PATH=/path/to/folder/Images
MUSIC_MODULE_DATA_PATH=/path/to/folder/Music
TEXT_MODULE_DATA_PATH=/path/to/folder/Text
VIDEOS_MODULE_DATA_PATH=/path/to/folder/Videos
"""


def compose_config(env_file: Path) -> dict:
    if shutil.which("docker-compose") is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing; .ci/run installs Debian's docker-compose")
        pytest.skip("docker-compose is not installed")
    environment = {key: value for key, value in os.environ.items()
                   if key not in {"CONTAINER_NAME", "EXTERNAL_PORT"} and not key.endswith("_MODULE_DATA_PATH")}
    done = subprocess.run(["docker-compose", "--env-file", str(env_file), "-f", str(REPO / "docker-compose.yml"),
                           "config"], capture_output=True, text=True, cwd=REPO, env=environment, timeout=60)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)["services"]["anagnorisis"]


def test_compose_accepts_the_original_apps_env_unchanged(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(ORIGINAL_ENV)
    service = compose_config(env_file)
    assert service["container_name"] == "anagnorisis-app"
    assert service["ports"] in (["127.0.0.1:5001:7860/tcp"], ["127.0.0.1:5001:7860"],
                                [{"host_ip": "127.0.0.1", "published": 5001, "target": 7860, "protocol": "tcp"}])
    volumes = service["volumes"]
    assert "/path/to/folder/Anagnorisis-app:/mnt/state:rw" in volumes
    for kind, folder in (("images", "Images"), ("music", "Music"), ("text", "Text"), ("videos", "Videos")):
        assert f"/path/to/folder/{folder}:/mnt/media/{kind}:ro" in volumes


def test_compose_accepts_our_env_example_and_publishes_on_loopback(tmp_path: Path) -> None:
    service = compose_config(REPO / ".env.example")
    assert all(str(port).startswith("127.0.0.1:7860:7860") for port in service["ports"])
    assert all(volume.endswith(":ro") for volume in service["volumes"] if "/mnt/media/" in volume)


def dockerfile_env_and_cmd() -> tuple[dict[str, str], list[str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    command: list[str] = []
    for line in text.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, _, value = pair.partition("=")
                env[key] = value
        if line.startswith("CMD "):
            command = yaml.safe_load(line[4:])
    return env, command


def test_the_images_entry_command_serves_with_the_images_environment(tmp_path: Path) -> None:
    env, command = dockerfile_env_and_cmd()
    assert env["ANAGNORISIS_CONTAINER"] == "1" and env["ANAGNORISIS_HOST"] == "0.0.0.0"
    assert command == ["python3", "app.py"]
    port = free_port()
    paths = {f"ANAGNORISIS_{kind.upper()}_ROOTS": str(tmp_path / "media" / kind)
             for kind in ("images", "music", "text", "videos")}
    for folder in paths.values():
        Path(folder).mkdir(parents=True)
    environment = {**os.environ, **{k: v for k, v in env.items() if k != "PATH"}, **paths,
                   "ANAGNORISIS_DATA_DIR": str(tmp_path / "state"), "ANAGNORISIS_PORT": str(port),
                   "HF_HOME": str(tmp_path / "state" / "models")}
    process = subprocess.Popen([sys.executable if part == "python3" else part for part in command], cwd=REPO,
                               env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True).start()
    try:
        deadline = time.monotonic() + 90
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while True:
            try:
                token = (tmp_path / "state" / "token").read_text().strip()  # written before the app serves
                request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"X-Anagnorisis-Token": token})
                with opener.open(request, timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert process.poll() is None, "".join(lines)
                assert time.monotonic() < deadline, "the entry command did not serve in time"
                time.sleep(0.25)
        assert (tmp_path / "state" / "app.json").exists(), "app.json is written before the server answers"
        deadline = time.monotonic() + 30  # the address is printed once launch() has finished its own checks
        while not any("Anagnorisis is running" in line for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert not (tmp_path / "state" / "app.json").exists(), "app.json is removed on exit"
    printed = "".join(lines)
    assert re.search(r"0\.0\.0\.0", printed) is not None
    assert f"/?token={token}" in printed, "the image prints the address with the owner's token"
