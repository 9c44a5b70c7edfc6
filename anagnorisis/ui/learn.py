"""Rate next, A/B questions and "why this rating" in every media tab: plain handlers and the shared controls.

The queue and the explanation come from ``service.taste.next_files`` and ``why`` (the calls the CLI's `next` and
`why` and the named endpoints make); an A/B answer goes through ``service.ratings.prefer``. The question itself comes from
``taste.queue.next_pair``, which has no command of its own. Each tab says how it shows one file of a question
(a ``Preview``) and fills its own list with the queue; the rest is here, once for the four tabs.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from typing import Any, Callable

import gradio as gr

from anagnorisis.config import noun
from anagnorisis.store.records import Record, records_for_paths
from anagnorisis.service import ServiceError, ratings, taste
from anagnorisis.ui.browse import file_name, rating_text
from anagnorisis.ui.context import AppContext
from anagnorisis.ui.safe import md

QUEUE_SIZE = 12  # files per "Rate next" queue: two rows of the image grid, a screen of the tables
# Draws (each with a new seed) before a Skip gives up on the picker and offers a random pair: the picker is
# deterministic on a library smaller than its candidate sample, so a new seed alone may bring the same question.
SKIP_DRAWS = 4
RANDOM_PAIR_DRAWS = 50  # random pairs tried before concluding that every pair was skipped
NO_QUESTION = "No question on screen: open the panel or press Skip."

PairKey = tuple[str, str]


# ---------------------------------------------------------------------------------------------- rate next


def with_details(ctx: AppContext, kind: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Command results (public records) with the stored metadata the tabs show (tags, resolution, duration)."""
    if not items:
        return []
    stored = records_for_paths(ctx.session.store, kind, [os.fsencode(str(item["path"])) for item in items])
    by_path = {str(record["path"]): record for record in stored}
    return [{**by_path.get(str(item["path"]), {}), **item} for item in items]


def queue_summary(kind: str, document: dict[str, Any]) -> str:
    """The line above the list: what the queue is, or why it is empty."""
    results = document.get("results") or []
    if not results:  # the message may name the embedding model (a model id from the settings)
        why = document.get("message") or f"no {noun(kind)} is waiting for a rating"  # trusted: noun of a kind
        return f"**Nothing to rate next:** {md(why)}."
    what = ("cold start: files that cover parts of your library nothing rated covers yet"
            if document.get("cold_start") else "the files whose rating would teach the model most")
    counts = (f"{int(document.get('n_ratings') or 0)} rated, "
              f"{int(document.get('n_preferences') or 0)} A/B choices so far")
    return (f"**Rate next** · {len(results)} files · {what} · {counts}. "  # trusted: fixed words and numbers
            "Rate them with the slider, then press **More to rate** for a fresh queue.")


def rate_next_queue(ctx: AppContext, kind: str, n: int = QUEUE_SIZE) -> tuple[list[dict[str, Any]], str]:
    """Handler core: the `next` queue of a kind (records + score, reason, role) and the summary line."""
    try:
        document = taste.next_files(ctx.session, kind, int(n))
    except ServiceError as error:
        return [], f"⚠️ {md(error)}"
    return with_details(ctx, kind, document.get("results") or []), queue_summary(kind, document)


@dataclass
class QueueButtons:
    """'Rate next' beside the search controls and 'More to rate' beside the rating slider."""

    rate_next: Any
    more: Any

    def wire(self, fill: Callable[..., Any], outputs: list[Any], then: tuple[Any, ...] = ()) -> None:
        """Both buttons fill the tab's list with a fresh queue; `then` = (fn, inputs, outputs) runs after."""
        for button in (self.rate_next, self.more):
            event = button.click(fill, None, outputs, api_visibility="private")
            if then:
                event.then(*then, api_visibility="private")


def rate_next_button(kind: str) -> Any:
    return gr.Button("Rate next", scale=0, min_width=150, elem_id=f"{kind}-rate-next")


