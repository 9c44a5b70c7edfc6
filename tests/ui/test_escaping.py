"""The escaping helpers show any text literally in Markdown and HTML, and the UI uses them for every interpolation."""
from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from anagnorisis.ui.safe import html_text, md, md_code, md_join, md_lines
from tests.ui.markup_check import check_package, unsafe_interpolations

UI = Path(__file__).resolve().parents[2] / "anagnorisis" / "ui"
GRADIO_LIKE = MarkdownIt("commonmark", {"html": True}).enable("table")

HOSTILE = [
    "<img src=http://example.com/a.png>.png",
    "<img src=x onerror=alert(1)>.png",
    "![p](http://example.com/b.png)",
    "[link](http://example.com) **bold** _it_ `code` ~~s~~",
    "<script>alert(1)</script>",
    "# heading",
    "- a list item",
    "1. numbered",
    "> quote",
    "| a | b |",
    "&lt;already&gt; &amp; &#60;",
    "line one\nline two\r\n<b>three</b>",
    "    four spaces: a code block?",
    "trailing two spaces  ",
    "\\<b>escaped backslash\\</b>",
    "<!-- comment --> <![CDATA[x]]>",
    "$$x^2$$ and $y$",
    "ünïcödé ✓ 日本語 <i>x</i>",
    "<https://example.com/autolink>",
    "www.example.com/autolink-ext",
    "\u2028sep\u0000nul\u001bescape",
    "`",
    "```",
]


def visible_text(rendered: str) -> str:
    """What a reader sees: the rendered HTML's text with the tags the renderer made removed."""
    return html.unescape(re.sub(r"<[^>]+>", "", rendered))


@pytest.mark.parametrize("value", HOSTILE)
def test_md_renders_any_value_as_exactly_its_text_and_nothing_else(value: str) -> None:
    rendered = GRADIO_LIKE.render(f"**Name:** {md(value)}")
    tags = re.findall(r"<(/?[a-zA-Z][a-zA-Z0-9]*)", rendered)
    assert tags == ["p", "strong", "/strong", "/p"], rendered
    one_line = re.sub(r"[\r\n\t\v\f\x00-\x1f\u2028\u2029\x7f]", " ", value)
    assert visible_text(rendered).strip() == f"Name: {one_line}".strip(), rendered


@pytest.mark.parametrize("value", HOSTILE)
def test_md_code_and_md_lines_and_html_text_make_no_element_of_their_own(value: str) -> None:
    code = GRADIO_LIKE.render(f"Path: {md_code(value)}")
    assert re.findall(r"<(/?[a-zA-Z][a-zA-Z0-9]*)", code) == ["p", "code", "/code", "/p"], code
    lines = GRADIO_LIKE.render(md_lines(value))
    assert set(re.findall(r"<(/?[a-zA-Z][a-zA-Z0-9]*)", lines)) <= {"p", "/p", "br"}, lines
    assert visible_text(lines).replace("\n", "") == "".join(
        re.sub(r"[\x00-\x1f\u2028\u2029\x7f]", " ", part) for part in value.splitlines())
    element = f"<div>{html_text(value)}</div>"
    assert re.findall(r"<(/?[a-zA-Z][a-zA-Z0-9]*)", element) == ["div", "/div"]


def test_md_join_and_empty_values() -> None:
    assert md(None) == "" and md_lines(None) == ""
    assert visible_text(GRADIO_LIKE.render(md_join(["<a>", "*b*"], " · "))).strip() == "<a> · *b*"


def test_the_ui_interpolates_no_value_unescaped() -> None:
    """Every `{value}` in anagnorisis/ui is escaped, numeric, or says why it is plain (see markup_check)."""
    assert check_package(UI) == []


def test_the_check_names_each_unsafe_interpolation_in_code_like_the_old_tabs() -> None:
    old = '''
import gradio as gr
def details(record, meta, error, n):
    lines = [f"### {record['name']}", f"`{record['path']}`", f"**Taken:** {meta['date']}"]
    lines.append("**EXIF:** " + ", ".join(f"{key}: {value}" for key, value in meta.items()))
    gr.Markdown(f"{n:,} files · {n:.1f} · {len(lines)}")
    log.warning(f"skipped {record['path']}")
    gr.Slider(label=f"Rate {record['name']}")
    raise gr.Error(f"cannot open {error}")
    note, count = "note: %s" % record["note"], "{} files".format(n)
    return note, count, f"{md(record['name'])}", f"{n}"  # trusted: a count
'''
    found = unsafe_interpolations(old, "old.py")
    named = sorted(line.split(": ", 1)[1] for line in found)
    assert named == sorted(["{record['name']}", "{record['path']}", "{meta['date']}", "{key}", "{value}", "{error}",
                            "% formatting", "str.format"]), found
