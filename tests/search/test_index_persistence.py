"""The vector index saved beside the database (issue #21): a new session opens it without reading a vector when
it matches the stored ones, catches it up or rebuilds it when not, appends to it after an embed, and answers
meaning searches exactly as an index built in memory from the store does.

A real DuckDB data dir, a tiny random SigLIP (32-d) as the images model, 12,000 stored vectors: with the ANN
threshold at 10,000 the IVF path serves, as tests/search/test_vector_index.py does at this size.
"""
from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pyarrow as pa
import pytest

import anagnorisis.session as session_module
import anagnorisis.store.vectors as vectors_module
from anagnorisis.cli import open_library
from anagnorisis.config import load_settings
from anagnorisis.search.vector_index import ANN_FILE, HASHES_FILE, META_FILE, VECTORS_FILE, VectorIndex, hash_list_checksum
from anagnorisis.search import SearchRequest, run_search
from anagnorisis.session import Session
from anagnorisis.store import Store
from anagnorisis.store.records import present_files
from anagnorisis.store.vectors import load_vectors, save_vectors, vector_fingerprint
from tests.embed.models import build_tiny_siglip

FILES = 12_000
ANN_MIN_ITEMS = 10_000
DIM = 32  # the tiny SigLIP's embedding size
QUERY = "a photo of a cat on the beach"


@pytest.fixture(scope="module")
def tiny_siglip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_siglip(tmp_path_factory.mktemp("tiny-siglip"))


class Library:
    """A data dir with FILES image records and one stored vector each; sessions open it as the app would."""

    def __init__(self, data_dir: Path, model: Path) -> None:
        self.settings = load_settings({"data_dir": str(data_dir), "images_model": str(model)})
        self.store: Store = open_library(self.settings)
        self.model_id = str(model)
        self.sessions: list[Session] = []
        self.root = data_dir / "library" / "images"

    def session(self) -> Session:
        session = Session(self.settings, self.store)
        session.ann_min_items = ANN_MIN_ITEMS
        self.sessions.append(session)
        return session

    def add_files(self, first: int, vectors: np.ndarray) -> list[str]:
        """Files first… with these vectors (normalised here), stored as an embed would store them."""
        numbers = range(first, first + len(vectors))
        hashes = [f"{i:032x}" for i in numbers]
        paths = [f"{self.root}/IMG_{i:06d}.jpg" for i in numbers]
        files = pa.table({"relative_path": [Path(p).name for p in paths], "display_path": paths,
                          "path_bytes": pa.array([p.encode() for p in paths], pa.binary()), "content_hash": hashes})
        self.store.write(lambda conn: _insert_files(conn, files, str(self.root)))
        save_vectors(self.store, self.model_id, hashes, unit_rows(vectors))
        return hashes

    def index_dir(self) -> Path:
        return self.session().index_dir("images", self.model_id)

    def close(self) -> None:
        for session in self.sessions:
            session.wait_for_saves()
            for index in session._indexes.values():
                index.close()
        self.store.close()


