"""The taste models of each kind (`models`: one row per trained version, at most one active per kind) and the
ratings they predicted (`predictions`: one row per file and version)."""
from __future__ import annotations

from datetime import datetime
from typing import Callable, NamedTuple, Sequence

import duckdb
import numpy as np
import pyarrow as pa

from anagnorisis.store.db import Store, utc_now


class StoredModel(NamedTuple):
    """One models row; `metrics` is the saved report as JSON text, `file` is relative to the data dir."""

    version: int
    kind: str
    embedding_model: str
    created_at: datetime
    winner: str
    metrics: str | None
    file: str | None
    active: bool


class ModelVersion(NamedTuple):
    """One models row of a kind with the number of predictions its version wrote."""

    version: int
    embedding_model: str
    created_at: datetime
    winner: str
    metrics: str | None
    file: str | None
    active: bool
    predicted: int


def active_model_version(store: Store, kind: str) -> int | None:
    row = store.read(lambda c: c.execute(
        "SELECT max(version) FROM models WHERE kind = ? AND active", [kind]).fetchone())
    return None if row is None or row[0] is None else int(row[0])


def stored_model(store: Store, kind: str, version: int | None) -> StoredModel | None:
    """The row of this version of a kind, or with None its active one."""
    where = "version = ?" if version is not None else "active ORDER BY version DESC LIMIT 1"
    params: list[object] = [kind] + ([version] if version is not None else [])
    row = store.read(lambda c: c.execute(
        "SELECT version, kind, embedding_model, created_at, winner, metrics, file, active FROM models"
        f" WHERE kind = ? AND {where}", params).fetchone())
    return None if row is None else StoredModel(*row)


def model_versions_of(store: Store, kind: str) -> list[ModelVersion]:
    """Every version of a kind, newest first."""
    rows = store.read(lambda c: c.execute(
        "SELECT m.version, m.embedding_model, m.created_at, m.winner, m.metrics, m.file, m.active,"
        " (SELECT count(*) FROM predictions p WHERE p.model_version = m.version)"
        " FROM models m WHERE m.kind = ? ORDER BY m.version DESC", [kind]).fetchall())
    return [ModelVersion(*row) for row in rows]


def activate_model_version(store: Store, kind: str, version: int) -> None:
    """This version becomes the only active one of its kind."""

    def activate(conn: duckdb.DuckDBPyConnection) -> None:
        conn.execute("UPDATE models SET active = (version = ?) WHERE kind = ?", [int(version), kind])

    store.write(activate)


def add_active_model(store: Store, kind: str, embedding_model: str, winner: str, metrics: str,
                     place_file: Callable[[int], str]) -> int:
    """Record the next version (one past the highest of any kind) as the only active one of its kind; its number.

    `place_file(version)` puts the model file where that version's file belongs and returns the path to record;
    it runs inside the transaction, so a failure there leaves no row without a file.
    """

    def register(conn: duckdb.DuckDBPyConnection) -> int:
        (latest,) = conn.execute("SELECT coalesce(max(version), 0) FROM models").fetchone() or (0,)
        version = int(latest) + 1
        file = place_file(version)
        conn.execute("UPDATE models SET active = false WHERE kind = ? AND active", [kind])
        conn.execute(
            "INSERT INTO models(version, kind, embedding_model, created_at, winner, metrics, file, active)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, true)",
            [version, kind, embedding_model, utc_now(), winner, metrics, file],
        )
        return version

    return store.write(register)


def replace_predictions(store: Store, kind: str, version: int, hashes: Sequence[str], ratings: np.ndarray,
                        uncertainty: np.ndarray) -> None:
    """Replace this version's predictions with the new ones, in one insert from an Arrow table."""
    now = utc_now()
    table = pa.table({
        "content_hash": pa.array(list(hashes), pa.string()),
        "kind": pa.array([kind] * len(hashes), pa.string()),
        "model_version": pa.array(np.full(len(hashes), version, dtype=np.int32)),
        "rating": pa.array(np.asarray(ratings).astype(np.float64)),
        "uncertainty": pa.array(np.asarray(uncertainty, dtype=np.float64)),
        "predicted_at": pa.array([now] * len(hashes), pa.timestamp("us")),
    })

    def write(conn: duckdb.DuckDBPyConnection) -> None:
        conn.execute("DELETE FROM predictions WHERE model_version = ?", [version])
        conn.register("new_predictions", table)
        try:
            conn.execute("INSERT INTO predictions(content_hash, kind, model_version, rating, uncertainty, predicted_at)"
                         " SELECT content_hash, kind, model_version, rating, uncertainty, predicted_at"
                         " FROM new_predictions")
        finally:
            conn.unregister("new_predictions")

    store.write(write)
