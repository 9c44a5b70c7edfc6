"""The Images tab: a paged gallery of thumbnails, search and sort, a large view with metadata, the rating slider."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from anagnorisis.media.previews import ensure_thumbnail
from anagnorisis.ui import learn
from anagnorisis.ui.browse import (
    commit_rating, wire_search_events,
    QUERY_ORDER, build_request, file_name, Filters, human_size, Page, rating_text, run_page,
    search_controls,
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
    from anagnorisis.library.actions import ActionRefused, move_file, rename_file, trash_file

    if view is None or index is None or not (0 <= index < len(view.results)):
        return "Select an image first."
    path, setting = view.results[index]["path"], ctx.settings.file_actions
    try:
        if action == "move":
            done = f"moved to {md(move_file(ctx.session.store, KIND, path, argument, setting=setting))}"
        elif action == "rename":
            done = f"renamed to {md(rename_file(ctx.session.store, KIND, path, argument, setting=setting))}"
        else:
            trash_file(ctx.session.store, KIND, path, setting=setting)
            done = "sent to the trash"
    except (ActionRefused, OSError) as error:
        return f"not done: {md(error)}"
    ctx.session.invalidate(KIND)
    return done


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


def render(ctx: AppContext) -> Loader:
    """Build the tab and wire its events."""
    (query, mode, sort, order, temperature, seed, reshuffle, go, folder, rated, ext, rmin, rmax, mmin,
     mmax) = search_controls(KIND, "file name, a description, or a file path", "jpg,png").parts()
    with gr.Row(equal_height=True):
        summary = gr.Markdown(elem_id="images-summary")
        rate_next_button = learn.rate_next_button(KIND)
    with gr.Row():
        with gr.Column(scale=3):
            gallery = gr.Gallery(columns=6, height=560, allow_preview=False, object_fit="cover", fit_columns=False,
                                 label="Images", elem_id="images-gallery")
            with gr.Row():
                previous_page = gr.Button("◀ Page")
                page = gr.Number(value=1, precision=0, minimum=1, label="Page")
                next_page = gr.Button("Page ▶")
            skipped = SkippedPanel(ctx, KIND)
        with gr.Column(scale=2):
            large = gr.Image(type="filepath", label="Selected", interactive=False, height=380,
                             elem_id="images-large")
            details = gr.Markdown("Select an image.", elem_id="images-details")
            slider = gr.Slider(0, 10, value=0, step=0.5, label="Your rating (0–10)", elem_id="images-rating")
            saved = gr.Markdown(elem_id="images-saved")
            with gr.Row():
                prev_item = gr.Button("◀", elem_id="images-prev")
                clear = gr.Button("Clear rating")
                similar = gr.Button("Similar images", elem_id="images-similar")
                next_item = gr.Button("▶", elem_id="images-next")
            with gr.Row():
                more_to_rate = learn.more_to_rate_button(KIND)
                why_button = learn.why_button(KIND)
            why_text = learn.why_area(KIND)
            with gr.Accordion("File actions", open=False, visible=ctx.settings.file_actions != "off"):
                with gr.Row():
                    target = gr.Textbox(label="Move to folder", scale=3)
                    move = gr.Button("Move", scale=1)
                with gr.Row():
                    new_name = gr.Textbox(label="New name", scale=3)
                    rename = gr.Button("Rename", scale=1)
                trash = gr.Button("Send to trash", variant="stop", visible=ctx.settings.file_actions == "trash")
                action_result = gr.Markdown(elem_id="images-action-result")
    learn.ab_panel(ctx, KIND, AB_PREVIEW)
    view = gr.State(View([]))
    selected = gr.State(None)

    search_inputs = [query, mode, sort, order, temperature, seed, page, folder, rated, rmin, rmax, mmin, mmax, ext]
    search_outputs = [gallery, summary, view, page]
    shown = [large, details, slider, saved, selected]

    def do_search(*values: Any) -> Any:
        return search_page(ctx, *values)

    from_first_page = wire_search_events(
        do_search, search_inputs, search_outputs, go=go, query=query, changes=(sort, order, rated),
        reshuffle=reshuffle, seed=seed, page=page, previous_page=previous_page, next_page=next_page,
        after=(lambda: show(ctx, None, None), None, shown))

    def on_select(current: View, event: gr.SelectData) -> Any:
        return show(ctx, current, event.index)

    gallery.select(on_select, view, shown, api_visibility="private")
    prev_item.click(lambda v, i: show(ctx, v, step(v, i, -1)), [view, selected], shown, api_visibility="private")
    next_item.click(lambda v, i: show(ctx, v, step(v, i, +1)), [view, selected], shown, api_visibility="private")
    refresh = {"fn": lambda v, i: rated_view(ctx, v, i), "inputs": [view, selected], "outputs": [details, gallery],
               "api_visibility": "private", "show_progress": "hidden"}
    slider.release(lambda v, i, value: rate(ctx, v, i, value), [view, selected, slider], [saved, view],
                   api_visibility="private", trigger_mode="always_last").success(**refresh)
    clear.click(lambda v, i: clear_rating(ctx, v, i), [view, selected], [saved, view],
                api_visibility="private").success(**refresh)

    def similar_to(current: View, index: int | None) -> tuple[str, str, str]:
        if current is None or index is None or not (0 <= index < len(current.results)):
            raise gr.Error("Select an image first: Similar finds the images that look like it.")
        return current.results[index]["path"], "similar", QUERY_ORDER

    learn.QueueButtons(rate_next_button, more_to_rate).wire(
        lambda: rate_next(ctx), search_outputs,
        then=(lambda v: show(ctx, v, 0 if v.results else None), view, shown))
    learn.wire_why(ctx, KIND, why_button, why_text, [view, selected], selected_path)

    similar.click(similar_to, [view, selected], [query, mode, sort], api_visibility="private").success(
        from_first_page, search_inputs, search_outputs, api_visibility="private").then(
        lambda: show(ctx, None, None), None, shown, api_visibility="private")
    for button, action, argument in ((move, "move", target), (rename, "rename", new_name)):
        button.click(lambda v, i, arg, action=action: file_action(ctx, v, i, action, arg), [view, selected, argument],
                     action_result, api_visibility="private").then(
            do_search, search_inputs, search_outputs, api_visibility="private")
    trash.click(lambda v, i: file_action(ctx, v, i, "trash", ""), [view, selected], action_result,
                api_visibility="private").then(do_search, search_inputs, search_outputs, api_visibility="private")
    return Loader(from_first_page, search_inputs, search_outputs,
                  also=(Loader(skipped.refresh, [], [skipped.accordion, skipped.text]),))
