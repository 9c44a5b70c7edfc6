"""How a document is shown: Markdown rendered, HTML sanitised, the passage that best matches a query marked.

Pure functions over strings. Rendering is markdown-it-py (CommonMark with tables and strikethrough); sanitising
is nh3 (the Rust ammonia sanitiser) with an allow-list: no scripts, styles, frames, forms or media elements, no
event handlers or style attributes, and no URL that makes the browser load anything from another origin. Only
images from `data:` URLs and from files the app serves itself (resolved by the caller) stay.
"""
from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import nh3
import numpy as np
from markdown_it import MarkdownIt


# Tags that may stay (their text stays either way, except CLEARED_TAGS). No media, frames, forms, links to
# style sheets, <base>, <meta>, SVG or MathML: each of those can load something or run something.
ALLOWED_TAGS = frozenset({
    "a", "abbr", "acronym", "article", "aside", "b", "bdi", "bdo", "blockquote", "br", "caption", "center",
    "cite", "code", "col", "colgroup", "data", "dd", "del", "details", "dfn", "div", "dl", "dt", "em",
    "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "i", "img",
    "ins", "kbd", "li", "mark", "nav", "ol", "p", "pre", "q", "rp", "rt", "rtc", "ruby", "s", "samp", "section",
    "small", "span", "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
    "time", "tr", "tt", "u", "ul", "var", "wbr",
})
# Removed with everything inside them: code, style, and the content of what can never be shown safely.
CLEARED_TAGS = frozenset({"script", "style", "iframe", "object", "embed", "noscript", "template", "svg", "math",
                          "title", "textarea", "select", "frameset", "noembed", "noframes", "xmp"})
