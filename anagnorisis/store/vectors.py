"""Embeddings keyed by (content hash, model id), stored as float32 bytes so they load into one contiguous matrix."""
from __future__ import annotations

from typing import Sequence

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from anagnorisis.store.db import Store

Vectors = npt.NDArray[np.float32]


def save_vectors(store: Store, model_id: str, hashes: Sequence[str], vectors: np.ndarray) -> None:
    """Upsert one vector per hash (rows must already be L2-normalised)."""
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != len(hashes):
        raise ValueError(f"expected {len(hashes)} vectors, got an array of shape {matrix.shape}")
    if not len(hashes):
        return
    dim = matrix.shape[1]
    table = pa.table(
        {
            "content_hash": pa.array(list(hashes), pa.string()),
            "model_id": pa.array([model_id] * len(hashes), pa.string()),
            "dim": pa.array([dim] * len(hashes), pa.int32()),
            "vector": pa.array([row.tobytes() for row in matrix], pa.binary()),
        }
    )

    def write(conn: duckdb.DuckDBPyConnection) -> None:
        conn.register("new_vectors", table)
        try:
            conn.execute("INSERT OR REPLACE INTO embeddings SELECT * FROM new_vectors")
        finally:
            conn.unregister("new_vectors")

    store.write(write)


def embedded_hashes(store: Store, model_id: str) -> set[str]:
    rows = store.read(lambda c: c.execute("SELECT content_hash FROM embeddings WHERE model_id = ?", [model_id]).fetchall())
    return {row[0] for row in rows}


def load_vectors(store: Store, model_id: str, hashes: Sequence[str] | None = None) -> tuple[list[str], Vectors]:
    """All vectors of a model (or those of the given hashes that exist), as (hashes, one float32 matrix)."""

    def query(conn: duckdb.DuckDBPyConnection) -> pa.Table:
        if hashes is None:
            return conn.sql(
                "SELECT content_hash, dim, vector FROM embeddings WHERE model_id = ? ORDER BY content_hash",
                params=[model_id],
            ).to_arrow_table()
        wanted = pa.table({"content_hash": pa.array(list(hashes), pa.string())})
        conn.register("wanted_hashes", wanted)
        try:
            return conn.sql(
                "SELECT e.content_hash, e.dim, e.vector FROM embeddings e JOIN wanted_hashes w USING (content_hash)"
                " WHERE e.model_id = ? ORDER BY e.content_hash",
                params=[model_id],
            ).to_arrow_table()
        finally:
            conn.unregister("wanted_hashes")

    table = store.read(query)
    found = table.column("content_hash").to_pylist()
    if not found:
        return [], np.zeros((0, 0), dtype=np.float32)
    dims = set(table.column("dim").to_pylist())
    if len(dims) != 1:
        raise ValueError(f"model {model_id} has vectors of several sizes {sorted(dims)}; re-embed with --model {model_id}")
    matrix = np.frombuffer(b"".join(table.column("vector").to_pylist()), dtype=np.float32).reshape(len(found), dims.pop())
    return found, matrix.copy()
