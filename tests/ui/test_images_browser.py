"""The Images tab in a real browser: search, open, rate with the slider; the rating survives the app."""
from __future__ import annotations

import html
import os
from pathlib import Path

import duckdb
import pyarrow.csv as pa_csv
import pytest

from tests.conftest import Cli
from tests.ui.browser import browser_page, screenshot
from tests.ui.conftest import RunningApp

pytestmark = pytest.mark.browser


def test_search_open_and_rate_an_image_in_the_browser(running_app: RunningApp, tmp_path: Path) -> None:
    with browser_page(tmp_path) as page:
        page.goto(running_app.owner_url)
        page.wait_for_selector("#images-gallery img", timeout=30_000)
        assert page.locator("#images-gallery img").count() == len(running_app.photos)

        page.fill("#images-query textarea", "red car")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "document.querySelector('#images-summary').innerText.includes('name search')", timeout=15_000)
        assert page.locator("#images-gallery img").count() == 2

        page.locator("#images-gallery img").first.click()
        page.wait_for_selector("#images-large img", timeout=15_000)
        details = page.inner_text("#images-details")
        assert "red car" in details and "96×72" in details
        opened = next(photo for photo in running_app.photos if str(photo) in details)

        slider = page.locator("#images-rating input[type=range]")
        slider.scroll_into_view_if_needed()
        box = slider.bounding_box()
        assert box is not None
        slider.click(position={"x": box["width"] * 0.7, "y": box["height"] / 2})
        page.wait_for_function("document.querySelector('#images-saved').innerText.startsWith('saved')",
                               timeout=15_000)
        shown = float(page.locator("#images-rating input[type=number]").input_value())
        assert 6 <= shown <= 8
        assert page.inner_text("#images-saved") == f"saved {shown:g}"
        page.wait_for_function(  # the details and the gallery caption say the new rating; the image stays open
            f"document.querySelector('#images-details').innerText.includes('yours {shown:g}')", timeout=15_000)
        assert str(opened) in page.inner_text("#images-details")
        assert f"yours {shown:g}" in page.inner_text("#images-gallery")
        assert page.locator("#images-large img").count() == 1

        slider.focus()
        page.keyboard.press("ArrowRight")  # the keyboard saves too
        page.wait_for_function(
            f"document.querySelector('#images-saved').innerText === 'saved {shown + 0.5:g}'", timeout=15_000)
        screenshot(page, "images-tab-rated")

    export = tmp_path / "forwarded.csv"
    result = Cli(running_app.data_dir).subprocess("export", str(export))
    assert result.code == 0, result.stderr
    rows = {row["path"]: row["user_rating"] for row in pa_csv.read_csv(export).to_pylist()}
    assert rows[str(opened)] == shown + 0.5

    running_app.app.close()
    connection = duckdb.connect(str(running_app.data_dir / "anagnorisis.duckdb"), read_only=True)
    try:
        stored = connection.execute(
            "SELECT r.rating FROM ratings r JOIN files f USING (content_hash) WHERE f.display_path = ?", [str(opened)]
        ).fetchall()
    finally:
        connection.close()
    assert stored == [(shown + 0.5,)]


def test_a_typed_rating_saves_on_enter_and_one_outside_0_to_10_is_refused(running_app: RunningApp,
                                                                          tmp_path: Path) -> None:
    def stored(path: Path) -> float | None:
        return (running_app.app.context.session.record_by_path("images", str(path)) or {}).get("user_rating")

    with browser_page(tmp_path) as page:
        page.goto(running_app.owner_url)
        page.wait_for_selector("#images-gallery img", timeout=30_000)
        page.locator("#images-gallery img").first.click()
        page.wait_for_selector("#images-large img", timeout=15_000)
        opened = next(photo for photo in running_app.photos if str(photo) in page.inner_text("#images-details"))
        box = page.locator("#images-rating input[type=number]")
        box.fill("6.5")
        box.press("Enter")  # no need to leave the box
        page.wait_for_function("document.querySelector('#images-saved').innerText === 'saved 6.5'",
                               timeout=15_000)
        assert stored(opened) == 6.5
        box.fill("11")
        box.press("Enter")
        page.locator(".toast-body", has_text="Value 11 is greater than maximum value 10").wait_for(timeout=15_000)
        assert stored(opened) == 6.5  # refused, the rating kept


def test_a_rating_outside_0_to_10_that_reaches_the_handler_is_refused_with_the_rating_kept(
        running_app: RunningApp) -> None:
    from anagnorisis.ui import images
    from anagnorisis.ui.browse import PageView

    ctx = running_app.app.context
    record = ctx.session.record_by_path("images", str(running_app.photos[0]))
    view = PageView([dict(record)])
    assert images.rate(ctx, view, 0, 7)[0] == "saved 7"
    said, view = images.rate(ctx, view, 0, 11)
    assert html.unescape(said) == "not saved: rating 11.0 is outside 0–10; the rating stays 7", said
    assert ctx.session.record_by_path("images", str(running_app.photos[0]))["user_rating"] == 7
    assert view.results[0]["user_rating"] == 7


