"""`models download` against a fake Hugging Face hub on 127.0.0.1 (HF_ENDPOINT): a tiny SigLIP is served, the
connection is cut in the middle of the weights, and the download resumes from where it stopped."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import REPO
from tests.embed.models import build_tiny_siglip
from tests.media import write_jpeg

REPO_ID = "google/siglip-base-patch16-224"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    """Serves one model repo the way the hub's API does, cutting the first transfer of the weights in half."""

    def __init__(self, folder: Path) -> None:
        self.files = {path.relative_to(folder).as_posix(): path.read_bytes()
                      for path in sorted(folder.rglob("*")) if path.is_file()}
        # Real weights are hundreds of MB; the hub library writes in 10 MB chunks, so a cut only leaves a partial
        # file to resume from when a file is larger than that: this one is 24 MB (fetched by the "*.txt" rule).
        self.files["big-notes.txt"] = os.urandom(24 << 20)
        self.requests: list[tuple[str, str, str | None]] = []
        self.cut_once = {"big-notes.txt"}
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:  # noqa: N802
                hub.answer(self, head=True)

            def do_GET(self) -> None:  # noqa: N802
                hub.answer(self, head=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, handler: BaseHTTPRequestHandler, *, head: bool) -> None:
        path = handler.path.split("?")[0]
        self.requests.append((handler.command, path, handler.headers.get("Range")))
        if path.startswith(f"/api/models/{REPO_ID}/revision/") or path == f"/api/models/{REPO_ID}":
            return self.json(handler, {"id": REPO_ID, "modelId": REPO_ID, "sha": COMMIT, "private": False,
                                       "siblings": [{"rfilename": name} for name in self.files]})
        if path.startswith(f"/api/models/{REPO_ID}/tree/"):
            return self.json(handler, [{"type": "file", "path": name, "size": len(data),
                                        "oid": hashlib.sha1(data).hexdigest()} for name, data in self.files.items()])
        prefix = f"/{REPO_ID}/resolve/"
        if path.startswith(prefix):
            name = path[len(prefix):].split("/", 1)[1]
            if name in self.files:
                return self.file(handler, name, head)
        handler.send_response(404)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def json(self, handler: BaseHTTPRequestHandler, document: Any) -> None:
        body = json.dumps(document).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def file(self, handler: BaseHTTPRequestHandler, name: str, head: bool) -> None:
        data = self.files[name]
        start = 0
        requested = handler.headers.get("Range")
        if requested and requested.startswith("bytes="):
            start = int(requested[6:].split("-")[0] or 0)
        body = data[start:]
        handler.send_response(206 if start else 200)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        handler.send_header("X-Repo-Commit", COMMIT)
        handler.send_header("Accept-Ranges", "bytes")
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        handler.end_headers()
        if head:
            return
        if name in self.cut_once and not start:
            self.cut_once.discard(name)
            handler.wfile.write(body[: len(body) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(2)  # the connection drops in the middle of the weights
            return
        handler.wfile.write(body)

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[FakeHub]:
    served = FakeHub(build_tiny_siglip(tmp_path / "tiny-siglip"))
    yield served
    served.close()


def run_cli(tmp_path: Path, hub: FakeHub, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_XET": "1",
           "HF_HUB_ETAG_TIMEOUT": "5", "HF_HUB_DOWNLOAD_TIMEOUT": "5"}
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("TRANSFORMERS_OFFLINE", None)
    return subprocess.run([sys.executable, "-m", "anagnorisis", "--data-dir", str(tmp_path / "data"), *args],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_a_cut_download_resumes_and_the_model_then_serves(tmp_path: Path, hub: FakeHub) -> None:
    first = run_cli(tmp_path, hub, "--json", "models", "download", "images")
    if first.returncode != 0:  # the hub library gave up on the cut transfer: running again resumes it
        assert "run the command again to resume" in first.stdout
        first = run_cli(tmp_path, hub, "--json", "models", "download", "images")
    assert first.returncode == 0, first.stdout + first.stderr
    big = [entry for entry in hub.requests if entry[0] == "GET" and entry[1].endswith("big-notes.txt")]
    assert len(big) >= 2 and any(entry[2] and entry[2] != "bytes=0-" for entry in big[1:]), big
    folder = Path(json.loads(first.stdout)["downloaded"][0]["path"])
    assert (folder / "big-notes.txt").read_bytes() == hub.files["big-notes.txt"], "resumed into a whole file"
    assert (folder / "model.safetensors").read_bytes() == hub.files["model.safetensors"]
    assert "%" in first.stderr or "it/s" in first.stderr or "B/s" in first.stderr, "progress is shown"

    listed = json.loads(run_cli(tmp_path, hub, "--json", "models", "list").stdout)["models"]
    assert any(row["id"] == REPO_ID and row["kind"] == "images" and row["downloaded"] for row in listed)
    library = tmp_path / "photos"
    write_jpeg(library / "a.jpg")
    assert run_cli(tmp_path, hub, "library", "add", "images", str(library)).returncode == 0
    assert run_cli(tmp_path, hub, "scan").returncode == 0
    embedded = json.loads(run_cli(tmp_path, hub, "--json", "embed", "images").stdout)
    assert embedded["model"] == REPO_ID and embedded["embedded"] == 1


def test_offline_mode_refuses_before_any_request(tmp_path: Path, hub: FakeHub,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANAGNORISIS_OFFLINE", "1")
    refused = run_cli(tmp_path, hub, "--json", "models", "download", "images")
    assert refused.returncode == 2 and "ANAGNORISIS_OFFLINE" in refused.stdout
    assert hub.requests == []


@pytest.mark.parametrize("damage", ["truncated weights", "missing tokenizer", "near-empty tokenizer"])
def test_a_damaged_model_folder_is_reported_with_the_repair_command_and_embedding_falls_back(
    tmp_path: Path, damage: str
) -> None:
    from anagnorisis.cli import open_library
    from anagnorisis.config import load_settings
    from anagnorisis.embed import registry
    from anagnorisis.embed.pipeline import embed_missing
    from anagnorisis.library.scan import scan
    from anagnorisis.store.roots import add_root
    from tests.embed.models import empty_the_tokenizer, truncate_the_weights

    folder = build_tiny_siglip(tmp_path / "model")
    if damage == "truncated weights":
        truncate_the_weights(folder)
    elif damage == "missing tokenizer":
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json"):
            (folder / name).unlink(missing_ok=True)
    else:
        empty_the_tokenizer(folder)
    registry.forget_encoders()
    settings = load_settings({"data_dir": str(tmp_path / "data"), "images_model": str(folder)})
    encoder, status = registry.resolve_encoder("images", settings)
    assert not status.available and "models download images --force" in status.message, status.message
    store = open_library(settings)
    try:
        write_jpeg(tmp_path / "photos" / "a.jpg")
        add_root(store, "images", tmp_path / "photos")
        scan(store, ["images"])
        result = embed_missing(store, "images", encoder)
    finally:
        store.close()
        registry.forget_encoders()
    assert result["embedded"] == 1 and result["model"] == "basic-image-v1"
