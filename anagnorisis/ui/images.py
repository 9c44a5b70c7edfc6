"""The Images tab: a paged gallery of thumbnails, search and sort, a large view with metadata, the rating slider."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from anagnorisis.media.previews import ensure_thumbnail
from anagnorisis.ui import learn, media_tab
from anagnorisis.ui.browse import (
    commit_rating, build_request, file_name, Filters, human_size, Page, rating_text, run_page, search_controls,
)
from anagnorisis.ui.context import AppContext, Loader
from anagnorisis.ui.safe import md, md_code
from anagnorisis.ui.skipped import SkippedPanel

KIND = "images"


@dataclass
class View:
    """What the tab holds between events: the current page's records."""

    results: list[dict[str, Any]]


def gallery_items(ctx: AppContext, results: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(thumbnail, caption) per record; captions are plain text (the gallery shows them literally)."""
    items = []
    for record in results:
        thumb = ensure_thumbnail(ctx.session.previews_dir, record["path"], record["content_hash"])
        caption = f"{file_name(record)} · {rating_text(record)}"  # plain text: gallery caption
        if record.get("role"):  # a rate-next item says why it is asked
            caption += f" · {record['reason']}"  # plain text: gallery caption
        items.append((str(thumb) if thumb else record["path"], caption))
    return items


def details_markdown(record: dict[str, Any]) -> str:
    """The large view's Markdown: name, path, ratings, size, resolution, date, EXIF (every file value escaped)."""
    meta = record.get("metadata") or {}
    lines = [
        f"### {md(file_name(record))}",
        md_code(record.get("display_path") or record["path"]),
        f"**Rating:** {rating_text(record)}",  # trusted: numbers and fixed words
        f"**Size:** {human_size(record.get('size'))}"  # trusted: a number and a unit
        f" · **Resolution:** {md(meta.get('width', '?'))}×{md(meta.get('height', '?'))}"
        + (f" · **Taken:** {md(meta['date'])}" if meta.get("date") else ""),
    ]
    if record.get("reason"):
        lines.append(f"**Why here:** {md(record['reason'])}")
    exif = meta.get("exif") or {}
    if exif:
        lines.append("**EXIF:** " + ", ".join(f"{md(key)}: {md(value)}" for key, value in list(exif.items())[:12]))
    return "\n\n".join(lines)


def search_page(ctx: AppContext, query: str, mode: str, sort: str, order: str, temperature: float, seed: int,
                page: int, folder: str, rated: str, rmin: float, rmax: float, mmin: float, mmax: float,
                ext: str) -> tuple[list[tuple[str, str]], str, View, int]:
    """Handler: run the search and fill the gallery."""
    filters = Filters(folder or "", rated or "all", float(rmin), float(rmax), float(mmin), float(mmax), ext or "")
    result: Page = run_page(ctx, build_request(KIND, query, mode, sort, order, temperature, seed, page, filters))
    return gallery_items(ctx, result.results), result.summary(), View(result.results), result.page


def rate_next(ctx: AppContext) -> tuple[list[tuple[str, str]], str, View, int]:
    """Handler: fill the gallery with the rate-next queue (each caption with its reason)."""
    results, summary = learn.rate_next_queue(ctx, KIND)
    return gallery_items(ctx, results), summary, View(results), 1


def selected_path(view: View, index: int | None) -> str | None:
    if view is None or index is None or not (0 <= index < len(view.results)):
        return None
    return str(view.results[index]["path"])


LARGE_PIXELS = 1600  # longest side of the stand-in for an image whose name cannot go into a URL


def shown_image(ctx: AppContext, record: dict[str, Any]) -> str | None:
    """What the large view loads: the file itself, served in place; for a name that is not valid UTF-8 (which no
    URL can carry) a large JPEG of it in the previews, named by its content."""
    path = str(record["path"])
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        large = ensure_thumbnail(ctx.session.previews_dir, path, str(record["content_hash"]), LARGE_PIXELS)
        return str(large) if large else None


AB_PREVIEW = learn.Preview(
    make=lambda elem_id, label: gr.Image(type="filepath", label=label, interactive=False, height=320,
                                         elem_id=elem_id),
    value=shown_image,
)


def show(ctx: AppContext, view: View, index: int | None) -> tuple[Any, str, Any, str, int | None]:
    """Handler: the large view of the item at index."""
    if view is None or index is None or not (0 <= index < len(view.results)):
        return None, "Select an image.", gr.update(value=0), "", None
    record = view.results[index]
    rating = record.get("user_rating")
    return (shown_image(ctx, record), details_markdown(record), gr.update(value=rating if rating is not None else 0),
            "" if rating is not None else "not rated yet", index)


def rate(ctx: AppContext, view: View, index: int | None, value: float) -> tuple[str, View]:
    """Handler: commit the slider's value; 'saved' appears only after the commit."""
    if view is None or index is None or not (0 <= index < len(view.results)):
        return "Select an image first.", view
    record = view.results[index]
    fresh, said = commit_rating(ctx, KIND, record["path"], value)
    if fresh is not None:
        view.results[index] = {**record, "user_rating": fresh["user_rating"], "rated_at": fresh.get("rated_at")}
    return said, view


def rated_view(ctx: AppContext, view: View, index: int | None) -> tuple[Any, Any]:
    """After a rating: the details and the gallery's captions say the new rating; the selection stays."""
    if view is None or index is None or not (0 <= index < len(view.results)):
        return gr.update(), gr.update()
    return (details_markdown(view.results[index]),
            gr.update(value=gallery_items(ctx, view.results), selected_index=index))


def clear_rating(ctx: AppContext, view: View, index: int | None) -> tuple[str, View]:
    if view is None or index is None or not (0 <= index < len(view.results)):
        return "Select an image first.", view
    record = view.results[index]
    ctx.session.rate(KIND, record["path"], None)
    view.results[index] = {**record, "user_rating": None}
    return "saved: rating cleared", view


def file_action(ctx: AppContext, view: View, index: int | None, action: str, argument: str) -> str:
    """Handler: move / rename / trash the selected file; the rating stays with its content. Returns Markdown."""
    path = selected_path(view, index)
    if path is None:
        return "Select an image first."
    return media_tab.act_on_file(ctx, KIND, path, action, argument)


def step(view: View, index: int | None, delta: int) -> int | None:
    if view is None or not view.results:
        return None
    return 0 if index is None else max(0, min(len(view.results) - 1, index + delta))


KEYBOARD_JS = """
() => {
  if (window.__anagnorisisKeys) return;
  window.__anagnorisisKeys = true;
  // Keys act on the Images tab only while it is the tab on screen (its buttons are hidden on the others).
  const shown = (id) => { const el = document.getElementById(id); return el && el.offsetParent !== null ? el : null; };
  const click = (id) => { const el = shown(id); if (el) el.click(); };
  const onRating = (target) => Boolean(target && target.closest && target.closest('[id$="-rating"]'));
  document.addEventListener('keydown', (event) => {
    const target = event.target;
    const tag = (target.tagName || '').toLowerCase();
    // A rating typed in the slider's box is saved when the box loses focus; Enter saves it as well.
    if (event.key === 'Enter' && target.type === 'number' && onRating(target)) {
      target.blur();
      return;
    }
    if (tag === 'textarea' || (tag === 'input' && target.type !== 'range')) return;
    if (event.key === 'PageDown' || event.key === 'PageUp') {
      // Page keys move between images, also from the slider: there they must not change the rating too (the
      // change would be saved on the next image).
      if (!shown('images-next')) return;
      if (target.type === 'range') event.preventDefault();
      click(event.key === 'PageDown' ? 'images-next' : 'images-prev');
      return;
    }
    if (tag === 'input') return;
    if (event.key === 'ArrowRight') click('images-next');
    if (event.key === 'ArrowLeft') click('images-prev');
  });
  // Gradio saves a slider on pointer release only; a keyboard change of the rating saves on key release too.
  document.addEventListener('keyup', (event) => {
    const target = event.target;
    const keys = ['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', 'Home', 'End'];
    if (!shown('images-next')) keys.push('PageUp', 'PageDown');  // they move between images on the Images tab
    if (target && target.type === 'range' && onRating(target) && keys.includes(event.key)) {
      target.dispatchEvent(new PointerEvent('pointerup', {bubbles: true}));
    }
  });
}
"""


@dataclass
class ImagesHandles:
    """The Images tab's components: the shared ones, the large view and what moves the selection."""

    media: media_tab.MediaHandles
    large: Any
    details: Any
    previous_item: Any
    next_item: Any
    selected: Any  # gr.State: the index of the selected image on the page

    def shown(self) -> list[Any]:
        """What show() fills."""
        return [self.large, self.details, self.media.slider, self.media.saved, self.selected]


def render(ctx: AppContext) -> ImagesHandles:
    """Lay out the tab: the search, the gallery and pager, the large view with the rating, A/B."""
    search = search_controls(KIND, "file name, a description, or a file path", "jpg,png")
    summary, rate_next_button = media_tab.summary_row(KIND)
    with gr.Row():
        with gr.Column(scale=3):
            gallery = gr.Gallery(columns=6, height=560, allow_preview=False, object_fit="cover", fit_columns=False,
                                 label="Images", elem_id="images-gallery")
            pager = media_tab.pager(KIND)
            skipped = SkippedPanel(ctx, KIND)
        with gr.Column(scale=2):
            large = gr.Image(type="filepath", label="Selected", interactive=False, height=380,
                             elem_id="images-large")
            details = gr.Markdown("Select an image.", elem_id="images-details")
            slider = media_tab.rating_slider(KIND)
            saved = media_tab.saved_text(KIND)
            with gr.Row():
                previous_item = gr.Button("◀", elem_id="images-prev")
                clear = gr.Button("Clear rating")
                similar = gr.Button("Similar images", elem_id="images-similar")
                next_item = gr.Button("▶", elem_id="images-next")
            with gr.Row():
                more_to_rate = learn.more_to_rate_button(KIND)
                why_button = learn.why_button(KIND)
            why_text = learn.why_area(KIND)
            actions = media_tab.file_actions(ctx, KIND)
    ab = learn.render_ab_panel(KIND, AB_PREVIEW)
    media = media_tab.MediaHandles(
        KIND, search, summary, rate_next_button, gallery, pager, skipped, slider, saved, clear, more_to_rate,
        why_button, why_text, ab, view=gr.State(View([])), similar=similar, file_actions=actions)
    return ImagesHandles(media, large, details, previous_item, next_item, selected=gr.State(None))


def listen(ctx: AppContext, handles: ImagesHandles) -> Loader:
    """Wire the shared events (search, rating, similar, file actions, …), then the gallery's selection."""
    media, shown = handles.media, handles.shown()
    selection = [media.view, handles.selected]
    nothing_shown: media_tab.FollowUp = (lambda: show(ctx, None, None), None, shown)
    wired = media_tab.listen(ctx, media, media_tab.MediaWiring(
        search=lambda *values: search_page(ctx, *values), rate_next=lambda: rate_next(ctx),
        selection=selection, selected_path=selected_path,
        rate=lambda v, i, value: rate(ctx, v, i, value), rate_outputs=[media.saved, media.view],
        clear=lambda v, i: clear_rating(ctx, v, i), changes=("sort", "order", "rated"),
        after_search=nothing_shown, after_queue=(lambda v: show(ctx, v, 0 if v.results else None), media.view, shown),
        similar_missing="Select an image first: Similar finds the images that look like it.",
        file_action=lambda v, i, action, argument: file_action(ctx, v, i, action, argument)))

    def on_select(current: View, event: gr.SelectData) -> Any:
        return show(ctx, current, event.index)

    media.results.select(on_select, media.view, shown, api_visibility="private")
    handles.previous_item.click(lambda v, i: show(ctx, v, step(v, i, -1)), selection, shown,
                                api_visibility="private")
    handles.next_item.click(lambda v, i: show(ctx, v, step(v, i, +1)), selection, shown, api_visibility="private")
    for event in wired.rated:  # the details and the captions say the new rating; the selection stays
        event.success(lambda v, i: rated_view(ctx, v, i), selection, [handles.details, media.results],
                      api_visibility="private", show_progress="hidden")
    return wired.loader
