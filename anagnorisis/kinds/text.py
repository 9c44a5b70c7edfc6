"""Text: the encoding is detected (BOMs, UTF-8, legacy code pages), binary files are refused, a title is taken."""
from __future__ import annotations

import codecs
import html
import os
import re
from pathlib import Path

from anagnorisis.kinds.probing import TEXT, read_head
from anagnorisis.kinds.registry import MediaError, MediaKind, Metadata, Probe, register

BINARY_SNIFF_BYTES = 8192  # a NUL byte in this much of the start marks a binary file (as git and grep decide)
MAX_CONTROL_SHARE = 0.01  # decoded text with more control characters than this is binary in disguise
TITLE_CHARS = 120
# Files up to this size are decoded whole; larger ones are counted in streaming chunks (a 2 GB log must not
# take 2 GB of RAM). Texts worth rating are far smaller.
WHOLE_READ_BYTES = 64 * 1024**2
STREAM_CHUNK_BYTES = 4 * 1024**2
DETECT_BYTES = 1024**2  # legacy encodings are detected on at most this much of the start
# When several legacy encodings decode a text equally well, the one people most likely used wins.
PREFERRED_LEGACY = ("cp1252", "latin_1", "cp1251", "cp1250", "iso8859_15", "cp1253", "cp1254", "cp1257", "koi8_r")

# Non-Latin letters below this share of the Latin ones look like mojibake, not a second script.
STRAY_LETTER_SHARE = 0.5
BINARY = "binary file, not text"
EXTENSIONS = frozenset({".txt", ".md", ".markdown", ".html", ".htm"})
_FORMATS = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16: its BOM starts with UTF-16's
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")
_C1_CONTROL = re.compile(r"[\x80-\x9f]")
_NEWLINE = re.compile(r"\r\n|\r|\n")
_LAST_SPACE = re.compile(r"\s(?=\S*\Z)")


def read_text(path: Path) -> tuple[str, str]:
    """The whole text of a file and the encoding it was read with; MediaError for empty or binary files."""
    head = read_head(path, BINARY_SNIFF_BYTES)
    encoding = _bom_encoding(head)
    if encoding is None and b"\x00" in head:
        raise MediaError(BINARY)
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise MediaError(f"cannot read: {error.strerror or error}") from error
    text, encoding = _decode(data, encoding)
    if not text:
        raise MediaError("empty file")
    return text, encoding


def detect_encoding(data: bytes, partial: bool = False) -> str:
    """The encoding of `data`: a BOM's, else UTF-8 if it decodes, else the best legacy guess; MediaError if binary.

    `partial`: `data` is the start of a longer file, so its last character may be cut.
    """
    return _bom_encoding(data) or _utf8_or_legacy(data, partial)


def _bom_encoding(head: bytes) -> str | None:
    return next((name for bom, name in _BOMS if head.startswith(bom)), None)


def _utf8_or_legacy(data: bytes, partial: bool = False) -> str:
    if b"\x00" in data[:BINARY_SNIFF_BYTES]:
        raise MediaError(BINARY)
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as error:
        if partial and error.start >= len(data) - 3:
            return "utf-8"  # the sample ends inside a character
    return _legacy_encoding(data[:DETECT_BYTES])


def _legacy_encoding(data: bytes) -> str:
    import charset_normalizer  # imported here: most libraries are all UTF-8 and never need it

    results = list(charset_normalizer.from_bytes(data))
    if not results:
        raise MediaError(BINARY)
    best = results[0]
    tied = {r.encoding for r in results if (r.chaos, r.coherence) == (best.chaos, best.coherence)}
    chosen = next((name for name in PREFERRED_LEGACY if name in tied), best.encoding)
    if _mostly_latin_with_stray_letters(data.decode(chosen, errors="replace")) and _decodes(data, "cp1252"):
        chosen = "cp1252"  # short Western texts fool the detector: "Café" is not Russian "Cafй"
    return chosen.replace("_", "-")


def _mostly_latin_with_stray_letters(text: str) -> bool:
    """True when a few non-Latin letters sit among many Latin ones: a sign of a wrongly guessed code page."""
    import unicodedata

    letters = [char for char in text if char.isalpha()]
    latin = sum(1 for char in letters if unicodedata.name(char, "").startswith("LATIN"))
    other = len(letters) - latin
    return 0 < other < STRAY_LETTER_SHARE * latin


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _decode(data: bytes, encoding: str | None) -> tuple[str, str]:
    encoding = encoding or _utf8_or_legacy(data)
    # A legacy code page was guessed from the start of the file; a stray undefined byte later is not binary.
    errors = "strict" if encoding.startswith("utf") else "replace"
    try:
        text = data.decode(encoding, errors)
    except UnicodeDecodeError as error:
        raise MediaError(f"{BINARY} (undecodable as {encoding})") from error
    if encoding in ("latin-1", "iso8859-1") and _C1_CONTROL.search(text):
        text, encoding = data.decode("cp1252", errors="replace"), "cp1252"  # C1 controls mean Windows-1252
    if len(_CONTROL.findall(text)) > MAX_CONTROL_SHARE * len(text):
        raise MediaError(BINARY)
    return text, encoding


def read_text_metadata(path: Path) -> Probe:
    """Encoding, line and character counts, and a title; MediaError for empty, binary or undecodable files."""
    try:
        size = os.stat(path).st_size
    except OSError:
        size = 0  # read_text names the problem
    if size > WHOLE_READ_BYTES:
        return Probe(_large_text_metadata(path))
    text, encoding = read_text(path)
    metadata: Metadata = {"encoding": encoding, "lines": count_lines(text), "chars": len(text)}
    metadata["words"] = len(text.split())
    metadata["format"] = _FORMATS.get(path.suffix.lower(), "plain")
    title = title_of(text, metadata["format"])
    if title:
        metadata["title"] = title
    metadata.update(header_fields(text, title))
    return Probe(metadata)


