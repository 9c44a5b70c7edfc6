"""Library text reaches the Images and Music tabs, the Skipped panel and the shared browse/context Markdown as text.

A real library (a real DuckDB data dir, generated JPEGs and MP3s) has hostile names, EXIF values and ID3 tags. Each
handler's Markdown is rendered the way Gradio renders it (Markdown with raw HTML allowed) and must hold no element
or attribute the library wrote, while the hostile text still shows, character for character. Plain-text outputs
(gallery captions, "str" table cells) keep the text as it is. No browser, no network.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator

import gradio as gr
import pytest
from markdown_it import MarkdownIt
from PIL import Image

from anagnorisis.library.scan import scan
from anagnorisis.ui import images, music
from anagnorisis.ui.context import AppContext
from anagnorisis.ui.music import View
from anagnorisis.ui.skipped import SkippedPanel, skipped_markdown
from tests.media import write_mp3

# File names cannot hold "/", so the remote URLs are written "http:example.com" (which a browser resolves to
# http://example.com/ all the same).
IMAGE_NAME = "<img src=http:example.com onerror=alert(1)>.jpg"
FOLDER_NAME = "a`<img src=http:example.com alt=folder>`b"  # a backtick ends a Markdown code span around a path
EVIL_MAKE = "<b>EvilCam</b>"
EVIL_MODEL = "![m](http:example.com)"
RENAMED = "![p](http:example.com).jpg"
LINK_TRACK = "**bold** [x](http:example.com).mp3"
TITLED_TRACK = "![p](http:example.com).mp3"
EVIL_TITLE = "<script>alert(1)</script>"
EVIL_ARTIST = "<b>EvilBand</b>"
BROKEN_IMAGE = "`<img src=http:example.com alt=skipped>`.jpg"
BROKEN_TRACK = "`<b>broken` *x* [y](http:example.com).mp3"
EVIL_QUERY = "`<img src=http:example.com alt=query>` [q](http:example.com)"
EVIL_MODEL_ID = "<img src=http:example.com alt=model>"
NO_FILTERS = ("", "all", 0, 10, 0, 10, "")


@dataclass
class Library:
    ctx: AppContext
    photo: Path
    link_track: Path
    titled_track: Path


def write_hostile_jpeg(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    exif[0x010F] = EVIL_MAKE  # Make
    exif[0x0110] = EVIL_MODEL  # Model
    Image.new("RGB", (64, 48), (200, 60, 40)).save(path, "JPEG", quality=90, exif=exif)
    return path


@pytest.fixture
def library(tmp_path: Path) -> Iterator[Library]:
    from anagnorisis.cli import open_library
    from anagnorisis.config import load_settings
    from anagnorisis.session import Session

    photos, tracks = tmp_path / "photos", tmp_path / "tracks"
    photo = write_hostile_jpeg(photos / FOLDER_NAME / IMAGE_NAME)
    (photos / BROKEN_IMAGE).write_bytes(b"")  # the scanner skips it
    link_track = write_mp3(tracks / LINK_TRACK, seconds=0.5, tags={"title": "Plain"})
    titled_track = write_mp3(tracks / TITLED_TRACK, seconds=0.5,
                             tags={"title": EVIL_TITLE, "artist": EVIL_ARTIST, "album": EVIL_MODEL})
    (tracks / BROKEN_TRACK).write_bytes(b"")
    settings = load_settings({"data_dir": str(tmp_path / "data"), "images_roots": [str(photos)],
                              "music_roots": [str(tracks)], "file_actions": "move", "images_model": EVIL_MODEL_ID,
                              "music_model": "basic", "videos_model": "basic", "text_model": "basic"},
                             environ={}, dotenv_path=None)
    ctx = AppContext(settings, Session(settings, open_library(settings)))
    scan(ctx.session.store)
    try:
        yield Library(ctx, photo, link_track, titled_track)
    finally:
        ctx.session.store.close()


class Elements(HTMLParser):
    """The elements, attribute values and text of an HTML fragment (character references decoded)."""

    def __init__(self, fragment: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[str] = []
        self.text = ""
        self.feed(fragment)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [f"{name}={value or ''}" for name, value in attrs]

    def handle_data(self, data: str) -> None:
        self.text += data


def rendered(markdown: str) -> Elements:
    """The Markdown as the page gets it: CommonMark with raw HTML allowed, as Gradio renders gr.Markdown."""
    return Elements(MarkdownIt("commonmark", {"html": True}).render(markdown))


def assert_only_text(shown: Elements, allowed: set[str], *texts: str) -> None:
    """No element but the handler's own, no attribute the library wrote, and each hostile text shown as text."""
    assert set(shown.tags) <= allowed, shown.tags
    assert not any("example.com" in attribute or "alert" in attribute for attribute in shown.attributes), \
        shown.attributes
    for text in texts:
        assert text in shown.text, (text, shown.text)


def image_page(ctx: AppContext, query: str = "", mode: str = "auto") -> Any:
    return images.search_page(ctx, query, mode, "date", "desc", 0, 0, 1, *NO_FILTERS)


def music_page(ctx: AppContext, query: str = "", mode: str = "auto") -> Any:
    return music.search_page(ctx, query, mode, "date", "desc", 0, 0, 1, *NO_FILTERS)


