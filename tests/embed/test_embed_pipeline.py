"""scan → embed → vectors in the store: cached by content, never re-embedded on rename, always on change."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pytest

from anagnorisis.embed.base import EncodeBatch
from anagnorisis.embed.basic import BasicImageEncoder
from anagnorisis.embed.pipeline import embed_missing, missing_count
from anagnorisis.library.scan import scan
from anagnorisis.store import Store
from anagnorisis.store.roots import add_root
from anagnorisis.store.vectors import embedded_hashes, load_vectors
from tests.media import write_jpeg


class CountingEncoder(BasicImageEncoder):
    """The basic image encoder, counting the files it is asked to read."""

    def __init__(self) -> None:
        super().__init__(workers=2, pool="thread")
        self.read: list[Path] = []

    def encode_files(self, paths: Sequence[Path]) -> EncodeBatch:
        self.read.extend(paths)
        return super().encode_files(paths)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "data" / "anagnorisis.duckdb")
    yield opened
    opened.close()


@pytest.fixture
def library(tmp_path: Path, store: Store) -> Path:
    root = tmp_path / "library"
    root.mkdir()
    add_root(store, "images", root)
    return root


def _photos(folder: Path, count: int) -> list[Path]:
    return [write_jpeg(folder / f"photo{i}.jpg", color=(30 * i, 200 - 20 * i, 90)) for i in range(count)]


def test_scan_then_embed_puts_one_vector_per_content_in_the_store(store: Store, library: Path) -> None:
    _photos(library, 4)
    scan(store, ["images"])
    encoder = CountingEncoder()
    report = embed_missing(store, "images", encoder)
    assert (report["embedded"], report["cached"], report["failed"], report["model"]) == (4, 0, [], "basic-image-v1")
    assert set(report) >= {"embedded", "cached", "failed", "model", "seconds"}
    hashes, vectors = load_vectors(store, "basic-image-v1")
    assert len(hashes) == 4 and vectors.shape == (4, encoder.dim) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert missing_count(store, "images", "basic-image-v1") == 0


def test_a_second_run_is_all_cache_hits(store: Store, library: Path) -> None:
    _photos(library, 3)
    scan(store, ["images"])
    embed_missing(store, "images", CountingEncoder())
    encoder = CountingEncoder()
    again = embed_missing(store, "images", encoder)
    assert (again["embedded"], again["cached"], again["failed"]) == (0, 3, [])
    assert encoder.read == []


def test_a_renamed_file_is_not_embedded_again(store: Store, library: Path) -> None:
    photo = _photos(library, 2)[0]
    scan(store, ["images"])
    embed_missing(store, "images", CountingEncoder())
    (library / "sub").mkdir()
    photo.rename(library / "sub" / "renamed.jpg")
    scan(store, ["images"])
    encoder = CountingEncoder()
    report = embed_missing(store, "images", encoder)
    assert (report["embedded"], report["cached"]) == (0, 2) and encoder.read == []


def test_a_changed_file_is_embedded_again(store: Store, library: Path) -> None:
    photo = _photos(library, 2)[1]
    scan(store, ["images"])
    embed_missing(store, "images", CountingEncoder())
    before = embedded_hashes(store, "basic-image-v1")
    write_jpeg(photo, color=(0, 0, 255), size=(80, 60))
    scan(store, ["images"])
    encoder = CountingEncoder()
    report = embed_missing(store, "images", encoder)
    assert (report["embedded"], report["cached"]) == (1, 1) and encoder.read == [photo]
    assert len(embedded_hashes(store, "basic-image-v1") - before) == 1


def test_copies_of_one_content_are_encoded_once(store: Store, library: Path) -> None:
    original = _photos(library, 1)[0]
    (library / "copy.jpg").write_bytes(original.read_bytes())
    (library / "another copy.jpg").write_bytes(original.read_bytes())
    scan(store, ["images"])
    encoder = CountingEncoder()
    report = embed_missing(store, "images", encoder)
    assert report["embedded"] == 3 and len(encoder.read) == 1
    assert len(embedded_hashes(store, "basic-image-v1")) == 1


def test_a_file_that_fails_is_reported_and_the_others_saved(store: Store, library: Path) -> None:
    photos = _photos(library, 3)
    scan(store, ["images"])
    photos[1].write_bytes(b"\xff\xd8\xff\xe0 no longer a picture")  # broken after the scan
    report = embed_missing(store, "images", CountingEncoder())
    assert report["embedded"] == 2
    assert [item["path"] for item in report["failed"]] == [str(photos[1])]
    assert "cannot decode image" in report["failed"][0]["reason"]
    assert len(embedded_hashes(store, "basic-image-v1")) == 2


def test_vectors_are_saved_batch_by_batch_and_a_stop_keeps_them(store: Store, library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import anagnorisis.embed.pipeline as pipeline

    monkeypatch.setattr(pipeline, "BATCH_FILES", 2)
    _photos(library, 5)
    scan(store, ["images"])
    seen: list[tuple[int, int]] = []
    report = embed_missing(store, "images", CountingEncoder(), progress=lambda done, total: seen.append((done, total)),
                           should_stop=lambda: len(seen) >= 2)
    assert report["stopped"] is True and report["embedded"] == 2
    assert len(embedded_hashes(store, "basic-image-v1")) == 2, "the finished batch was committed"
    assert seen == [(0, 5), (2, 5)]
    rest = embed_missing(store, "images", CountingEncoder())
    assert (rest["embedded"], rest["cached"], rest["stopped"]) == (3, 2, False)


def test_progress_accepts_a_tqdm_like_object(store: Store, library: Path) -> None:
    class Bar:
        total = None
        count = 0

        def update(self, n: int) -> None:
            self.count += n

    _photos(library, 3)
    scan(store, ["images"])
    bar = Bar()
    embed_missing(store, "images", CountingEncoder(), progress=bar)
    assert (bar.total, bar.count) == (3, 3)


def test_vectors_of_two_models_never_mix(store: Store, library: Path) -> None:
    _photos(library, 2)
    scan(store, ["images"])
    embed_missing(store, "images", CountingEncoder())
    assert missing_count(store, "images", "another-model") == 2
    assert load_vectors(store, "another-model")[0] == []


def test_a_streaming_model_encoder_saves_each_of_its_batches(store: Store, library: Path, tiny_siglip: Path) -> None:
    from anagnorisis.embed.siglip import SiglipEncoder

    _photos(library, 5)
    scan(store, ["images"])
    encoder = SiglipEncoder(str(tiny_siglip), device="cpu", pool="thread", workers=2, batch_size=2)
    batches: list[int] = []
    report = embed_missing(store, "images", encoder, progress=lambda done, total: batches.append(done))
    assert report["embedded"] == 5 and batches == [0, 2, 4, 5]
    hashes, vectors = load_vectors(store, str(tiny_siglip))
    assert len(hashes) == 5 and vectors.shape == (5, 32)


def test_a_should_stop_that_blocks_pauses_the_embed_after_a_saved_batch(store: Store, library: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A paused job blocks in should_stop (its checkpoint): the batch before it is stored, nothing after it."""
    import threading

    import anagnorisis.embed.pipeline as pipeline

    monkeypatch.setattr(pipeline, "BATCH_FILES", 2)
    _photos(library, 5)
    scan(store, ["images"])
    reached, go = threading.Event(), threading.Event()

    def checkpoint() -> bool:
        reached.set()
        go.wait(30)
        return False

    reports: list[dict[str, object]] = []
    worker = threading.Thread(target=lambda: reports.append(embed_missing(store, "images", CountingEncoder(),
                                                                          should_stop=checkpoint)))
    worker.start()
    assert reached.wait(30)
    assert len(embedded_hashes(store, "basic-image-v1")) == 2, "the batch before the pause is committed"
    go.set()
    worker.join(30)
    assert (reports[0]["embedded"], reports[0]["stopped"]) == (5, False)
    assert len(embedded_hashes(store, "basic-image-v1")) == 5
