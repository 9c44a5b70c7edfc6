"""Text embeddings with the real packaged all-MiniLM-L6-v2: meaning, chunking, smooth maximum, reading files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anagnorisis.embed.sentence import Chunk, SentenceEncoder, chunk_text, html_to_text, smooth_max, spread
from tests.media import write_text

WORDS = (
    "river mountain keyboard violin harbour lantern theorem protein glacier orchestra satellite meadow algorithm "
    "cathedral volcano telescope parliament molecule symphony desert quantum village"
).split()


def _long_text(words: int, seed: int = 3) -> str:
    rng = np.random.default_rng(seed)
    sentences = []
    for _ in range(words // 10):
        picked = rng.choice(WORDS, 9)
        sentences.append(" ".join(picked).capitalize() + ", unbelievably.")
    return " ".join(sentences)


def test_close_sentences_score_higher_than_unrelated_ones(minilm: SentenceEncoder) -> None:
    vectors = minilm.encode_texts(["I love my cat", "My kitten is adorable", "Quarterly tax filing deadline"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3
    assert minilm.model_id == "sentence-transformers/all-MiniLM-L6-v2" and minilm.has_text_tower


def test_a_long_text_is_chunked_within_the_models_limit(minilm: SentenceEncoder) -> None:
    text = _long_text(4000)
    chunks = minilm.chunk_text(text)
    assert minilm.max_seq_length == 256 and minilm.max_chunk_tokens == 254
    assert len(chunks) > 10
    lengths = [len(minilm.tokenizer(chunk.text)["input_ids"]) for chunk in chunks]
    assert max(lengths) <= 256, "every chunk fits the model with its [CLS] and [SEP]"
    assert min(lengths[:-1]) > 200, "chunks are filled, not cut short"
    assert all(text[c.start_char : c.end_char] == c.text for c in chunks)
    assert chunks[0].start_char == 0 and chunks[-1].end_char == len(text.rstrip())


def test_chunks_overlap_by_about_a_quarter(minilm: SentenceEncoder) -> None:
    chunks = minilm.chunk_text(_long_text(3000, seed=5))
    for before, after in zip(chunks, chunks[1:]):
        shared = minilm.tokenizer(minilm_text_between(before, after), add_special_tokens=False)["input_ids"]
        assert 40 <= len(shared) <= 90, len(shared)  # 25 % of 254 = 63 tokens, give or take a word
    assert all(after.start_char > before.start_char for before, after in zip(chunks, chunks[1:]))


def minilm_text_between(before: Chunk, after: Chunk) -> str:
    """The text two consecutive chunks share."""
    return after.text[: before.end_char - after.start_char]


def test_chunks_are_cut_between_words(minilm: SentenceEncoder) -> None:
    text = "antidisestablishmentarianism " * 400
    for chunk in minilm.chunk_text(text):
        assert chunk.text.startswith("antidisestablishmentarianism")
        assert chunk.text.endswith("antidisestablishmentarianism")


def test_a_short_text_is_one_chunk_and_an_empty_one_none(minilm: SentenceEncoder) -> None:
    assert minilm.chunk_text("Hello world.") == [Chunk(0, 12, "Hello world.")]
    assert minilm.chunk_text("   \n ") == []
    assert chunk_text("", minilm.tokenizer, 254) == []


def test_smooth_max_follows_the_spec_formula() -> None:
    scores = np.array([0.2, 0.5, 0.45])
    top = 0.5
    expected = top + np.log(np.mean(np.exp(16 * (scores - top)))) / 16
    assert smooth_max(scores) == pytest.approx(expected)
    assert smooth_max([0.7]) == pytest.approx(0.7)
    assert smooth_max([0.5, 0.5, 0.5]) == pytest.approx(0.5)
    assert smooth_max([0.5, 0.49]) > smooth_max([0.5, 0.1]), "a second good passage counts"
    with pytest.raises(ValueError):
        smooth_max([])


def test_the_best_chunk_of_a_long_file_matches_its_topic(minilm: SentenceEncoder) -> None:
    filler = _long_text(200)
    topic = " Our grandmother's apple pie recipe: butter, flour, sugar, cinnamon and sliced apples, baked for an hour. "
    text = filler + topic + filler
    query = minilm.encode_texts(["how to bake an apple pie"])[0]
    chunks = minilm.chunk_text(text)
    scores = minilm.chunk_scores(chunks, query)
    assert scores.shape == (len(chunks),)
    best = chunks[int(np.argmax(scores))]
    assert "apple pie" in best.text
    assert smooth_max(scores) <= scores.max() + 1e-6
    short = "Apple pie needs apples."
    assert np.allclose(minilm.chunk_scores(short, query), [minilm.encode_texts([short])[0] @ query], atol=1e-5)


def test_files_are_read_with_their_encoding_and_embedded_as_chunk_means(minilm: SentenceEncoder, tmp_path: Path) -> None:
    utf16 = write_text(tmp_path / "wide.txt", "Die Katze schläft auf dem Sofa.", "utf-16")
    latin = write_text(tmp_path / "latin.txt", "Le café est très chaud ce matin.", "cp1252")
    page = write_text(tmp_path / "page.html", "<html><head><style>p{}</style><script>x=1</script></head>"
                      "<body><p>Cats &amp; kittens sleep all day.</p></body></html>")
    long_file = write_text(tmp_path / "long.md", _long_text(250))
    empty = write_text(tmp_path / "empty.txt", "")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    batch = minilm.encode_files([utf16, latin, page, long_file, empty, binary])
    assert batch.paths == [utf16, latin, page, long_file]
    assert [f.path for f in batch.failures] == [empty, binary]
    assert np.allclose(np.linalg.norm(batch.vectors, axis=1), 1, atol=1e-5)
    cats = minilm.encode_texts(["cats and kittens sleeping"])[0]
    assert batch.vectors[2] @ cats > 0.5, "the page is embedded by its words, not its markup"
    chunks = minilm.chunk_text(long_file.read_text())
    assert len(chunks) >= 2
    chunk_vectors = minilm.encode_texts([c.text for c in chunks])
    mean = chunk_vectors.mean(axis=0)
    assert np.allclose(batch.vectors[3], mean / np.linalg.norm(mean), atol=1e-4)


def test_html_is_reduced_to_its_visible_words() -> None:
    assert html_to_text("<p>A &lt;b&gt; <b>bold</b> move</p><script>alert(1)</script>") == "A <b> bold move"


def test_spread_picks_evenly_with_both_ends() -> None:
    assert spread(list(range(10)), 4) == [0, 3, 6, 9]
    assert spread([1, 2], 5) == [1, 2]


def test_building_the_text_encoder_does_not_import_torch() -> None:
    """The app resolves every kind's encoder at start; torch (≈ 200 MB of RSS) comes with the first model load."""
    import subprocess
    import sys

    code = ("import sys; from anagnorisis.embed.sentence import SentenceEncoder; e = SentenceEncoder(device='cpu');"
            " assert 'torch' not in sys.modules, 'torch imported'; assert e.batch_size > 0;"
            " assert e._choice.device.type == 'cpu'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
