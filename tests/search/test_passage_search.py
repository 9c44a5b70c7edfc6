"""Meaning search over texts scores a file by the smooth maximum of its passages (SPEC §2), end to end: generated
text files, a real DuckDB file, the real packaged all-MiniLM-L6-v2, and the CLI run in this process."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from anagnorisis.cli import DB_FILE_NAME
from anagnorisis.embed.registry import encoder_for
from anagnorisis.embed.sentence import MAX_CHUNKS_PER_FILE, read_document, smooth_max, spread
from anagnorisis.store import Store, schema
from anagnorisis.store.vectors import chunked_hashes, load_chunks, load_vectors, save_vectors
from tests.conftest import Cli
from tests.media import write_text

QUERY = "how to bake sourdough bread"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
FILLER = [
    "The committee reviewed the quarterly budget and approved new spending on road maintenance.",
    "Astronomers observed a distant galaxy whose light left it billions of years ago.",
    "The football season ended with a dramatic penalty shootout in the final match.",
    "Tax rules for small businesses changed again, and accountants were busy all spring.",
    "The museum opened an exhibition of medieval manuscripts and illuminated maps.",
    "Engineers tested the bridge under heavy loads before it was opened to traffic.",
    "A new railway line will connect the northern towns with the capital by next year.",
    "The orchestra rehearsed a symphony by a little-known composer of the baroque era.",
    "Volcanologists measured gas emissions on the slopes of the active mountain.",
    "The software update fixed several security holes in the operating system kernel.",
    "Parliament debated a law about fishing quotas in the northern sea.",
    "The chess tournament lasted nine rounds and ended in a three-way tie.",
]
BREAD = (
    "Sourdough bread at home. To bake sourdough bread, feed the sourdough starter the night before. In the "
    "morning mix flour, water and salt with the starter into a dough. Fold the bread dough every half hour, then "
    "let it rise slowly for hours. Shape the loaf, proof it in a basket, score it and bake the bread in a very hot "
    "Dutch oven. A good sourdough loaf has an open crumb and a dark crust."
)
SHORT_TEXTS = {
    # Near the query in topic (food) but about something else: each beats the long document's mean vector.
    "kitchen.txt": "We cooked pasta with a tomato sauce for dinner and had cake afterwards.",
    "grocery.txt": "Shopping list: milk, eggs, butter, apples, coffee and a bag of flour.",
    "balcony.txt": "Growing tomatoes on a balcony needs sun, a big pot and regular watering.",
}


def filler(sentences: int, seed: int) -> str:
    return " ".join(np.random.default_rng(seed).choice(FILLER, sentences))


def write_library(folder: Path) -> dict[str, Path]:
    """Three short texts and one long report (~10 passages) with one paragraph about sourdough in its middle."""
    files = {name: write_text(folder / name, text) for name, text in SHORT_TEXTS.items()}
    files["report.txt"] = write_text(folder / "report.txt", f"{filler(60, 1)} {BREAD} {filler(60, 2)}")
    return files


@pytest.fixture(scope="module")
def minilm() -> Any:
    """The encoder the app resolves for text: the packaged MiniLM, cached per process, so the CLI shares it."""
    return encoder_for("text")


@pytest.fixture
def library(tmp_path: Path, cli: Cli) -> dict[str, Path]:
    files = write_library(tmp_path / "notes")
    cli.json("library", "add", "text", str(tmp_path / "notes"))
    cli.json("scan", "text")
    return files


def search(cli: Cli, *options: str) -> list[dict[str, Any]]:
    return cli.json("search", "text", QUERY, "--limit", "100", *options)["results"]


def names(results: list[dict[str, Any]]) -> list[str]:
    return [Path(item["path"]).name for item in results]


def query_vector(minilm: Any) -> np.ndarray:
    return minilm.encode_texts([QUERY])[0]


def independent_smooth_max(minilm: Any, path: Path, query: np.ndarray) -> tuple[float, int]:
    """The SPEC §2 score computed without the store or the index: chunk the file, embed each chunk, smooth max."""
    chunks = spread(minilm.chunk_text(read_document(path)), MAX_CHUNKS_PER_FILE)
    return smooth_max(minilm.chunk_scores(chunks, query)), len(chunks)


def mean_vector_order(cli: Cli, minilm: Any, files: dict[str, Path]) -> list[str]:
    """The order cosine to the files' mean vectors (the ranking before chunk vectors) gives."""
    with Store.open(cli.data_dir / DB_FILE_NAME) as store:
        hashes, vectors = load_vectors(store, MODEL)
        by_hash = dict(zip(hashes, vectors @ query_vector(minilm)))
        rows = store.read(lambda c: c.execute("SELECT display_path, content_hash FROM files").fetchall())
    cosine = {Path(path).name: float(by_hash[content_hash]) for path, content_hash in rows}
    return sorted(cosine, key=lambda name: -cosine[name])


