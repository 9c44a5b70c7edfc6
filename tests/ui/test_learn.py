"""Rate next, A/B questions and "why this rating" in the media tabs: the handlers on a real DuckDB data dir."""
from __future__ import annotations

from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from anagnorisis.config import load_settings
from anagnorisis.library.scan import scan
from anagnorisis.session import Session
from anagnorisis.store.records import present_files
from anagnorisis.store.vectors import load_vectors, save_vectors
from anagnorisis.taste.service import active_embedding_model
from anagnorisis.ui import images, learn, music, text, videos
from anagnorisis.ui.context import AppContext
from tests.media import write_flac, write_text, write_video
from tests.taste.planted_library import PlantedLibrary, planted_library


@dataclass
class Planted:
    ctx: AppContext
    library: PlantedLibrary


def context_over(data_dir: Path, **settings: Any) -> AppContext:
    from anagnorisis.cli import open_library

    resolved = load_settings({"data_dir": str(data_dir), **settings})
    return AppContext(resolved, Session(resolved, open_library(resolved)))  # what build_app gives every tab


@pytest.fixture
def planted(tmp_path: Path) -> Iterator[Planted]:
    library = planted_library(tmp_path / "data", 40)
    ctx = context_over(tmp_path / "data")
    try:
        yield Planted(ctx, library)
    finally:
        ctx.session.store.close()


@pytest.fixture
def empty(tmp_path: Path) -> Iterator[AppContext]:
    ctx = context_over(tmp_path / "empty")
    try:
        yield ctx
    finally:
        ctx.session.store.close()


def preferences(ctx: AppContext) -> list[tuple[str, str, bool, str, str]]:
    return ctx.session.store.read(lambda c: c.execute(
        "SELECT winner_hash, loser_hash, tie, kind, source FROM preferences ORDER BY chosen_at").fetchall())


def hashes(pair: learn.Pair) -> tuple[str, str]:
    assert pair.a is not None and pair.b is not None, pair.message
    return pair.a["content_hash"], pair.b["content_hash"]


# ---------------------------------------------------------------------------------------------- rate next


def test_rate_next_fills_the_gallery_with_the_queue_and_each_reason(planted: Planted) -> None:
    items, summary, view, page = images.rate_next(planted.ctx)
    assert len(items) == learn.QUEUE_SIZE == len(view.results) and page == 1
    assert summary.startswith(f"**Rate next** · {learn.QUEUE_SIZE} files · cold start")
    for (thumbnail, caption), record in zip(items, view.results):
        assert Path(thumbnail).is_file()
        assert caption.endswith(f" · {record['reason']}") and record["role"] == "cover"
        assert record["metadata"]["width"] == 24  # the stored details come along for the large view
    assert "**Why here:** cold start" in images.show(planted.ctx, view, 0)[1]


def test_rated_files_leave_the_queue_and_the_slider_rates_a_queued_file(planted: Planted) -> None:
    ctx = planted.ctx
    for path, rating in planted.library.first(10).items():
        ctx.session.rate("images", path, rating)
    _items, summary, view, _page = images.rate_next(ctx)
    assert "10 rated, 0 A/B choices so far" in summary and "cold start" not in summary
    assert not {record["path"] for record in view.results} & set(planted.library.first(10))
    assert all(record["role"] in ("learn", "like") for record in view.results), view.results
    saved, view = images.rate(ctx, view, 0, 7.5)
    assert saved == "saved 7.5"
    _items, _summary, fresh, _page = images.rate_next(ctx)
    assert view.results[0]["path"] not in {record["path"] for record in fresh.results}


def test_an_empty_queue_says_why(planted: Planted, empty: AppContext) -> None:
    items, summary, view, _page = images.rate_next(empty)
    assert items == [] and view.results == []
    assert summary.startswith("**Nothing to rate next:** no image has a")
    assert "scan and embed first" in unescape(summary)
    for path in planted.library.paths:
        planted.ctx.session.rate("images", path, 5)
    _items, summary, _view, _page = images.rate_next(planted.ctx)
    assert unescape(summary) == "**Nothing to rate next:** every embedded image is rated already."


