"""The Text tab: documents with their first lines, search by name and meaning, a reader, an editor, the rating.

The reader shows a document rendered (Markdown and HTML, sanitised by ``textview``) and raw; after a meaning
search it marks the passage that matches the query best (chunked as the encoder chunks, SPEC §2) and scrolls to
it. The editor saves atomically in the file's own encoding (``library.edit``); the rating follows the new
content. Binary files never enter the library: the scanner skips them, and the tab lists them with the reason.
"""
from __future__ import annotations

import logging
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from anagnorisis.kinds.registry import MediaError
from anagnorisis.kinds.text import BINARY
from anagnorisis.library.edit import READ_ONLY, Document, EditRefused, library_is_writable, open_document, save_text
from anagnorisis.media.playback import file_url
from anagnorisis.media.textview import Passage, best_passage, render_document, render_raw
from anagnorisis.ui import learn, media_tab
from anagnorisis.ui.browse import (
    PageView, commit_rating, fresh_page,
    build_request, file_name, Filters, human_size, Page, rating_text, run_page, search_controls,
)
from anagnorisis.ui.context import AppContext, Loader
from anagnorisis.ui.safe import html_text, md, md_code, md_lines
from anagnorisis.ui.skipped import SkippedPanel, skipped_markdown

log = logging.getLogger(__name__)

KIND = "text"
PAGE_SIZE = 20  # documents per page of the list
PREVIEW_LINES = 3  # first non-empty lines shown per document in the list
PREVIEW_CHARS = 220  # ... cut to this many characters
PREVIEW_HEAD_BYTES = 16 * 1024  # read from the start of a file to find its first lines
PREVIEW_CACHE_SIZE = 2048  # previews kept in memory, keyed by content hash
AB_PREVIEW_LINES = 14  # an A/B question shows more of each document than a list row: enough to choose by
AB_PREVIEW_CHARS = 1200
# The reader shows at most this much of a document (a browser would choke on a 60 MB log); larger ones are shown
# cut and cannot be edited here.
DISPLAY_CHARS = 1_000_000
# The best passage is looked for in the first this many characters: about 130 chunks of MiniLM, a few seconds
# on a CPU. (The file's place in the results comes from its stored vector, whatever its length.)
PASSAGE_SEARCH_CHARS = 100_000
PASSAGE_CACHE_SIZE = 64
HEADERS = ["#", "Name", "First lines", "Rating", "Size", "Why here"]
FORMATS = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}
EMPTY_READER = '<div class="text-empty">Select a document.</div>'

_previews: OrderedDict[str, str] = OrderedDict()
_passages: OrderedDict[tuple[str, str, str], Passage | None] = OrderedDict()


@dataclass
class View(PageView):
    """The list's page, the request behind it, and (after a meaning search) the query's vector."""

    mode: str | None = None
    query_vector: np.ndarray | None = None


@dataclass
class Opened:
    """The document in the reader."""

    path: str
    content_hash: str
    encoding: str
    newline: str
    fmt: str
    editable: bool
    note: str = ""


# ---------------------------------------------------------------------------------------------- the list


def first_lines(record: dict[str, Any]) -> str:
    """The first few non-empty lines of a document (HTML: of its visible text), cached by content hash."""
    key = str(record.get("content_hash"))
    if key in _previews:
        _previews.move_to_end(key)
        return _previews[key]
    preview = _read_first_lines(record)
    _previews[key] = preview
    while len(_previews) > PREVIEW_CACHE_SIZE:
        _previews.popitem(last=False)
    return preview


def _read_first_lines(record: dict[str, Any], count: int = PREVIEW_LINES, chars: int = PREVIEW_CHARS,
                      separator: str = " ⏎ ") -> str:
    from anagnorisis.embed.sentence import html_to_text

    encoding = str((record.get("metadata") or {}).get("encoding") or "utf-8")
    try:
        with open(os.fsencode(record["path"]), "rb") as file:
            head = file.read(PREVIEW_HEAD_BYTES)
        text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    except (OSError, LookupError) as error:
        return f"(cannot read: {getattr(error, 'strerror', None) or error})"  # plain text: a "str" cell, escaped in A/B
    if document_format(record["path"]) != "plain":  # Markdown may hold raw HTML too: show what a reader sees
        text = html_to_text(text)
    lines = [line.strip() for line in text.splitlines() if line.strip()][:count]
    preview = separator.join(lines)
    return preview if len(preview) <= chars else preview[: chars - 1] + "…"