# ----------------------------------------------------------------------------------------- ranking by passages


def test_a_long_text_with_one_matching_passage_ranks_first_though_its_mean_vector_ranks_it_low(
        cli: Cli, library: dict[str, Path], minilm: Any) -> None:
    embedded = cli.json("embed", "text")
    assert (embedded["embedded"], embedded["failed"], embedded["chunked"]) == (4, [], 0)
    found = search(cli)
    assert names(found)[0] == "report.txt"
    by_mean = mean_vector_order(cli, minilm, library)
    assert by_mean.index("report.txt") == 2, f"the mean vector buries the passage: {by_mean}"
    assert names(found) != by_mean
    assert names(found).index("report.txt") < names(found).index("balcony.txt"), "above the short unrelated text"


def test_a_files_score_is_the_smooth_maximum_of_its_chunk_cosines(cli: Cli, library: dict[str, Path],
                                                                   minilm: Any) -> None:
    cli.json("embed", "text")
    query = query_vector(minilm)
    for item in search(cli):
        expected, count = independent_smooth_max(minilm, Path(item["path"]), query)
        assert item["score"] == pytest.approx(expected, abs=1e-4), item["path"]
        if count > 1:
            assert f"smooth max of {count} passages" in item["reason"] and "best passage" in item["reason"]
        else:
            assert "one passage" in item["reason"]
    report = next(item for item in search(cli) if item["path"].endswith("report.txt"))
    best = float(report["reason"].split("best passage ")[1].split(",")[0])
    assert report["score"] < best, "one good passage among ten scores a little below that passage"


def test_stored_chunks_are_the_passages_of_the_text_and_the_file_vector_their_mean(
        cli: Cli, library: dict[str, Path], minilm: Any) -> None:
    cli.json("embed", "text")
    with Store.open(cli.data_dir / DB_FILE_NAME) as store:
        stored = load_chunks(store, MODEL)
        hashes, vectors = load_vectors(store, MODEL)
        rows = dict(store.read(lambda c: c.execute("SELECT display_path, content_hash FROM files").fetchall()))
    report = rows[str(library["report.txt"])]
    file = stored.hashes.index(report)
    first, last = stored.starts[file], stored.starts[file + 1]
    text = read_document(library["report.txt"])
    expected = spread(minilm.chunk_text(text), MAX_CHUNKS_PER_FILE)
    assert [tuple(span) for span in stored.spans[first:last].tolist()] == [(c.start_char, c.end_char) for c in expected]
    assert any("sourdough" in text[a:b] for a, b in stored.spans[first:last].tolist())
    mean = stored.matrix[first:last].mean(axis=0)
    assert np.allclose(vectors[hashes.index(report)], mean / np.linalg.norm(mean), atol=1e-5)
    assert sorted(stored.hashes) == sorted(hashes), "every text with a vector has its chunks"


def test_filters_paging_and_temperature_work_as_for_any_meaning_search(cli: Cli, library: dict[str, Path]) -> None:
    cli.json("embed", "text")
    everything = names(search(cli))
    pages = [names(search(cli, "--offset", str(start), "--limit", "1")) for start in range(4)]
    assert sum(pages, []) == everything
    assert names(search(cli, "--ext", "md")) == []
    cli.json("rate", str(library["kitchen.txt"]), "7")
    rated = search(cli, "--rated")
    assert names(rated) == ["kitchen.txt"] and "one passage" in rated[0]["reason"]
    unrated = names(search(cli, "--unrated"))
    assert unrated[0] == "report.txt" and "kitchen.txt" not in unrated
    drawn = names(search(cli, "--temperature", "1", "--seed", "3"))
    assert sorted(drawn) == sorted(everything) and drawn == names(search(cli, "--temperature", "1", "--seed", "3"))
    asc = cli.json("search", "text", QUERY, "--order", "asc", "--limit", "100")["results"]
    assert names(asc)[-1] == "report.txt"


def test_similar_to_a_file_still_ranks_by_the_file_vectors(cli: Cli, library: dict[str, Path]) -> None:
    cli.json("embed", "text")
    similar = cli.json("search", "text", str(library["kitchen.txt"]), "--limit", "10")
    assert similar["mode"] == "similar"
    assert all(item["reason"].startswith("similarity") for item in similar["results"])


# --------------------------------------------------------------------- files embedded before chunks were kept


