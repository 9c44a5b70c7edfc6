"""Embeddings keyed by (content hash, model id), stored as float32 bytes so they load into one contiguous matrix.

Text files also keep the vectors of their passages (chunks) in ``chunk_embeddings``, written in the transaction
of the file's mean vector so the two never disagree; meaning search scores a text by its best passages.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol, Sequence

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from anagnorisis.store.db import Store

Vectors = npt.NDArray[np.float32]


class FileChunks(Protocol):
    """The passages of one file: character spans (start, end) and one L2-normalised vector per span."""

    @property
    def spans(self) -> Sequence[tuple[int, int]]: ...

    @property
    def vectors(self) -> np.ndarray: ...


@dataclass(frozen=True)
class StoredChunks:
    """Every chunk vector of a model, rows grouped by file: file i owns rows starts[i]:starts[i+1]."""

    hashes: list[str]  # one per file, in row order
    starts: npt.NDArray[np.int64]  # first row of each file, plus the row count at the end
    spans: npt.NDArray[np.int64]  # (rows, 2) character spans
    matrix: Vectors  # (rows, dim)


def save_vectors(store: Store, model_id: str, hashes: Sequence[str], vectors: np.ndarray,
                 chunks: Sequence[FileChunks] | None = None) -> None:
    """Upsert one vector per hash (rows must already be L2-normalised) and, when given, each file's chunk
    vectors (chunks[i] belongs to hashes[i]), all in one transaction."""
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != len(hashes):
        raise ValueError(f"expected {len(hashes)} vectors, got an array of shape {matrix.shape}")
    if chunks is not None and len(chunks) != len(hashes):
        raise ValueError(f"expected chunks of {len(hashes)} files, got {len(chunks)}")
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
    chunk_table = _chunk_table(model_id, hashes, chunks) if chunks is not None else None

    def write(conn: duckdb.DuckDBPyConnection) -> None:
        conn.register("new_vectors", table)
        try:
            conn.execute("INSERT OR REPLACE INTO embeddings SELECT * FROM new_vectors")
        finally:
            conn.unregister("new_vectors")
        if chunk_table is not None:
            _replace_chunks(conn, model_id, hashes, chunk_table)

    store.write(write)


def save_chunks(store: Store, model_id: str, hashes: Sequence[str], chunks: Sequence[FileChunks]) -> None:
    """Replace the chunk vectors of files whose mean vector is stored already (filling in files embedded before
    chunk vectors were kept); the mean vectors stay as they are."""
    if len(chunks) != len(hashes):
        raise ValueError(f"expected chunks of {len(hashes)} files, got {len(chunks)}")
    if not len(hashes):
        return
    table = _chunk_table(model_id, hashes, chunks)
    store.write(lambda conn: _replace_chunks(conn, model_id, hashes, table))


def _chunk_table(model_id: str, hashes: Sequence[str], chunks: Sequence[FileChunks]) -> pa.Table:
    owners: list[str] = []
    numbers: list[int] = []
    spans: list[tuple[int, int]] = []
    blobs: list[bytes] = []
    dims: list[int] = []
    for content_hash, file_chunks in zip(hashes, chunks):
        rows = np.ascontiguousarray(file_chunks.vectors, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[0] != len(file_chunks.spans):
            raise ValueError(f"{content_hash}: {len(file_chunks.spans)} spans but vectors of shape {rows.shape}")
        owners.extend([content_hash] * len(rows))
        numbers.extend(range(len(rows)))
        spans.extend((int(a), int(b)) for a, b in file_chunks.spans)
        blobs.extend(row.tobytes() for row in rows)
        dims.extend([rows.shape[1]] * len(rows))
    return pa.table(
        {
            "content_hash": pa.array(owners, pa.string()),
            "model_id": pa.array([model_id] * len(owners), pa.string()),
            "chunk": pa.array(numbers, pa.int32()),
            "start_char": pa.array([a for a, _ in spans], pa.int32()),
            "end_char": pa.array([b for _, b in spans], pa.int32()),
            "dim": pa.array(dims, pa.int32()),
            "vector": pa.array(blobs, pa.binary()),
        }
    )


def _replace_chunks(conn: duckdb.DuckDBPyConnection, model_id: str, hashes: Sequence[str], table: pa.Table) -> None:
    """Inside a write: drop the files' old chunk rows of this model, insert the new ones."""
    files = pa.table({"content_hash": pa.array(list(hashes), pa.string())})
    conn.register("chunk_files", files)
    conn.register("new_chunks", table)
    try:
        conn.execute("DELETE FROM chunk_embeddings WHERE model_id = ? AND content_hash IN"
                     " (SELECT content_hash FROM chunk_files)", [model_id])
        conn.execute("INSERT INTO chunk_embeddings SELECT * FROM new_chunks")
    finally:
        conn.unregister("new_chunks")
        conn.unregister("chunk_files")


