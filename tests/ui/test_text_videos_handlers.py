"""The Text and Videos tabs' handlers, called as plain functions on a real app context over generated files."""
from __future__ import annotations

import os
from html import unescape
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import gradio as gr
import pytest

from anagnorisis.library import edit
from anagnorisis.library.scan import scan
from anagnorisis.ui import text, videos
from anagnorisis.ui.context import AppContext
from tests.media import write_text, write_video

NO_FILTERS = ("", "all", 0, 10, 0, 10, "")


@dataclass
class Library:
    ctx: AppContext
    notes: Path
    films: Path


@pytest.fixture
def library(tmp_path: Path) -> Iterator[Library]:
    from anagnorisis.cli import open_library
    from anagnorisis.config import load_settings
    from anagnorisis.session import Session

    notes, films = tmp_path / "notes", tmp_path / "films"
    write_text(notes / "recipe.md", "# Bread\n\nMix flour and water.\n\n<script>alert(1)</script>\n")
    write_text(notes / "old letter.txt", "Cher ami,\r\nà bientôt.\r\n", "cp1252")
    (notes / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))
    write_video(films / "a first.mp4", frames=10)
    write_video(films / "b second.mkv", frames=10, codec="mpeg4")
    write_video(films / "c third.webm", frames=10)
    settings = load_settings({"data_dir": str(tmp_path / "data"), "text_roots": [str(notes)],
                              "videos_roots": [str(films)]})
    ctx = AppContext(settings, Session(settings, open_library(settings)))  # what build_app gives every tab
    scan(ctx.session.store)
    try:
        yield Library(ctx, notes, films)
    finally:
        for job in ctx.jobs.visible():
            ctx.jobs.wait(job.name, timeout=60)
        ctx.session.store.close()


def text_page(ctx: AppContext, query: str = "", mode: str = "auto", sort: str = "date") -> Any:
    return text.search_page(ctx, query, mode, sort, "asc", 0, 0, 1, *NO_FILTERS)


def video_page(ctx: AppContext, sort: str = "date") -> Any:
    return videos.search_page(ctx, "", "auto", sort, "asc", 0, 0, 1, *NO_FILTERS)


def test_the_text_list_shows_first_lines_and_labels_the_binary_file(library: Library) -> None:
    frame, summary, view, _page, skipped = text_page(library.ctx)
    assert "**2** matching" in summary
    lines = dict(zip(frame["Name"], frame["First lines"]))
    assert lines == {"recipe.md": "# Bread ⏎ Mix flour and water.",
                     "old letter.txt": "Cher ami, ⏎ à bientôt."}
    assert str(library.notes / "photo.txt") in unescape(skipped) and "— **binary file**" in skipped


def test_opening_a_markdown_text_renders_it_sanitised_and_shows_the_raw_source(library: Library) -> None:
    _frame, _summary, view, _page, _skipped = text_page(library.ctx)
    row = next(i for i, record in enumerate(view.results) if record["path"].endswith("recipe.md")) + 1
    details, _slider, _saved, rendered, raw, editor, note, opened = text.open_row(library.ctx, view, row)
    assert "### Bread" in details and "**Encoding:** utf-8" in details
    assert "<h1>Bread</h1>" in rendered and "<script" not in rendered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw
    assert editor["interactive"] is True and editor["value"].startswith("# Bread") and note == ""
    assert opened.fmt == "markdown"


def test_saving_in_the_editor_keeps_the_rating_and_the_legacy_encoding(library: Library) -> None:
    ctx = library.ctx
    _frame, _summary, view, _page, _skipped = text_page(ctx)
    row = next(i for i, record in enumerate(view.results) if record["path"].endswith("letter.txt")) + 1
    opened = text.open_row(ctx, view, row)[-1]
    assert (opened.encoding, opened.newline) == ("cp1252", "\r\n")
    assert text.rate(ctx, opened, 7.5) == "saved 7.5"
    message, details, rendered, _raw, reopened = text.save(ctx, view, opened, "Cher ami,\nà bientôt, déjà.\n")
    assert message == "saved (cp1252); your rating 7.5 stays with the new text"
    assert reopened.content_hash != opened.content_hash and "yours 7.5" in details and "déjà" in rendered
    letter = library.notes / "old letter.txt"
    assert letter.read_bytes() == "Cher ami,\r\nà bientôt, déjà.\r\n".encode("cp1252")
    assert ctx.session.record_by_path("text", str(letter))["user_rating"] == 7.5