def embed_like_the_old_code(data_dir: Path, minilm: Any, paths: list[Path]) -> None:
    """Save mean vectors only, as `embed` did before chunk vectors were stored."""
    with Store.open(data_dir / DB_FILE_NAME) as store:
        rows = dict(store.read(lambda c: c.execute("SELECT display_path, content_hash FROM files").fetchall()))
        batch = minilm.encode_files(paths)
        save_vectors(store, MODEL, [rows[str(path)] for path in batch.paths], batch.vectors)


def test_a_text_embedded_before_chunks_were_kept_is_found_by_its_mean_vector_until_embed_adds_them(
        cli: Cli, library: dict[str, Path], minilm: Any) -> None:
    assert cli.json("embed", "text")["embedded"] == 4
    with Store.open(cli.data_dir / DB_FILE_NAME) as store:  # the report now looks as if embedded by older code
        store.write(lambda c: c.execute("DELETE FROM chunk_embeddings WHERE content_hash IN (SELECT content_hash"
                                        " FROM files WHERE display_path LIKE '%report.txt')"))
        before = dict(zip(*load_vectors(store, MODEL)))
    report = next(item for item in search(cli) if item["path"].endswith("report.txt"))
    mean = before[report["content_hash"]]
    assert report["score"] == pytest.approx(float(mean @ query_vector(minilm)), abs=1e-5)
    assert "whole-file vector" in report["reason"]

    filled = cli.json("embed", "text")
    assert (filled["embedded"], filled["cached"], filled["chunked"], filled["failed"]) == (0, 4, 1, [])
    with Store.open(cli.data_dir / DB_FILE_NAME) as store:
        after = dict(zip(*load_vectors(store, MODEL)))
        assert report["content_hash"] in chunked_hashes(store, MODEL)
    assert after[report["content_hash"]].tobytes() == mean.tobytes(), "the cached mean vector stays as it was"
    assert names(search(cli))[0] == "report.txt"
    again = cli.json("embed", "text")
    assert (again["embedded"], again["cached"], again["chunked"]) == (0, 4, 0), "nothing left to do"


@pytest.fixture
def old_schema(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """While active, the code writes and expects schema v1 (before chunk vectors)."""
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
    monkeypatch.setattr(schema, "LATEST_VERSION", 1)
    yield
    monkeypatch.undo()


def test_a_v1_database_is_migrated_after_a_backup_and_its_texts_are_still_found(
        tmp_path: Path, cli: Cli, minilm: Any, old_schema: None, monkeypatch: pytest.MonkeyPatch) -> None:
    files = write_library(tmp_path / "notes")
    cli.json("library", "add", "text", str(tmp_path / "notes"))
    cli.json("scan", "text")
    embed_like_the_old_code(cli.data_dir, minilm, sorted(files.values()))
    database = cli.data_dir / DB_FILE_NAME
    with Store.open(database) as store:
        assert store.read(lambda c: c.execute("SELECT max(version) FROM schema_version").fetchone()[0]) == 1
    monkeypatch.undo()  # the code of today

    found = search(cli)
    assert sorted(names(found)) == sorted(files)
    assert all("whole-file vector" in item["reason"] for item in found), "old files rank by their mean vector"
    assert (cli.data_dir / f"{DB_FILE_NAME}.v1.bak").exists(), "a backup was taken before migrating"
    with Store.open(database) as store:
        assert store.read(lambda c: c.execute("SELECT max(version) FROM schema_version").fetchone()[0]) == 2
        assert len(load_vectors(store, MODEL)[0]) == 4
    filled = cli.json("embed", "text")
    assert (filled["embedded"], filled["chunked"]) == (0, 4)
    assert names(search(cli))[0] == "report.txt"


def test_a_failed_chunk_write_leaves_no_file_vector_either(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import anagnorisis.store.vectors as vectors

    def broken(*args: Any) -> None:
        raise RuntimeError("disk full")

    class Chunks:
        spans = [(0, 5), (3, 9)]
        vectors = np.eye(2, 4, dtype=np.float32)

    with Store.open(tmp_path / "db.duckdb") as store:
        monkeypatch.setattr(vectors, "_replace_chunks", broken)
        with pytest.raises(RuntimeError, match="disk full"):
            save_vectors(store, MODEL, ["h"], np.eye(1, 4, dtype=np.float32), [Chunks()])
        assert load_vectors(store, MODEL)[0] == [], "the vector and its chunks are one transaction"
        monkeypatch.undo()
        save_vectors(store, MODEL, ["h"], np.eye(1, 4, dtype=np.float32), [Chunks()])
        save_vectors(store, MODEL, ["h"], np.eye(1, 4, dtype=np.float32), [Chunks()])
        stored = load_chunks(store, MODEL)
    assert stored.hashes == ["h"] and stored.starts.tolist() == [0, 2], "saving again replaces, never duplicates"
    assert stored.spans.tolist() == [[0, 5], [3, 9]]