def chunked_hashes(store: Store, model_id: str) -> set[str]:
    """The content hashes that have chunk vectors for this model."""
    rows = store.read(lambda c: c.execute(
        "SELECT DISTINCT content_hash FROM chunk_embeddings WHERE model_id = ?", [model_id]).fetchall())
    return {row[0] for row in rows}


def count_chunks(store: Store, model_id: str) -> tuple[int, int]:
    """(number of chunk vectors, their dimension) of a model, before deciding to load them."""
    row = store.read(lambda c: c.execute(
        "SELECT count(*), max(dim) FROM chunk_embeddings WHERE model_id = ?", [model_id]).fetchone())
    return int(row[0] or 0), int(row[1] or 0)


def load_chunks(store: Store, model_id: str, hashes: Sequence[str] | None = None) -> StoredChunks:
    """The chunk vectors of a model (all, or those of the given hashes), rows grouped by file in chunk order."""

    def query(conn: duckdb.DuckDBPyConnection) -> pa.Table:
        columns = "c.content_hash, c.chunk, c.start_char, c.end_char, c.dim, c.vector"
        order = " ORDER BY c.content_hash, c.chunk"
        if hashes is None:
            return conn.sql(f"SELECT {columns} FROM chunk_embeddings c WHERE c.model_id = ?{order}",
                            params=[model_id]).to_arrow_table()
        conn.register("wanted_hashes", pa.table({"content_hash": pa.array(list(hashes), pa.string())}))
        try:
            return conn.sql(f"SELECT {columns} FROM chunk_embeddings c JOIN wanted_hashes w USING (content_hash)"
                            f" WHERE c.model_id = ?{order}", params=[model_id]).to_arrow_table()
        finally:
            conn.unregister("wanted_hashes")

    return _stored_chunks(store.read(query), model_id)


def _stored_chunks(table: pa.Table, model_id: str) -> StoredChunks:
    """Rows sorted by (hash, chunk) → StoredChunks; a file starts at its chunk 0 (chunks are numbered from 0)."""
    if not table.num_rows:
        return StoredChunks([], np.zeros(1, np.int64), np.zeros((0, 2), np.int64), np.zeros((0, 0), np.float32))
    dims = pc.unique(table.column("dim")).to_pylist()
    if len(dims) != 1:
        raise ValueError(f"model {model_id} has chunk vectors of several sizes {sorted(dims)}; "
                         f"re-embed with --model {model_id}")
    firsts = np.flatnonzero(table.column("chunk").to_numpy() == 0)
    owners = table.column("content_hash").take(pa.array(firsts)).to_pylist()
    spans = np.stack([table.column("start_char").to_numpy(), table.column("end_char").to_numpy()], axis=1)
    return StoredChunks(owners, np.append(firsts, table.num_rows).astype(np.int64), spans.astype(np.int64),
                        _blobs_as_matrix(table.column("vector"), table.num_rows, dims[0]))


