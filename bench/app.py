"""App responsiveness on a 100k-file library (SPEC §9): start → UI served, gallery page, rating → committed, RSS.

Baseline measured in the same run: `import gradio` + an empty Blocks, launched, until its page answers.
The library is generated (70 % JPEG, 30 % text), scanned, and given stored vectors for every file (random unit
vectors under the active image model id), so the app starts on an already-indexed library as a user's would.

    python bench/app.py                 # 100,000 files
    python bench/app.py --files 5000    # quick
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.scan import make_library  # noqa: E402

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
ENV = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_served(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        try:
            with OPENER.open(url, timeout=2) as response:
                if response.status == 200:
                    return time.perf_counter()
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(url)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


BASELINE = """
import gradio as gr, sys
with gr.Blocks(analytics_enabled=False) as demo:
    gr.Markdown("empty")
demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), share=False, prevent_thread_lock=False)
"""


def time_start(command: list[str], port: int) -> tuple[float, subprocess.Popen[bytes]]:
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    served = wait_served(f"http://127.0.0.1:{port}/", process)
    return served - started, process


def prepare(work: Path, files: int) -> Path:
    from anagnorisis.cli import open_library
    from anagnorisis.config import load_settings
    from anagnorisis.embed.registry import resolve_encoder
    from anagnorisis.library.scan import scan
    from anagnorisis.store.vectors import save_vectors

    library = work / "library"
    make_library(library, files)
    settings = load_settings({"data_dir": str(work / "data"), "images_roots": [str(library)],
                              "text_roots": [str(library)]})
    store = open_library(settings)
    scan(store)
    for kind in ("images", "text"):
        model_id = resolve_encoder(kind, settings)[0].model_id
        hashes = [row[0] for row in store.read(lambda c: c.execute(
            "SELECT DISTINCT content_hash FROM files WHERE kind = ?", [kind]).fetchall())]
        rng = np.random.default_rng(0)
        for start in range(0, len(hashes), 20_000):
            chunk = hashes[start:start + 20_000]
            vectors = rng.standard_normal((len(chunk), 384)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            # Texts get their one passage too, as `embed` stores them: without chunk rows the app's start-up
            # embed would load the text model to fill them in, and the run would measure that instead.
            passages = [_Passage([(0, 1)], vector[None, :]) for vector in vectors] if kind == "text" else None
            save_vectors(store, model_id, chunk, vectors, passages)
    store.close()
    return library


@dataclass(frozen=True)
class _Passage:
    """One file's chunk spans and vectors, the shape store.vectors.save_vectors takes."""

    spans: list[tuple[int, int]]
    vectors: np.ndarray


def search_args(sort: str | None, offset: int) -> dict[str, object]:
    """Every argument of /search, in order (the raw HTTP API takes them all)."""
    return {"kind": "images", "query": None, "mode": "auto", "sort": sort, "order": "desc", "temperature": 0,
            "seed": 0, "offset": offset, "limit": 24, "folder": None, "rated": False, "unrated": False,
            "rating": None, "model_rating": None, "ext": None}


BARE_CALLS = 500


