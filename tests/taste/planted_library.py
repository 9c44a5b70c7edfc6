"""A scanned image library whose files carry planted vectors under the active encoder's id: a learnable taste."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anagnorisis.config import load_settings
from anagnorisis.library.scan import scan
from anagnorisis.store import Store
from anagnorisis.store.ratings import set_rating
from anagnorisis.store.records import present_files
from anagnorisis.store.vectors import save_vectors
from anagnorisis.taste.service import active_embedding_model
from tests.media import write_jpeg

DIM = 32


@dataclass
class PlantedLibrary:
    data_dir: Path
    paths: list[str]  # sorted file paths
    taste: dict[str, float]  # path -> the planted rating of every file
    hashes: dict[str, str]  # path -> content hash
    model_id: str

    def first(self, n: int) -> dict[str, float]:
        """The planted ratings of the first n files (what a test lets the user rate)."""
        return {path: self.taste[path] for path in self.paths[:n]}


def open_store(data_dir: Path) -> Store:
    return Store.open(data_dir / "anagnorisis.duckdb", wait_seconds=5)


def write_photos(data_dir: Path, count: int) -> list[str]:
    folder = data_dir / "library" / "images"
    return sorted(str(write_jpeg(folder / f"photo {i:03d}.jpg", color=(i * 6 % 256, 255 - i * 5 % 256, i * 37 % 256),
                                 size=(24, 16))) for i in range(count))


def plant_vectors(store: Store, model_id: str, seed: int = 7) -> tuple[dict[str, float], dict[str, str]]:
    """Unit vectors for every present image under model_id; the taste is one direction in that space plus noise."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=DIM)
    records = sorted(present_files(store, "images"), key=lambda r: r["path"])
    X = rng.normal(size=(len(records), DIM))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    save_vectors(store, model_id, [r["content_hash"] for r in records], X.astype(np.float32))
    signal = X @ direction
    taste = np.clip(5 + 2.5 * signal / signal.std() + rng.normal(0, 0.5, len(X)), 0, 10)
    return ({r["path"]: round(float(t) * 2) / 2 for r, t in zip(records, taste)},
            {r["path"]: r["content_hash"] for r in records})


def planted_library(data_dir: Path, count: int, store: Store | None = None) -> PlantedLibrary:
    """Write `count` photos into the default images root, scan them, and plant their vectors."""
    paths = write_photos(data_dir, count)
    settings = load_settings({"data_dir": str(data_dir)})
    own = store is None
    store = store or open_library_store(data_dir)
    try:
        report = scan(store, ["images"], None)
        assert report.new == count, report.as_dict()
        model_id = active_embedding_model("images", settings)
        taste, hashes = plant_vectors(store, model_id)
    finally:
        if own:
            store.close()
    return PlantedLibrary(data_dir, paths, taste, hashes, model_id)


def open_library_store(data_dir: Path) -> Store:
    from anagnorisis.cli import open_library

    return open_library(load_settings({"data_dir": str(data_dir)}), wait_seconds=5)


def rate(store: Store, library: PlantedLibrary, ratings: dict[str, float]) -> None:
    for path, rating in ratings.items():
        set_rating(store, library.hashes[path], rating)
