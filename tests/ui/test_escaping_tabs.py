"""Nothing the library says is markup (SPEC §8): the Text, Videos, Train and Settings tabs and the A/B and "why"
panels, on a real data dir over generated files whose names, titles and folders hold Markdown and HTML.

Each handler's Markdown is rendered the way Gradio renders it (markdown-it, raw HTML allowed), its HTML is parsed
as the browser would take it; neither may hold an element or a link the library put there, while the hostile text
still shows, character for character.
"""
from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from markdown_it import MarkdownIt

from anagnorisis.config import load_settings
from anagnorisis.library import edit
from anagnorisis.library.scan import scan
from anagnorisis.session import Session
from anagnorisis.store.records import present_files
from anagnorisis.store.vectors import save_vectors
from anagnorisis.taste.service import active_embedding_model, train_and_save
from anagnorisis.ui import learn, settings, text, train, videos
from anagnorisis.ui.context import AppContext
from tests.media import write_text, write_video
from tests.taste.planted_library import open_library_store, plant_vectors, write_photos

NO_FILTERS = ("", "all", 0, 10, 0, 10, "")
# An attribute value that points at the hostile host (http://example.com, http:example.com, //example.com, …);
# the app's own file URLs may hold "example.com" inside a percent-encoded file name, which is fine.
REMOTE = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?[/\\\s]*example\.com", re.IGNORECASE)
MARKUP_FOLDER = "<b>notes"  # an unclosed <b>: everything after it would render bold
# Text files: name -> content. A name holds no "/", so its links use "http:example.com" (browsers resolve it
# to http://example.com/); a document's own first line, which becomes its title, may hold any URL.
TEXTS = {
    "x` <img src=http:example.com> `.txt": '<img src="http://example.com/t.png">\nplain second line\n',
    "![p](http:example.com).md": "# ![t](http://example.com/t2.png)\n\nMore **text**.\n",
    "**bold** [x](http:example.com).md": '<img src="http://example.com/t3.png">\n\nBody.\n',
}
BINARY_NAME = "<img src=http:example.com> binary.txt"
VIDEOS = ["<img src=http:example.com>.mp4", "**bold** [x](http:example.com).mkv", "![p](http:example.com).mkv"]
MODEL_ID = "<img src=http:example.com> [m](http:example.com)"


# ---------------------------------------------------------------------------------------------- what the page gets


