"""The Videos tab: a paged grid of preview frames, search and sort, a player that goes on to the next video.

The player is a plain ``<video>`` element in a ``gr.HTML`` whose ``js_on_load`` reports the element's events back
to Python (``playing`` → start, ``ended`` → a full play and the next video, ``error`` → the cached MP4, else pass
over). Play events go through ``plays.play_path``, as the music player's do. A video the browser cannot play as it
is gets remuxed or transcoded (``videoplay``) in a background job; the player says "preparing…" with the progress
(the status line shows it too) until the MP4 is in the cache.
"""
from __future__ import annotations

import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from anagnorisis.media import player as playing
from anagnorisis.media.playback import file_url
from anagnorisis.media.player import VideoPlayer, video_place
from anagnorisis.media.videoplay import VideoError, ensure_frame, needs_preparing, playable_path, url_safe_path
from anagnorisis.recommend.plays import PlayEventError, play_path
from anagnorisis.service import ServiceError
from anagnorisis.service.search import search as search_files
from anagnorisis.ui import learn, media_tab
from anagnorisis.ui.browse import (
    PageView, commit_rating, fresh_page, media_events_js, next_load,
    build_request, file_name, Filters, human_size, Page, rating_text, run_page, search_controls,
)
from anagnorisis.ui.context import AppContext, Loader
from anagnorisis.ui.safe import html_text, md, md_code
from anagnorisis.ui.skipped import SkippedPanel

log = logging.getLogger(__name__)

KIND = "videos"
PAGE_SIZE = 24  # preview frames per page: four rows of six
FRAME_WORKERS = 4  # preview frames made at once for a page (FFmpeg decodes with the GIL released)
MAX_LOAD_ATTEMPTS = 20  # videos tried in a row when files vanish or do not decode, before the player gives up
POLL_SECONDS = 0.5  # how often the player asks whether a video being prepared is ready
IDLE_HTML = '<div class="video-idle">Nothing playing. Click a preview to play it.</div>'


View = PageView  # the grid's page, the request behind it (the current order) and the total


Player = VideoPlayer  # what is playing: anagnorisis.media.player holds it and moves it
PlayerUpdate = tuple[Any, Any, Any, Any, "Player", Any]  # player html, details, slider, saved, state, timer


# ---------------------------------------------------------------------------------------------- the grid


