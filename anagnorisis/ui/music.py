"""The Music tab: a paged library table, search and every sort key, and a player with playlist and radio.

The player is a plain ``<audio>`` element in a ``gr.HTML`` whose ``js_on_load`` reports the element's own events
back to Python (``playing`` → start, ``ended`` → full play, ``error`` → decode error). Play events go through
``plays.play_path``, the same code the ``/play`` endpoint runs. The player's state and how it moves (playlist,
radio draws from ``radio.draw_next`` over the recommendation scores ``search --sort recommendation`` uses) are
``anagnorisis.media.player``'s; the handlers here read files and record plays.
"""
from __future__ import annotations

import html
import logging
import math
import os
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

import gradio as gr
import pandas as pd

import anagnorisis.search as search
from anagnorisis.media import player as playing
from anagnorisis.media.playback import PlaybackError, ensure_cover, file_url, playable_file
from anagnorisis.media.player import DEFAULT_RADIO_TEMPERATURE, MusicPlayer, music_place
from anagnorisis.recommend.plays import PlayEventError, play_path
from anagnorisis.search import SearchRequest
from anagnorisis.service import ServiceError
from anagnorisis.service.search import search as search_files
from anagnorisis.store.records import public_record
from anagnorisis.ui import learn, media_tab
from anagnorisis.ui.browse import (
    PageView, commit_rating, fresh_page, media_events_js, next_load,
    build_request, file_name, Filters, new_seed, Page, rating_text, run_page, search_controls,
)
from anagnorisis.ui.context import AppContext, Loader
from anagnorisis.ui.safe import html_text, md
from anagnorisis.ui.skipped import SkippedPanel

log = logging.getLogger(__name__)

KIND = "music"
PAGE_SIZE = 25  # table rows per page
MAX_LOAD_ATTEMPTS = 20  # tracks tried in a row when files vanish or do not decode, before the player gives up
HEADERS = ["#", "Cover", "Artist", "Title", "Album", "Year", "Length", "Rating", "Model rating", "Plays", "Skips",
           "Last played", "Why here"]
# Fixed widths for the short columns, so that their headers are not stacked a letter per line; the text ones share
# the rest.
COLUMN_WIDTHS = ["44px", "64px", "11%", "14%", "11%", "60px", "72px", "72px", "96px", "64px", "64px", "120px", "12%"]
TEXT_COLUMN: Literal["str"] = "str"
DATATYPES: list[Literal["number", "html", "str"]] = ["number", "html", *[TEXT_COLUMN] * (len(HEADERS) - 2)]
IDLE_HTML = '<div class="music-idle">Nothing playing. Click a track, <b>Play as playlist</b> or <b>Radio</b>.</div>'


# ---------------------------------------------------------------------------------------------- the library table


View = PageView  # the table's page, the request behind it (the current sorted/filtered list) and the total


