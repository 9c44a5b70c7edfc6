"""What the store keeps in memory: vectors read in bulk, and the table blocks DuckDB caches while reading them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from anagnorisis.store import Store
from anagnorisis.store.vectors import _blobs_as_matrix, load_vectors, save_vectors


def _cached_table_bytes(store: Store) -> int:
    usage = dict(store.read(lambda c: c.execute("SELECT tag, memory_usage_bytes FROM duckdb_memory()").fetchall()))
    return int(usage.get("BASE_TABLE", 0))


def _memory_limit(store: Store) -> str:
    return store.read(lambda c: c.execute("SELECT current_setting('memory_limit')").fetchone()[0])


def test_release_cache_drops_the_blocks_a_bulk_vector_read_left_cached(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    hashes = [f"{i:032x}" for i in range(6000)]
    vectors = rng.standard_normal((len(hashes), 384)).astype(np.float32)
    with Store.open(tmp_path / "db.duckdb") as store:
        save_vectors(store, "m", hashes, vectors)
        store.checkpoint()
        limit = _memory_limit(store)
        found, X = load_vectors(store, "m")
        assert found == sorted(hashes) and np.array_equal(X, vectors)
        cached = _cached_table_bytes(store)
        assert cached > 4 << 20, "reading 9 MB of vectors leaves their blocks cached"
        assert store.release_cache(keep_bytes=1 << 20) > 0
        assert _cached_table_bytes(store) < cached / 2
        assert _memory_limit(store) == limit, "the memory limit is set back"
        assert store.release_cache(keep_bytes=1 << 20) == 0, "nothing worth releasing the second time"
        assert np.array_equal(load_vectors(store, "m", hashes[:3])[1], vectors[:3]), "reads work as before"


def test_blobs_of_several_arrow_chunks_make_one_matrix() -> None:
    rows = np.arange(5 * 4, dtype=np.float32).reshape(5, 4)
    column = pa.chunked_array([pa.array([r.tobytes() for r in rows[:2]], pa.binary()),
                               pa.array([], pa.binary()),
                               pa.array([r.tobytes() for r in rows[2:]], pa.large_binary()).cast(pa.binary())])
    assert np.array_equal(_blobs_as_matrix(column, 5, 4), rows)
    sliced = pa.chunked_array([pa.array([r.tobytes() for r in rows], pa.binary()).slice(1, 3)])
    assert np.array_equal(_blobs_as_matrix(sliced, 3, 4), rows[1:4])
