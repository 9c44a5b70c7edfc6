"""Search, sort, filter and page a kind: plain functions the media tabs (and tests) call."""
from __future__ import annotations

import itertools
import math
import os
import random
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any

import anagnorisis.search as search
from anagnorisis.search import SORT_KEYS, SearchRequest, sorts_of_kind
from anagnorisis.service import ServiceError
from anagnorisis.service.search import search as search_files
from anagnorisis.ui.context import AppContext
from anagnorisis.ui.safe import md

PAGE_SIZE = 24  # items per gallery page: four rows of six thumbnails
QUERY_ORDER = "(query score)"  # the sort selector's entry when a query ranks the results
RATED_CHOICES = ("all", "rated", "unrated")

# Each load of a player (a track, a video) gets a number no other load of this process had, nor, in practice, a
# previous run's: the page's script reports a start once per number, so a number seen again would lose a play.
_LOADS = itertools.count(int(time.time() * 1000))


def media_events_js(tag: str) -> str:
    """The js_on_load of a player (gr.HTML holding an <audio> or <video>, tag "AUDIO" or "VIDEO").

    gr.HTML has no media events of its own: the element's events (captured, since they do not bubble) become the
    component's play (started, once per load), end (played to the end) and stop (could not be decoded). A page
    update keeps the element and changes its attributes: a new load of the same file (a list started again)
    changes only data-nonce, which the browser does not reload by itself, so it is started from the beginning.
    """
    return """
const started = new Set();
const tell = (type, media) => trigger(type, {nonce: media.dataset.nonce, hash: media.dataset.hash,
                                             code: media.error ? media.error.code : null});
element.addEventListener('playing', (event) => {
  const media = event.target;
  if (media.tagName !== 'TAG' || started.has(media.dataset.nonce)) return;
  started.add(media.dataset.nonce);
  tell('play', media);
}, true);
new MutationObserver((changes) => {
  for (const change of changes) {
    if (change.target.tagName === 'TAG' && change.oldValue !== change.target.dataset.nonce) change.target.load();
  }
}).observe(element, {subtree: true, attributes: true, attributeFilter: ['data-nonce'], attributeOldValue: true});
const report = (type) => (event) => { if (event.target.tagName === 'TAG') tell(type, event.target); };
element.addEventListener('ended', report('end'), true);
element.addEventListener('error', report('stop'), true);
""".replace("TAG", tag)


def next_load() -> int:
    """A fresh number for one load of a player: browser events name it, so late events of an old load are ignored."""
    return next(_LOADS)


def sort_choices(kind: str) -> list[str]:
    """Sort keys that apply to this kind, the query-score entry first."""
    specific = sorts_of_kind(kind)
    general = [key for key in SORT_KEYS if key not in search.KIND_SPECIFIC_SORTS or key in specific]
    return [QUERY_ORDER, *general]


@dataclass
class Filters:
    folder: str = ""
    rated: str = "all"
    rating_min: float = 0.0
    rating_max: float = 10.0
    model_min: float = 0.0
    model_max: float = 10.0
    ext: str = ""

    def rating_range(self, low: float, high: float) -> str | None:
        return None if (low, high) == (0.0, 10.0) else f"{low}:{high}"  # plain text: a filter for the search


def build_request(kind: str, query: str, mode: str, sort: str, order: str, temperature: float, seed: int,
                  page: int, filters: Filters, page_size: int = PAGE_SIZE) -> SearchRequest:
    query = (query or "").strip() or None
    chosen_sort = None if sort in (None, "", QUERY_ORDER) or query else sort
    return SearchRequest(
        kind=kind, query=query, mode=mode or "auto", sort=chosen_sort, order=order or "desc",
        temperature=float(temperature or 0), seed=int(seed or 0), offset=max(0, int(page or 1) - 1) * page_size,
        limit=page_size, folder=filters.folder.strip() or None,
        rated={"rated": True, "unrated": False}.get(filters.rated),
        rating=filters.rating_range(filters.rating_min, filters.rating_max),
        model_rating=filters.rating_range(filters.model_min, filters.model_max),
        ext=filters.ext.strip() or None,
    )


@dataclass
class Page:
    results: list[dict[str, Any]]
    total: int
    not_indexed: int
    page: int
    pages: int
    mode: str | None
    error: str | None = None

    def summary(self) -> str:
        """The tab's summary line (Markdown); a search error quotes the query or a path, so it is escaped."""
        if self.error:
            return f"⚠️ {md(self.error)}"
        text = f"**{self.total:d}** matching · page {self.page:d} of {self.pages:d}"
        if self.mode:
            text += f" · {self.mode} search"  # trusted: a search mode name (name, meaning, similar)
        if self.not_indexed:
            text += f" · {self.not_indexed:d} not indexed yet"
        return text


