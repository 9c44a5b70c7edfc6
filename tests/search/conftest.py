"""Record factories for the search tests: records shaped like ``store.records.present_files`` returns them."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

RecordFactory = Callable[..., dict[str, Any]]


def build_record(relative_path: str, *, kind: str = "images", root: str = "/library", **fields: Any) -> dict[str, Any]:
    """A present file with every SPEC §1 key; ``fields`` override any of them (metadata included)."""
    record: dict[str, Any] = {
        "path": f"{root}/{relative_path}",
        "root": root,
        "relative_path": relative_path,
        "kind": kind,
        "content_hash": f"hash-{relative_path}",
        "size": 1000,
        "user_rating": None,
        "model_rating": None,
        "model_rating_stale": None,
        "uncertainty": None,
        "full_plays": None,
        "skips": None,
        "last_played": None,
        "mtime": 1_600_000_000.0,
        "rated_at": None,
        "metadata": {},
        "path_bytes": f"{root}/{relative_path}".encode(),
        "id": abs(hash(relative_path)) % 10**6,
    }
    record.update(fields)
    return record


@pytest.fixture
def make_record() -> RecordFactory:
    return build_record