def _blobs_as_matrix(column: pa.ChunkedArray, rows: int, dim: int) -> Vectors:
    """Equal-sized float32 blobs as one (rows, dim) matrix, copied straight from Arrow's data buffers (chunk by
    chunk: one binary array holds at most 2 GB, less than 1M × 768 floats)."""
    matrix = np.empty((rows, dim), dtype=np.float32)
    filled = 0
    for blobs in column.chunks:
        count = len(blobs)
        if not count:
            continue
        width = np.int64 if pa.types.is_large_binary(blobs.type) else np.int32
        offsets = np.frombuffer(blobs.buffers()[1], dtype=width)[blobs.offset : blobs.offset + count + 1]
        if not np.all(np.diff(offsets) == dim * 4):
            raise ValueError(f"vectors of {dim} dimensions expected, found blobs of other sizes")
        data = np.frombuffer(blobs.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
        matrix[filled : filled + count] = data.view(np.float32).reshape(count, dim)
        filled += count
    if filled != rows:
        raise ValueError(f"expected {rows} vectors, found {filled}")
    return matrix


def embedded_hashes(store: Store, model_id: str) -> set[str]:
    rows = store.read(lambda c: c.execute("SELECT content_hash FROM embeddings WHERE model_id = ?", [model_id]).fetchall())
    return {row[0] for row in rows}


def embedded_present_hashes(store: Store, kind: str, model_id: str) -> list[str]:
    """The content hashes of the kind's present files that have a vector of `model_id`, sorted."""
    rows = store.read(lambda c: c.execute(
        "SELECT DISTINCT f.content_hash FROM files f JOIN embeddings e"
        " ON e.content_hash = f.content_hash AND e.model_id = ?"
        " WHERE f.kind = ? AND NOT f.missing ORDER BY f.content_hash", [model_id, kind]
    ).fetchall())
    return [row[0] for row in rows]


def vector_fingerprint(store: Store, model_id: str) -> tuple[int, int]:
    """(how many vectors a model has, the order-free checksum of their hashes) without reading a vector: the
    XOR of DuckDB's hash() of each, the number ``index.hash_list_checksum`` computes from a list (0.1 s at 1M)."""
    row = store.read(lambda c: c.execute(
        "SELECT count(*), coalesce(bit_xor(hash(content_hash)), 0) FROM embeddings WHERE model_id = ?",
        [model_id]).fetchone())
    return int(row[0]), int(row[1])


def count_files_with_vectors(store: Store, kind: str, model_id: str) -> tuple[int, int]:
    """(present files of a kind with a vector of this model, those without one); copies of a content count each."""
    row = store.read(lambda c: c.execute(
        "SELECT count(e.content_hash), count(*) - count(e.content_hash) FROM files f"
        " LEFT JOIN embeddings e ON e.content_hash = f.content_hash AND e.model_id = ?"
        " WHERE f.kind = ? AND NOT f.missing", [model_id, kind]).fetchone())
    return int(row[0]), int(row[1])


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
    dims = pc.unique(table.column("dim")).to_pylist()
    if len(dims) != 1:
        raise ValueError(f"model {model_id} has vectors of several sizes {sorted(dims)}; re-embed with --model {model_id}")
    # Straight from Arrow's buffer: no Python bytes object per row (100k of them fragmented the heap).
    return found, _blobs_as_matrix(table.column("vector"), len(found), dims[0])


def hash_list_checksum(hashes: Iterable[str]) -> int:
    """An order-free 64-bit fingerprint of a set of hashes: the XOR of DuckDB's ``hash()`` of each.

    The store computes the same number with ``bit_xor(hash(content_hash))`` in one scan of the hash column
    (≈ 0.1 s at 1M, where MD5 took 1.5 s), so a saved index is checked against the stored vectors without
    reading one. DuckDB does not promise ``hash()`` across versions: the meta file names the version, and a
    save from another one gets its checksum computed again from its hashes (``search.vector_index._checksum_function``).
    """
    import duckdb
    import pyarrow as pa

    table = pa.table({"h": pa.array(list(hashes), pa.string())})
    if not table.num_rows:
        return 0
    with duckdb.connect() as conn:
        conn.register("checked_hashes", table)
        return int(conn.execute("SELECT bit_xor(hash(h)) FROM checked_hashes").fetchone()[0])