# ------------------------------------------------------------------------------------------------------ images


def test_the_large_view_shows_names_paths_and_exif_as_text(library: Library) -> None:
    items, summary, view, _page = image_page(library.ctx)
    assert len(view.results) == 1 and rendered(summary).tags == ["p", "strong"]
    assert items[0][1].startswith(IMAGE_NAME + " · ")  # a gallery caption is plain text: the name as it is

    _large, details, _slider, _saved, _index = images.show(library.ctx, view, 0)
    shown = rendered(details)
    assert_only_text(shown, {"h3", "p", "code", "strong"}, IMAGE_NAME, str(library.photo), EVIL_MAKE, EVIL_MODEL)
    assert shown.tags.count("code") == 1  # the whole path in one code span

    details_after_rating, _gallery = images.rated_view(library.ctx, view, 0)
    assert_only_text(rendered(details_after_rating), {"h3", "p", "code", "strong"}, IMAGE_NAME, EVIL_MAKE)


def test_file_actions_say_the_new_path_and_the_refusal_as_text(library: Library) -> None:
    _items, _summary, view, _page = image_page(library.ctx)
    missing_folder = str(library.photo.parent / "<img src=http:example.com alt=target>")
    refused = images.file_action(library.ctx, view, 0, "move", missing_folder)
    assert refused.startswith("not done: ")
    assert_only_text(rendered(refused), {"p"}, missing_folder)

    done = images.file_action(library.ctx, view, 0, "rename", RENAMED)
    assert (library.photo.parent / RENAMED).is_file()
    assert_only_text(rendered(done), {"p"}, f"renamed to {library.photo.parent / RENAMED}")


def test_a_search_error_quoting_the_query_is_text_on_both_tabs(library: Library) -> None:
    for page in (image_page, music_page):
        _shown, summary, _view, _page = page(library.ctx, EVIL_QUERY, "similar")
        assert summary.startswith("⚠️ ")
        assert_only_text(rendered(summary), {"p"}, EVIL_QUERY)


# ------------------------------------------------------------------------------------------------------- music


def test_music_tags_stay_plain_in_the_table_and_a_passed_over_track_is_text_in_now_playing(library: Library) -> None:
    frame, _summary, view, _page = music_page(library.ctx)
    assert EVIL_TITLE in list(frame["Title"]) and EVIL_ARTIST in list(frame["Artist"])  # "str" cells: as they are
    titled = next(record for record in view.results if record["path"] == str(library.titled_track))
    side = Elements(music.ab_side_html(library.ctx, titled))  # gr.HTML: escaped as HTML
    assert set(side.tags) <= {"div", "img", "audio"} and EVIL_TITLE in side.text, side.tags

    records = {record["path"]: record for record in library.ctx.session.records("music")}
    playlist = View([records[str(library.link_track)], titled], None, 2)
    library.link_track.unlink()  # gone after the list was shown: the player passes over it
    scan(library.ctx.session.store, ["music"])
    library.ctx.session.invalidate("music")
    player_view, now, _slider, _saved, player = music.play_list(library.ctx, playlist)
    assert player.current() == (str(library.titled_track), titled["content_hash"])
    assert f"passed over {LINK_TRACK}: " in player.message  # the state keeps the plain text
    assert_only_text(rendered(now), {"p", "strong"}, f"passed over {LINK_TRACK}: ")
    shown = Elements(player_view)
    assert set(shown.tags) <= {"div", "img", "audio"}, shown.tags
    assert EVIL_TITLE in shown.text and EVIL_ARTIST in shown.text and TITLED_TRACK in shown.text

    # the line without a current track (a start event after the list moved on), and the stopped player
    assert_only_text(rendered(music.now_text(player, None)), {"p"}, f"passed over {LINK_TRACK}: ")
    stopped_view, _now, _slider, _saved, _player = music.stopped(player, player.message)
    assert set(Elements(stopped_view).tags) == {"div"} and player.message in Elements(stopped_view).text


# --------------------------------------------------------------------------------------------- skipped, models


def test_the_skipped_panel_lists_hostile_names_as_text(library: Library) -> None:
    for kind, name in (("images", BROKEN_IMAGE), ("music", BROKEN_TRACK)):
        listed = skipped_markdown(library.ctx, kind)
        root = library.ctx.settings.values[f"{kind}_roots"][0]
        shown = rendered(listed)
        assert_only_text(shown, {"p", "ul", "li", "code", "strong"}, os.path.join(root, name))
        assert shown.tags.count("code") == 1 and shown.tags.count("li") == 1

    with gr.Blocks():
        panel = SkippedPanel(library.ctx, "images")
    label, listed = panel.refresh()
    assert label["label"] == "Skipped files (1): damaged or unreadable"
    assert_only_text(rendered(listed), {"p", "ul", "li", "code", "strong"}, BROKEN_IMAGE)


def test_the_models_lines_name_a_model_id_from_the_settings_as_text(library: Library) -> None:
    lines = library.ctx.model_lines()
    shown = rendered("**Models**\n" + "\n".join(lines))  # as the app's models panel puts them
    assert_only_text(shown, {"p", "ul", "li", "strong"}, EVIL_MODEL_ID)
    assert shown.tags.count("li") == 4
