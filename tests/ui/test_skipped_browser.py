"""Damaged files are listed with their reason in every media tab's "Skipped files" panel, in a real browser."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.media import write_jpeg, write_wav
from tests.ui.browser import browser_page, screenshot
from tests.ui.conftest import start_app

pytestmark = pytest.mark.browser


def test_skipped_images_and_music_are_listed_with_their_reasons(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio-tmp"))
    photos, music = tmp_path / "photos", tmp_path / "music"
    photos.mkdir()
    music.mkdir()
    write_jpeg(photos / "fine.jpg")
    whole = write_jpeg(photos / "cut.jpg", size=(400, 300)).read_bytes()
    (photos / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    (photos / "empty.png").write_bytes(b"")
    write_wav(music / "fine.wav", seconds=0.5)
    (music / "noise.mp3").write_bytes(bytes(range(256)) * 40)
    app, url = start_app(tmp_path / "data", photos, music_roots=[str(music)])
    try:
        with browser_page(tmp_path) as page:
            page.goto(url)
            panel = page.locator("#images-skipped-panel")
            panel.get_by_text("Skipped files (2)").wait_for(timeout=30_000)
            panel.get_by_text("Skipped files (2)").click()
            page.wait_for_function("document.querySelector('#images-skipped').innerText.includes('cut.jpg')",
                                   timeout=15_000)
            listed = page.inner_text("#images-skipped")
            assert "truncated" in listed and "empty.png" in listed and "fine.jpg" not in listed, listed
            screenshot(page, "images-skipped")

            page.get_by_role("tab", name="Music").click()
            panel = page.locator("#music-skipped-panel")
            panel.get_by_text("Skipped files (1)").click()
            page.wait_for_function("document.querySelector('#music-skipped').innerText.includes('noise.mp3')",
                                   timeout=15_000)
            assert "fine.wav" not in page.inner_text("#music-skipped")
    finally:
        app.close()
        time.sleep(0.2)