@pytest.fixture
def mixed(tmp_path: Path) -> Iterator[AppContext]:
    """Two files of music, text and videos each, with planted vectors of each kind's active model."""
    folder = tmp_path / "media"
    write_flac(folder / "music" / "first song.flac", freq=330, tags={"title": "First Song", "artist": "Tester"})
    write_flac(folder / "music" / "second song.flac", freq=550, tags={"title": "Second Song"})
    write_text(folder / "text" / "bread.md", "# Bread\n\nFlour and water.\n\n<script>alert(1)</script>\n")
    write_text(folder / "text" / "soup.txt", "Soup\nwith <b>leeks</b>\n")
    write_video(folder / "videos" / "a clip.mp4", frames=6)
    write_video(folder / "videos" / "b clip.webm", frames=6)
    ctx = context_over(tmp_path / "data", **{f"{kind}_roots": [str(folder / kind)] for kind in ("music", "text",
                                                                                                 "videos")})
    scan(ctx.session.store, ["music", "text", "videos"])
    rng = np.random.default_rng(3)
    for kind in ("music", "text", "videos"):
        found = [record["content_hash"] for record in present_files(ctx.session.store, kind)]
        assert len(found) == 2, kind
        vectors = rng.normal(size=(2, 8))
        save_vectors(ctx.session.store, active_embedding_model(kind, ctx.settings), found,
                     (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32))
    try:
        yield ctx
    finally:
        ctx.session.store.close()


def test_every_tab_fills_its_list_with_the_queue_and_shows_each_reason(mixed: AppContext) -> None:
    frame, summary, view, page = music.rate_next(mixed)
    assert "**Rate next** · 2 files" in summary and page == 1 and view.request is None
    assert list(frame["Why here"]) == [record["reason"] for record in view.results]
    assert set(frame["Title"]) == {"First Song", "Second Song"}  # tags come with the queue
    assert [path for path, _hash in music.whole_list(mixed, view)] == [r["path"] for r in view.results]

    frame, summary, view, _page, _skipped = text.rate_next(mixed)
    assert "**Rate next** · 2 files" in summary
    assert list(frame["Why here"]) == [record["reason"] for record in view.results]
    assert "Why here:" in text.open_row(mixed, view, 1)[0]

    items, summary, view, _page = videos.rate_next(mixed)
    assert "**Rate next** · 2 files" in summary
    assert [caption.endswith(record["reason"]) for (_frame, caption), record in zip(items, view.results)] == [True] * 2


def test_every_tab_shows_both_files_of_an_a_b_question(mixed: AppContext) -> None:
    song = learn.draw_pair(mixed, "music")
    side = music.ab_side_html(mixed, song.a)
    assert '<audio controls preload="none"' in side and "autoplay" not in side
    assert song.a["metadata"]["title"] in side and song.a["metadata"]["title"] in ("First Song", "Second Song")

    document = learn.draw_pair(mixed, "text")
    sides = text.ab_side_html(mixed, document.a) + text.ab_side_html(mixed, document.b)
    assert "Flour and water." in unescape(sides) and "<script" not in sides and "<b>leeks</b>" in unescape(sides)
    assert "<b>leeks" not in sides  # escaped: shown as text, never rendered

    clip = learn.draw_pair(mixed, "videos")
    frames = [videos.ab_frame(mixed, clip.a), videos.ab_frame(mixed, clip.b)]
    assert all(Path(frame).is_file() and frame.endswith(".jpg") for frame in frames) and frames[0] != frames[1]


# ---------------------------------------------------------------------------------------------- A/B questions


def test_a_b_and_equal_are_stored_in_preferences_with_the_right_winner(planted: Planted) -> None:
    ctx = planted.ctx
    first = learn.draw_pair(ctx, "images")
    assert first.reason and first.a["metadata"]
    a, b = hashes(first)
    message, second = learn.answer(ctx, "images", first, "a")
    assert message.startswith("saved: A over B") and preferences(ctx) == [(a, b, False, "images", "user")]

    c, d = hashes(second)
    assert {c, d} != {a, b}  # the next question is another one
    message, third = learn.answer(ctx, "images", second, "b")
    assert message.startswith("saved: B over A") and preferences(ctx)[-1] == (d, c, False, "images", "user")

    e, f = hashes(third)
    message, _fourth = learn.answer(ctx, "images", third, "equal")
    assert message.startswith("saved: A and B equal") and preferences(ctx)[-1] == (e, f, True, "images", "user")
    assert len(preferences(ctx)) == 3