class _Elements(HTMLParser):
    """Every element and attribute of an HTML fragment, and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def elements(fragment: str) -> _Elements:
    parser = _Elements()
    parser.feed(fragment)
    parser.close()
    return parser


def rendered(markdown: str) -> str:
    """A gr.Markdown value as Gradio renders it: CommonMark with raw HTML allowed."""
    return MarkdownIt("commonmark", {"html": True}).render(markdown)


def assert_inert_html(fragment: str, allowed: set[str], *shown: str) -> None:
    """No element beyond `allowed`, no attribute pointing at the hostile host or handling an event, and each of
    `shown` visible as text."""
    found = elements(fragment)
    assert set(found.tags) <= allowed, (set(found.tags) - allowed, fragment)
    assert not [(name, value) for name, value in found.attributes
                if REMOTE.match(value) or name.startswith("on")], fragment
    visible = " ".join(" ".join(found.text).split())
    for text_shown in shown:
        assert " ".join(text_shown.split()) in visible, (text_shown, visible)


MARKDOWN_TAGS = {"h3", "h4", "p", "code", "strong", "em", "br", "ul", "li"}


def assert_inert_markdown(markdown: str, *shown: str) -> None:
    """The rendered Markdown holds only the tags our own Markdown makes, no <img>, <a>, <b>, <script>, and no
    link to the hostile host; each of `shown` appears literally in the visible text."""
    page = rendered(markdown)
    for injected in ("<img", "<script", "<b>", "<a ", 'href="http', "<iframe"):
        assert injected not in page, (injected, page)
    assert_inert_html(page, MARKDOWN_TAGS, *shown)


# ---------------------------------------------------------------------------------------------- a hostile library


@dataclass
class Library:
    ctx: AppContext
    notes: Path
    films: Path
    data_dir: Path

    def text_path(self, name: str) -> str:
        return str(self.notes / name)


def context_over(data_dir: Path, **values: Any) -> AppContext:
    from anagnorisis.cli import open_library

    resolved = load_settings({"data_dir": str(data_dir), **values})
    return AppContext(resolved, Session(resolved, open_library(resolved)))  # what build_app gives every tab


def settle(ctx: AppContext) -> None:
    """Wait for the background jobs (scan, embed, video preparation) a handler started."""
    for job in ctx.jobs.visible():
        ctx.jobs.wait(job.name, timeout=60)


def close(ctx: AppContext) -> None:
    settle(ctx)
    ctx.session.store.close()


@pytest.fixture
def library(tmp_path: Path) -> Iterator[Library]:
    notes, films = tmp_path / MARKUP_FOLDER, tmp_path / "films"
    for name, content in TEXTS.items():
        write_text(notes / name, content)
    for index, name in enumerate(VIDEOS):
        write_video(films / name, frames=6, color=(40 * index, 90, 160), codec="mpeg4" if name.endswith(".mkv")
                    else None)
    ctx = context_over(tmp_path / "data", text_roots=[str(notes)], videos_roots=[str(films)])
    scan(ctx.session.store)
    rng = np.random.default_rng(5)
    for kind in ("text", "videos"):  # planted vectors of each kind's active model: A/B and "why" need them
        found = [record["content_hash"] for record in present_files(ctx.session.store, kind)]
        vectors = rng.normal(size=(len(found), 8))
        save_vectors(ctx.session.store, active_embedding_model(kind, ctx.settings), found,
                     (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32))
    ctx.session.invalidate()
    try:
        yield Library(ctx, notes, films, tmp_path / "data")
    finally:
        close(ctx)


def text_page(ctx: AppContext) -> Any:
    return text.search_page(ctx, "", "auto", "date", "asc", 0, 0, 1, *NO_FILTERS)


def video_page(ctx: AppContext) -> Any:
    return videos.search_page(ctx, "", "auto", "date", "asc", 0, 0, 1, *NO_FILTERS)


def row_of(view: Any, name: str) -> int:
    return next(i for i, record in enumerate(view.results) if os.path.basename(record["path"]) == name) + 1


# ---------------------------------------------------------------------------------------------- Text


def test_the_text_list_is_plain_text_and_the_details_show_names_titles_and_paths_as_text(library: Library) -> None:
    ctx = library.ctx
    frame, _summary, view, _page, _skipped = text_page(ctx)
    # the list is a Dataframe of "str" cells: plain text, shown as it is (escaping there would show "&#60;")
    assert set(frame["Name"]) == set(TEXTS)
    assert '<img src="http://example.com/t.png"> ⏎ plain second line' in set(frame["First lines"])
    for name, content in TEXTS.items():
        details, *_rest, opened = text.open_row(ctx, view, row_of(view, name))
        assert opened is not None and opened.path == library.text_path(name)
        title = content.splitlines()[0].lstrip("#").strip()
        assert_inert_markdown(details, title, library.text_path(name))
        assert "**Encoding:** utf-8" in details  # our own Markdown still renders


def test_a_binary_file_and_unsaved_edits_name_the_file_as_text(library: Library) -> None:
    ctx = library.ctx
    binary = library.notes / BINARY_NAME
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))
    details = text.open_record(ctx, text.View(), {"path": str(binary), "content_hash": "0" * 32})[0]
    assert "**Binary file — not shown**" in details
    assert_inert_markdown(details, BINARY_NAME, str(binary))

    _frame, _summary, view, _page, _skipped = text_page(ctx)
    name = "![p](http:example.com).md"
    update = text.open_row_keeping_edits(ctx, view, None, None, None, row_of(view, name))
    opened, editor_text = update[-2], update[5]["value"]
    other = row_of(view, "**bold** [x](http:example.com).md")
    asked = text.open_row_keeping_edits(ctx, view, opened, editor_text + "\nmore\n", None, other)
    assert asked[-2] is opened, "the edit is kept and the user asked first"
    assert_inert_markdown(asked[6], f"Unsaved changes in {name}.")


def test_a_refused_save_quotes_the_folder_as_text(library: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = library.ctx
    _frame, _summary, view, _page, _skipped = text_page(ctx)
    opened = text.open_row(ctx, view, 1)[-1]
    real_access = os.access
    monkeypatch.setattr(edit.os, "access", lambda p, mode, **kw: False if mode & os.W_OK else real_access(p, mode))
    message = text.save(ctx, view, opened, "changed\n")[0]
    assert html.unescape(message).startswith("not saved: the library is read-only")
    assert_inert_markdown(message, str(library.notes))


# ---------------------------------------------------------------------------------------------- A/B and why


def test_the_a_b_panel_shows_both_documents_and_the_answer_as_text(library: Library) -> None:
    ctx = library.ctx
    pair = learn.draw_pair(ctx, "text")
    assert pair.a is not None and pair.b is not None, pair.message
    preview = learn.Preview(make=lambda elem_id, label: None, value=text.ab_side_html)
    a_view, a_name, b_view, b_name, reason, _status, _pair = learn.pair_outputs(ctx, preview, pair, "")
    for side_html, side_name, record in ((a_view, a_name, pair.a), (b_view, b_name, pair.b)):
        name = os.path.basename(record["path"])
        assert_inert_markdown(side_name, name)
        title = TEXTS[name].splitlines()[0].lstrip("#").strip()
        assert_inert_html(side_html, {"div", "b", "br"}, title)  # a gr.HTML value
    assert_inert_markdown(reason, pair.reason)

    status, following = learn.answer(ctx, "text", pair, "a")
    names = f"{os.path.basename(pair.a['path'])} over {os.path.basename(pair.b['path'])}"
    assert_inert_markdown(status, f"saved: A over B ({names})")
    assert following.a is not None


def test_why_names_the_file_and_its_rated_neighbours_as_text(library: Library) -> None:
    ctx = library.ctx
    names = list(TEXTS)
    for name, rating in zip(names[:2], (8, 3)):
        ctx.session.rate("text", library.text_path(name), rating)
    shown = learn.why_markdown(ctx, "text", library.text_path(names[2]))
    assert "**Your nearest rated files** (2 of 2" in shown
    assert_inert_markdown(shown, f"Why this rating: {names[2]}", names[0], names[1])

    outside = learn.why_markdown(ctx, "text", f"/nowhere/{BINARY_NAME}")
    assert html.unescape(outside).startswith(f"⚠️ /nowhere/{BINARY_NAME} is not under any library root")
    assert_inert_markdown(outside, f"/nowhere/{BINARY_NAME}")


# ---------------------------------------------------------------------------------------------- Videos


def test_the_video_details_player_and_status_line_show_names_as_text(library: Library) -> None:
    ctx = library.ctx
    items, _summary, view, _page = video_page(ctx)
    # gallery captions are plain text: the names as they are
    assert {caption.split(" · ")[0] for _frame, caption in items} == set(VIDEOS)

    index = row_of(view, VIDEOS[0]) - 1
    player_html, details, _slider, _saved, player, _timer = videos.play_from(ctx, view, index)
    assert player_html.startswith("<video")
    assert_inert_html(player_html, {"video"})
    assert_inert_markdown(details, VIDEOS[0], str(library.films / VIDEOS[0]))

    index = row_of(view, VIDEOS[1]) - 1  # MPEG-4 in Matroska: prepared for the browser first
    player_html, details, _slider, _saved, player, _timer = videos.play_from(ctx, view, index)
    assert_inert_html(player_html, {"div"}, f"Preparing {VIDEOS[1]} for the browser")
    assert_inert_markdown(details, VIDEOS[1])
    job = ctx.jobs.wait(player.preparing, timeout=60)
    assert job is not None and job.state == "done", job
    jobs_section = settings.status_text(ctx).split("**Models**")[0]  # (the model lines come from elsewhere)
    assert_inert_markdown(jobs_section, f"{VIDEOS[1]} is ready to play")

    ended = videos.Player(tracks=player.tracks, position=len(player.tracks), finished=True)
    said = videos.rate_current(ctx, ended, 4)
    assert_inert_markdown(said, f"saved 4 for {os.path.basename(player.tracks[-1][0])}, the last video played")


def test_a_video_that_cannot_play_says_why_as_text(library: Library) -> None:
    ctx = library.ctx
    broken = library.films / VIDEOS[2]
    _items, _summary, view, _page = video_page(ctx)
    broken.write_bytes(b"\x1aE\xdf\xa3" + os.urandom(3000))  # damaged after it was indexed
    index = row_of(view, VIDEOS[2]) - 1
    player_html, details, _slider, _saved, player, _timer = videos.play_from(ctx, view, index)
    while player.preparing:
        ctx.jobs.wait(player.preparing, timeout=60)
        player_html, details, _slider, _saved, player, _timer = videos.poll(ctx, player)
    assert_inert_html(player_html, {"div"}, f"Cannot play {VIDEOS[2]}")
    assert_inert_markdown(details, f"Cannot play {VIDEOS[2]}")


# ---------------------------------------------------------------------------------------------- Train


@pytest.fixture
def trained(tmp_path: Path) -> Iterator[AppContext]:
    """A model trained (as `train --model ID` does) on vectors of a model whose id holds markup."""
    data_dir = tmp_path / "data"
    write_photos(data_dir, 12)
    store = open_library_store(data_dir)
    resolved = load_settings({"data_dir": str(data_dir)})
    ctx = AppContext(resolved, Session(resolved, store))
    try:
        scan(store, ["images"], None)
        taste, _hashes = plant_vectors(store, MODEL_ID)
        for path, rating in taste.items():
            ctx.session.rate("images", path, rating)
        train_and_save(store, resolved, "images", epochs=5, model_id=MODEL_ID)
        yield ctx
    finally:
        close(ctx)


def test_the_train_report_names_the_embedding_model_as_text(trained: AppContext) -> None:
    status, report, *_rest = train.saved_view(trained, "images")
    assert status.startswith("images model v1 (")
    assert_inert_markdown(status, "is active")
    assert "won" in report and "**" in report  # our own Markdown still renders
    assert_inert_markdown(report, f"({MODEL_ID} embeddings)")


# ---------------------------------------------------------------------------------------------- Settings


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[AppContext]:
    ctx = context_over(tmp_path / "<img src=http:example.com> data")
    try:
        yield ctx
    finally:
        close(ctx)


def test_settings_messages_quote_folders_model_ids_and_paths_as_text(bare: AppContext, tmp_path: Path) -> None:
    folder = tmp_path / "**music** [x](http:example.com)"
    folder.mkdir()
    message, rows = settings.add_root(bare, "music", str(folder))
    assert ["music", str(folder.resolve()), "added"] in rows  # the table is plain text
    assert_inert_markdown(message, f"added music folder {folder}")
    message, _rows = settings.add_root(bare, "music", str(folder))
    assert_inert_markdown(message, f"{folder} is already a music folder")
    message, _rows = settings.add_root(bare, "music", str(tmp_path / "<img src=http:example.com> gone"))
    assert html.unescape(message).startswith("not added")
    assert_inert_markdown(message, "<img src=http:example.com> gone")
    settle(bare)  # the scan the first add started
    message, _rows = settings.remove_root(bare, "music", str(folder))
    assert_inert_markdown(message, f"removed music folder {folder}")

    message = settings.change_setting(bare, "text_model", MODEL_ID)
    assert_inert_markdown(message, f"saved text_model = {MODEL_ID}")

    message = settings.exchange(bare, "export", str(tmp_path / "<img src=http:example.com>" / "ratings.csv"))
    assert "export failed" in message
    assert_inert_markdown(message, "<img src=http:example.com>")

    message = settings.backup(bare)
    backup = html.unescape(message).removeprefix("backup written to ")
    assert Path(backup).is_file() and "<img src=http:example.com> data" in backup
    assert_inert_markdown(message, backup)


def test_the_settings_status_lists_jobs_as_text(bare: AppContext) -> None:
    bare.jobs.start("hostile", lambda job: setattr(job, "message", "![p](http:example.com) <b>done"))
    bare.jobs.wait("hostile", timeout=10)
    jobs_section = settings.status_text(bare).split("**Models**")[0]
    assert_inert_markdown(jobs_section, "![p](http:example.com) <b>done")
