"""ChunkIndex: per-file smooth maxima of chunk cosines from one matrix product, and run_search ranking by them."""
from __future__ import annotations

import numpy as np
import pytest

from anagnorisis.search.chunk_index import ChunkIndex
from anagnorisis.embed.sentence import smooth_max
from anagnorisis.search.vector_index import VectorIndex
from anagnorisis.search import SearchRequest, run_search
from tests.search.conftest import RecordFactory

DIM = 16


def unit_rows(rng: np.random.Generator, count: int) -> np.ndarray:
    rows = rng.normal(size=(count, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture
def library() -> tuple[list[str], np.ndarray, np.ndarray]:
    """40 files of 1-9 chunks: (hashes, starts, chunk matrix)."""
    rng = np.random.default_rng(7)
    counts = rng.integers(1, 10, 40)
    starts = np.concatenate([[0], np.cumsum(counts)])
    return [f"file{i:02d}" for i in range(40)], starts, unit_rows(rng, int(starts[-1]))


def test_every_files_score_is_the_smooth_max_of_its_chunk_cosines_on_both_paths(library) -> None:
    hashes, starts, matrix = library
    index = ChunkIndex(DIM)
    index.add(hashes[:25], starts[:26], matrix[: starts[25]])  # two batches, as an embed run adds them
    index.add(hashes[25:], starts[25:] - starts[25], matrix[starts[25] :])
    query = unit_rows(np.random.default_rng(1), 1)[0]
    for wanted in (hashes, hashes[3:5], [hashes[39], hashes[0]]):  # all rows, then gathered subsets
        scores = index.file_scores(query, index.positions(wanted))
        for slot, content_hash in enumerate(wanted):
            i = hashes.index(content_hash)
            cosines = matrix[starts[i] : starts[i + 1]] @ query
            assert scores.smooth[slot] == pytest.approx(smooth_max(cosines), abs=1e-6)
            assert scores.best[slot] == pytest.approx(cosines.max(), abs=1e-6)
            assert scores.best_chunk[slot] == int(np.argmax(cosines)) and scores.counts[slot] == len(cosines)


def test_adding_a_file_again_replaces_its_chunks(library) -> None:
    hashes, starts, matrix = library
    index = ChunkIndex(DIM)
    index.add(hashes, starts, matrix)
    index.add([hashes[4]], [0, 2], matrix[:2])
    assert (len(index), index.rows) == (40, starts[-1] - (starts[5] - starts[4]) + 2)
    assert np.allclose(index.chunk_vectors(hashes[4]), matrix[:2])
    assert np.allclose(index.chunk_vectors(hashes[5]), matrix[starts[5] : starts[6]]), "the others keep theirs"
    assert index.positions(["unknown"]).tolist() == [-1]
    with pytest.raises(ValueError):
        index.add(["x"], [0, 3], matrix[:2])


def test_meaning_search_ranks_by_passages_and_falls_back_to_the_file_vector(make_record: RecordFactory) -> None:
    query = np.eye(DIM, dtype=np.float32)[0]
    off = np.eye(DIM, dtype=np.float32)[1]
    blend = (0.3 * query + off) / np.linalg.norm(0.3 * query + off)
    records = [make_record(f"{name}.txt", kind="text", content_hash=name) for name in ("long", "short", "old")]
    # long: one exact passage among nine off-topic ones, so its mean is far from the query; short: one
    # passage leaning towards the query; old: no chunk vectors, only a file vector (embedded before chunks).
    long_chunks = np.vstack([query] + [off] * 9)
    mean = long_chunks.mean(axis=0)
    files = VectorIndex(DIM)
    files.add(["long", "short", "old"], np.vstack([mean / np.linalg.norm(mean), blend, blend]))
    chunks = ChunkIndex(DIM)
    chunks.add(["long", "short"], [0, 10, 11], np.vstack([long_chunks, blend]))

    def search(**options: object) -> list[dict]:
        request = SearchRequest("text", "q", **options)  # type: ignore[arg-type]
        return run_search(request, records, index=files, encode_text=lambda text: query, chunks=chunks).results

    by_mean = run_search(SearchRequest("text", "q"), records, index=files, encode_text=lambda text: query).results
    assert by_mean[-1]["content_hash"] == "long", "without chunks the long file comes last"
    found = search()
    assert [item["content_hash"] for item in found] == ["long", "old", "short"]
    assert found[0]["score"] == pytest.approx(smooth_max(long_chunks @ query))
    assert "smooth max of 10 passages; best passage 1.000, passage 1" in found[0]["reason"]
    assert found[1]["score"] == pytest.approx(float(blend @ query)) and "whole-file vector" in found[1]["reason"]
    assert "one passage" in found[2]["reason"]
    assert [item["content_hash"] for item in search(offset=1, limit=1)] == ["old"]
    assert [item["content_hash"] for item in search(order="asc")][0] in ("old", "short")
    drawn = search(temperature=1.0, seed=5)
    assert drawn == search(temperature=1.0, seed=5) and len(drawn) == 3
    assert [item["content_hash"] for item in search(ext="md")] == []
