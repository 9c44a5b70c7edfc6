"""The first start on an empty library shows "How to begin", not an error; it goes once a scan finds files."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.media import write_jpeg
from tests.ui.browser import browser_page, screenshot
from tests.ui.conftest import start_app

pytestmark = pytest.mark.browser


def test_the_how_to_begin_panel_shows_on_an_empty_library_and_goes_after_the_first_scan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio-tmp"))
    library = tmp_path / "photos"
    library.mkdir()
    app, url = start_app(tmp_path / "data", library)
    try:
        with browser_page(tmp_path) as page:
            page.goto(url)
            panel = page.locator("#first-start")
            panel.get_by_text("How to begin").wait_for(timeout=30_000)
            assert "Your library is empty" in panel.inner_text() and str(library) in panel.inner_text()
            screenshot(page, "first-start")
            write_jpeg(library / "first photo.jpg")
            app.context.start_scan(["images"])  # as Rescan does
            page.wait_for_selector("#first-start", state="hidden", timeout=30_000)  # no reload needed
    finally:
        app.close()
        time.sleep(0.2)