# Attributes per tag ("*" for all). No on* handlers, no style (CSS url() loads), no id/name (DOM clobbering).
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"title", "lang", "dir"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "ol": {"start"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
    "time": {"datetime"},
    "data": {"value"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto", "data"})  # then narrowed per attribute in _vet_url
LINK_SCHEMES = ("http", "https", "mailto")  # a link loads nothing until clicked; a click opens a new tab
DATA_IMAGE = re.compile(r"^data:image/(png|jpe?g|gif|webp|bmp|avif);", re.IGNORECASE)

# Private-use characters marking where the best passage starts and ends while a document is rendered.
START_MARK, END_MARK = "\ue000", "\ue001"
MARK_OPEN = '<mark class="best-chunk">'
FIRST_MARK_OPEN = '<mark class="best-chunk" id="best-chunk">'
# A tag (quoted attribute values may hold '>') or a run of text between tags, in serialised HTML.
_TAG_OR_TEXT = re.compile(r"(<(?:[^>\"']|\"[^\"]*\"|'[^']*')*>)")
# Block syntax a Markdown line may start with: a marker put before it would turn the block into a paragraph.
_MARKDOWN_LINE_PREFIX = re.compile(r"[ \t]*(?:#{1,6}[ \t]+|>[ \t]?|[-*+][ \t]+|\d{1,9}[.)][ \t]+|`{3,}|~{3,})*")

LocalResolver = Callable[[str], "str | None"]  # a relative URL -> a URL the app serves, or None to drop it


class ChunkingEncoder(Protocol):
    """What best_chunk needs of a text encoder (SentenceEncoder has it)."""

    def chunk_text(self, text: str) -> Sequence[Any]: ...

    def chunk_scores(self, text_or_chunks: Any, query_vec: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Passage:
    """The best-matching chunk of a document: source[start:end], its cosine, and the file's smooth-max score."""

    start: int
    end: int
    score: float
    file_score: float
    text: str


# ---------------------------------------------------------------- sanitising


def sanitise_html(markup: str, resolve_local: LocalResolver | None = None) -> str:
    """Allow-listed HTML: no scripts, no event handlers, no style, no remote loads (see the module docstring).

    ``resolve_local`` maps a relative image or link URL to one the app serves (a file under a library root);
    without it, or when it returns None, the attribute is dropped.
    """
    def vet(tag: str, attribute: str, value: str) -> str | None:
        if attribute in ("href", "src"):
            return _vet_url(tag, attribute, value, resolve_local)
        return value

    return nh3.clean(
        markup, tags=set(ALLOWED_TAGS), clean_content_tags=set(CLEARED_TAGS), attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=vet, url_schemes=set(URL_SCHEMES), strip_comments=True,
        link_rel="noopener noreferrer nofollow", set_tag_attribute_values={"a": {"target": "_blank"}},
    )


def _vet_url(tag: str, attribute: str, value: str, resolve_local: LocalResolver | None) -> str | None:
    url = value.strip()
    if not url:
        return None
    if attribute == "src":  # an image loads as soon as it is shown: only data: and the app's own files
        if DATA_IMAGE.match(url):
            return url
        return _local(url, resolve_local)
    if url.startswith("#"):
        return url
    parts = urlsplit(url)
    if parts.scheme:
        return url if parts.scheme.lower() in LINK_SCHEMES else None
    if parts.netloc:  # //host/path: another origin
        return "https:" + url
    return _local(url, resolve_local)


def _local(url: str, resolve_local: LocalResolver | None) -> str | None:
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or resolve_local is None or not parts.path:
        return None
    return resolve_local(unquote(parts.path))


# ---------------------------------------------------------------- rendering


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False}).enable(
        ["table", "strikethrough"])


def render_markdown(source: str, resolve_local: LocalResolver | None = None) -> str:
    """Markdown (raw HTML inside it included) as sanitised HTML."""
    return sanitise_html(_markdown().render(source), resolve_local)


def render_document(source: str, fmt: str, passage: Passage | None = None,
                    resolve_local: LocalResolver | None = None) -> str:
    """The rendered view of a document of format 'markdown', 'html' or 'plain', the passage (source offsets)
    marked with <mark class="best-chunk">, the first mark carrying id="best-chunk"."""
    source = _without_marks(source)
    if fmt == "plain":
        return '<div class="text-plain">' + highlight_plain(source, passage) + "</div>"
    if passage is not None:
        start, end = _marker_positions(source, passage, fmt)
        source = source[:start] + START_MARK + source[start:end] + END_MARK + source[end:]
    rendered = render_markdown(source, resolve_local) if fmt == "markdown" else sanitise_html(source, resolve_local)
    return '<div class="text-rendered">' + wrap_marked(rendered) + "</div>"


def render_raw(source: str, passage: Passage | None = None) -> str:
    """The source as it is (escaped), the passage marked."""
    return '<pre class="text-raw">' + highlight_plain(_without_marks(source), passage) + "</pre>"


def highlight_plain(text: str, passage: Passage | None) -> str:
    """Escaped text with the passage (offsets into text) wrapped in a mark."""
    if passage is None or not 0 <= passage.start < passage.end <= len(text):
        return html.escape(text, quote=False)
    return (html.escape(text[: passage.start], quote=False) + FIRST_MARK_OPEN
            + html.escape(text[passage.start : passage.end], quote=False) + "</mark>"
            + html.escape(text[passage.end :], quote=False))


def _without_marks(text: str) -> str:
    """The text with our marker characters replaced (same length, so offsets stay)."""
    return text.replace(START_MARK, "\ufffd").replace(END_MARK, "\ufffd")


def _marker_positions(source: str, passage: Passage, fmt: str) -> tuple[int, int]:
    """Where to put the markers: widened to whole words (never inside a URL or a tag's word), and in Markdown
    after a line's block syntax (a marker before '# ' would unmake the heading)."""
    start = max(0, min(passage.start, len(source)))
    end = max(start, min(passage.end, len(source)))
    if fmt == "html":  # offsets from visible_text already fall between tags and entities
        return start, end
    while start > 0 and not source[start - 1].isspace():
        start -= 1
    while end < len(source) and not source[end].isspace():
        end += 1
    if fmt == "markdown" and (start == 0 or source[start - 1] == "\n"):
        start += _MARKDOWN_LINE_PREFIX.match(source, start).end() - start  # type: ignore[union-attr]
        start = min(start, end)
    return start, end


def wrap_marked(markup: str) -> str:
    """Replace the marker characters: every non-blank text run between them is wrapped in a mark.

    Wrapping text runs one by one keeps the HTML well formed when a passage spans paragraphs, lists or cells.
    Markers that ended up inside a tag (an attribute value) are dropped.
    """
    out: list[str] = []
    inside = first = False
    for piece in _TAG_OR_TEXT.split(markup):
        if piece.startswith("<") and _TAG_OR_TEXT.fullmatch(piece):
            out.append(piece.replace(START_MARK, "").replace(END_MARK, ""))
            continue
        for segment in re.split(f"([{START_MARK}{END_MARK}])", piece):
            if segment == START_MARK:
                inside = True
            elif segment == END_MARK:
                inside = False
            elif inside and segment.strip():
                opening = MARK_OPEN if first else FIRST_MARK_OPEN
                first = True
                out.append(opening + segment + "</mark>")
            else:
                out.append(segment)
    return "".join(out)


# ---------------------------------------------------------------- the best passage


def best_chunk(text: str, query_vector: np.ndarray, encoder: ChunkingEncoder) -> Passage | None:
    """The chunk of text (cut as the encoder cuts documents, SPEC §2) closest to the query; None for no text."""
    chunks = list(encoder.chunk_text(text))
    if not chunks:
        return None
    scores = np.asarray(encoder.chunk_scores(chunks, np.asarray(query_vector, dtype=np.float32)), dtype=np.float64)
    best = int(np.argmax(scores))
    chunk = chunks[best]
    from anagnorisis.embed.sentence import smooth_max  # imported here: it brings torch, too slow for app start

    return Passage(chunk.start_char, chunk.end_char, float(scores[best]), smooth_max(scores), chunk.text)


def best_passage(source: str, fmt: str, query_vector: np.ndarray, encoder: ChunkingEncoder) -> Passage | None:
    """best_chunk over what a reader sees (an HTML page's visible text), with offsets into the source."""
    if fmt != "html":
        return best_chunk(source, query_vector, encoder)
    visible, spans = visible_text(source)
    found = best_chunk(visible, query_vector, encoder)
    if found is None:
        return None
    return Passage(spans[found.start][0], spans[found.end - 1][1], found.score, found.file_score, found.text)


_HIDDEN_BLOCK = re.compile(r"<(script|style|head|title|template|noscript)\b.*?</\1\s*>|<!--.*?-->",
                           re.IGNORECASE | re.DOTALL)
_ANY_TAG = re.compile(r"<[^>]*>")
_ENTITY = re.compile(r"&(#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);?")


Spans = list[tuple[int, int]]


def visible_text(markup: str) -> tuple[str, Spans]:
    """An HTML page's visible text and, per character, the (start, end) of the markup it comes from (entities
    decoded, tags and hidden blocks gone; a tag between words reads as a space)."""
    chars: list[str] = []
    offsets: Spans = []
    position = 0
    for hidden in [*_HIDDEN_BLOCK.finditer(markup), None]:
        stop = hidden.start() if hidden is not None else len(markup)
        _visible_between(markup, position, stop, chars, offsets)
        if hidden is None:
            break
        position = hidden.end()
        if chars and not chars[-1].isspace():
            chars.append(" ")
            offsets.append((hidden.start(), hidden.start()))
    return "".join(chars), offsets


def _visible_between(markup: str, start: int, stop: int, chars: list[str], offsets: Spans) -> None:
    position = start
    for tag in [*_ANY_TAG.finditer(markup, start, stop), None]:
        text_end = tag.start() if tag is not None else stop
        _decoded_text(markup, position, text_end, chars, offsets)
        if tag is None:
            return
        if chars and not chars[-1].isspace():
            chars.append(" ")  # a tag separates words (<p>a</p><p>b</p> reads "a b")
            offsets.append((tag.start(), tag.start()))
        position = tag.end()


def _decoded_text(markup: str, start: int, stop: int, chars: list[str], offsets: Spans) -> None:
    position = start
    for entity in [*_ENTITY.finditer(markup, start, stop), None]:
        plain_end = entity.start() if entity is not None else stop
        for index in range(position, plain_end):
            chars.append(markup[index])
            offsets.append((index, index + 1))
        if entity is None:
            return
        for char in html.unescape(entity.group(0)):
            chars.append(char)
            offsets.append((entity.start(), entity.end()))
        position = entity.end()