def count_lines(text: str) -> int:
    """Lines as an editor shows them: a last line without a newline still counts."""
    breaks = len(_NEWLINE.findall(text))
    return breaks + (0 if not text or text.endswith(("\n", "\r")) else 1)


def _large_text_metadata(path: Path) -> Metadata:
    """Counts for a text too large to hold: the encoding is detected on the start, the rest decoded in chunks."""
    head = read_head(path, DETECT_BYTES)
    encoding = detect_encoding(head, partial=True)
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    counts = _StreamCounts()
    with open(path, "rb") as file:
        while chunk := file.read(STREAM_CHUNK_BYTES):
            counts.add(decoder.decode(chunk))
    counts.add(decoder.decode(b"", final=True), final=True)
    metadata: Metadata = {"encoding": encoding, "lines": counts.lines, "chars": counts.chars, "words": counts.words}
    metadata["format"] = _FORMATS.get(path.suffix.lower(), "plain")
    title = title_of(counts.start, metadata["format"])
    if title:
        metadata["title"] = title
    metadata.update(header_fields(counts.start, title))
    return metadata


class _StreamCounts:
    """Lines, characters and words of a text fed in pieces, counted as `count_lines` and `str.split` would."""

    START_CHARS = 65_536  # kept from the start to find a title

    def __init__(self) -> None:
        self.breaks = self.chars = self.words = 0
        self.start = self.pending = self.last = ""

    def add(self, text: str, final: bool = False) -> None:
        text = self.pending + text
        # Hold back a word (or a "\r" whose "\n" may follow) that the next piece may continue.
        cut = len(text) if final else _safe_cut(text)
        done, self.pending = text[:cut], text[cut:]
        self.start = self.start or done[: self.START_CHARS]
        self.breaks += len(_NEWLINE.findall(done))
        self.chars += len(done)
        self.words += len(done.split())
        self.last = done[-1:] or self.last

    @property
    def lines(self) -> int:
        return self.breaks + (0 if self.last in ("", "\n", "\r") else 1)


def _safe_cut(text: str) -> int:
    found = _LAST_SPACE.search(text)
    if found is None:
        return 0
    return found.start() if text[found.start()] == "\r" else found.start() + 1


# ---------------------------------------------------------------- titles

_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_HTML_H1 = re.compile(r"<h1[^>]*>(.*?)</h1\s*>", re.IGNORECASE | re.DOTALL)
_HTML_HIDDEN = re.compile(r"<(script|style|head)[^>]*>.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]*>")
_FRONT_MATTER = re.compile(r"\A---\s*\n.*?\n---\s*\n", re.DOTALL)


def title_of(text: str, fmt: str = "plain") -> str | None:
    """The first non-empty line (HTML: its <title> or <h1>; Markdown: without '#'), trimmed to TITLE_CHARS."""
    if fmt == "html":
        candidate = _html_title(text)
    else:
        body = _FRONT_MATTER.sub("", text, count=1) if fmt == "markdown" else text
        candidate = _first_line(body)
        if fmt == "markdown" and candidate:
            candidate = candidate.lstrip("#").strip().rstrip("#").strip() or candidate
    if not candidate:
        return None
    return " ".join(candidate.split())[:TITLE_CHARS]


def _html_title(text: str) -> str | None:
    for pattern in (_HTML_TITLE, _HTML_H1):
        found = pattern.search(text)
        if found:
            inner = html.unescape(_HTML_TAG.sub(" ", found.group(1))).strip()
            if inner:
                return inner
    visible = html.unescape(_HTML_TAG.sub("\n", _HTML_HIDDEN.sub("", text)))
    return _first_line(visible)


# A text's own fields (SPEC §10): `Key: value` lines among its first HEADER_LINES lines (as a note, a catalogue
# card or an e-mail header writes them), keys of one short word, and a year in parentheses in the title
# ("Heat (1995)"). Keys that the scan writes itself are never overwritten.
HEADER_LINES = 12
HEADER_VALUE_CHARS = 200
_HEADER = re.compile(r"^\s*([A-Za-z][A-Za-z_-]{0,23})\s*:\s*(\S.*?)\s*$")
_TITLE_YEAR = re.compile(r"\((\d{4})\)")
_OWN_KEYS = frozenset({"encoding", "lines", "chars", "words", "format", "title"})


def header_fields(text: str, title: str | None) -> Metadata:
    """{"genres": "Action, Comedy", "year": 1995} from the first lines and the title; {} when none."""
    found: Metadata = {}
    for line in text[:HEADER_LINES * 400].splitlines()[:HEADER_LINES]:
        match = _HEADER.match(line)
        if match and "://" not in line:
            key = match.group(1).casefold()
            if key not in _OWN_KEYS and key not in found:
                found[key] = match.group(2)[:HEADER_VALUE_CHARS]
    year = _TITLE_YEAR.search(title or "")
    if year and 1000 <= int(year.group(1)) <= 2999 and "year" not in found:
        found["year"] = int(year.group(1))
    return found


def _first_line(text: str) -> str | None:
    return next((line.strip() for line in text.splitlines() if line.strip()), None)


TEXT_KIND = register(
    MediaKind(
        name=TEXT,
        extensions=EXTENSIONS,
        encoder="sentence",
        fallback_encoder=None,
        read_metadata=read_text_metadata,
        extra_sorts=("length",),  # in characters
        noun=("document", "documents"),
        default_model="sentence-transformers/all-MiniLM-L6-v2",
        tab="Text",
        length="characters",
    )
)