def length_text(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
        return ""
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{rest:02d}" if hours else f"{minutes:d}:{rest:02d}"


def when_text(iso: str | None) -> str:
    """An ISO-8601 UTC time as 'YYYY-MM-DD HH:MM UTC'."""
    if not iso:
        return ""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def model_rating_text(record: dict[str, Any]) -> str:
    value = record.get("model_rating")
    if value is None:
        return ""
    return f"{value:.1f}" + (" (stale)" if record.get("model_rating_stale") else "")


def title_of(record: dict[str, Any]) -> str:
    return str((record.get("metadata") or {}).get("title") or os.path.splitext(file_name(record))[0])


def url_attr(path: str | os.PathLike[str]) -> str:
    """A served file's URL for an HTML attribute: file_url percent-encodes the path (only letters, digits and
    `/%_.-~` remain), escaped for the attribute as well."""
    return html.escape(file_url(path))


def cover_cell(ctx: AppContext, record: dict[str, Any]) -> str:
    cover = ensure_cover(ctx.session.previews_dir, record)
    if cover is None:
        return '<span class="music-no-cover" title="no cover art">♪</span>'
    return (f'<img src="{url_attr(cover)}" alt="cover" width="40" height="40" '  # trusted: url_attr
            'style="width:40px;height:40px;object-fit:cover">')


def table_row(ctx: AppContext, record: dict[str, Any], position: int) -> list[Any]:
    """One table row: the cover cell is HTML (escaped URL), the others are "str" cells shown as plain text."""
    meta = record.get("metadata") or {}
    user = record.get("user_rating")
    return [
        position, cover_cell(ctx, record), str(meta.get("artist") or ""), title_of(record),
        str(meta.get("album") or ""), str(meta.get("year") or ""), length_text(meta.get("duration")),
        "" if user is None else f"{user:g}", model_rating_text(record), str(record.get("full_plays") or 0),
        str(record.get("skips") or 0), when_text(record.get("last_played")), str(record.get("reason") or ""),
    ]


def table_frame(ctx: AppContext, view: View) -> pd.DataFrame:
    offset = view.request.offset if view.request is not None else 0
    rows = [table_row(ctx, record, offset + i + 1) for i, record in enumerate(view.results)]
    return pd.DataFrame(rows, columns=HEADERS)


def with_fresh_values(ctx: AppContext, view: View) -> View:
    """The page with ratings and plays as the session has them now (after a rating or a play event)."""
    return fresh_page(ctx, KIND, view)


def search_page(ctx: AppContext, query: str, mode: str, sort: str, order: str, temperature: float, seed: int,
                page: int, folder: str, rated: str, rmin: float, rmax: float, mmin: float, mmax: float,
                ext: str) -> tuple[pd.DataFrame, str, View, int]:
    """Handler: run the search and fill the table."""
    filters = Filters(folder or "", rated or "all", float(rmin), float(rmax), float(mmin), float(mmax), ext or "")
    request = build_request(KIND, query, mode, sort, order, temperature, seed, page, filters, page_size=PAGE_SIZE)
    result: Page = run_page(ctx, request)
    view = View(result.results, replace(request, offset=(result.page - 1) * PAGE_SIZE), result.total)
    return table_frame(ctx, view), result.summary(), view, result.page


def rate_next(ctx: AppContext) -> tuple[pd.DataFrame, str, View, int]:
    """Handler: fill the table with the rate-next queue (its reasons in "Why here"); playing it plays the queue."""
    results, summary = learn.rate_next_queue(ctx, KIND)
    view = View(results, None, len(results))
    return table_frame(ctx, view), summary, view, 1


def ab_side_html(ctx: AppContext, record: dict[str, Any]) -> str:
    """One track of an A/B question: cover, title, artist and a player that starts only when asked."""
    meta = record.get("metadata") or {}
    cover = ensure_cover(ctx.session.previews_dir, record)
    art = (f'<img class="music-cover" src="{url_attr(cover)}" alt="cover">'  # trusted: url_attr
           if cover else '<div class="music-cover music-no-cover">♪</div>')
    try:
        url = url_attr(playable_file(ctx.session.previews_dir, record))
        audio = f'<audio controls preload="none" src="{url}"></audio>'  # trusted: url_attr
    except (PlaybackError, OSError) as error:
        audio = f'<div class="music-idle">cannot be played: {html_text(error)}</div>'
    tags = (f'<div class="music-title">{html_text(title_of(record))}</div>'
            f'<div class="music-artist">{html_text(meta.get("artist") or "Unknown artist")}</div>'
            f'<div class="music-details">{html_text(length_text(meta.get("duration")))}</div>')
    return f'<div class="music-now">{art}<div class="music-tags">{tags}</div></div>{audio}'  # trusted: escaped parts


# ---------------------------------------------------------------------------------------------- the player


Player = MusicPlayer  # what is playing: anagnorisis.media.player holds it and moves it
PlayerUpdate = tuple[Any, Any, Any, Any, Player]  # player html, now-playing text, slider, saved text, state


def player_html(ctx: AppContext, record: dict[str, Any], url: str, nonce: int) -> str:
    """The player's content: cover, tags and the <audio> element (every tag value escaped)."""
    meta = record.get("metadata") or {}
    cover = ensure_cover(ctx.session.previews_dir, record)
    art = (f'<img class="music-cover" src="{url_attr(cover)}" alt="cover">'  # trusted: url_attr
           if cover else '<div class="music-cover music-no-cover">♪</div>')
    album = " · ".join(str(part) for part in (meta.get("album"), meta.get("year")) if part)
    details = " · ".join(part for part in (str(meta.get("genre") or ""), length_text(meta.get("duration")),
                                           file_name(record)) if part)
    lines = [f'<div class="music-title">{html_text(title_of(record))}</div>',
             f'<div class="music-artist">{html_text(meta.get("artist") or "Unknown artist")}</div>',
             f'<div class="music-album">{html_text(album)}</div>' if album else "",
             f'<div class="music-details">{html_text(details)}</div>']
    audio = (f'<audio controls autoplay preload="auto" src="{html.escape(url)}" '  # trusted: a file_url URL
             f'data-hash="{html.escape(str(record["content_hash"]))}" '  # trusted: a hex digest, escaped anyway
             f'data-nonce="{nonce:d}"></audio>')
    tags = "".join(lines)
    return f'<div class="music-now">{art}<div class="music-tags">{tags}</div></div>{audio}'  # trusted: escaped parts


def now_text(player: Player, record: dict[str, Any] | None) -> str:
    """The Now-playing line (Markdown); the player's message names files, so it is escaped."""
    if record is None:
        return md(player.message) or "Stopped."
    where = music_place(player)  # trusted: numbers and fixed words
    plays = (f"{record.get('full_plays') or 0:d} full plays · {record.get('skips') or 0:d} skips"
             + (f" · last played {md(when_text(record.get('last_played')))}" if record.get("last_played") else ""))
    note = f" · {md(player.message)}" if player.message else ""
    return f"**Now playing** {where}{note}\n\n{rating_text(record)} · {plays}"  # trusted: built above, escaped


def slider_for(record: dict[str, Any] | None) -> Any:
    rating = record.get("user_rating") if record else None
    return gr.update(value=rating if rating is not None else 0)


def stopped(player: Player, message: str) -> PlayerUpdate:
    player = playing.stopped(player, message)
    return f'<div class="music-idle">{html_text(message)}</div>', "", gr.update(), "", player


def load_current(ctx: AppContext, player: Player) -> PlayerUpdate:
    """Give the browser the current track; a vanished or undecodable file is passed over without penalty."""
    for _attempt in range(MAX_LOAD_ATTEMPTS):
        track = player.current()
        if track is None:
            return stopped(player, player.message or "End of the list.")
        record = ctx.session.record_by_path(KIND, track[0])
        try:
            if record is None:
                raise PlaybackError("it is no longer in the library")
            path = playable_file(ctx.session.previews_dir, record, transcode=player.transcoded)
        except (PlaybackError, OSError) as error:
            log.warning("passing over %s without penalty: %s", track[0], error)
            reason = "it does not decode" if record is not None else str(error)
            message = f"passed over {os.path.basename(track[0])}: {reason}"  # plain text: Player.message, see its note
            player = playing.move_on(player, pool(ctx), message)
            continue
        player = playing.loaded(player, next_load())
        shown = player_html(ctx, record, file_url(path), player.nonce)
        return shown, now_text(player, record), slider_for(record), "", player
    return stopped(player, "Stopped: too many tracks in a row could not be played.")


def pool(ctx: AppContext) -> playing.Pool:
    """The radio's scored set, read from the session when it draws."""
    return lambda scope: radio_pool(ctx, scope)


def radio_pool(ctx: AppContext, scope: SearchRequest | None) -> list[dict[str, Any]]:
    """The scored set of the radio: the present tracks passing the filters it was started with."""
    records = ctx.session.records(KIND)
    if scope is None:
        return list(records)
    return search.apply_filters(records, search.validate_request(scope))  # type: ignore[return-value]


def record_event(ctx: AppContext, path: str, event: str) -> None:
    try:
        play_path(ctx.session, path, event)
    except PlayEventError as error:  # the file left the library while it played: nothing to count
        log.warning("play event %s not recorded: %s", event, error)


def whole_list(ctx: AppContext, view: View) -> list[tuple[str, str]]:
    """Every track of the current sorted/filtered list, in its order (all pages); a rate-next queue as shown."""
    if view.request is None:
        return playing.tracks_of(view.results)
    request = replace(view.request, offset=0, limit=max(view.total, len(ctx.session.records(KIND))))
    try:
        result = search_files(ctx.session, request)
    except ServiceError:
        return []
    return playing.tracks_of(result.results)


def play_list(ctx: AppContext, view: View, start: int = 0, content_hash: str | None = None) -> PlayerUpdate:
    """Handler: play the current sorted/filtered list in order, from position start (0-based).

    With content_hash (the track clicked), start at that track even if the list moved since the page was shown
    (a recommendation order changes as tracks are played).
    """
    tracks = whole_list(ctx, view)
    if not tracks:
        return stopped(Player(), "Nothing to play: the list is empty.")
    return load_current(ctx, playing.playlist(tracks, start, content_hash))


def play_row(ctx: AppContext, view: View, row_number: Any) -> PlayerUpdate:
    """Handler: a click on a table row plays the list from that track (row_number: the '#' column)."""
    offset = view.request.offset if view.request is not None else 0
    try:
        position = int(float(row_number)) - 1
    except (TypeError, ValueError):
        position = offset
    on_page = position - offset
    clicked = view.results[on_page]["content_hash"] if 0 <= on_page < len(view.results) else None
    return play_list(ctx, view, position, clicked)


def start_radio(ctx: AppContext, view: View, temperature: float, seed: int) -> PlayerUpdate:
    """Handler: radio over the tracks passing the current filters, drawn at the temperature."""
    scope = replace(view.request, query=None, sort=None, offset=0) if view.request else SearchRequest(KIND)
    return load_current(ctx, playing.step_forward(playing.radio(temperature, seed, scope), pool(ctx)))


def next_track(ctx: AppContext, player: Player) -> PlayerUpdate:
    """Handler: Next. Before the end of the current track it counts a skip."""
    track = player.current()
    if track is None:
        return stopped(player, player.message or "Stopped.")
    if not player.finished:
        record_event(ctx, track[0], "skip")
    return load_current(ctx, playing.move_on(player, pool(ctx)))


def previous_track(ctx: AppContext, player: Player) -> PlayerUpdate:
    """Handler: Previous (no penalty for the track left); at the first track it starts that one again."""
    if not player.tracks:
        return stopped(player, "Stopped.")
    return load_current(ctx, playing.step_back(player))


def track_started(ctx: AppContext, player: Player, data: Any) -> str:
    """Handler: the browser started playing a track: last played is now.

    Found by the hash the browser names, not by the current position: a short track may already have ended
    (and the player moved on) by the time this event is handled.
    """
    content_hash = str((data or {}).get("hash") or "")
    path = playing.path_of_hash(player.tracks, content_hash, latest=True)
    if path is None:
        return gr.update()  # type: ignore[return-value]
    record_event(ctx, path, "start")
    track = player.current()
    if track is None or playing.event_nonce(data) != player.nonce:
        return gr.update()  # type: ignore[return-value]
    return now_text(player, ctx.session.record_by_path(KIND, track[0]))


def track_ended(ctx: AppContext, player: Player, data: Any) -> PlayerUpdate:
    """Handler: the track played to its end: a full play, then the next of the list or a new radio draw."""
    track = player.current()
    if track is None or not playing.is_current_load(player, data):
        return gr.update(), gr.update(), gr.update(), gr.update(), player
    record_event(ctx, track[0], "full")
    return load_current(ctx, playing.move_on(player, pool(ctx)))


def track_failed(ctx: AppContext, player: Player, data: Any) -> PlayerUpdate:
    """Handler: the browser could not decode the track: try the cached transcode once, else pass over it unpenalised."""
    track = player.current()
    if track is None or not playing.is_current_load(player, data):
        return gr.update(), gr.update(), gr.update(), gr.update(), player
    record_event(ctx, track[0], "error")  # validated, records nothing (SPEC §5)
    if not player.transcoded:
        return load_current(ctx, replace(player, transcoded=True))
    message = f"passed over {os.path.basename(track[0])}: the browser cannot play it"  # plain text: Player.message
    return load_current(ctx, playing.move_on(player, pool(ctx), message))


def rate_current(ctx: AppContext, player: Player, value: float | None) -> str:
    """Handler: commit the slider's rating for the current track; 'saved' only after the commit."""
    track = player.current()
    if track is None:
        return "Play a track to rate it."
    return commit_rating(ctx, KIND, track[0], value)[1]


# ---------------------------------------------------------------------------------------------- the named endpoint


def play_endpoint(ctx: AppContext, path: str, event: str) -> dict[str, Any]:
    """`/play`: record a play event (start, full, skip, error) for a file; returns {record, event, recorded}."""
    try:
        done = play_path(ctx.session, path, event)
    except PlayEventError as error:
        raise gr.Error(str(error)) from None  # plain text: the API caller's error, never a page toast
    return {**done, "record": public_record(done["record"])}


# ---------------------------------------------------------------------------------------------- wiring

PLAYER_JS = media_events_js("AUDIO")

TOGGLE_JS = """
() => {
  const audio = document.querySelector('#music-player audio');
  if (audio) { if (audio.paused) { audio.play(); } else { audio.pause(); } }
}
"""

PLAYER_CSS = """
.music-now { display: flex; gap: 14px; align-items: center; margin-bottom: 8px; }
.music-cover { width: 120px; height: 120px; object-fit: cover; border-radius: 6px; flex: none; }
.music-no-cover { display: flex; align-items: center; justify-content: center; font-size: 48px;
                  background: var(--background-fill-secondary); }
.music-title { font-size: 1.3em; font-weight: 600; }
.music-artist { font-size: 1.05em; }
.music-album, .music-details { opacity: 0.75; }
audio { width: 100%; }
.music-idle { padding: 12px 0; opacity: 0.75; }
"""


@dataclass
class MusicHandles:
    """The Music tab's components: the shared ones, the player and its buttons."""

    media: media_tab.MediaHandles
    player_view: Any
    now: Any
    previous: Any
    play_pause: Any
    following: Any
    playlist: Any
    radio: Any
    radio_temperature: Any
    player: Any  # gr.State: the Player

    def player_outputs(self) -> list[Any]:
        """What a PlayerUpdate fills."""
        return [self.player_view, self.now, self.media.slider, self.media.saved, self.player]


def render(ctx: AppContext) -> MusicHandles:
    """Lay out the tab: the player with its buttons and the rating, then the search, the table and pager, A/B."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            player_view = gr.HTML(IDLE_HTML, js_on_load=PLAYER_JS, css_template=PLAYER_CSS, elem_id="music-player")
            now = gr.Markdown(elem_id="music-now")
        with gr.Column(scale=2):
            with gr.Row():
                previous = gr.Button("◀◀ Previous", min_width=90, elem_id="music-previous")
                play_pause = gr.Button("Play / pause", min_width=90, elem_id="music-play")
                following = gr.Button("Next ▶▶", min_width=90, elem_id="music-next")
            slider = media_tab.rating_slider(KIND, "Your rating of this track (0–10)")
            with gr.Row():
                saved = media_tab.saved_text(KIND)
                clear = media_tab.clear_button(KIND)
                more_to_rate = learn.more_to_rate_button(KIND)
                why_button = learn.why_button(KIND)
            why_text = learn.why_area(KIND)
            with gr.Row():
                playlist_button = gr.Button("▶ Play as playlist", variant="primary", elem_id="music-playlist")
                radio_button = gr.Button("Radio", elem_id="music-radio")
                radio_temperature = gr.Number(
                    value=DEFAULT_RADIO_TEMPERATURE, minimum=0, label="Radio temperature",
                    info="Radio draws by recommendation from the tracks passing the filters: 0 plays the top "
                         "score, 1 draws in proportion to it, higher mixes more.",
                    elem_id="music-radio-temperature")
    search = search_controls(KIND, "a file name, a description of the sound, or a file path", "mp3,flac")
    summary, rate_next_button = media_tab.summary_row(KIND)
    table = gr.Dataframe(headers=HEADERS, datatype=DATATYPES, interactive=False, wrap=True, max_height=720,
                         column_widths=COLUMN_WIDTHS, label="Library", elem_id="music-table")
    pager = media_tab.pager(KIND, with_ids=True)
    skipped = SkippedPanel(ctx, KIND)
    ab = learn.render_ab_panel(KIND, learn.Preview(
        make=lambda elem_id, label: gr.HTML(css_template=PLAYER_CSS, label=label, elem_id=elem_id),
        value=ab_side_html))
    media = media_tab.MediaHandles(KIND, search, summary, rate_next_button, table, pager, skipped, slider, saved,
                                   clear, more_to_rate, why_button, why_text, ab, view=gr.State(View()))
    return MusicHandles(media, player_view, now, previous, play_pause, following, playlist_button, radio_button,
                        radio_temperature, player=gr.State(Player()))


def listen(ctx: AppContext, handles: MusicHandles) -> Loader:
    """Wire the shared events, then the player's: table clicks, playlist, radio, Next/Previous, the browser's
    play events; after each, the table shows the plays and ratings as they are now."""
    media, player, outputs = handles.media, handles.player, handles.player_outputs()
    table, view = media.results, media.view
    private: dict[str, Any] = {"api_visibility": "private"}
    wired = media_tab.listen(ctx, media, media_tab.MediaWiring(
        search=lambda *values: search_page(ctx, *values), rate_next=lambda: rate_next(ctx),
        selection=[player], selected_path=learn.playing_path,
        rate=lambda p, value: rate_current(ctx, p, value), rate_outputs=[media.saved]))

    def refreshed(current: View) -> tuple[pd.DataFrame, View]:
        fresh = with_fresh_values(ctx, current)
        return table_frame(ctx, fresh), fresh

    def after_play(event: Any) -> None:
        event.then(refreshed, view, [table, view], show_progress="hidden", **private)

    def on_row(current: View, event: gr.SelectData) -> PlayerUpdate:
        return play_row(ctx, current, event.row_value[0] if event.row_value else None)

    after_play(table.select(on_row, view, outputs, **private))
    after_play(handles.playlist.click(lambda current: play_list(ctx, current), view, outputs, **private))
    after_play(handles.radio.click(lambda current, t, s: start_radio(ctx, current, t, s or new_seed()),
                                   [view, handles.radio_temperature, media.search.seed], outputs, **private))
    after_play(handles.following.click(lambda p: next_track(ctx, p), player, outputs, **private))
    after_play(handles.previous.click(lambda p: previous_track(ctx, p), player, outputs, **private))

    def play_if_idle(current_player: Player, current: View) -> PlayerUpdate:
        if current_player.current() is not None:  # the browser toggles the playing track (TOGGLE_JS)
            return gr.update(), gr.update(), gr.update(), gr.update(), current_player
        return play_list(ctx, current)

    handles.play_pause.click(None, None, None, js=TOGGLE_JS, **private)
    after_play(handles.play_pause.click(play_if_idle, [player, view], outputs, **private))
    listen_player_events(ctx, handles, after_play)

    def now_line(current_player: Player) -> str:
        """The Now-playing line again, after a rating (it says the rating)."""
        track = current_player.current()
        record = ctx.session.record_by_path(KIND, track[0]) if track else None
        return now_text(current_player, record) if record else gr.update()  # type: ignore[return-value]

    for rated in wired.rated:
        after_play(rated)
        rated.success(now_line, player, handles.now, show_progress="hidden", **private)

    def play(path: str, event: str) -> dict[str, Any]:
        return play_endpoint(ctx, path, event)

    gr.api(play, api_name="play")
    return wired.loader


def listen_player_events(ctx: AppContext, handles: MusicHandles, after_play: Any) -> None:
    """What the browser reports by itself (started, ended, could not decode): no loading overlay over the player
    while they are handled."""
    player, outputs = handles.player, handles.player_outputs()

    def on_start(current_player: Player, event: gr.EventData) -> str:
        return track_started(ctx, current_player, getattr(event, "_data", None))

    def on_end(current_player: Player, event: gr.EventData) -> PlayerUpdate:
        return track_ended(ctx, current_player, getattr(event, "_data", None))

    def on_error(current_player: Player, event: gr.EventData) -> PlayerUpdate:
        return track_failed(ctx, current_player, getattr(event, "_data", None))

    quiet: dict[str, Any] = {"api_visibility": "private", "show_progress": "hidden"}
    after_play(handles.player_view.play(on_start, player, handles.now, **quiet))
    after_play(handles.player_view.end(on_end, player, outputs, **quiet))
    after_play(handles.player_view.stop(on_error, player, outputs, **quiet))