def document_format(path: str) -> str:
    return FORMATS.get(os.path.splitext(path)[1].lower(), "plain")


def table_frame(view: View) -> pd.DataFrame:
    offset = view.request.offset if view.request is not None else 0
    rows = [[offset + i + 1, file_name(record), first_lines(record), rating_text(record),
             human_size(record.get("size")), str(record.get("reason") or "")]
            for i, record in enumerate(view.results)]
    return pd.DataFrame(rows, columns=HEADERS)


def skipped_files(ctx: AppContext) -> str:
    """The files of text roots the scanner skipped, each with its reason (binary files say so)."""
    return skipped_markdown(ctx, KIND, _label)


def _label(reason: str) -> str:
    return "binary file" if reason.startswith(BINARY) else reason


def search_page(ctx: AppContext, query: str, mode: str, sort: str, order: str, temperature: float, seed: int,
                page: int, folder: str, rated: str, rmin: float, rmax: float, mmin: float, mmax: float,
                ext: str) -> tuple[pd.DataFrame, str, View, int, str]:
    """Handler: run the search and fill the list."""
    filters = Filters(folder or "", rated or "all", float(rmin), float(rmax), float(mmin), float(mmax), ext or "")
    request = build_request(KIND, query, mode, sort, order, temperature, seed, page, filters, page_size=PAGE_SIZE)
    result: Page = run_page(ctx, request)
    view = View(result.results, replace(request, offset=(result.page - 1) * PAGE_SIZE), result.total, result.mode)
    if result.mode == "meaning" and request.query:
        view.query_vector = query_vector(ctx, request.query)
    return table_frame(view), result.summary(), view, result.page, skipped_files(ctx)


def query_vector(ctx: AppContext, query: str) -> np.ndarray | None:
    encode = ctx.session.text_encoder(KIND)
    if encode is None:
        return None
    return np.asarray(encode(query), dtype=np.float32).reshape(-1)


def rate_next(ctx: AppContext) -> tuple[pd.DataFrame, str, View, int, str]:
    """Handler: fill the list with the rate-next queue (its reasons in "Why here")."""
    results, summary = learn.rate_next_queue(ctx, KIND)
    view = View(results, None, len(results))
    return table_frame(view), summary, view, 1, skipped_files(ctx)


def ab_side_html(ctx: AppContext, record: dict[str, Any]) -> str:
    """One document of an A/B question: its title and first lines (escaped, never rendered)."""
    title = (record.get("metadata") or {}).get("title") or file_name(record)
    excerpt = _read_first_lines(record, AB_PREVIEW_LINES, AB_PREVIEW_CHARS, "\n")
    return (f'<div class="text-ab"><b>{html_text(title)}</b>'
            f'<div class="text-plain">{md_lines(excerpt)}</div></div>')


# ---------------------------------------------------------------------------------------------- the reader

ReaderUpdate = tuple[str, Any, str, str, str, Any, str, "Opened | None"]
# details, slider, saved, rendered, raw, editor, save message, opened


def open_row(ctx: AppContext, view: View, row_number: Any) -> ReaderUpdate:
    """Handler: a click on a list row opens that document (row_number: the '#' column)."""
    offset = view.request.offset if view.request is not None else 0
    try:
        position = int(float(row_number)) - 1 - offset
    except (TypeError, ValueError):
        position = -1
    if not 0 <= position < len(view.results):
        return nothing_open("Select a document.")
    return open_record(ctx, view, view.results[position])


def unsaved_edit(opened: Opened | None, editor_text: str | None) -> bool:
    """True when the editor holds text that differs from the opened document on disk."""
    if opened is None or not opened.editable or editor_text is None:
        return False
    try:
        return open_document(opened.path).text != editor_text
    except (MediaError, OSError):  # gone or unreadable now: nothing on disk to compare with, so keep the edit
        return True


def open_row_keeping_edits(ctx: AppContext, view: View, opened: Opened | None, editor_text: str | None,
                           asked_again: Any, row_number: Any) -> tuple[Any, ...]:
    """Handler: a click on a row opens it, unless the editor holds unsaved changes; then it asks first, and a
    second click on the same row opens it and discards them. The last output is the row waiting for that click."""
    if asked_again != row_number and unsaved_edit(opened, editor_text):
        name = os.path.basename(opened.path) if opened else "the document"
        keep = [gr.update()] * 6
        return (*keep, f"**Unsaved changes in {md(name)}.** Press Save, or click the row again to open it and "
                       "discard them.", opened, row_number)
    return (*open_row(ctx, view, row_number), None)


