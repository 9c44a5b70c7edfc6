"""The Wiki tab: the pages of wiki/ rendered in-app; links between pages become a pointer to the page's name."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import gradio as gr

from anagnorisis.ui.context import AppContext

WIKI_DIR = Path(__file__).resolve().parent.parent.parent / "wiki"
LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+?\.md)(#[^)]*)?\)")


def pages(folder: Path = WIKI_DIR) -> dict[str, Path]:
    """Title → file, the index first."""
    found = sorted(folder.glob("*.md"), key=lambda path: (path.stem != "index", path.stem))
    return {page_title(path): path for path in found}


def page_title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem


PAGE_LINK_PREFIX = "#wiki-page="  # a link to another page inside the tab: WIKI_JS opens that page when clicked


def render_page(path: Path) -> str:
    """The page's Markdown with links to other wiki pages turned into in-tab links to the target page."""
    titles = {file.name: title for title, file in pages(path.parent).items()}

    def replace(match: re.Match[str]) -> str:
        target = titles.get(match.group(2))
        if not target:
            return match.group(0)
        return f"[{match.group(1)}]({PAGE_LINK_PREFIX}{quote(target)})"  # trusted: the app's own wiki/ pages

    return LINK.sub(replace, path.read_text(encoding="utf-8"))


# A click on an in-tab link picks that page in the page list (which renders it) instead of following the link.
WIKI_JS = """
() => {
  if (window.__anagnorisisWiki) return;
  window.__anagnorisisWiki = true;
  document.addEventListener('click', (event) => {
    const link = event.target.closest && event.target.closest('#wiki-body a[href*="PREFIX"]');
    if (!link) return;
    event.preventDefault();
    const title = decodeURIComponent(link.getAttribute('href').split('PREFIX')[1]);
    const choice = Array.from(document.querySelectorAll('#wiki-pages label'))
      .find((label) => label.innerText.trim() === title);
    if (choice) { choice.click(); window.scrollTo({top: 0}); }
  }, true);
}
""".replace("PREFIX", PAGE_LINK_PREFIX)


@dataclass
class WikiHandles:
    pages: dict[str, Path]  # title -> file
    choice: Any
    body: Any


def render(ctx: AppContext) -> WikiHandles:
    available = pages()
    titles = list(available)
    with gr.Row():
        with gr.Column(scale=1, min_width=200):
            choice = gr.Radio(titles, value=titles[0] if titles else None, label="Pages", elem_id="wiki-pages")
        with gr.Column(scale=4):
            body = gr.Markdown(render_page(available[titles[0]]) if titles else "No wiki pages found.",
                               elem_id="wiki-body")
    return WikiHandles(available, choice, body)


def listen(ctx: AppContext, tab: WikiHandles) -> None:
    tab.choice.change(lambda title: render_page(tab.pages[title]), tab.choice, tab.body, api_visibility="private")