def _insert_files(conn: Any, files: pa.Table, root: str) -> None:
    conn.register("new_files", files)
    try:
        conn.execute("INSERT INTO files (kind, root, relative_path, path_bytes, display_path, size, mtime,"
                     " content_hash, missing, metadata) SELECT 'images', ?, relative_path, path_bytes, display_path,"
                     " 1000, 1.6e9, content_hash, false, '{}' FROM new_files", [root])
    finally:
        conn.unregister("new_files")


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def clustered(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = unit_rows(rng.standard_normal((200, DIM)))
    return unit_rows(centres[rng.integers(0, len(centres), count)] + 0.2 * rng.standard_normal((count, DIM)))


@pytest.fixture
def library(tmp_path: Path, tiny_siglip: Path) -> Iterator[Library]:
    library = Library(tmp_path / "data", tiny_siglip)
    library.add_files(0, clustered(FILES, seed=1))
    yield library
    library.close()


def saved_library(library: Library) -> Library:
    """The library after a first session built its index in the background and saved it."""
    session = library.session()
    index = session.index("images")
    assert index.wait_until_ready(timeout=120) and index.uses_ann
    session.wait_for_saves()
    return library


@pytest.fixture
def vector_loads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every call of store.vectors.load_vectors: the hashes asked for (None: all of them)."""
    calls: list[Any] = []

    def spy(store: Store, model_id: str, hashes: Any = None) -> Any:
        calls.append(None if hashes is None else sorted(hashes))
        return load_vectors(store, model_id, hashes)

    monkeypatch.setattr(vectors_module, "load_vectors", spy)
    return calls


@pytest.fixture
def record_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every load of all records of a kind."""
    calls: list[str] = []

    def spy(store: Store, kind: str) -> Any:
        calls.append(kind)
        return present_files(store, kind)

    monkeypatch.setattr(session_module, "present_files", spy)
    return calls


def meaning(session: Session, query: str = QUERY, **options: Any) -> dict[str, Any]:
    return session.search(SearchRequest(kind="images", query=query, mode="auto", limit=10, **options)).to_dict()


def in_memory(library: Library, query: str = QUERY, **options: Any) -> dict[str, Any]:
    """The same search through the general path over an index built in memory from every stored vector."""
    session = library.session()
    hashes, vectors = load_vectors(library.store, library.model_id)
    index = VectorIndex(DIM, kind="images", model_id=library.model_id, ann_min_items=ANN_MIN_ITEMS,
                        background=False)
    index.add(hashes, vectors)
    encoder = session.text_encoder("images")
    request = SearchRequest(kind="images", query=query, mode="auto", limit=10, **options)
    return run_search(request, present_files(library.store, "images"), index=index, encode_text=encoder).to_dict()


def exact_recall(library: Library, answer: dict[str, Any]) -> float:
    """Share of the exact top hashes (cosine over every stored vector of a present file) in the answer's page.

    An index caught up or appended to keeps the ANN trained on its first rows, so its approximate answers
    may differ from those of an index trained on all of them; both must stay close to exact."""
    hashes, vectors = load_vectors(library.store, library.model_id)
    present = {record["content_hash"] for record in present_files(library.store, "images")}
    scores = vectors @ text_vector(library.session())
    best = [hashes[i] for i in np.argsort(-scores) if hashes[i] in present][: len(answer["results"])]
    return len(set(best) & {item["content_hash"] for item in answer["results"]}) / len(best)


def text_vector(session: Session, query: str = QUERY) -> np.ndarray:
    return np.asarray(session.text_encoder("images")(query), dtype=np.float32)


# ------------------------------------------------------------------------------------------------ tests


def test_the_stores_checksum_is_the_checksum_of_the_indexed_hash_list(library: Library) -> None:
    hashes, _ = load_vectors(library.store, library.model_id)
    assert vector_fingerprint(library.store, library.model_id) == (FILES, hash_list_checksum(hashes))
    assert hash_list_checksum(hashes[::-1]) == hash_list_checksum(hashes)  # order-free
    assert hash_list_checksum(hashes[1:]) != hash_list_checksum(hashes)


def test_a_matching_saved_index_opens_without_reading_a_vector_or_every_record(
        library: Library, vector_loads: list[Any], record_loads: list[str]) -> None:
    saved_library(library)
    assert vector_loads == [None]  # the first session built the index from the store
    fresh = library.session()
    index = fresh.index("images")
    assert index.uses_ann and not index.building and len(index) == FILES  # the ANN serves from the start
    assert vector_loads == [None]
    answer = meaning(fresh)
    assert record_loads == []  # a meaning search reads only the records of its top hits
    assert answer == in_memory(library)
    assert answer["total"] == FILES and answer["not_indexed"] == 0 and len(answer["results"]) == 10


def test_the_saved_files_are_the_owners_alone(library: Library) -> None:
    saved_library(library)
    folder = library.index_dir()
    assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0
    for name in (META_FILE, HASHES_FILE, VECTORS_FILE, ANN_FILE):
        assert stat.S_IMODE((folder / name).stat().st_mode) & 0o077 == 0, name
    assert not list(folder.glob("*.tmp"))


def test_a_vector_stored_behind_the_saved_index_is_added_without_a_rebuild(
        library: Library, vector_loads: list[Any]) -> None:
    saved_library(library)
    fresh = library.session()
    [added] = library.add_files(FILES, text_vector(fresh)[None, :])  # stored by a CLI embed, say
    index = fresh.index("images")
    assert vector_loads == [None, [added]] and added in index and index.uses_ann
    answer = meaning(fresh)
    assert answer["results"][0]["content_hash"] == added and answer["total"] == FILES + 1
    assert exact_recall(library, answer) >= 0.9


def test_a_changed_hash_list_of_the_same_count_is_rebuilt(
        library: Library, vector_loads: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    saved_library(library)
    gone = f"{7:032x}"
    library.store.write(lambda conn: conn.execute("DELETE FROM embeddings WHERE content_hash = ?", [gone]))
    fresh = library.session()
    [added] = library.add_files(FILES, text_vector(fresh)[None, :])
    assert vector_fingerprint(library.store, library.model_id)[0] == FILES  # the same count as the save
    with caplog.at_level(logging.WARNING, logger="anagnorisis.session"):
        index = fresh.index("images")
    assert "rebuilding the vector index" in caplog.text
    assert vector_loads == [None, None]  # rebuilt from every stored vector
    assert added in index and gone not in index
    assert index.wait_until_ready(timeout=120)
    answer = meaning(fresh)
    assert answer["results"][0]["content_hash"] == added
    assert answer == in_memory(library)


@pytest.mark.parametrize("damage", [
    pytest.param(lambda folder: (folder / ANN_FILE).write_bytes(b"not a faiss index"), id="ann-garbage"),
    pytest.param(lambda folder: os.truncate(folder / ANN_FILE, 1000), id="ann-truncated"),
    pytest.param(lambda folder: os.truncate(folder / VECTORS_FILE, 1000), id="vectors-truncated"),
    pytest.param(lambda folder: (folder / HASHES_FILE).write_text("a\nb\n"), id="hashes-short"),
    pytest.param(lambda folder: (folder / META_FILE).write_text("{not json"), id="meta-garbage"),
    pytest.param(lambda folder: (folder / ANN_FILE).unlink(), id="ann-missing"),
])
def test_a_damaged_saved_index_is_rebuilt_and_answers_right(
        library: Library, vector_loads: list[Any], caplog: pytest.LogCaptureFixture,
        damage: Callable[[Path], Any]) -> None:
    saved_library(library)
    damage(library.index_dir())
    fresh = library.session()
    with caplog.at_level(logging.WARNING, logger="anagnorisis.session"):
        index = fresh.index("images")
    assert "rebuilding the vector index" in caplog.text
    assert vector_loads == [None, None] and len(index) == FILES
    assert index.wait_until_ready(timeout=120) and index.uses_ann
    assert meaning(fresh) == in_memory(library)
    fresh.wait_for_saves()  # saved again once rebuilt: the next session opens it
    assert library.session().index("images").uses_ann and vector_loads == [None, None]


def test_an_embed_in_a_running_session_appends_to_the_saved_index(
        library: Library, vector_loads: list[Any]) -> None:
    saved_library(library)
    folder = library.index_dir()
    ann_before = (folder / ANN_FILE).stat()
    running = library.session()
    index = running.index("images")
    new = unit_rows(np.random.default_rng(5).standard_normal((50, DIM)))
    new[0] = text_vector(running)
    added = library.add_files(FILES, new)
    running.invalidate("images")  # what the app does after an embed job
    assert running.index("images") is index and all(h in index for h in added)
    assert vector_loads == [None, sorted(added)]  # only the new vectors were read
    running.wait_for_saves()
    ann_after = (folder / ANN_FILE).stat()
    assert (ann_after.st_ino, ann_after.st_mtime_ns) == (ann_before.st_ino, ann_before.st_mtime_ns)  # appended
    assert meaning(running)["results"][0]["content_hash"] == added[0]
    reopened = library.session().index("images")
    assert vector_loads == [None, sorted(added)] and len(reopened) == FILES + 50 and reopened.uses_ann
    assert reopened.search(new[3], 1)[0].tolist() == [reopened.position(added[3])]  # the ANN holds the new rows
    assert exact_recall(library, meaning(library.session())) >= 0.9


def test_top_hits_whose_files_are_gone_do_not_shorten_the_page(library: Library) -> None:
    saved_library(library)
    session = library.session()
    first = [item["content_hash"] for item in meaning(session)["results"]]
    library.store.write(lambda conn: conn.execute("UPDATE files SET missing = true WHERE content_hash IN"
                                                  " (SELECT unnest(?))", [first[:6]]))
    session.invalidate("images")
    answer = meaning(session)
    assert len(answer["results"]) == 10 and not set(first[:6]) & {i["content_hash"] for i in answer["results"]}
    assert answer["total"] == FILES - 6
    assert answer == in_memory(library)


def test_other_searches_still_take_the_general_path(library: Library, record_loads: list[str]) -> None:
    saved_library(library)
    session = library.session()
    for options in ({"order": "asc"}, {"temperature": 0.5, "seed": 3}, {"ext": "jpg"}):
        assert meaning(session, **options) == in_memory(library, **options)
    assert record_loads


def test_an_index_saved_after_appends_loads_the_rows_its_ann_file_lacks(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    data = clustered(FILES + 300, seed=3)
    hashes = [f"h{i:06d}" for i in range(len(data))]
    index = VectorIndex(DIM, ann_min_items=ANN_MIN_ITEMS, storage_dir=tmp_path / "saved", background=False)
    index.add(hashes[:FILES], data[:FILES])
    index.save()
    index.add(hashes[FILES : FILES + 200], data[FILES : FILES + 200])
    index.save()  # appended: the ANN file still covers FILES rows
    loaded = VectorIndex.load(tmp_path / "saved", ann_min_items=ANN_MIN_ITEMS)
    assert loaded.uses_ann and len(loaded) == FILES + 200 and loaded.checksum == hash_list_checksum(hashes[:FILES + 200])
    assert [loaded.search(q, 5)[0].tolist() for q in data[FILES - 50 : FILES + 200]] == \
           [index.search(q, 5)[0].tolist() for q in data[FILES - 50 : FILES + 200]]
    monkeypatch.setattr("anagnorisis.search.vector_index.ANN_TAIL_MAX_ROWS", 100)
    loaded.add(hashes[FILES + 200 :], data[FILES + 200 :])
    loaded.save()  # now 300 rows past the ANN file: it is written again
    loaded.close()
    again = VectorIndex.load(tmp_path / "saved", ann_min_items=ANN_MIN_ITEMS)
    assert len(again) == len(data) and again._ann.ntotal == len(data)
    assert again.search(data[-1], 1)[0].tolist() == [len(data) - 1]


def test_rows_added_but_never_saved_leave_the_last_save_readable(tmp_path: Path) -> None:
    data = clustered(FILES + 10, seed=4)
    hashes = [f"h{i:06d}" for i in range(len(data))]
    index = VectorIndex(DIM, ann_min_items=ANN_MIN_ITEMS, storage_dir=tmp_path / "saved", background=False)
    index.add(hashes[:FILES], data[:FILES])
    index.save()
    reopened = VectorIndex.load(tmp_path / "saved", ann_min_items=ANN_MIN_ITEMS)
    reopened.add(hashes[FILES:], data[FILES:])  # written past the saved rows; the process dies before a save
    again = VectorIndex.load(tmp_path / "saved", ann_min_items=ANN_MIN_ITEMS)
    assert len(again) == FILES and again.checksum == hash_list_checksum(hashes[:FILES]) and again.uses_ann
    assert again.search(data[5], 1)[0].tolist() == [5]


def test_a_mapped_index_saves_a_whole_copy_elsewhere(tmp_path: Path) -> None:
    data = clustered(FILES, seed=6)
    index = VectorIndex(DIM, ann_min_items=ANN_MIN_ITEMS, storage_dir=tmp_path / "first", background=False)
    index.add([f"h{i:06d}" for i in range(FILES)], data)
    index.save()
    expected = [index.search(q, 3)[0].tolist() for q in data[:20]]
    mapped = VectorIndex.load(tmp_path / "first", ann_min_items=ANN_MIN_ITEMS)
    mapped.save(tmp_path / "second")
    mapped.close()
    index.close()
    for name in os.listdir(tmp_path / "first"):
        os.unlink(tmp_path / "first" / name)  # the copy must not refer to the first save's files
    copy = VectorIndex.load(tmp_path / "second", ann_min_items=ANN_MIN_ITEMS)
    assert copy.uses_ann and [copy.search(q, 3)[0].tolist() for q in data[:20]] == expected