def nothing_open(message: str) -> ReaderUpdate:
    return (message, gr.update(value=0), "", EMPTY_READER, EMPTY_READER,
            gr.update(value="", interactive=False), "", None)


def open_record(ctx: AppContext, view: View, record: dict[str, Any]) -> ReaderUpdate:
    """The reader's content for one document: details, rating, rendered and raw views, the editor."""
    path = str(record["path"])
    try:
        document = open_document(path)
    except MediaError as error:
        label = "Binary file — not shown" if str(error).startswith(BINARY) else f"Cannot show this file: {md(error)}"
        return nothing_open(f"### {md(file_name(record))}\n\n**{label}**\n\n{md_code(path)}")  # trusted: label escaped
    except OSError as error:
        return nothing_open(f"### {md(file_name(record))}\n\n"
                            f"**Cannot read this file:** {md(error.strerror or error)}")
    fmt = document_format(path)
    shown = document.text[:DISPLAY_CHARS]
    passage = find_passage(ctx, view, document, shown, fmt)
    resolve = local_resolver(ctx, path)
    editable = library_is_writable(path) and len(document.text) <= DISPLAY_CHARS
    read_only = f"Editing is off: the {READ_ONLY}."  # trusted: a constant of library.edit
    note = "" if editable else (read_only if not library_is_writable(path)
                                else "Editing is off: the document is too large for the editor.")
    opened = Opened(path, document.content_hash, document.encoding, document.newline, fmt, editable, note)
    rating = record.get("user_rating")
    return (details_markdown(record, document, passage, len(document.text) > DISPLAY_CHARS),
            gr.update(value=rating if rating is not None else 0), "" if rating is not None else "not rated yet",
            render_document(shown, fmt, passage, resolve), render_raw(shown, passage),
            gr.update(value=document.text if editable else shown, interactive=editable), note, opened)


def find_passage(ctx: AppContext, view: View, document: Document, shown: str, fmt: str) -> Passage | None:
    """After a meaning search: the passage of the document closest to the query (cached), else None."""
    if view.query_vector is None or view.mode != "meaning" or view.request is None or not view.request.query:
        return None
    key = (document.content_hash, str(view.request.query), fmt)
    if key in _passages:
        return _passages[key]
    encoder, _status = ctx.session.encoder(KIND)
    if not hasattr(encoder, "chunk_text") or not hasattr(encoder, "chunk_scores"):
        return None
    try:
        passage = best_passage(shown[:PASSAGE_SEARCH_CHARS], fmt, view.query_vector, encoder)
    except Exception as error:  # noqa: BLE001 - the reader still opens without a highlight
        log.warning("no best passage for %s: %s", document.path, error)
        passage = None
    _passages[key] = passage
    while len(_passages) > PASSAGE_CACHE_SIZE:
        _passages.popitem(last=False)
    return passage


def local_resolver(ctx: AppContext, document_path: str) -> Any:
    """Relative links and images of a document → the app's URL for that file, when it lies under a library
    root (the only files served); anything else is dropped by the sanitiser."""
    from anagnorisis.store.roots import list_roots

    roots = [os.path.realpath(root.path) for root in list_roots(ctx.session.store)]
    folder = os.path.dirname(document_path)

    def resolve(relative: str) -> str | None:
        target = os.path.realpath(os.path.join(folder, relative))
        if not (any(target.startswith(root.rstrip(os.sep) + os.sep) for root in roots) and os.path.isfile(target)):
            return None
        try:
            return file_url(target)
        except UnicodeEncodeError:  # a name that is not UTF-8 cannot go into a URL
            return None

    return resolve