def call(url: str, api: str, payload: dict[str, object]) -> float:
    """Seconds for one named-endpoint call (Gradio's two-step HTTP API: POST, then read the event stream)."""
    started = time.perf_counter()
    request = urllib.request.Request(f"{url}gradio_api/call/{api}", data=json.dumps({"data": list(payload.values())}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with OPENER.open(request, timeout=60) as response:
        event_id = json.loads(response.read())["event_id"]
    with OPENER.open(f"{url}gradio_api/call/{api}/{event_id}", timeout=60) as response:
        body = response.read().decode()
    if "event: error" in body:
        raise RuntimeError(body[:300])
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="anagnorisis-bench-app-"))
    try:
        library = prepare(work, args.files)
        port = free_port()
        baseline_s, baseline = time_start([sys.executable, "-c", BASELINE, str(port)], port)
        baseline_rss = rss_mb(baseline.pid)
        baseline.terminate()
        baseline.wait()

        port = free_port()
        start_s, app = time_start([sys.executable, "app.py", "--data-dir", str(work / "data"), "--port", str(port)],
                                  port)
        url = f"http://127.0.0.1:{port}/"
        try:
            time.sleep(3)  # let the start-up rescan of the unchanged library finish
            photo = next(library.glob("folder0000/*.jpg"))
            first_page = call(url, "search", search_args(None, 0))
            pages = [call(url, "search", search_args("rating", offset)) for offset in range(0, 24 * 10, 24)]
            ratings = [call(url, "rate", {"path": str(photo), "rating": float(value % 11)}) for value in range(20)]
            searched_rss = rss_mb(app.pid)
            rated_photos = sorted(library.glob("folder000[1-4]/*.jpg"))[:50]
            for value, rated in enumerate(rated_photos):
                call(url, "rate", {"path": str(rated), "rating": float(value % 11)})
            first_next = call(url, "next", {"kind": "images", "n": 12})
            queues = [call(url, "next", {"kind": "images", "n": 12}) for _ in range(5)]
            whys = [call(url, "why", {"path": str(p)}) for p in sorted(library.glob("folder0009/*.jpg"))[:5]]
            app_rss = rss_mb(app.pid)
            # A script driving the named endpoints by bare HTTP calls: each is a new Gradio session.
            for offset in range(BARE_CALLS):
                call(url, "search", search_args(None, 24 * (offset % 10)))
            scripted_rss = rss_mb(app.pid)
        finally:
            app.terminate()
            app.wait()

        from anagnorisis.cli import open_library
        from anagnorisis.config import load_settings
        from anagnorisis.store.ratings import set_rating

        store = open_library(load_settings({"data_dir": str(work / "data")}))
        commits = []
        for value in range(200):
            started = time.perf_counter()
            set_rating(store, "0" * 32, float(value % 11))
            commits.append(time.perf_counter() - started)
        store.close()

        lines = [
            f"# App benchmark: {args.files:,} files ({os.cpu_count()} cores)",
            "",
            "| measure | value | baseline | ratio |",
            "|---|---:|---:|---:|",
            f"| start → UI served | {start_s:.2f} s | {baseline_s:.2f} s (import gradio + empty Blocks) | "
            f"{start_s / baseline_s:.2f} |",
            f"| RSS at the end (after /next and /why too), no model loaded | {app_rss:.0f} MB | {baseline_rss:.0f} MB (empty Blocks) "
            f"| {app_rss / baseline_rss:.2f} |",
            f"| RSS after start + searches + ratings, before /next and /why | {searched_rss:.0f} MB | "
            f"{baseline_rss:.0f} MB (empty Blocks) | {searched_rss / baseline_rss:.2f} |",
            f"| RSS after {BARE_CALLS} more bare HTTP /search calls (a script's) | {scripted_rss:.0f} MB | "
            f"{app_rss:.0f} MB (before them) | {scripted_rss / app_rss:.2f} |",
            f"| first gallery page (/search, cold records cache) | {first_page * 1000:.0f} ms | | |",
            f"| gallery page, warm (/search sort=rating, median of 10) | {statistics.median(pages) * 1000:.0f} ms | | |",
            f"| rating through /rate (HTTP round trip, median of 20) | {statistics.median(ratings) * 1000:.1f} ms | | |",
            f"| rating → committed in the store (median of 200) | {statistics.median(commits) * 1000:.2f} ms | | |",
            f"| rate next, first call (/next n=12, 51 ratings; fits the picker's features) | {first_next * 1000:.0f} ms"
            f" | {statistics.median(pages) * 1000:.0f} ms (warm gallery page) | {first_next / statistics.median(pages):.1f} |",
            f"| rate next, later calls (/next n=12, median of 5) | {statistics.median(queues) * 1000:.0f} ms"
            f" | {statistics.median(pages) * 1000:.0f} ms (warm gallery page) | {statistics.median(queues) / statistics.median(pages):.1f} |",
            f"| why (/why, median of 5) | {statistics.median(whys) * 1000:.0f} ms"
            f" | {statistics.median(pages) * 1000:.0f} ms (warm gallery page) | {statistics.median(whys) / statistics.median(pages):.1f} |",
            "",
            f"Targets: start ≤ 5 s ({'met' if start_s <= 5 else 'NOT met'}), RSS ≤ 1 GB "
            f"({'met' if app_rss <= 1024 else 'NOT met'}).",
        ]
        report = "\n".join(lines)
        print(report)
        (REPO / "bench" / "results").mkdir(exist_ok=True)
        (REPO / "bench" / "results" / "app.md").write_text(report + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