def test_a_read_only_library_turns_the_editor_off_and_refuses_a_save(library: Library,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    real_access = os.access
    monkeypatch.setattr(edit.os, "access", lambda p, mode, **kw: False if mode & os.W_OK else real_access(p, mode))
    _frame, _summary, view, _page, _skipped = text_page(library.ctx)
    *_, editor, note, opened = text.open_row(library.ctx, view, 1)
    assert editor["interactive"] is False and note == "Editing is off: the library is read-only."
    message = text.save(library.ctx, view, opened, "changed\n")[0]
    assert unescape(message).startswith("not saved: the library is read-only")


def test_a_binary_file_opened_by_path_is_labelled_not_shown(library: Library) -> None:
    record = {"path": str(library.notes / "photo.txt"), "content_hash": "0" * 32}
    details, *_rest, opened = text.open_record(library.ctx, text.View(), record)
    assert "**Binary file — not shown**" in details and opened is None


def test_the_video_grid_shows_a_frame_length_and_resolution_of_each_video(library: Library) -> None:
    items, summary, view, _page = video_page(library.ctx)
    assert "**3** matching" in summary
    for (frame, caption), record in zip(items, view.results):
        assert Path(frame).parent == library.ctx.session.previews_dir / "frames" and Path(frame).exists()
        assert caption == f"{Path(record['path']).name} · 0:01 · 64×48 · not rated"


def test_playing_counts_start_full_play_and_skip_and_goes_on_to_the_next_video(library: Library) -> None:
    ctx = library.ctx
    _items, _summary, view, _page = video_page(ctx, sort="date")
    assert len(view.results) == 3
    player = videos.play_from(ctx, view, 0)[4]
    while player.preparing:
        ctx.jobs.wait(player.preparing, timeout=30)
        player = videos.poll(ctx, player)[4]
    path, content_hash = player.current()
    videos.video_started(ctx, player, {"hash": content_hash, "nonce": player.nonce})
    assert ctx.session.record_by_path("videos", path)["last_played"] is not None

    after = videos.video_ended(ctx, player, {"hash": content_hash, "nonce": player.nonce}, True)
    assert ctx.session.record_by_path("videos", path)["full_plays"] == 1
    following = after[4]
    assert following.position == player.position + 1  # autoplay: the next of the current order

    while following.preparing:  # the next one may need a transcode first
        ctx.jobs.wait(following.preparing, timeout=30)
        after = videos.poll(ctx, following)
        following = after[4]
    assert after[0].startswith("<video")
    skipped_path, _hash = following.current()
    videos.next_video(ctx, following)
    assert ctx.session.record_by_path("videos", skipped_path)["skips"] == 1


def test_a_video_the_browser_cannot_play_is_prepared_with_progress_then_played(library: Library) -> None:
    ctx = library.ctx
    _items, _summary, view, _page = video_page(ctx)
    index = next(i for i, record in enumerate(view.results) if record["path"].endswith(".mkv"))
    html, _details, _slider, _saved, player, timer = videos.play_from(ctx, view, index)
    assert "Preparing b second.mkv for the browser" in unescape(html) and timer["active"] is True
    job = ctx.jobs.wait(player.preparing, timeout=30)
    assert job is not None and job.state == "done"
    # the status line says what it did in words, not the job's key (the content hash)
    assert "video preparation done – b second.mkv is ready to play" in ctx.jobs.status_line()
    assert view.results[index]["content_hash"][:8] not in ctx.jobs.status_line()
    html, *_rest, ready, timer = videos.poll(ctx, player)
    cached = ctx.session.previews_dir / "video" / f"{view.results[index]['content_hash']}.mp4"
    assert cached.exists() and str(cached) in unescape(html) and timer["active"] is False and not ready.preparing


def test_a_corrupt_video_shows_an_error_not_a_crash(library: Library) -> None:
    ctx = library.ctx
    broken = library.films / "b second.mkv"
    broken.write_bytes(b"\x1aE\xdf\xa3" + os.urandom(3000))  # damaged after it was indexed
    items, _summary, view, _page = video_page(ctx)
    index = next(i for i, record in enumerate(view.results) if record["path"] == str(broken))
    assert items[index][1].endswith("no preview: the video does not decode")
    html, details, _slider, _saved, player, timer = videos.play_from(ctx, view, index)
    assert unescape(html).startswith('<div class="video-error">Cannot play b second.mkv') and timer["active"] is False
    assert "Cannot play b second.mkv" in unescape(details) and player.finished


def test_a_video_that_fails_while_being_prepared_shows_the_reason(library: Library) -> None:
    ctx = library.ctx
    _items, _summary, view, _page = video_page(ctx)
    index = next(i for i, record in enumerate(view.results) if record["path"].endswith(".mkv"))
    broken = Path(view.results[index]["path"])
    broken.write_bytes(broken.read_bytes()[:600])  # the header is there, the frames are not
    html, *_rest, player, _timer = videos.play_from(ctx, view, index)
    assert "Preparing" in html
    ctx.jobs.wait(player.preparing, timeout=30)
    html, *_rest = videos.poll(ctx, player)
    assert unescape(html).startswith('<div class="video-error">Cannot play b second.mkv') and "no video frame" in html


def test_rating_the_playing_video_commits_it(library: Library) -> None:
    ctx = library.ctx
    _items, _summary, view, _page = video_page(ctx)
    player = videos.play_from(ctx, view, 0)[4]
    assert videos.rate_current(ctx, player, 9) == "saved 9"
    assert ctx.session.record_by_path("videos", player.current()[0])["user_rating"] == 9.0

    # after the end of the list (the last video ended, "End of the list."), the slider rates the last video played
    ended = replace(player, position=len(player.tracks), finished=True)
    last = player.tracks[-1][0]
    assert unescape(videos.rate_current(ctx, ended, 4)) == f"saved 4 for {Path(last).name}, the last video played"
    assert ctx.session.record_by_path("videos", last)["user_rating"] == 4.0
    assert videos.rate_current(ctx, videos.Player(), 4) == "Play a video to rate it."


def test_relative_images_in_a_text_are_served_only_from_inside_the_library(library: Library, tmp_path: Path) -> None:
    from tests.media import write_png

    write_png(library.notes / "pictures" / "cat.png")
    write_png(tmp_path / "outside.png")
    note = write_text(library.notes / "pets.md", "# Pets\n\n![cat](pictures/cat.png)\n\n![secret](../outside.png)\n")
    scan(library.ctx.session.store)
    library.ctx.session.invalidate()
    record = library.ctx.session.record_by_path("text", str(note))
    rendered = text.open_record(library.ctx, text.View(), record)[3]
    assert f'<img src="gradio_api/file={library.notes}/pictures/cat.png" alt="cat">' in rendered
    assert '<img alt="secret">' in rendered and "outside.png" not in rendered


def test_opening_another_document_with_unsaved_changes_asks_first(library: Library) -> None:
    ctx = library.ctx
    _frame, _summary, view, _page, _skipped = text_page(ctx)
    rows = {Path(record["path"]).name: i + 1 for i, record in enumerate(view.results)}
    recipe, letter = rows["recipe.md"], rows["old letter.txt"]
    update = text.open_row_keeping_edits(ctx, view, None, None, None, recipe)
    opened, editor_text = update[-2], update[5]["value"]
    assert opened.path.endswith("recipe.md") and update[-1] is None

    unchanged = text.open_row_keeping_edits(ctx, view, opened, editor_text, None, letter)
    assert unchanged[-2].path.endswith("letter.txt")  # nothing edited: it opens at once

    edited = editor_text + "\nAdd salt.\n"
    asked = text.open_row_keeping_edits(ctx, view, opened, edited, None, letter)
    assert unescape(asked[6]).startswith("**Unsaved changes in recipe.md.**")
    assert asked[-2] is opened and asked[-1] == letter
    assert asked[5] == gr.update()  # the editor keeps the edit
    again = text.open_row_keeping_edits(ctx, view, opened, edited, asked[-1], letter)  # the same row again
    assert again[-2].path.endswith("letter.txt") and again[-1] is None
    assert "Add salt" not in (library.notes / "recipe.md").read_text()