def details_markdown(record: dict[str, Any], document: Document, passage: Passage | None, cut: bool) -> str:
    meta = record.get("metadata") or {}
    lines = [
        f"### {md(meta.get('title') or file_name(record))}",
        md_code(record.get("display_path") or record["path"]),
        f"**Rating:** {rating_text(record)}",  # trusted: numbers and fixed words
        f"**Size:** {human_size(record.get('size'))} · "  # trusted: a number and a unit
        f"**Encoding:** {document.encoding} · "  # trusted: a codec name from the encoding detector
        f"**Lines:** {md(meta.get('lines', '?'))} · **Words:** {md(meta.get('words', '?'))}",
    ]
    if record.get("reason"):
        lines.append(f"**Why here:** {md(record['reason'])}")
    if passage is not None:
        lines.append(f"**Best passage** (marked): cosine {passage.score:.3f} · file score (smooth max over "
                     f"passages) {passage.file_score:.3f}")
    if cut:
        lines.append(f"*Showing the first {DISPLAY_CHARS:,} characters of {len(document.text):,}.*")
    return "\n\n".join(lines)


def rate(ctx: AppContext, opened: Opened | None, value: float | None) -> str:
    """Handler: commit the slider's value; 'saved' appears only after the commit."""
    if opened is None:
        return "Open a document first."
    return commit_rating(ctx, KIND, opened.path, value)[1]


def rated_view(ctx: AppContext, opened: Opened | None, details: str, view: View) -> tuple[Any, Any, View]:
    """After a rating: the details' rating line and the list's rating column say the new rating."""
    record = ctx.session.record_by_path(KIND, opened.path) if opened is not None else None
    if record is None:
        return gr.update(), gr.update(), view
    fresh = fresh_page(ctx, KIND, view)
    line = f"**Rating:** {rating_text(record)}"  # trusted: numbers and fixed words
    shown = re.sub(r"^\*\*Rating:\*\* .*$", lambda _match: line, details or "", count=1, flags=re.MULTILINE)
    return shown, table_frame(fresh), fresh


def save(ctx: AppContext, view: View, opened: Opened | None, text: str) -> tuple[str, str, str, str, Opened | None]:
    """Handler: write the editor's text (atomic, the file's encoding); the rating follows the new content."""
    if opened is None:
        return "Open a document first.", gr.update(), gr.update(), gr.update(), opened  # type: ignore[return-value]
    try:
        saved = save_text(ctx.session.store, opened.path, text or "", encoding=opened.encoding,
                          newline=opened.newline, expected_hash=opened.content_hash)
    except (EditRefused, MediaError) as error:
        return md(error), gr.update(), gr.update(), gr.update(), opened  # type: ignore[return-value]
    if not saved.changed:
        return "Nothing to save: the text is unchanged.", gr.update(), gr.update(), gr.update(), opened  # type: ignore[return-value]
    ctx.session.invalidate(KIND)
    ctx.start_embed([KIND])  # the new content needs its vector for meaning search
    record = ctx.session.record_by_path(KIND, opened.path) or {"path": opened.path}
    kept = record.get("user_rating")
    message = f"saved ({saved.encoding})" + (  # trusted: a codec name from the encoding detector
        f"; your rating {kept:g} stays with the new text" if kept is not None else "")
    update = open_record(ctx, replace(view, query_vector=None), record)
    return message, update[0], update[3], update[4], update[7]


# ---------------------------------------------------------------------------------------------- wiring

SCROLL_TO_PASSAGE_JS = """
() => {
  const mark = document.querySelector('#text-rendered #best-chunk');
  if (mark) mark.scrollIntoView({block: 'center'});
  const raw = document.querySelector('#text-raw #best-chunk');
  if (raw) raw.scrollIntoView({block: 'center'});
}
"""

READER_CSS = """
.text-rendered, .text-raw, .text-plain { max-height: 620px; overflow: auto; padding: 6px 10px; }
.text-raw, .text-plain { white-space: pre-wrap; word-break: break-word; font-family: var(--font-mono); }
.text-rendered img { max-width: 100%; }
mark.best-chunk { background: #ffe066; color: #111; padding: 0 1px; }
.text-empty { opacity: 0.7; padding: 12px 0; }
.text-ab .text-plain { max-height: 320px; }
"""


@dataclass
class TextHandles:
    """The Text tab's components: the shared ones, the reader and the editor."""

    media: media_tab.MediaHandles
    details: Any
    rendered: Any
    raw: Any
    editor: Any
    save_button: Any
    save_result: Any
    opened: Any  # gr.State: the Opened document
    asked_again: Any  # gr.State: the row clicked while the editor held unsaved changes

    def reader(self) -> list[Any]:
        """What a ReaderUpdate fills."""
        return [self.details, self.media.slider, self.media.saved, self.rendered, self.raw, self.editor,
                self.save_result, self.opened]


