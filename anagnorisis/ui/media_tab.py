"""The skeleton the four media tabs share, written once: its parts rendered, its events wired.

Every media tab shows the search controls, a summary line with "Rate next", its results (a gallery or a table)
with a pager and the skipped files, a rating slider with "saved" and "Clear rating", "More to rate" and "Why this
rating?", the A/B panel, and (images) similar files and file actions. Each tab lays these parts out in its own
place with the render functions here (they give the element ids, `<kind>-…`), gathers them in a ``MediaHandles``
with its own results view, and hands them to ``listen`` with a ``MediaWiring``: the handlers that are its own
(how to search, what the selection is, how to rate it). Its own parts (the player, the reader, the large view)
it renders and wires itself.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from anagnorisis.ui import learn
from anagnorisis.ui.browse import QUERY_ORDER, SearchControls, wire_search_events
from anagnorisis.ui.context import AppContext, Loader
from anagnorisis.ui.safe import md
from anagnorisis.ui.skipped import SkippedPanel

FollowUp = tuple[Callable[..., Any], Any, Any]  # (fn, inputs, outputs) run after an event
PRIVATE: dict[str, Any] = {"api_visibility": "private"}  # UI events are no API


# ---------------------------------------------------------------------------------------------- rendering


@dataclass
class Pager:
    previous: Any
    page: Any
    next: Any


@dataclass
class FileActions:
    """Move to folder, rename, send to trash (shown as the file-actions setting allows)."""

    accordion: Any
    target: Any
    move: Any
    new_name: Any
    rename: Any
    trash: Any
    result: Any


@dataclass
class MediaHandles:
    """The shared parts of one media tab, by name."""

    kind: str
    search: SearchControls
    summary: Any
    rate_next: Any
    results: Any  # the gallery or the table
    pager: Pager
    skipped: SkippedPanel
    slider: Any
    saved: Any
    clear: Any
    more_to_rate: Any
    why_button: Any
    why_text: Any
    ab: learn.ABPanel
    view: Any  # gr.State: the page on screen
    similar: Any = None
    file_actions: FileActions | None = None
    extra_outputs: list[Any] = field(default_factory=list)  # filled by a search beside the four shared ones

    def search_inputs(self) -> list[Any]:
        """What a search reads, in the order of the tabs' search_page handlers (the page number is the 7th)."""
        s = self.search
        return [s.query, s.mode, s.sort, s.order, s.temperature, s.seed, self.pager.page, s.folder, s.rated,
                s.rating_min, s.rating_max, s.model_min, s.model_max, s.ext]

    def search_outputs(self) -> list[Any]:
        return [self.results, self.summary, self.view, self.pager.page, *self.extra_outputs]


def summary_row(kind: str) -> tuple[Any, Any]:
    """The summary line (`<kind>-summary`) and "Rate next" beside it."""
    with gr.Row(equal_height=True):
        summary = gr.Markdown(elem_id=f"{kind}-summary")
        rate_next = learn.rate_next_button(kind)
    return summary, rate_next


def pager(kind: str, with_ids: bool = False) -> Pager:
    """◀ Page, the page number, Page ▶ (with_ids: `<kind>-previous-page`, `-page`, `-next-page`)."""
    def elem_id(name: str) -> str | None:
        return f"{kind}-{name}" if with_ids else None  # plain text: an elem_id

    with gr.Row():
        previous = gr.Button("◀ Page", elem_id=elem_id("previous-page"))
        page = gr.Number(value=1, precision=0, minimum=1, label="Page", elem_id=elem_id("page"))
        following = gr.Button("Page ▶", elem_id=elem_id("next-page"))
    return Pager(previous, page, following)


def rating_slider(kind: str, label: str = "Your rating (0–10)") -> Any:
    return gr.Slider(0, 10, value=0, step=0.5, label=label, elem_id=f"{kind}-rating")


def saved_text(kind: str) -> Any:
    """Where "saved" appears after a rating is committed (`<kind>-saved`)."""
    return gr.Markdown(elem_id=f"{kind}-saved")


def clear_button(kind: str) -> Any:
    return gr.Button("Clear rating", scale=0, elem_id=f"{kind}-clear-rating")


def file_actions(ctx: AppContext, kind: str) -> FileActions:
    """The closed "File actions" accordion (hidden while the setting is off; trash only when it allows it)."""
    with gr.Accordion("File actions", open=False, visible=ctx.settings.file_actions != "off") as accordion:
        with gr.Row():
            target = gr.Textbox(label="Move to folder", scale=3)
            move = gr.Button("Move", scale=1)
        with gr.Row():
            new_name = gr.Textbox(label="New name", scale=3)
            rename = gr.Button("Rename", scale=1)
        trash = gr.Button("Send to trash", variant="stop", visible=ctx.settings.file_actions == "trash")
        result = gr.Markdown(elem_id=f"{kind}-action-result")
    return FileActions(accordion, target, move, new_name, rename, trash, result)


# ---------------------------------------------------------------------------------------------- handlers


def act_on_file(ctx: AppContext, kind: str, path: str, action: str, argument: str) -> str:
    """Move / rename / trash a file; the rating stays with its content. Returns Markdown (names escaped)."""
    from anagnorisis.library.actions import ActionRefused, move_file, rename_file, trash_file

    setting = ctx.settings.file_actions
    try:
        if action == "move":
            done = f"moved to {md(move_file(ctx.session.store, kind, path, argument, setting=setting))}"
        elif action == "rename":
            done = f"renamed to {md(rename_file(ctx.session.store, kind, path, argument, setting=setting))}"
        else:
            trash_file(ctx.session.store, kind, path, setting=setting)
            done = "sent to the trash"
    except (ActionRefused, OSError) as error:
        return f"not done: {md(error)}"
    ctx.session.invalidate(kind)
    return done


