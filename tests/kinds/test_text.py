"""The text kind: encodings (BOMs, UTF-8, legacy code pages), binary and empty files, titles, odd names."""
from __future__ import annotations

from pathlib import Path

import pytest

from anagnorisis.kinds import MediaError, get_kind, kind_of_extension
from anagnorisis.kinds import text as text_kind
from anagnorisis.kinds.text import read_text
from tests.kinds.helpers import (
    assert_damage_raises_only_media_errors,
    assert_reads_as_expected,
    assert_refused,
)
from tests.media import BadFile, GoodFile, write_png, write_text

TEXT = get_kind("text")

WESTERN = "Café crème brûlée, naïve façade — “quoted” for €5.\nSecond line: Ärger, Übermut, señor.\n"
CYRILLIC = (
    "Привет, мир! Это проверка кодировки текста.\n"
    "Вторая строка: съешь же ещё этих мягких французских булок.\n"
)
CENTRAL = "Příliš žluťoučký kůň úpěl ďábelské ódy.\nZażółć gęślą jaźń.\n"


def test_the_text_kind_claims_the_usual_text_extensions() -> None:
    assert TEXT.extensions == {".txt", ".md", ".markdown", ".html", ".htm"}
    assert kind_of_extension(".Markdown") is TEXT
    assert TEXT.extra_sorts == ("length",) and TEXT.fallback_encoder is None


def test_every_generated_text_reads_with_its_encoding_and_title(good_files: list[GoodFile]) -> None:
    found = [good for good in good_files if good.kind == "text"]
    assert len(found) >= 5
    for good in found:
        assert_reads_as_expected(TEXT, good)


@pytest.mark.parametrize(
    ("encoding", "content", "expected"),
    [
        ("utf-8", WESTERN, "utf-8"),
        ("utf-8-sig", WESTERN, "utf-8-sig"),
        ("utf-16", CYRILLIC, "utf-16"),
        ("cp1252", WESTERN, "cp1252"),
        # cp1252 is a superset of latin-1 that reads these bytes the same
        ("latin-1", "Señor Muñoz está aquí. Año nuevo, corazón.\n", "cp1252"),
        ("cp1251", CYRILLIC, "cp1251"),
        ("cp1250", CENTRAL, "cp1250"),
    ],
)
def test_each_encoding_is_detected_and_the_text_decodes_exactly(
    tmp_path: Path, encoding: str, content: str, expected: str
) -> None:
    path = write_text(tmp_path / f"{encoding}.txt", content, encoding)
    text, detected = read_text(path)
    assert (text, detected) == (content, expected)
    assert TEXT.read_metadata(path).metadata["encoding"] == expected


def test_utf16_without_a_bom_is_binary(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="^binary file, not text$"):
        TEXT.read_metadata(write_text(tmp_path / "wide.txt", CYRILLIC, "utf-16-le"))


def test_a_short_legacy_text_still_reads(tmp_path: Path) -> None:
    text, encoding = read_text(write_text(tmp_path / "short.txt", "Café\n", "cp1252"))
    assert (text, encoding) == ("Café\n", "cp1252")


