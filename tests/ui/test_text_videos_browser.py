"""The Text and Videos tabs in a real browser: open a text, find its passage, rate it; play a video, then the next."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import duckdb
import pytest

from tests.media import write_text, write_video
from tests.ui.browser import browser_page, screenshot
from tests.ui.conftest import free_port

pytestmark = pytest.mark.browser

GARDEN = ("In spring the garden needs compost worked into the beds before planting. Tomatoes go out after the last "
          "frost, staked and watered deeply. Mulch with straw to keep the soil moist and the weeds down. ")
HARBOUR = ("The fishing boats came back to the harbour at dawn, gulls circling over the nets. The fishermen sold "
           "their catch of cod and mackerel on the quay before the market opened. ")
NOTE = (f"# Summer notes\n\n<script>document.title = 'pwned'</script>\n\n"
        f"<img src=\"https://evil.example/pixel.png\" onerror=\"document.title = 'pwned'\">\n\n"
        f"## Harbour\n\n{HARBOUR * 12}\n\n## Garden\n\n{GARDEN * 12}\n")


@dataclass
class App:
    app: Any
    url: str
    data_dir: Path
    notes: Path
    films: Path


@pytest.fixture
def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    from anagnorisis.ui.app import build_app

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio-tmp"))
    notes, films = tmp_path / "notes", tmp_path / "films"
    write_text(notes / "summer.md", NOTE)
    write_text(notes / "short.txt", "A short note about nothing much.\n")
    write_video(films / "clip two.mkv", frames=20, codec="mpeg4", color=(160, 40, 40))  # the browser needs an MP4
    write_video(films / "clip one.mp4", frames=20, color=(40, 160, 40))
    port = free_port()
    app = build_app(str(tmp_path / "data"), text_roots=[str(notes)], videos_roots=[str(films)],
                    images_roots=[str(tmp_path / "data" / "library" / "images")], port=port, lock_wait_seconds=2)
    app.launch(prevent_thread_lock=True, quiet=True)
    try:
        job = app.context.jobs.wait("scan", timeout=60)
        assert job is not None and job.state == "done", job
        app.context.jobs.wait("embed", timeout=120)
        yield App(app, app.owner_url, tmp_path / "data", notes, films)
    finally:
        app.close()
        time.sleep(0.2)


def rate_with_slider(page: Any, prefix: str, share: float) -> float:
    slider = page.locator(f"#{prefix}-rating input[type=range]")
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    assert box is not None
    slider.click(position={"x": box["width"] * share, "y": box["height"] / 2})
    page.wait_for_function(f"document.querySelector('#{prefix}-saved').innerText.startsWith('saved')",
                           timeout=15_000)
    return float(page.locator(f"#{prefix}-rating input[type=number]").input_value())


def test_open_a_text_rate_it_and_play_a_video_for_a_second(running: App, tmp_path: Path) -> None:
    with browser_page(tmp_path) as page:
        page.goto(running.url)
        page.get_by_role("tab", name="Text", exact=True).click()
        page.locator("#text-table [role=gridcell]", has_text="summer.md").first.wait_for(timeout=30_000)

        page.fill("#text-query textarea", "watering tomatoes and mulching vegetable beds")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "document.querySelector('#text-summary').innerText.includes('meaning search')", timeout=30_000)
        page.locator("#text-table [role=gridcell]", has_text="summer.md").first.click()
        page.wait_for_selector("#text-rendered h1", timeout=30_000)
        assert page.inner_text("#text-rendered h1") == "Summer notes"
        assert page.locator("#text-rendered script").count() == 0
        assert page.locator("#text-rendered img").count() == 1
        assert page.locator("#text-rendered img").get_attribute("src") is None
        assert page.locator("#text-rendered img").get_attribute("onerror") is None
        assert page.title() != "pwned"
        best = page.locator("#text-rendered mark#best-chunk")
        best.wait_for(timeout=30_000)
        marked = " ".join(page.locator("#text-rendered mark.best-chunk").all_inner_texts())
        assert "Mulch with straw" in marked or "garden needs compost" in marked
        assert "Best passage" in page.inner_text("#text-details")

        rating = rate_with_slider(page, "text", 0.8)
        assert 7 <= rating <= 9
        assert page.inner_text("#text-saved") == f"saved {rating:g}"
        page.wait_for_function(  # the details and the list say the new rating
            f"document.querySelector('#text-details').innerText.includes('yours {rating:g}')", timeout=15_000)
        assert "Best passage" in page.inner_text("#text-details")  # the rest of the details stays
        page.locator("#text-table [role=gridcell]", has_text=f"yours {rating:g}").first.wait_for(timeout=15_000)
        screenshot(page, "text-tab-rated")
        page.locator("#text-table [role=gridcell]", has_text="short.txt").first.click()  # nothing edited: opens
        page.wait_for_function("document.querySelector('#text-details').innerText.includes('short.txt')",
                               timeout=15_000)

        page.get_by_role("tab", name="Videos", exact=True).click()
        page.wait_for_selector("#videos-gallery img", timeout=30_000)
        page.fill("#videos-query textarea", "clip")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "document.querySelector('#videos-summary').innerText.includes('name search')", timeout=15_000)
        page.locator("#videos-gallery img").first.click()
        page.wait_for_selector("#videos-player video", timeout=30_000)  # after "preparing…" when needed
        first_src = page.locator("#videos-player video").get_attribute("src") or ""
        page.wait_for_function("(() => { const v = document.querySelector('#videos-player video');"
                               " return v && v.currentTime >= 1.0; })()", timeout=20_000)
        screenshot(page, "videos-tab-playing")
        # The 2-second clip ends, counts a full play, and the next video of the order starts by itself.
        page.wait_for_function(
            f"(() => {{ const v = document.querySelector('#videos-player video');"
            f" return v && v.getAttribute('src') !== {first_src!r} && v.currentTime > 0.2; }})()", timeout=30_000)
        second_src = page.locator("#videos-player video").get_attribute("src") or ""
        video_rating = rate_with_slider(page, "videos", 0.3)
        page.wait_for_function(  # the details and the grid's caption say the new rating
            f"document.querySelector('#videos-details').innerText.includes('yours {video_rating:g}')",
            timeout=15_000)
        assert f"yours {video_rating:g}" in page.inner_text("#videos-gallery")

    assert "previews/video/" in first_src or "previews/video/" in second_src  # one was transcoded for the browser
    running.app.close()
    connection = duckdb.connect(str(running.data_dir / "anagnorisis.duckdb"), read_only=True)
    try:
        plays = dict(connection.execute(
            "SELECT f.relative_path, p.full_plays FROM plays p JOIN files f USING (content_hash)"
            " WHERE p.last_played IS NOT NULL").fetchall())
        text_rating = connection.execute(
            "SELECT r.rating FROM ratings r JOIN files f USING (content_hash) WHERE f.relative_path = 'summer.md'"
        ).fetchall()
    finally:
        connection.close()
    assert text_rating == [(rating,)]
    assert set(plays) == {"clip one.mp4", "clip two.mkv"}  # both started: last played is set
    assert sorted(plays.values()) == [0, 1]  # the first played to its end; the second was still playing


def _stored_preferences(data_dir: Path) -> list[tuple[Any, ...]]:
    connection = duckdb.connect(str(data_dir / "anagnorisis.duckdb"), read_only=True)
    try:
        return connection.execute(
            "SELECT DISTINCT w.display_path, l.display_path, p.tie, p.kind, p.source FROM preferences p "
            "JOIN files w ON w.content_hash = p.winner_hash JOIN files l ON l.content_hash = p.loser_hash "
            "ORDER BY p.kind").fetchall()
    finally:
        connection.close()


def test_a_b_in_the_text_and_videos_tabs_stores_a_tie_and_a_winner(running: App, tmp_path: Path) -> None:
    """Text: the two documents' first lines side by side (escaped: the note's script never runs), Equal stores a tie.
    Videos: a frame of each clip, A stores A as the winner; with two clips there is no second question."""
    texts = {"summer.md": running.notes / "summer.md", "short.txt": running.notes / "short.txt"}
    films = {"clip one.mp4": running.films / "clip one.mp4", "clip two.mkv": running.films / "clip two.mkv"}

    def shown(page: Any, kind: str, side: str, names: dict[str, Path]) -> Path:
        text = page.inner_text(f"#{kind}-ab-{side}-name")
        matches = [path for name, path in names.items() if text.startswith(name + " ")]
        assert len(matches) == 1, (text, matches)
        return matches[0]

    with browser_page(tmp_path) as page:
        page.goto(running.url)
        page.get_by_role("tab", name="Text", exact=True).click()
        page.locator("#text-table [role=gridcell]", has_text="summer.md").first.wait_for(timeout=30_000)
        page.locator("#text-ab").get_by_text("Which do you prefer?").click()
        page.wait_for_function("document.querySelector('#text-ab-b-name').innerText.includes(' · ')",
                               timeout=15_000)
        text_a, text_b = shown(page, "text", "a", texts), shown(page, "text", "b", texts)
        assert {text_a, text_b} == set(texts.values())
        side = "a" if text_a.name == "summer.md" else "b"
        assert "The fishing boats came back" in page.inner_text(f"#text-ab-{side}")
        assert page.locator(f"#text-ab-{side} script, #text-ab-{side} img").count() == 0  # the note's HTML never runs
        assert "A short note about nothing much." in page.inner_text(f"#text-ab-{'b' if side == 'a' else 'a'}")
        page.click("#text-ab-equal")
        page.wait_for_function(
            "document.querySelector('#text-ab-status').innerText.startsWith('saved: A and B equal')", timeout=15_000)
        screenshot(page, "text-ab-equal")

        page.get_by_role("tab", name="Videos", exact=True).click()
        page.locator("#videos-ab").get_by_text("Which do you prefer?").click()
        page.wait_for_selector("#videos-ab-a img", timeout=30_000)
        page.wait_for_selector("#videos-ab-b img", timeout=15_000)
        film_a, film_b = shown(page, "videos", "a", films), shown(page, "videos", "b", films)
        assert film_a != film_b
        page.click("#videos-ab-prefer-a")
        page.wait_for_function(
            "document.querySelector('#videos-ab-status').innerText.startsWith('saved: A over B')", timeout=15_000)
        screenshot(page, "videos-ab-answered")
        assert page.title() != "pwned"

    running.app.close()
    assert _stored_preferences(running.data_dir) == [
        (str(text_a), str(text_b), True, "text", "user"),
        (str(film_a), str(film_b), False, "videos", "user"),
    ]
