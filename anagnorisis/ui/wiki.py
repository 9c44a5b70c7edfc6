"""The Wiki tab: the pages of wiki/ rendered in-app; links between pages become a pointer to the page's name."""
from __future__ import annotations

import re
from pathlib import Path

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


def render_page(path: Path) -> str:
    """The page's Markdown with links to other wiki pages turned into the target page's title."""
    titles = {file.name: title for title, file in pages(path.parent).items()}

    def replace(match: re.Match[str]) -> str:
        target = titles.get(match.group(2))
        return f"**{match.group(1)}** (page *{target}*)" if target else match.group(0)

    return LINK.sub(replace, path.read_text(encoding="utf-8"))


def render(ctx: AppContext) -> None:
    available = pages()
    titles = list(available)
    with gr.Row():
        with gr.Column(scale=1, min_width=200):
            choice = gr.Radio(titles, value=titles[0] if titles else None, label="Pages", elem_id="wiki-pages")
        with gr.Column(scale=4):
            body = gr.Markdown(render_page(available[titles[0]]) if titles else "No wiki pages found.",
                               elem_id="wiki-body")
    choice.change(lambda title: render_page(available[title]), choice, body, api_visibility="private")
    return None