@dataclass
class PageView:
    """What a list tab holds between events: the page's records, the request that produced it (None for the
    rate-next queue) and the total."""

    results: list[dict[str, Any]] = field(default_factory=list)
    request: SearchRequest | None = None
    total: int = 0


FRESH_KEYS = ("user_rating", "rated_at", "full_plays", "skips", "last_played")


def fresh_page(ctx: AppContext, kind: str, view: PageView) -> PageView:
    """The page with ratings and plays as the session has them now (after a rating or a play event)."""
    if not view.results:
        return view
    wanted = {record.get("content_hash") for record in view.results}
    cached = {record["content_hash"]: record for record in ctx.session.records(kind)
              if record["content_hash"] in wanted}
    results = [{**record, **{key: cached[record["content_hash"]].get(key) for key in FRESH_KEYS}}
               if record.get("content_hash") in cached else record for record in view.results]
    return replace(view, results=results)


def commit_rating(ctx: AppContext, kind: str, path: str, value: float | None) -> tuple[dict[str, Any] | None, str]:
    """Rate from a tab: (the fresh record, "saved …"), or (None, why not) for a value outside 0–10 (typed in the
    slider's box, which shows it clamped while the browser sends it as typed). The text is Markdown."""
    from anagnorisis.service import BadRequest

    try:
        fresh = ctx.session.rate(kind, path, None if value is None else float(value))
    except BadRequest as error:
        record = ctx.session.record_by_path(kind, path) or {}
        kept = record.get("user_rating")
        stays = "unset" if kept is None else f"{kept:g}"
        return None, f"not saved: {md(error)}; the rating stays {stays}"  # trusted: stays is a number or "unset"
    return fresh, "saved: rating cleared" if fresh["user_rating"] is None else f"saved {fresh['user_rating']:g}"


# The search's messages name the CLI's options and commands; on screen they name the controls instead.
_CLI_TO_SCREEN = (
    (re.compile(r"\(--mode similar PATH\)"), "(Mode: similar with a file's path as the search, or its Similar button)"),
    (re.compile(r"--mode (\w+)"), r"Mode: \1"),
    (re.compile(r"`models download \w+`"), "Settings → Models and device → Download models"),
    (re.compile(r"run `embed \w+` and try again"), "wait for the embedding on the status line, then try again"),
    (re.compile(r"\(see `library list`\)"), "(see Settings → Library folders)"),
    (re.compile(r"--model-rating"), "the model rating filter"),
    (re.compile(r"--rating"), "the rating filter"),
    (re.compile(r"--(temperature|seed)"), lambda match: match.group(1).capitalize()),
)


def for_the_screen(message: str) -> str:
    """A search message with the CLI's words replaced by the names of the tab's controls."""
    for pattern, replacement in _CLI_TO_SCREEN:
        message = pattern.sub(replacement, message)
    return message


def run_page(ctx: AppContext, request: SearchRequest) -> Page:
    """One page of results, or an error a person can act on (never an exception into the UI)."""
    try:
        result = search_files(ctx.session, request)
    except ServiceError as error:
        return Page([], 0, 0, 1, 1, None, for_the_screen(str(error)))
    pages = max(1, math.ceil(result.total / max(1, request.limit)))
    if not result.results and result.total and request.offset >= result.total:  # past the end: the last page
        return run_page(ctx, replace(request, offset=(pages - 1) * max(1, request.limit)))
    return Page(result.results, result.total, result.not_indexed, request.offset // max(1, request.limit) + 1,
                pages, result.mode)


def new_seed() -> int:
    return random.SystemRandom().randrange(1, 2**31)


def rating_text(record: dict[str, Any]) -> str:
    """The ratings of a record in words: numbers and fixed words only, so it is safe in Markdown as it is."""
    parts = []
    if record.get("user_rating") is not None:
        parts.append(f"yours {record['user_rating']:g}")
    if record.get("model_rating") is not None:
        stale = " (stale)" if record.get("model_rating_stale") else ""
        uncertainty = f" ± {record['uncertainty']:.1f}" if record.get("uncertainty") is not None else ""
        parts.append(f"model {record['model_rating']:.1f}{uncertainty}{stale}")  # trusted: a number, fixed words
    return ", ".join(parts) or "not rated"