def more_to_rate_button(kind: str) -> Any:
    return gr.Button("More to rate", min_width=150, elem_id=f"{kind}-more-to-rate")


# ---------------------------------------------------------------------------------------------- A/B questions


@dataclass
class Pair:
    """The A/B question on screen (a and b are records), the seed it was drawn with and the pairs skipped."""

    a: Record | None = None
    b: Record | None = None
    reason: str = ""
    seed: int = 0
    skipped: frozenset[PairKey] = field(default_factory=frozenset)
    message: str = ""  # why there is no question (nothing embedded, every pair answered)

    def key(self) -> PairKey | None:
        if self.a is None or self.b is None:
            return None
        return pair_key(str(self.a["content_hash"]), str(self.b["content_hash"]))


def pair_key(first: str, second: str) -> PairKey:
    return (first, second) if first <= second else (second, first)


def draw_pair(ctx: AppContext, kind: str, seed: int = 0, skipped: frozenset[PairKey] = frozenset()) -> Pair:
    """The picker's most informative question not skipped yet; a random pair when the picker only repeats skipped
    ones; a Pair with a message when there is nothing to compare."""
    from anagnorisis.taste.queue import next_pair
    from anagnorisis.taste.service import TasteError

    for attempt in range(SKIP_DRAWS if skipped else 1):
        try:
            question = next_pair(ctx.session.store, ctx.settings, kind, session=ctx.session, seed=seed + attempt)
        except TasteError as error:
            return Pair(seed=seed, skipped=skipped, message=str(error))
        a, b = with_details(ctx, kind, [question["a"], question["b"]])
        drawn = Pair(a, b, str(question.get("reason") or ""), seed + attempt, skipped)
        if drawn.key() not in skipped:
            return drawn
    return random_pair(ctx, kind, seed + SKIP_DRAWS, skipped)


def random_pair(ctx: AppContext, kind: str, seed: int, skipped: frozenset[PairKey]) -> Pair:
    """Two distinct files of the kind drawn at random, avoiding the skipped pairs."""
    distinct = list({str(record["content_hash"]): record for record in ctx.session.records(kind)}.values())
    rng = random.Random(seed)
    for _attempt in range(RANDOM_PAIR_DRAWS if len(distinct) >= 2 else 0):
        a, b = rng.sample(distinct, 2)
        if pair_key(str(a["content_hash"]), str(b["content_hash"])) not in skipped:
            return Pair(a, b, "a pair drawn at random: you skipped the questions the model asks for now", seed,
                        skipped)
    message = f"every {kind} pair on offer was skipped; answer one or reload the page"  # trusted: kind of the registry
    return Pair(seed=seed, skipped=skipped, message=message)


def answer(ctx: AppContext, kind: str, pair: Pair, choice: str) -> tuple[str, Pair]:
    """Handler core: store the answer (choice "a", "b" or "equal") with `prefer`, then draw the next question."""
    if pair is None or pair.a is None or pair.b is None:
        return NO_QUESTION, pair or Pair()
    winner, loser = (pair.b, pair.a) if choice == "b" else (pair.a, pair.b)
    try:
        ratings.prefer(ctx.session, str(winner["path"]), str(loser["path"]), tie=choice == "equal")
    except ServiceError as error:
        return f"⚠️ not saved: {md(error)}", pair
    said = {"a": "A over B", "b": "B over A"}.get(choice, "A and B equal")
    joined = "and" if choice == "equal" else "over"
    names = f"{md(file_name(winner))} {joined} {md(file_name(loser))}"  # trusted: joined is a fixed word
    status = f"saved: {said} ({names})"  # trusted: fixed words, and names escaped above
    return status, draw_pair(ctx, kind, pair.seed + 1, pair.skipped)