def test_nul_bytes_make_a_file_binary(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_bytes(b"looks like text\n\x00\x01\x02 but is not")
    with pytest.raises(MediaError, match="^binary file, not text$"):
        TEXT.read_metadata(path)


def test_a_png_named_txt_is_binary(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="^binary file, not text$"):
        TEXT.read_metadata(write_png(tmp_path / "picture.txt"))


def test_an_empty_text_says_it_is_empty(tmp_path: Path) -> None:
    (tmp_path / "empty.md").write_bytes(b"")
    (tmp_path / "bom only.txt").write_bytes(b"\xef\xbb\xbf")
    for name in ("empty.md", "bom only.txt"):
        with pytest.raises(MediaError, match="^empty file$"):
            TEXT.read_metadata(tmp_path / name)


def test_every_bad_text_is_refused_with_a_short_reason(bad_files: list[BadFile]) -> None:
    found = [bad for bad in bad_files if bad.kind == "text"]
    assert {bad.badness for bad in found} == {"empty", "truncated", "garbage", "bitflipped", "wrong-kind"}
    for bad in found:
        assert_refused(TEXT, bad)


@pytest.mark.parametrize(
    ("name", "content", "title"),
    [
        ("plain.txt", "\n\n   First real line   \nsecond\n", "First real line"),
        ("heading.md", "# The Title #\n\nBody\n", "The Title"),
        ("front.md", "---\ntitle: x\n---\n\n## Section one\n", "Section one"),
        ("page.html", "<html><head><title>Tom &amp; Jerry</title></head><body>x</body></html>", "Tom & Jerry"),
        ("h1.htm", "<html><body><h1>Big <em>news</em></h1><p>more</p></body></html>", "Big news"),
        ("bare.html", "<p>\n  Just a paragraph\n</p>", "Just a paragraph"),
        ("long.txt", "word " * 100, ("word " * 100).strip()[:120]),
    ],
)
def test_the_title_is_the_first_meaningful_line(tmp_path: Path, name: str, content: str, title: str) -> None:
    metadata = TEXT.read_metadata(write_text(tmp_path / name, content)).metadata
    assert metadata["title"] == title and len(metadata["title"]) <= 120


def test_a_whitespace_only_text_has_no_title(tmp_path: Path) -> None:
    metadata = TEXT.read_metadata(write_text(tmp_path / "blank.txt", "  \n\t\n")).metadata
    assert "title" not in metadata and metadata["lines"] == 2


@pytest.mark.parametrize(
    ("content", "lines"),
    [("one", 1), ("one\n", 1), ("one\ntwo", 2), ("one\r\ntwo\r\n", 2), ("old\rmac\r", 2), ("\n\n", 2)],
)
def test_lines_are_counted_as_an_editor_shows_them(tmp_path: Path, content: str, lines: int) -> None:
    metadata = TEXT.read_metadata(write_text(tmp_path / "lines.txt", content)).metadata
    assert (metadata["lines"], metadata["chars"]) == (lines, len(content))


def test_a_large_text_is_counted_in_chunks_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_text(tmp_path / "big.txt", "Title line\n" + "ünïcode words here\n" * 5000, "utf-8")
    whole = TEXT.read_metadata(path).metadata
    monkeypatch.setattr(text_kind, "WHOLE_READ_BYTES", 1000)
    monkeypatch.setattr(text_kind, "STREAM_CHUNK_BYTES", 4097)  # odd, so chunks split characters
    monkeypatch.setattr(text_kind, "DETECT_BYTES", 999)
    assert TEXT.read_metadata(path).metadata == whole


def test_texts_with_odd_names_read_fine(odd_files: list[Path]) -> None:
    found = [path for path in odd_files if path.suffix in TEXT.extensions]
    assert len(found) >= 2
    for path in found:
        assert TEXT.read_metadata(path).metadata["lines"] == 1


def test_damaged_copies_of_good_text_raise_nothing_but_media_errors(
    good_files: list[GoodFile], tmp_path: Path
) -> None:
    assert_damage_raises_only_media_errors(TEXT, good_files, tmp_path)


def test_a_texts_header_lines_and_the_year_in_its_title_become_fields(tmp_path: Path) -> None:
    from anagnorisis.kinds.text import read_text_metadata

    movie = tmp_path / "0001.txt"
    movie.write_text("Toy Story (1995)\nGenres: Animation, Children's, Comedy\n\nSee http://example.org: a link\n",
                     encoding="utf-8")
    metadata = read_text_metadata(movie).metadata
    assert metadata["genres"] == "Animation, Children's, Comedy" and metadata["year"] == 1995
    assert metadata["title"] == "Toy Story (1995)" and "see http" not in metadata