def length_text(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
        return "?"
    minutes, rest = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{rest:02d}" if hours else f"{minutes:d}:{rest:02d}"


def resolution_text(record: dict[str, Any]) -> str:
    """width×height from the stored metadata, "?" for a side that is not a number (text for a caption or Markdown)."""
    meta = record.get("metadata") or {}
    return "×".join(_dimension(meta.get(side)) for side in ("width", "height"))


def _dimension(value: Any) -> str:
    return f"{value:d}" if isinstance(value, int) and not isinstance(value, bool) else "?"


def placeholder_frame(previews_dir: Path) -> Path:
    """A dark tile shown for a video whose frames do not decode."""
    target = Path(previews_dir) / "frames" / "unavailable.jpg"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        Image.new("RGB", (160, 90), (40, 40, 40)).save(partial, "JPEG")
        os.replace(partial, target)
    return target


def gallery_items(ctx: AppContext, results: list[dict[str, Any]]) -> list[tuple[str, str]]:
    previews = ctx.session.previews_dir
    with ThreadPoolExecutor(FRAME_WORKERS) as pool:
        frames = list(pool.map(lambda record: ensure_frame(previews, record), results))
    items = []
    for record, frame in zip(results, frames):
        meta = record.get("metadata") or {}
        caption = (f"{file_name(record)} · {length_text(meta.get('duration'))} · "  # plain text: a gallery caption
                   f"{resolution_text(record)} · {rating_text(record)}"  # plain text: a gallery caption
                   + ("" if frame else " · no preview: the video does not decode"))
        if record.get("role"):  # a rate-next item says why it is asked
            caption += f" · {record['reason']}"  # plain text: a gallery caption
        items.append((str(frame or placeholder_frame(previews)), caption))
    return items


def search_page(ctx: AppContext, query: str, mode: str, sort: str, order: str, temperature: float, seed: int,
                page: int, folder: str, rated: str, rmin: float, rmax: float, mmin: float, mmax: float,
                ext: str) -> tuple[list[tuple[str, str]], str, View, int]:
    """Handler: run the search and fill the grid."""
    filters = Filters(folder or "", rated or "all", float(rmin), float(rmax), float(mmin), float(mmax), ext or "")
    request = build_request(KIND, query, mode, sort, order, temperature, seed, page, filters, page_size=PAGE_SIZE)
    result: Page = run_page(ctx, request)
    view = View(result.results, replace(request, offset=(result.page - 1) * PAGE_SIZE), result.total)
    return gallery_items(ctx, result.results), result.summary(), view, result.page


def rate_next(ctx: AppContext) -> tuple[list[tuple[str, str]], str, View, int]:
    """Handler: fill the grid with the rate-next queue (each caption with its reason); autoplay goes through it."""
    results, summary = learn.rate_next_queue(ctx, KIND)
    return gallery_items(ctx, results), summary, View(results, None, len(results)), 1


def ab_frame(ctx: AppContext, record: dict[str, Any]) -> str:
    """One video of an A/B question: its preview frame (a dark tile when it does not decode)."""
    return str(ensure_frame(ctx.session.previews_dir, record) or placeholder_frame(ctx.session.previews_dir))


def whole_list(ctx: AppContext, view: View) -> list[tuple[str, str]]:
    """Every video of the current sorted/filtered list, in its order (all pages): what autoplay goes through."""
    if view.request is None:
        return playing.tracks_of(view.results)
    request = replace(view.request, offset=0, limit=max(view.total, len(ctx.session.records(KIND)), 1))
    try:
        result = search_files(ctx.session, request)
    except ServiceError:
        return playing.tracks_of(view.results)
    return playing.tracks_of(result.results)


# ---------------------------------------------------------------------------------------------- the player


def details_markdown(record: dict[str, Any], player: Player) -> str:
    meta = record.get("metadata") or {}
    plays = (f"{int(record.get('full_plays') or 0)} full plays · {int(record.get('skips') or 0)} skips"
             + (f" · last played {md(str(record['last_played'])[:16].replace('T', ' '))} UTC"
                if record.get("last_played") else ""))
    lines = [
        f"### {md(file_name(record))}",
        md_code(record.get("display_path") or record["path"]),
        f"**Rating:** {rating_text(record)} · {plays}",  # trusted: numbers and fixed words
        f"**Length:** {length_text(meta.get('duration'))} · "  # trusted: digits and colons
        f"**Resolution:** {resolution_text(record)} · "  # trusted: digits or "?"
        f"**Codec:** {md(meta.get('codec', '?'))} in {md(meta.get('format', '?'))} · "
        f"**Size:** {human_size(record.get('size'))}",  # trusted: a number and a unit
        video_place(player),  # trusted: numbers and fixed words
    ]
    reason = player.reasons.get(str(record.get("content_hash")))
    if reason:
        lines.insert(4, f"**Why here:** {md(reason)}")
    if player.message:  # plain text (it names a file and quotes an error): escaped here
        lines.append(f"*{md(player.message)}*")
    return "\n\n".join(lines)


def video_html(record: dict[str, Any], url: str, nonce: int) -> str:
    return (f'<video controls autoplay playsinline preload="auto" src="{html_text(url)}" '
            f'data-hash="{html_text(record["content_hash"])}" data-nonce="{int(nonce)}"></video>')


def message_html(text: str, css: str = "video-idle") -> str:
    """A plain-text message (it may name a file) in the player's place; css is one of the classes of PLAYER_CSS."""
    return f'<div class="{css}">{html_text(text)}</div>'  # trusted: css is a class name of this module


def slider_for(record: dict[str, Any] | None) -> Any:
    rating = record.get("user_rating") if record else None
    return gr.update(value=rating if rating is not None else 0)


def idle(player: Player, message: str) -> PlayerUpdate:
    """The player without a video: the message (plain text, it may name a file) in its place and as the details."""
    return message_html(message), md(message), gr.update(), "", replace(player, finished=True, preparing=""), \
        gr.update(active=False)


def prepare_job_name(content_hash: str) -> str:
    return f"prepare video {content_hash[:8]}"  # trusted: a content hash (hex digits) the app computed


def load_current(ctx: AppContext, player: Player, *, pass_over: bool = False) -> PlayerUpdate:
    """Give the browser the current video, or start preparing it. With pass_over (autoplay), a video that cannot
    be read is passed over without penalty; a video the user chose shows why it cannot play."""
    for _attempt in range(MAX_LOAD_ATTEMPTS):
        track = player.current()
        if track is None:
            return idle(player, player.message or "End of the list.")
        record = ctx.session.record_by_path(KIND, track[0])
        try:
            if record is None:
                raise VideoError(f"{track[0]} is no longer in the library")  # plain text: escaped where shown
            if player.forced or needs_preparing(record, ctx.session.previews_dir):
                return start_preparing(ctx, player, record)
            path = url_safe_path(ctx.session.previews_dir, record, playable_path(record, ctx.session.previews_dir))
        except (VideoError, OSError) as error:
            log.warning("cannot play %s: %s", track[0], error)
            if not pass_over:
                return cannot_play(player, record, track[0], error)
            passed = f"passed over {os.path.basename(track[0])}: {error}"  # plain text: Player.message
            player = playing.video_forward(player, passed)
            continue
        return show_video(player, record, path)
    return idle(player, "Stopped: too many videos in a row could not be played.")


def cannot_play(player: Player, record: dict[str, Any] | None, path: str, error: BaseException) -> PlayerUpdate:
    text = f"Cannot play {os.path.basename(path)}: {error}"  # plain text: escaped where shown
    details = details_markdown(record, replace(player, message=text)) if record else md(text)
    return (message_html(text, "video-error"), details, slider_for(record), "",
            replace(player, finished=True, preparing="", message=""), gr.update(active=False))


def show_video(player: Player, record: dict[str, Any], path: Path) -> PlayerUpdate:
    player = replace(playing.loaded(player, next_load()), preparing="")
    return (video_html(record, file_url(path), player.nonce), details_markdown(record, player), slider_for(record),
            "", replace(player, message=""), gr.update(active=False))


def start_preparing(ctx: AppContext, player: Player, record: dict[str, Any]) -> PlayerUpdate:
    """Remux or transcode in the background; the timer polls until the MP4 is ready."""
    name = prepare_job_name(str(record["content_hash"]))
    title = file_name(record)
    force = player.forced

    def work(job: Any) -> str:
        def progress(done: float, total: float) -> None:
            job.progress(int(100 * done / total) if total else 0, 100, title)
            job.check()  # a checkpoint: waits while paused, ends the conversion (its partial file removed) on cancel

        ready = str(playable_path(record, ctx.session.previews_dir, progress, force=force))
        job.message = f"{title} is ready to play"  # plain text: a job message
        return ready

    for job in ctx.jobs.visible():  # one "video preparation done" on the status line at a time, not a pile
        if job.name.startswith(prepare_job_name("")) and not job.active:
            ctx.jobs.forget(job.name)
    ctx.jobs.start(name, work, label="video preparation")
    player = replace(player, preparing=name, finished=True)
    return (message_html(f"Preparing {title} for the browser… 0%", "video-preparing"),  # plain text: message_html
            details_markdown(record, player), slider_for(record), "", player, gr.update(active=True))


def poll(ctx: AppContext, player: Player) -> PlayerUpdate:
    """Handler (timer): the progress of the video being prepared, then the video itself once it is ready."""
    unchanged = (gr.update(), gr.update(), gr.update(), gr.update(), player)
    if not player.preparing:
        return (*unchanged, gr.update(active=False))
    job = ctx.jobs.get(player.preparing)
    track = player.current()
    if job is None or track is None:
        return idle(player, "Stopped.")
    if job.active:
        share = f"{int(job.done)}%" if job.total else "…"
        share += " (paused)" if job.state == "paused" else ""
        preparing = f"Preparing {os.path.basename(track[0])} for the browser… {share}"  # plain text: message_html
        return (message_html(preparing, "video-preparing"), gr.update(), gr.update(), gr.update(), player, gr.update())
    record = ctx.session.record_by_path(KIND, track[0])
    if job.state != "done" or record is None:
        said = "preparing it was cancelled" if job.state == "cancelled" else "preparing it failed"
        return cannot_play(player, record, track[0], VideoError(job.error or said))
    return show_video(player, record, Path(str(job.result)))


def play_from(ctx: AppContext, view: View, index: int | None) -> PlayerUpdate:
    """Handler: a click on a preview plays it, then the rest of the current order."""
    if index is None or not 0 <= index < len(view.results):
        return idle(Player(), "Click a preview to play it.")
    clicked = playing.tracks_of([view.results[index]])[0]
    offset = view.request.offset if view.request is not None else 0
    reasons = {str(r["content_hash"]): str(r["reason"]) for r in view.results if r.get("reason")}
    return load_current(ctx, playing.video_queue(whole_list(ctx, view), clicked, offset + index, reasons))


def record_event(ctx: AppContext, path: str, event: str) -> None:
    try:
        play_path(ctx.session, path, event)
    except PlayEventError as error:  # the file left the library while it played: nothing to count
        log.warning("play event %s not recorded: %s", event, error)


def video_started(ctx: AppContext, player: Player, data: Any) -> str:
    """Handler: the browser started playing: last played is now (found by the hash the browser names)."""
    content_hash = str((data or {}).get("hash") or "")
    path = playing.path_of_hash(player.tracks, content_hash)
    if path is None:
        return gr.update()  # type: ignore[return-value]
    record_event(ctx, path, "start")
    track = player.current()
    if track is None or playing.event_nonce(data) != player.nonce:
        return gr.update()  # type: ignore[return-value]
    record = ctx.session.record_by_path(KIND, track[0])
    return details_markdown(record, player) if record else gr.update()  # type: ignore[return-value]


def video_ended(ctx: AppContext, player: Player, data: Any, autoplay: bool) -> PlayerUpdate:
    """Handler: played to the end: a full play, then (autoplay) the next video of the current order."""
    track = player.current()
    if track is None or not playing.is_current_load(player, data):
        return gr.update(), gr.update(), gr.update(), gr.update(), player, gr.update()
    record_event(ctx, track[0], "full")
    player = replace(player, finished=True, message="")
    if not autoplay:
        record = ctx.session.record_by_path(KIND, track[0])
        return gr.update(), details_markdown(record, player) if record else gr.update(), gr.update(), \
            gr.update(), player, gr.update()
    return load_current(ctx, playing.video_forward(player), pass_over=True)


def video_failed(ctx: AppContext, player: Player, data: Any) -> PlayerUpdate:
    """Handler: the browser could not decode the video: make the MP4 once, else pass over it unpenalised."""
    track = player.current()
    if track is None or not playing.is_current_load(player, data):
        return gr.update(), gr.update(), gr.update(), gr.update(), player, gr.update()
    record_event(ctx, track[0], "error")  # validated, records nothing (SPEC §5)
    if not player.forced:
        return load_current(ctx, replace(player, forced=True, finished=True))
    message = f"passed over {os.path.basename(track[0])}: the browser cannot play it"  # plain text: Player.message
    return load_current(ctx, playing.video_forward(player, message), pass_over=True)


def next_video(ctx: AppContext, player: Player) -> PlayerUpdate:
    """Handler: Next. Before the end of the current video it counts a skip."""
    track = player.current()
    if track is None:
        return idle(player, player.message or "Stopped.")
    if not player.finished:
        record_event(ctx, track[0], "skip")
    return load_current(ctx, playing.video_forward(player), pass_over=True)


def previous_video(ctx: AppContext, player: Player) -> PlayerUpdate:
    """Handler: Previous (no penalty for the video left)."""
    if not player.tracks:
        return idle(player, "Stopped.")
    return load_current(ctx, playing.video_back(player), pass_over=True)


def rate_current(ctx: AppContext, player: Player, value: float | None) -> str:
    """Handler: commit the slider's rating for the current video (after the end of the list, the last one);
    'saved' only after the commit."""
    track = player.rated()
    if track is None:
        return "Play a video to rate it."
    said = commit_rating(ctx, KIND, track[0], value)[1]
    if player.current() is not None:
        return said
    last = md(os.path.basename(track[0]))
    return f"{said} for {last}, the last video played"  # trusted: commit_rating's words and numbers; last escaped


def rated_view(ctx: AppContext, player: Player, view: View) -> tuple[Any, Any, View]:
    """After a rating: the details and the grid's captions say the new rating; the playing video stays selected."""
    track = player.rated()
    record = ctx.session.record_by_path(KIND, track[0]) if track else None
    if record is None:
        return gr.update(), gr.update(), view
    fresh = fresh_page(ctx, KIND, view)
    shown = [i for i, known in enumerate(fresh.results) if known.get("content_hash") == track[1]]
    grid = gr.update(value=gallery_items(ctx, fresh.results), selected_index=shown[0] if shown else None)
    details = details_markdown(record, player) if player.current() is not None else gr.update()  # "End of the list."
    return details, grid, fresh


# ---------------------------------------------------------------------------------------------- wiring

PLAYER_JS = media_events_js("VIDEO")

PLAYER_CSS = """
video { width: 100%; max-height: 520px; background: #000; border-radius: 6px; }
.video-idle, .video-preparing { padding: 24px 0; opacity: 0.8; }
.video-error { padding: 24px 0; color: #c0392b; font-weight: 600; }
"""


@dataclass
class VideosHandles:
    """The Videos tab's components: the shared ones, the player and its buttons."""

    media: media_tab.MediaHandles
    player_view: Any
    details: Any
    previous: Any
    following: Any
    autoplay: Any
    player: Any  # gr.State: the Player
    timer: Any  # polls a video being prepared

    def player_outputs(self) -> list[Any]:
        """What a PlayerUpdate fills."""
        return [self.player_view, self.details, self.media.slider, self.media.saved, self.player, self.timer]


def render(ctx: AppContext) -> VideosHandles:
    """Lay out the tab: the search, the grid and pager, the player with the rating, A/B."""
    search = search_controls(KIND, "file name, a description of what is seen, or a file path", "mp4,mkv")
    summary, rate_next_button = media_tab.summary_row(KIND)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            gallery = gr.Gallery(columns=4, height=560, allow_preview=False, object_fit="cover", fit_columns=False,
                                 label="Videos", elem_id="videos-gallery")
            pager = media_tab.pager(KIND)
            skipped = SkippedPanel(ctx, KIND)
        with gr.Column(scale=3):
            player_view = gr.HTML(IDLE_HTML, js_on_load=PLAYER_JS, css_template=PLAYER_CSS, elem_id="videos-player")
            details = gr.Markdown(elem_id="videos-details")
            with gr.Row():
                previous = gr.Button("⏮ Previous", elem_id="videos-previous")
                following = gr.Button("⏭ Next", elem_id="videos-next")
                autoplay = gr.Checkbox(value=True, label="Autoplay next", elem_id="videos-autoplay")
            slider = media_tab.rating_slider(KIND, "Your rating of this video (0–10)")
            with gr.Row():
                saved = media_tab.saved_text(KIND)
                clear = media_tab.clear_button(KIND)
                similar = gr.Button("Similar videos", scale=0, elem_id="videos-similar")
            with gr.Row():
                more_to_rate = learn.more_to_rate_button(KIND)
                why_button = learn.why_button(KIND)
            why_text = learn.why_area(KIND)
    ab = learn.render_ab_panel(KIND, learn.Preview(
        make=lambda elem_id, label: gr.Image(type="filepath", label=label, interactive=False, height=300,
                                             elem_id=elem_id),
        value=ab_frame))
    media = media_tab.MediaHandles(KIND, search, summary, rate_next_button, gallery, pager, skipped, slider, saved,
                                   clear, more_to_rate, why_button, why_text, ab, view=gr.State(View()),
                                   similar=similar)
    return VideosHandles(media, player_view, details, previous, following, autoplay, player=gr.State(Player()),
                         timer=gr.Timer(POLL_SECONDS, active=False))


def listen(ctx: AppContext, handles: VideosHandles) -> Loader:
    """Wire the shared events, then the player's: a click on a preview, Next/Previous, the preparation timer and
    the browser's play events."""
    media, player, outputs = handles.media, handles.player, handles.player_outputs()
    private: dict[str, Any] = {"api_visibility": "private"}
    wired = media_tab.listen(ctx, media, media_tab.MediaWiring(
        search=lambda *values: search_page(ctx, *values), rate_next=lambda: rate_next(ctx),
        selection=[player], selected_path=learn.playing_path,
        rate=lambda p, value: rate_current(ctx, p, value), rate_outputs=[media.saved],
        similar_missing="Play a video first: Similar finds the videos that look like it."))

    def on_select(current: View, event: gr.SelectData) -> PlayerUpdate:
        return play_from(ctx, current, event.index)

    media.results.select(on_select, media.view, outputs, **private)
    handles.following.click(lambda p: next_video(ctx, p), player, outputs, **private)
    handles.previous.click(lambda p: previous_video(ctx, p), player, outputs, **private)
    handles.timer.tick(lambda p: poll(ctx, p), player, outputs, show_progress="hidden", **private)

    def on_start(current: Player, event: gr.EventData) -> str:
        return video_started(ctx, current, getattr(event, "_data", None))

    def on_end(current: Player, keep_going: bool, event: gr.EventData) -> PlayerUpdate:
        return video_ended(ctx, current, getattr(event, "_data", None), bool(keep_going))

    def on_error(current: Player, event: gr.EventData) -> PlayerUpdate:
        return video_failed(ctx, current, getattr(event, "_data", None))

    handles.player_view.play(on_start, player, handles.details, **private)
    handles.player_view.end(on_end, [player, handles.autoplay], outputs, **private)
    handles.player_view.stop(on_error, player, outputs, **private)
    for rated in wired.rated:  # the details and the grid's captions say the new rating
        rated.success(lambda p, v: rated_view(ctx, p, v), [player, media.view],
                      [handles.details, media.results, media.view], show_progress="hidden", **private)
    return wired.loader