def skip(ctx: AppContext, kind: str, pair: Pair) -> tuple[str, Pair]:
    """Handler core: another question; nothing is stored."""
    pair = pair or Pair()
    key = pair.key()
    skipped = pair.skipped | {key} if key else pair.skipped
    return "skipped: nothing stored", draw_pair(ctx, kind, pair.seed + 1, skipped)


@dataclass(frozen=True)
class Preview:
    """How a tab shows one file of an A/B question: a component maker (elem_id, label) and its value for a record."""

    make: Callable[[str, str], Any]
    value: Callable[[AppContext, Record], Any]


def side_name(record: Record | None) -> str:
    if record is None:
        return ""
    return f"**{md(file_name(record))}** · {rating_text(record)}"  # trusted: rating_text is numbers and fixed words


def pair_outputs(ctx: AppContext, preview: Preview, pair: Pair, status: str) -> tuple[Any, ...]:
    """(A view, A name, B view, B name, reason, status, pair) for the panel."""
    if pair.a is None or pair.b is None:
        reason = f"⚠️ {md(pair.message)}" if pair.message else ""
        return None, "", None, "", reason, status, pair
    return (preview.value(ctx, pair.a), side_name(pair.a), preview.value(ctx, pair.b), side_name(pair.b),
            f"*{md(pair.reason)}*" if pair.reason else "", status, pair)


@dataclass
class ABPanel:
    """The components of a tab's "Which do you prefer?" accordion (render_ab_panel builds them, listen_ab wires)."""

    kind: str
    preview: Preview
    panel: Any
    reason: Any
    a_view: Any
    a_name: Any
    b_view: Any
    b_name: Any
    prefer_a: Any
    equal: Any
    skip: Any
    prefer_b: Any
    status: Any
    pair: Any

    def outputs(self) -> list[Any]:
        return [self.a_view, self.a_name, self.b_view, self.b_name, self.reason, self.status, self.pair]


def render_ab_panel(kind: str, preview: Preview) -> ABPanel:
    """The "Which do you prefer?" accordion: A and B side by side, A / Equal / B / Skip, and what was saved.

    Element ids: `<kind>-ab` (the accordion), `-ab-a`, `-ab-b` (the two previews), `-ab-a-name`, `-ab-b-name`,
    `-ab-reason`, `-ab-prefer-a`, `-ab-prefer-b`, `-ab-equal`, `-ab-skip`, `-ab-status`.
    """
    with gr.Accordion("Which do you prefer? (A/B)", open=False, elem_id=f"{kind}-ab") as panel:
        reason = gr.Markdown(elem_id=f"{kind}-ab-reason")
        with gr.Row(equal_height=False):
            with gr.Column():
                a_view = preview.make(f"{kind}-ab-a", "A")  # plain text: an elem_id
                a_name = gr.Markdown(elem_id=f"{kind}-ab-a-name")
            with gr.Column():
                b_view = preview.make(f"{kind}-ab-b", "B")  # plain text: an elem_id
                b_name = gr.Markdown(elem_id=f"{kind}-ab-b-name")
        with gr.Row():
            prefer_a = gr.Button("A", variant="primary", elem_id=f"{kind}-ab-prefer-a")
            equal = gr.Button("Equal", elem_id=f"{kind}-ab-equal")
            skip_button = gr.Button("Skip", elem_id=f"{kind}-ab-skip")
            prefer_b = gr.Button("B", variant="primary", elem_id=f"{kind}-ab-prefer-b")
        status = gr.Markdown(elem_id=f"{kind}-ab-status")
    return ABPanel(kind, preview, panel, reason, a_view, a_name, b_view, b_name, prefer_a, equal, skip_button,
                   prefer_b, status, gr.State(Pair()))


