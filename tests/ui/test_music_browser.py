"""The Music tab in headless Chromium: play a list, skip with Next, let tracks finish, rate the current track.

Every format of the issue (ogg, flac, mp3, opus, m4a, wav) is played to its end by the browser itself, and a
file that turned to garbage after the scan is passed over without penalty.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from tests.media import write_mp3
from tests.ui.browser import browser_page, screenshot
from tests.ui.music_library import Track, make_tracks, start_music_app

pytestmark = pytest.mark.browser


def wait_until(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def plays(app: Any, path: Path) -> tuple[int, int, Any] | None:
    """(full plays, skips, last played) of the file at path as stored, or None when it has no plays row."""
    row = app.context.session.store.read(lambda c: c.execute(
        "SELECT p.full_plays, p.skips, p.last_played FROM plays p JOIN files f USING (content_hash)"
        " WHERE f.display_path = ?", [str(path)]).fetchone())
    return tuple(row) if row else None


def rating(app: Any, path: Path) -> float | None:
    row = app.context.session.store.read(lambda c: c.execute(
        "SELECT r.rating FROM ratings r JOIN files f USING (content_hash) WHERE f.display_path = ?",
        [str(path)]).fetchone())
    return row[0] if row else None


@pytest.fixture(scope="module")
def music_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str, list[Track], Path]]:
    """One app for the module (the tests below do not depend on each other's plays)."""
    folder = tmp_path_factory.mktemp("music-app")
    library = folder / "music"
    tracks = make_tracks(library)
    broken = write_mp3(library / "broken.mp3", seconds=1.0, tags={"title": "Broken", "date": "2021-06"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_TEMP_DIR", str(folder / "gradio-tmp"))
        app, url = start_music_app(folder / "data", library)
        broken.write_bytes(b"\0" * broken.stat().st_size)  # scanned whole, then damaged: the browser cannot play it
        try:
            yield app, url, tracks, broken
        finally:
            app.close()
            time.sleep(0.2)


def test_skip_full_plays_and_rating_in_the_browser(music_app: tuple[Any, str, list[Track], Path],
                                                    tmp_path: Path) -> None:
    app, url, tracks, broken = music_app
    long_song, finishing = tracks[0], tracks[1:]
    with browser_page(tmp_path) as page:
        page.goto(url)
        page.get_by_role("tab", name="Music").click()
        page.wait_for_function("document.querySelector('#music-table').innerText.includes('Wave Tune')",
                               timeout=30_000)
        assert page.locator("#music-table img[alt=cover]").count() == 4  # the tracks with embedded art

        page.click("#music-playlist")
        page.wait_for_function("document.querySelector('#music-now').innerText.includes('track 1 of 7')",
                               timeout=15_000)
        assert "Long Song" in page.inner_text("#music-player")
        assert page.locator("#music-player img.music-cover").count() == 1
        wait_until(lambda: (plays(app, long_song.path) or (0, 0, None))[2], what="last played of the long song")
        page.wait_for_function("!document.querySelector('#music-player audio').paused", timeout=10_000)

        slider = page.locator("#music-rating input[type=range]")
        box = slider.bounding_box()
        assert box is not None
        slider.click(position={"x": box["width"] * 0.8, "y": box["height"] / 2})
        page.wait_for_function("document.querySelector('#music-saved').innerText.startsWith('saved')",
                               timeout=15_000)
        shown = float(page.locator("#music-rating input[type=number]").input_value())
        assert 7 <= shown <= 9 and page.inner_text("#music-saved") == f"saved {shown:g}"
        assert rating(app, long_song.path) == shown
        page.wait_for_function(  # the Now-playing line says the new rating
            f"document.querySelector('#music-now').innerText.includes('yours {shown:g}')", timeout=15_000)

        page.click("#music-next")  # 20 s track, seconds in: a skip
        page.wait_for_function("document.querySelector('#music-player').innerText.includes('Short Two')",
                               timeout=15_000)
        assert plays(app, long_song.path)[:2] == (0, 1)

        # the rest play to their end one after another (1 s each); the broken file is passed over
        page.wait_for_function("document.querySelector('#music-player').innerText.includes('End of the list')",
                               timeout=45_000)
        screenshot(page, "music-tab-played")
        for track in finishing:
            full_plays, skips, last_played = wait_until(lambda t=track: plays(app, t.path), what=track.title)
            assert (full_plays, skips) == (1, 0) and last_played is not None, track.title
        assert plays(app, broken) is None  # a decode error is skipped without penalty
        assert plays(app, long_song.path)[:2] == (0, 1)
        page.wait_for_function(
            "document.querySelector('[data-testid=cell-0-10]').innerText.trim() === '1'", timeout=10_000)


def test_the_radio_keeps_drawing_and_never_repeats_the_track_just_played(
        music_app: tuple[Any, str, list[Track], Path], tmp_path: Path) -> None:
    app, url, tracks, broken = music_app
    for track, value in zip(tracks, (0, 9, 8, 7, 6, 5), strict=True):  # the 20 s track all but never comes up
        app.context.session.rate("music", str(track.path), value)
    app.context.session.rate("music", str(broken), 0)
    full_before = sum((plays(app, t.path) or (0, 0, None))[0] for t in tracks)
    with browser_page(tmp_path) as page:
        page.goto(url)
        page.get_by_role("tab", name="Music").click()
        page.wait_for_function("document.querySelector('#music-table').innerText.includes('Wave Tune')",
                               timeout=30_000)
        page.click("#music-radio")
        loads: dict[str, str] = {}  # each load of the player (its nonce) and the title it showed
        deadline = time.monotonic() + 30
        while len(loads) < 5 and time.monotonic() < deadline:
            nonce, title = page.evaluate(  # one read, so the pair belongs to one render
                "() => { const p = document.querySelector('#music-player');"
                " const a = p.querySelector('audio'), t = p.querySelector('.music-title');"
                " return [a ? a.dataset.nonce : '', t ? t.innerText : '']; }")
            if nonce and title:
                loads.setdefault(nonce, title)
            time.sleep(0.05)
        assert len(loads) >= 5, loads
        assert "radio at temperature 1" in page.inner_text("#music-now")
    titles = [loads[nonce] for nonce in sorted(loads, key=int)]
    assert all(a != b for a, b in pairwise(titles)), titles
    assert "Long Song" not in titles
    full_after = wait_until(lambda: sum((plays(app, t.path) or (0, 0, None))[0] for t in tracks) >= full_before + 4
                            and sum((plays(app, t.path) or (0, 0, None))[0] for t in tracks), what="full plays")
    assert full_after >= full_before + 4


def test_choosing_b_in_the_music_a_b_panel_stores_b_as_the_winner(music_app: tuple[Any, str, list[Track], Path],
                                                                   tmp_path: Path) -> None:
    app, url, tracks, broken = music_app
    by_name = {path.name: path for path in [*(track.path for track in tracks), broken]}

    def shown(side: str, page: Any) -> Path:
        text = page.inner_text(f"#music-ab-{side}-name")  # "long song.ogg · not rated"
        matches = [path for name, path in by_name.items() if text.startswith(name + " ")]
        assert len(matches) == 1, (text, matches)
        return matches[0]

    with browser_page(tmp_path) as page:
        page.goto(url)
        page.get_by_role("tab", name="Music").click()
        page.wait_for_function("document.querySelector('#music-table').innerText.includes('Wave Tune')",
                               timeout=30_000)
        page.locator("#music-ab").get_by_text("Which do you prefer?").click()
        page.wait_for_selector("#music-ab-a audio", timeout=15_000)
        page.wait_for_selector("#music-ab-b audio", timeout=15_000)
        a, b = shown("a", page), shown("b", page)
        assert a != b
        for side in ("a", "b"):  # each side's player is served a file the browser can fetch
            source = page.get_attribute(f"#music-ab-{side} audio", "src")
            assert source and page.request.get(urljoin(url, source)).status == 200, source
        screenshot(page, "music-ab-question")
        page.click("#music-ab-prefer-b")
        page.wait_for_function(
            "document.querySelector('#music-ab-status').innerText.startsWith('saved: B over A')", timeout=15_000)
        assert b.name in page.inner_text("#music-ab-status")

    stored = app.context.session.store.read(lambda c: c.execute(
        "SELECT DISTINCT w.display_path, l.display_path, p.tie, p.kind, p.source FROM preferences p "
        "JOIN files w ON w.content_hash = p.winner_hash JOIN files l ON l.content_hash = p.loser_hash").fetchall())
    assert stored == [(str(b), str(a), False, "music", "user")]


def test_a_second_list_started_in_the_same_page_records_its_start(music_app: tuple[Any, str, list[Track], Path],
                                                                   tmp_path: Path) -> None:
    """Every list started from the page is a new player; its first track's start must still reach the database."""
    app, url, tracks, _broken = music_app
    long_song = tracks[0]  # first by date; 20 s: it cannot end (and count a full play) while the test waits for its start
    with browser_page(tmp_path) as page:
        page.goto(url)
        page.get_by_role("tab", name="Music").click()
        page.wait_for_function("document.querySelector('#music-table').innerText.includes('Wave Tune')",
                               timeout=30_000)
        seen = []
        for _ in range(2):
            before = (plays(app, long_song.path) or (0, 0, None))[2]
            page.click("#music-playlist")
            started = wait_until(lambda b=before: (after := (plays(app, long_song.path) or (0, 0, None))[2])
                                 and (b is None or after > b) and after, what="the start of the list's first track")
            seen.append(started)
            page.wait_for_function("!document.querySelector('#music-player audio').paused", timeout=10_000)
            position = page.evaluate("() => document.querySelector('#music-player audio').currentTime")
            assert position < 5, position  # started again from the beginning, not carried on
        assert seen[1] > seen[0]


def test_a_typed_page_number_opens_that_page_and_page_forward_stops_at_the_last(
        music_app: tuple[Any, str, list[Track], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from anagnorisis.ui import music

    app, url, _tracks, _broken = music_app
    monkeypatch.setattr(music, "PAGE_SIZE", 4)  # 7 tracks: two pages
    with browser_page(tmp_path) as page:
        page.goto(url)
        page.get_by_role("tab", name="Music").click()
        page.wait_for_function("document.querySelector('#music-summary').innerText.includes('page 1 of 2')",
                               timeout=30_000)
        box = page.locator("#music-page input")
        box.fill("2")
        box.press("Enter")
        page.wait_for_function("document.querySelector('#music-summary').innerText.includes('page 2 of 2')",
                               timeout=15_000)
        page.click("#music-next-page")
        page.wait_for_timeout(1_500)
        assert "page 2 of 2" in page.inner_text("#music-summary")  # not "page 3 of 2" and an empty table
        assert box.input_value() == "2"
