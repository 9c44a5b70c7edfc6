"""A/B mode of the Images tab in a real browser: two pictures, a click on A, the choice stored with A as winner."""
from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.csv as pa_csv
import pytest

from tests.conftest import Cli
from tests.ui.browser import browser_page, screenshot
from tests.ui.conftest import RunningApp

pytestmark = pytest.mark.browser


def shown_photo(running_app: RunningApp, name_text: str) -> Path:
    """The photo whose file name the A or B caption shows ("sunset beach 00.jpg · not rated")."""
    matches = [photo for photo in running_app.photos if name_text.startswith(photo.name + " ")]
    assert len(matches) == 1, (name_text, matches)
    return matches[0]


def test_choosing_a_in_the_images_a_b_panel_stores_a_as_the_winner(running_app: RunningApp, tmp_path: Path) -> None:
    with browser_page(tmp_path) as page:
        page.goto(running_app.owner_url)
        page.wait_for_selector("#images-gallery img", timeout=30_000)
        page.locator("#images-ab").get_by_text("Which do you prefer?").click()
        page.wait_for_selector("#images-ab-a img", timeout=15_000)
        page.wait_for_selector("#images-ab-b img", timeout=15_000)
        assert page.locator("#images-ab-a img").count() == 1 and page.locator("#images-ab-b img").count() == 1
        first_a = shown_photo(running_app, page.inner_text("#images-ab-a-name"))
        first_b = shown_photo(running_app, page.inner_text("#images-ab-b-name"))
        assert first_a != first_b
        page.locator("#images-ab").scroll_into_view_if_needed()
        page.screenshot(path=str(tmp_path / "images-ab.png"), full_page=True)
        screenshot(page, "images-ab-question")

        question = page.inner_text("#images-ab-a-name") + "|" + page.inner_text("#images-ab-b-name")
        page.click("#images-ab-prefer-a")
        page.wait_for_function(
            "document.querySelector('#images-ab-status').innerText.startsWith('saved: A over B')", timeout=15_000)
        assert first_a.name in page.inner_text("#images-ab-status")
        page.wait_for_function(  # the next question replaces the answered one
            "(names) => document.querySelector('#images-ab-a-name').innerText + '|' + "
            "document.querySelector('#images-ab-b-name').innerText !== names",
            arg=question, timeout=15_000)
        screenshot(page, "images-ab-answered")

    export = tmp_path / "forwarded.csv"  # the CLI forwards to the app, which owns the database
    result = Cli(running_app.data_dir).subprocess("export", str(export))
    assert result.code == 0, result.stderr
    hashes = {row["path"]: row["content_hash"] for row in pa_csv.read_csv(export).to_pylist()}
    preferences = pa_csv.read_csv(tmp_path / "forwarded.preferences.csv").to_pylist()
    assert [(row["winner_hash"], row["loser_hash"], row["tie"]) for row in preferences] == [
        (hashes[str(first_a)], hashes[str(first_b)], False)]

    running_app.app.close()
    connection = duckdb.connect(str(running_app.data_dir / "anagnorisis.duckdb"), read_only=True)
    try:
        stored = connection.execute(
            "SELECT DISTINCT w.display_path, l.display_path, p.tie, p.kind, p.source FROM preferences p "
            "JOIN files w ON w.content_hash = p.winner_hash JOIN files l ON l.content_hash = p.loser_hash"
        ).fetchall()
    finally:
        connection.close()
    assert stored == [(str(first_a), str(first_b), False, "images", "user")]


def test_rate_next_fills_the_gallery_with_reasons_and_why_explains_the_rating(running_app: RunningApp,
                                                                              tmp_path: Path) -> None:
    with browser_page(tmp_path) as page:
        page.goto(running_app.owner_url)
        page.wait_for_selector("#images-gallery img", timeout=30_000)
        page.click("#images-rate-next")
        page.wait_for_function(
            "document.querySelector('#images-summary').innerText.startsWith('Rate next')", timeout=15_000)
        captions = page.locator("#images-gallery .caption-label").all_inner_texts()
        assert len(captions) == len(running_app.photos)  # 12 photos, a queue of 12
        assert all("cold start" in caption for caption in captions), captions
        page.wait_for_function(  # the first file of the queue opens, ready for the slider
            "document.querySelector('#images-details').innerText.includes('Why here: cold start')", timeout=15_000)

        page.click("#images-why-button")
        page.wait_for_function(
            "document.querySelector('#images-why').innerText.includes('no model rating yet')", timeout=15_000)
        assert "No rated image with an embedding yet" in page.inner_text("#images-why")
        screenshot(page, "images-rate-next")
