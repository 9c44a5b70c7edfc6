"""Many clients at once: 100 concurrent ratings through the named endpoints, a scan running meanwhile, a forwarded
CLI command while the UI is busy. Last write wins per file and every change is in the history."""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb

from tests.conftest import Cli
from tests.media import write_jpeg
from tests.ui.conftest import RunningApp


def test_a_hundred_concurrent_ratings_lose_nothing(running_app: RunningApp) -> None:
    photos = [str(photo) for photo in running_app.photos]
    clients = [running_app.client(), running_app.client()]
    requests = [(index % 2, photos[index % 4] if index % 3 else photos[0], (index % 21) / 2) for index in range(100)]
    for extra in range(30):  # files added while ratings arrive, for the scan running meanwhile
        write_jpeg(running_app.library / f"late {extra}.jpg", color=(extra, 2 * extra, 3 * extra))
    running_app.app.context.start_scan(["images"])

    def rate(request: tuple[int, str, float]) -> tuple[str, float, str]:
        client, path, rating = request
        document = clients[client].predict(path=path, rating=rating, api_name="/rate")
        assert document["record"]["user_rating"] == rating
        return path, rating, document["record"]["content_hash"]

    forwarded: list[str] = []
    cli_thread = threading.Thread(target=lambda: forwarded.append(
        Cli(running_app.data_dir).subprocess("--json", "search", "images", "--limit", "1").stdout))
    cli_thread.start()
    with ThreadPoolExecutor(max_workers=16) as pool:
        done = list(pool.map(rate, requests))
    cli_thread.join()
    assert json.loads(forwarded[0])["total"] >= len(photos)
    running_app.app.context.jobs.wait("scan", timeout=60)
    hashes = {path: content_hash for path, _rating, content_hash in done}
    running_app.app.close()

    connection = duckdb.connect(str(running_app.data_dir / "anagnorisis.duckdb"), read_only=True)
    try:
        history = connection.execute("SELECT content_hash, old, new FROM rating_history ORDER BY changed_at").fetchall()
        ratings = dict(connection.execute("SELECT content_hash, rating FROM ratings").fetchall())
        late = connection.execute("SELECT count(*) FROM files WHERE display_path LIKE '%late %'").fetchone()[0]
    finally:
        connection.close()
    assert late == 30, "the scan running meanwhile completed"
    for path, content_hash in hashes.items():
        changes = [row for row in history if row[0] == content_hash]
        assert ratings[content_hash] == changes[-1][2], "the stored rating is the last one written"
        for before, after in zip(changes, changes[1:]):
            assert after[1] == before[2], "each history row starts where the previous one ended: none lost"
    sent = {path: [rating for p, rating, _h in done if p == path] for path in hashes}
    for path, content_hash in hashes.items():
        assert {row[2] for row in history if row[0] == content_hash} <= set(sent[path])
        assert ratings[content_hash] in sent[path]
