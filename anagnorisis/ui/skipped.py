"""The files of a kind's folders that the scanner skipped (damaged, truncated, empty, disguised), with the reason.

The scan keeps them in ``scan_issues``; every media tab shows them in a closed panel whose label counts them, so a
file missing from the library is never a mystery.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from anagnorisis.store.skipped import skipped_files
from anagnorisis.ui.context import AppContext
from anagnorisis.ui.safe import md, md_code

SHOWN_AT_MOST = 500  # files listed in the panel; the count in its label is always the whole number


def skipped_rows(ctx: AppContext, kind: str, limit: int = SHOWN_AT_MOST) -> tuple[int, list[tuple[str, str]]]:
    """(how many files of the kind were skipped, the first `limit` of them as (path, reason), by path)."""
    total, rows = skipped_files(ctx.session.store, kind, limit)
    return total, [(path.decode("utf-8", "replace"), reason) for path, reason in rows]


def skipped_markdown(ctx: AppContext, kind: str, label: Callable[[str], str] = str,
                     read: tuple[int, list[tuple[str, str]]] | None = None) -> str:
    """The panel's Markdown: each skipped file with its reason (label() may rename a reason; it returns plain text,
    escaped here), or that there is none. `read` is skipped_rows' answer when the caller has it already."""
    total, rows = read or skipped_rows(ctx, kind)
    if not total:
        return "No files were skipped."
    lines = [f"- {md_code(path)} — **{md(label(reason))}**" for path, reason in rows]
    more = f"\n\n…and {total - len(rows):,} more (the log lists every one)." if total > len(rows) else ""
    return f"{total:,} file(s) not in the library:\n\n" + "\n".join(lines) + more


def panel_title(total: int) -> str:
    return f"Skipped files ({total:,}): damaged or unreadable"


class SkippedPanel:
    """A closed accordion listing the kind's skipped files; it reads them afresh when opened (listen) and on page
    load (the tab's loader runs refresh)."""

    def __init__(self, ctx: AppContext, kind: str, label: Callable[[str], str] = str) -> None:
        self.ctx, self.kind, self.label = ctx, kind, label
        title = panel_title(skipped_rows(ctx, kind, limit=0)[0])
        with gr.Accordion(title, open=False, elem_id=f"{kind}-skipped-panel") as self.accordion:
            self.text = gr.Markdown(elem_id=f"{kind}-skipped")

    def listen(self) -> None:
        """Opening the panel reads the list afresh."""
        self.accordion.expand(self.refresh, None, [self.accordion, self.text], api_visibility="private",
                              show_progress="hidden")

    def refresh(self) -> tuple[Any, str]:
        read = skipped_rows(self.ctx, self.kind)  # one read for the label and the list
        return gr.update(label=panel_title(read[0])), skipped_markdown(self.ctx, self.kind, self.label, read)