def test_skip_stores_nothing_and_brings_another_pair(planted: Planted) -> None:
    ctx = planted.ctx
    shown = learn.draw_pair(ctx, "images")
    seen = {frozenset(hashes(shown))}
    for _ in range(3):
        message, shown = learn.skip(ctx, "images", shown)
        assert message == "skipped: nothing stored"
        assert frozenset(hashes(shown)) not in seen
        seen.add(frozenset(hashes(shown)))
    assert preferences(ctx) == []


def test_the_panel_shows_both_pictures_and_the_confirmation(planted: Planted) -> None:
    pair = learn.draw_pair(planted.ctx, "images")
    a_view, a_name, b_view, b_name, reason, status, state = learn.pair_outputs(
        planted.ctx, images.AB_PREVIEW, pair, "saved: A over B")
    assert (a_view, b_view) == (pair.a["path"], pair.b["path"]) and state is pair
    assert unescape(a_name).startswith(f"**{Path(pair.a['path']).name}**") and "not rated" in b_name
    assert unescape(reason) == f"*{pair.reason}*" and status == "saved: A over B"


def test_a_b_without_two_embedded_files_shows_the_reason_and_stores_nothing(empty: AppContext) -> None:
    pair = learn.draw_pair(empty, "images")
    assert pair.a is None and "A/B needs two embedded images" in pair.message
    outputs = learn.pair_outputs(empty, images.AB_PREVIEW, pair, "")
    assert outputs[0] is None and unescape(outputs[4]).startswith("⚠️ A/B needs two embedded")
    assert learn.answer(empty, "images", pair, "a") == (learn.NO_QUESTION, pair)
    assert preferences(empty) == []


# ---------------------------------------------------------------------------------------------- why


def test_why_lists_the_nearest_rated_neighbours_with_rating_and_similarity(planted: Planted) -> None:
    ctx, library = planted.ctx, planted.library
    rated = library.first(8)
    for path, rating in rated.items():
        ctx.session.rate("images", path, rating)
    target = library.paths[20]
    shown = learn.why_markdown(ctx, "images", target)
    assert unescape(shown).startswith("#### Why this rating: photo 020.jpg")
    assert "**Model rating:** no model rating yet" in shown and "**Your nearest rated files** (8 of 8" in shown

    wanted = [library.hashes[target], *(library.hashes[path] for path in rated)]
    found, vectors = load_vectors(ctx.session.store, library.model_id, wanted)
    by_hash = dict(zip(found, vectors))
    similarity = {path: float(by_hash[library.hashes[path]] @ by_hash[library.hashes[target]]) for path in rated}
    nearest_first = sorted(rated, key=lambda path: -similarity[path])
    rows = [unescape(line) for line in shown.splitlines() if line.startswith("| photo")]
    assert rows == [f"| {Path(path).name} | {rated[path]:g} | {similarity[path]:.3f} |" for path in nearest_first]


def test_why_shows_the_model_rating_with_its_uncertainty_or_what_is_missing(planted: Planted) -> None:
    assert learn.model_line({"model_rating": 6.04, "uncertainty": 1.26}) == "**Model rating:** 6.0 ± 1.3"
    assert learn.model_line({"model_rating": 6.0, "uncertainty": None, "model_rating_stale": True}) == (
        "**Model rating:** 6.0 (stale: from an older model)")
    assert learn.why_markdown(planted.ctx, "images", None) == "Select an image first."
    assert learn.why_markdown(planted.ctx, "music", None) == "Select a track first."
    outside = learn.why_markdown(planted.ctx, "images", "/nowhere/photo.jpg")
    assert unescape(outside).startswith("⚠️ /nowhere/photo.jpg is not under any library root")
    alone = learn.why_markdown(planted.ctx, "images", planted.library.paths[0])
    assert "No rated image with an embedding yet" in alone