def listen_ab(ctx: AppContext, ab: ABPanel) -> None:
    """Opening the panel draws a question (keeping one on screen); A, B, Equal store the answer, Skip draws again."""
    kind, preview, outputs = ab.kind, ab.preview, ab.outputs()
    private: dict[str, Any] = {"api_visibility": "private"}

    def opened(current: Pair) -> tuple[Any, ...]:
        if current is not None and current.a is not None:  # keep the question on screen when reopened
            return tuple(gr.update() for _ in outputs)
        return pair_outputs(ctx, preview, draw_pair(ctx, kind), "")

    def answered(current: Pair, choice: str) -> tuple[Any, ...]:
        message, following = answer(ctx, kind, current, choice)
        return pair_outputs(ctx, preview, following, message)

    def skipped(current: Pair) -> tuple[Any, ...]:
        message, following = skip(ctx, kind, current)
        return pair_outputs(ctx, preview, following, message)

    ab.panel.expand(opened, ab.pair, outputs, **private)
    for button, choice in ((ab.prefer_a, "a"), (ab.prefer_b, "b"), (ab.equal, "equal")):
        button.click(lambda current, choice=choice: answered(current, choice), ab.pair, outputs,
                     trigger_mode="once", **private)
    ab.skip.click(skipped, ab.pair, outputs, trigger_mode="once", **private)


# ---------------------------------------------------------------------------------------------- why this rating


def why_markdown(ctx: AppContext, kind: str, path: str | None) -> str:
    """Handler core: the model rating ± uncertainty and the user's rated files nearest to the file at path."""
    if not path:
        one = noun(kind)
        article = "an" if one[0] in "aeiou" else "a"
        return f"Select {article} {md(one)} first."  # trusted: article is a fixed word
    try:
        _record, document = taste.why(ctx.session, os.path.abspath(str(path)))
    except ServiceError as error:
        return f"⚠️ {md(error)}"
    record = document.get("record") or {}
    name = file_name(record) if record.get("path") else os.path.basename(path)
    lines = [f"#### Why this rating: {md(name)}", model_line(document)]
    neighbours = document.get("neighbours") or []
    if not neighbours:
        lines.append(f"No rated {md(noun(kind))} with an embedding yet: rate a few {md(noun(kind, 2))}, "
                     "then ask again.")
        return "\n\n".join(lines)
    estimate = document.get("neighbour_estimate")
    lines.append(f"**Your nearest rated files** ({len(neighbours)} of {int(document.get('n_rated', len(neighbours)))}"
                 + (f"; weighted by similarity they suggest {estimate:.1f}" if estimate is not None else "") + "):")
    table = ["| file | your rating | similarity |", "|---|---:|---:|"]
    table += [f"| {md(file_name(item))} | {item['user_rating']:g} | {item['similarity']:.3f} |"
              for item in neighbours]
    return "\n\n".join(lines) + "\n\n" + "\n".join(table)


def model_line(document: dict[str, Any]) -> str:
    rating = document.get("model_rating")
    if rating is None:
        return "**Model rating:** no model rating yet (train a model in the Train tab)."
    uncertainty = document.get("uncertainty")
    spread = f" ± {uncertainty:.1f}" if uncertainty is not None else ""
    stale = " (stale: from an older model)" if document.get("model_rating_stale") else ""
    return f"**Model rating:** {rating:.1f}{spread}{stale}"  # trusted: a number and fixed words


def why_button(kind: str) -> Any:
    return gr.Button("Why this rating?", min_width=170, elem_id=f"{kind}-why-button")


def why_area(kind: str) -> Any:
    """Where the answer to "why this rating?" goes (`<kind>-why`)."""
    return gr.Markdown(elem_id=f"{kind}-why")


def playing_path(player: Any) -> str | None:
    """The path of a player's current track (the Music and Videos players), None when nothing plays."""
    track = player.current() if player is not None else None
    return str(track[0]) if track else None


def wire_why(ctx: AppContext, kind: str, button: Any, shown: Any, inputs: list[Any],
             selected_path: Callable[..., str | None]) -> None:
    """The button explains the tab's selected file; selected_path maps the inputs' values to its path."""
    button.click(lambda *values: why_markdown(ctx, kind, selected_path(*values)), inputs, shown,
                 api_visibility="private")