def human_size(size: int | None) -> str:
    """A size in bytes in words (a number and a unit: safe in Markdown as it is)."""
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"  # trusted: a unit constant
        value /= 1024
    return f"{size:d} B"


def file_name(record: dict[str, Any]) -> str:
    """The record's file name as it is (plain text): escape it before it goes into Markdown or HTML."""
    return os.path.basename(record.get("display_path") or record["path"])


@dataclass
class SearchControls:
    """The search box, mode, sort, order, temperature/seed/reshuffle and filters every media tab shows."""

    query: Any
    mode: Any
    sort: Any
    order: Any
    temperature: Any
    seed: Any
    reshuffle: Any
    go: Any
    folder: Any
    rated: Any
    ext: Any
    rating_min: Any
    rating_max: Any
    model_min: Any
    model_max: Any

    def parts(self) -> tuple[Any, ...]:
        return (self.query, self.mode, self.sort, self.order, self.temperature, self.seed, self.reshuffle, self.go,
                self.folder, self.rated, self.ext, self.rating_min, self.rating_max, self.model_min, self.model_max)


def search_controls(kind: str, placeholder: str, ext_example: str) -> SearchControls:
    """Lay out the shared search controls of a kind's tab (element ids `<kind>-query`, `-mode`, `-sort`, `-search`)."""
    import gradio as gr

    with gr.Row():
        query = gr.Textbox(label="Search", placeholder=placeholder, scale=4, elem_id=f"{kind}-query")
        mode = gr.Dropdown(["auto", "name", "meaning", "similar"], value="auto", label="Mode", scale=1,
                           elem_id=f"{kind}-mode")
        sort = gr.Dropdown(sort_choices(kind), value="date", label="Sort", scale=1, elem_id=f"{kind}-sort")
        order = gr.Radio(["desc", "asc"], value="desc", label="Order", scale=1)
    with gr.Row():
        temperature = gr.Number(value=0, minimum=0, label="Temperature (0 = sorted)", scale=1)
        seed = gr.Number(value=0, precision=0, label="Seed", scale=1)
        reshuffle = gr.Button("Reshuffle", scale=1)
        go = gr.Button("Search", variant="primary", scale=1, elem_id=f"{kind}-search")
    with gr.Accordion("Filters", open=False):
        with gr.Row():
            folder = gr.Textbox(label="Folder")
            rated = gr.Radio(list(RATED_CHOICES), value="all", label="Rated")
            ext = gr.Textbox(label=f"Extensions (e.g. {ext_example})")
        with gr.Row():
            rating_min = gr.Slider(0, 10, value=0, step=0.5, label="Your rating from")
            rating_max = gr.Slider(0, 10, value=10, step=0.5, label="to")
            model_min = gr.Slider(0, 10, value=0, step=0.5, label="Model rating from")
            model_max = gr.Slider(0, 10, value=10, step=0.5, label="to")
    return SearchControls(query, mode, sort, order, temperature, seed, reshuffle, go, folder, rated, ext,
                          rating_min, rating_max, model_min, model_max)


def wire_search_events(search: Any, inputs: list[Any], outputs: list[Any], *, go: Any, query: Any,
                       changes: tuple[Any, ...], reshuffle: Any, seed: Any, page: Any, previous_page: Any,
                       next_page: Any, after: tuple[Any, Any, Any] | None = None) -> Any:
    """Wire a tab's search, reshuffle and paging events; `inputs[6]` is the page number.

    `after` (fn, inputs, outputs) runs after each of them: a tab whose selection is a position on the page clears
    it there, since the same position now holds another file. Returns the handler that searches from the first
    page (a tab's initial fill and its "similar" action use it).
    """
    private: dict[str, Any] = {"api_visibility": "private"}

    def from_first_page(*values: Any) -> Any:
        listed = list(values)
        listed[6] = 1
        return search(*listed)

    def then(event: Any) -> None:
        if after is not None:
            event.then(*after, **private)

    then(go.click(from_first_page, inputs, outputs, **private))
    then(query.submit(from_first_page, inputs, outputs, **private))
    for control in changes:
        then(control.change(from_first_page, inputs, outputs, **private))
    then(reshuffle.click(lambda: new_seed(), None, seed, **private).then(search, inputs, outputs, **private))
    then(previous_page.click(lambda p: max(1, int(p or 1) - 1), page, page, **private).then(
        search, inputs, outputs, **private))
    then(next_page.click(lambda p: int(p or 1) + 1, page, page, **private).then(search, inputs, outputs, **private))
    then(page.submit(search, inputs, outputs, **private))  # a page number typed, then Enter
    return from_first_page