# ---------------------------------------------------------------------------------------------- wiring


@dataclass
class MediaWiring:
    """What a tab does in the shared events.

    `selection` are the inputs that name the selected (or playing) file: `selected_path` maps their values to its
    path (Why, Similar), `rate(*selection, value)` commits the slider into `rate_outputs`, `clear(*selection)` the
    "Clear rating" (by default rate with None).
    """

    search: Callable[..., Any]
    rate_next: Callable[[], Any]
    selection: list[Any]
    selected_path: Callable[..., str | None]
    rate: Callable[..., Any]
    rate_outputs: list[Any]
    clear: Callable[..., Any] | None = None
    changes: tuple[str, ...] = ("sort", "order", "rated", "mode")  # search controls that search again on change
    after_search: FollowUp | None = None  # after each search, page turn and "Similar"
    after_queue: FollowUp | None = None  # after "Rate next" / "More to rate"
    similar_missing: str = ""  # the error of "Similar" with nothing selected
    file_action: Callable[..., str] | None = None  # (*selection, action, argument) -> Markdown


@dataclass
class Wired:
    """What listen leaves to the tab: the page-load fill, the search from the first page, the rating events (for
    the tab's follow-ups) and the search as a (fn, inputs, outputs) to run again after a change of its own."""

    loader: Loader
    from_first_page: Callable[..., Any]
    rated: tuple[Any, Any]
    search_again: FollowUp


def listen(ctx: AppContext, handles: MediaHandles, wiring: MediaWiring) -> Wired:
    """Wire the shared events of a media tab: search and paging, rate next, why, the rating, similar, file
    actions, the skipped files and the A/B panel."""
    inputs, outputs = handles.search_inputs(), handles.search_outputs()
    search, pages = handles.search, handles.pager
    from_first_page = wire_search_events(
        wiring.search, inputs, outputs, go=search.go, query=search.query,
        changes=tuple(getattr(search, name) for name in wiring.changes), reshuffle=search.reshuffle,
        seed=search.seed, page=pages.page, previous_page=pages.previous, next_page=pages.next,
        after=wiring.after_search)
    rated = listen_rating(handles, wiring)
    learn.QueueButtons(handles.rate_next, handles.more_to_rate).wire(
        wiring.rate_next, outputs, then=wiring.after_queue or ())
    learn.wire_why(ctx, handles.kind, handles.why_button, handles.why_text, wiring.selection, wiring.selected_path)
    if handles.similar is not None:
        listen_similar(handles, wiring, from_first_page)
    search_again: FollowUp = (wiring.search, inputs, outputs)
    if handles.file_actions is not None and wiring.file_action is not None:
        listen_file_actions(handles.file_actions, wiring, search_again)
    handles.skipped.listen()
    learn.listen_ab(ctx, handles.ab)
    skipped = handles.skipped
    loader = Loader(from_first_page, inputs, outputs, also=(Loader(skipped.refresh, [], [skipped.accordion,
                                                                                         skipped.text]),))
    return Wired(loader, from_first_page, rated, search_again)


def listen_rating(handles: MediaHandles, wiring: MediaWiring) -> tuple[Any, Any]:
    """The slider commits on release (the last of a burst), "Clear rating" clears; both say "saved" after."""
    def clear(*values: Any) -> Any:
        return wiring.rate(*values, None)

    released = handles.slider.release(wiring.rate, [*wiring.selection, handles.slider], wiring.rate_outputs,
                                      trigger_mode="always_last", **PRIVATE)
    cleared = handles.clear.click(wiring.clear or clear, wiring.selection, wiring.rate_outputs, **PRIVATE)
    return released, cleared


def listen_similar(handles: MediaHandles, wiring: MediaWiring, from_first_page: Callable[..., Any]) -> None:
    """"Similar" searches with the selected file's path in similar mode, ordered by the query's score."""
    def similar_to(*values: Any) -> tuple[str, str, str]:
        path = wiring.selected_path(*values)
        if path is None:
            raise gr.Error(wiring.similar_missing)
        return path, "similar", QUERY_ORDER

    search = handles.search
    event = handles.similar.click(similar_to, wiring.selection, [search.query, search.mode, search.sort],
                                  **PRIVATE).success(from_first_page, handles.search_inputs(),
                                                     handles.search_outputs(), **PRIVATE)
    if wiring.after_search is not None:
        event.then(*wiring.after_search, **PRIVATE)


def listen_file_actions(actions: FileActions, wiring: MediaWiring, search_again: FollowUp) -> None:
    """Each action says what it did, then the page is searched again (the file moved, or left)."""
    act = wiring.file_action
    assert act is not None
    for button, action, argument in ((actions.move, "move", actions.target),
                                     (actions.rename, "rename", actions.new_name)):
        button.click(lambda *values, action=action: act(*values[:-1], action, values[-1]),
                     [*wiring.selection, argument], actions.result, **PRIVATE).then(*search_again, **PRIVATE)
    actions.trash.click(lambda *values: act(*values, "trash", ""), wiring.selection, actions.result,
                        **PRIVATE).then(*search_again, **PRIVATE)