def test_a_new_search_clears_the_selection_so_the_slider_cannot_rate_another_file(running_app: RunningApp,
                                                                                tmp_path: Path) -> None:
    """The selection is a position on the page: after a search (or a page turn) that position holds another file."""
    with browser_page(tmp_path) as page:
        page.goto(running_app.owner_url)
        page.wait_for_selector("#images-gallery img", timeout=30_000)
        page.locator("#images-gallery img").nth(3).click()
        page.wait_for_selector("#images-large img", timeout=15_000)
        page.fill("#images-query textarea", "blue door")
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelector('#images-details').innerText.trim() === 'Select an image.'",
                               timeout=15_000)
        assert page.locator("#images-large img").count() == 0
        page.locator("#images-rating input[type=number]").fill("9")
        page.locator("#images-rating input[type=number]").press("Enter")
        page.wait_for_function(
            "document.querySelector('#images-saved').innerText === 'Select an image first.'", timeout=15_000)
        page.click("#images-similar")
        page.locator(".toast-body", has_text="Select an image first: Similar").wait_for(timeout=15_000)
        assert page.input_value("#images-query textarea") == "blue door"  # Similar without a selection: no change
    rated = running_app.app.context.session.store.read(
        lambda c: c.execute("SELECT count(*) FROM ratings WHERE rating IS NOT NULL").fetchone()[0])
    assert rated == 0


def test_page_keys_on_the_slider_move_to_the_next_image_without_rating_and_other_tabs_keep_the_selection(
        running_app: RunningApp, tmp_path: Path) -> None:
    with browser_page(tmp_path) as page:
        page.goto(running_app.owner_url)
        page.wait_for_selector("#images-gallery img", timeout=30_000)
        page.locator("#images-gallery img").first.click()
        page.wait_for_selector("#images-large img", timeout=15_000)
        first = page.inner_text("#images-details")
        page.locator("#images-rating input[type=range]").focus()
        page.keyboard.press("PageDown")
        page.wait_for_function(  # another image's details, once the update is done (no progress text over them)
            f"(() => {{ const t = document.querySelector('#images-details').innerText;"
            f" return t !== {first!r} && !/queue:|processing|^\\s*[0-9.]+s\\b/.test(t); }})()",
            timeout=15_000)
        second = page.inner_text("#images-details")
        assert "not rated" in second
        page.wait_for_function(  # Gradio's progress timer ("0.1s") sits over the output while it updates
            "document.querySelector('#images-saved').innerText.trim() === 'not rated yet'", timeout=15_000)

        page.get_by_role("tab", name="Music").click()
        page.locator("body").click()
        for _ in range(3):
            page.keyboard.press("ArrowRight")  # not the Images tab: the images' selection stays
        page.get_by_role("tab", name="Images").click()
        page.wait_for_timeout(1_000)
        assert page.inner_text("#images-details") == second
    rated = running_app.app.context.session.store.read(
        lambda c: c.execute("SELECT count(*) FROM ratings WHERE rating IS NOT NULL").fetchone()[0])
    assert rated == 0


def test_an_image_whose_name_is_not_utf8_can_be_viewed_and_rated(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.media import write_jpeg
    from tests.ui.conftest import start_app

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio-tmp"))
    library = tmp_path / "photos"
    library.mkdir()
    latin1 = os.fsdecode(bytes(library) + b"/caf\xe9.jpg")  # the bytes of a Latin-1 name, as Python holds them
    write_jpeg(latin1, size=(120, 90))
    app, url = start_app(tmp_path / "data", library)
    try:
        with browser_page(tmp_path) as page:
            page.goto(url)
            page.wait_for_selector("#images-gallery img", timeout=30_000)
            page.locator("#images-gallery img").first.click()
            page.wait_for_selector("#images-large img", timeout=15_000)
            assert "caf\ufffd.jpg" in page.inner_text("#images-details")  # named with a replacement character
            source = page.get_attribute("#images-large img", "src") or ""
            assert "/previews/" in source and "gradio-tmp" not in source, source  # a stand-in from the previews
            box = page.locator("#images-rating input[type=number]")
            box.fill("8")
            box.press("Enter")
            page.wait_for_function("document.querySelector('#images-saved').innerText === 'saved 8'",
                                   timeout=15_000)
        assert app.context.session.record_by_path("images", latin1)["user_rating"] == 8
    finally:
        app.close()