def render(ctx: AppContext) -> TextHandles:
    """Lay out the tab: the search, the list and pager, the reader with the rating and the editor, A/B."""
    search = search_controls(KIND, "file name, what a document is about, or a file path", "md,txt")
    summary, rate_next_button = media_tab.summary_row(KIND)
    with gr.Row(equal_height=False):
        with gr.Column(scale=6):
            table = gr.Dataframe(headers=HEADERS, datatype=["number", "str", "str", "str", "str", "str"],
                                 interactive=False, wrap=True, max_height=640,
                                 column_widths=["40px", "18%", "34%", "14%", "11%", "19%"],
                                 label="Documents", elem_id="text-table")
            pager = media_tab.pager(KIND)
            skipped = SkippedPanel(ctx, KIND, _label)
        with gr.Column(scale=5):
            details = gr.Markdown("Select a document.", elem_id="text-details")
            slider = media_tab.rating_slider(KIND)
            saved = media_tab.saved_text(KIND)
            with gr.Row():
                clear = media_tab.clear_button(KIND)
                more_to_rate = learn.more_to_rate_button(KIND)
                why_button = learn.why_button(KIND)
            why_text = learn.why_area(KIND)
            with gr.Tabs():
                with gr.Tab("Rendered", elem_id="text-tab-rendered"):
                    rendered = gr.HTML(EMPTY_READER, css_template=READER_CSS, elem_id="text-rendered")
                with gr.Tab("Raw", elem_id="text-tab-raw"):
                    raw = gr.HTML(EMPTY_READER, css_template=READER_CSS, elem_id="text-raw")
                with gr.Tab("Edit", elem_id="text-tab-edit"):
                    editor = gr.Textbox(lines=18, max_lines=40, interactive=False, show_label=False,
                                        elem_id="text-editor")
                    save_button = gr.Button("Save", variant="primary", elem_id="text-save")
                    save_result = gr.Markdown(elem_id="text-save-result")
    ab = learn.render_ab_panel(KIND, learn.Preview(
        make=lambda elem_id, label: gr.HTML(css_template=READER_CSS, label=label, elem_id=elem_id),
        value=ab_side_html))
    media = media_tab.MediaHandles(KIND, search, summary, rate_next_button, table, pager, skipped, slider, saved,
                                   clear, more_to_rate, why_button, why_text, ab, view=gr.State(View()),
                                   extra_outputs=[skipped.text])
    return TextHandles(media, details, rendered, raw, editor, save_button, save_result, opened=gr.State(None),
                       asked_again=gr.State(None))


def listen(ctx: AppContext, handles: TextHandles) -> Loader:
    """Wire the shared events, then the reader's: a click on a row (keeping unsaved edits), Save."""
    media, opened, reader = handles.media, handles.opened, handles.reader()
    private: dict[str, Any] = {"api_visibility": "private"}
    wired = media_tab.listen(ctx, media, media_tab.MediaWiring(
        search=lambda *values: search_page(ctx, *values), rate_next=lambda: rate_next(ctx),
        selection=[opened], selected_path=lambda document: document.path if document else None,
        rate=lambda o, value: rate(ctx, o, value), rate_outputs=[media.saved],
        after_queue=(lambda current: open_row(ctx, current, 1), media.view, reader)))

    def on_row(current: View, document: Opened | None, text: str, waiting: Any,
               event: gr.SelectData) -> tuple[Any, ...]:
        row = event.row_value[0] if event.row_value else None
        return open_row_keeping_edits(ctx, current, document, text, waiting, row)

    media.results.select(on_row, [media.view, opened, handles.editor, handles.asked_again],
                         [*reader, handles.asked_again], **private).then(
        None, None, None, js=SCROLL_TO_PASSAGE_JS, **private)
    for rated in wired.rated:  # the details' rating line and the list's rating column say the new rating
        rated.success(lambda o, d, v: rated_view(ctx, o, d, v), [opened, handles.details, media.view],
                      [handles.details, media.results, media.view], show_progress="hidden", **private)

    def on_save(current: View, document: Opened | None, text: str) -> Any:
        return save(ctx, current, document, text)

    handles.save_button.click(on_save, [media.view, opened, handles.editor],
                              [handles.save_result, handles.details, handles.rendered, handles.raw, opened],
                              **private).then(*wired.search_again, **private)
    return wired.loader
