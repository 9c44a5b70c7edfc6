"""Library text into the page as text, never as markup (SPEC §8).

Everything a file says about itself (its name, folder, tags, EXIF values, a document's title, an error message that
quotes a path) reaches the page through one of these helpers before it is put into Markdown or HTML. Gradio renders
Markdown with raw HTML allowed, so a name like `<img src=//example.com/p.png>.png` would otherwise be an element
that loads a remote image.

`md` turns every ASCII punctuation character into a numeric character reference. Markdown decodes references to
plain characters after it has parsed the structure, and HTML decodes them too, so the text shows exactly as it is
while no character of it can open a tag, an entity, emphasis, a link, a list, a table cell or a heading. Line breaks
and other control characters become spaces: one value is one line.

Plain-text contexts (Gradio `Textbox`, `Dataframe` cells of datatype "str", gallery captions, plot labels) show
text literally and must NOT be escaped, or the user would see `&#60;`.
"""
from __future__ import annotations

import string
import unicodedata
from typing import Any, Iterable

_PUNCTUATION = frozenset(string.punctuation)


def _char(ch: str) -> str:
    if ch in _PUNCTUATION:
        return f"&#{ord(ch)};"
    if ch in "\r\n\t\v\f" or unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
        return " "
    return ch


def md(value: Any) -> str:
    """`value` as inline text for Markdown or HTML: shown literally, never parsed. None shows as an empty string."""
    if value is None:
        return ""
    text = "".join(_char(ch) for ch in str(value))
    # leading or trailing spaces could indent a code block or end a line with a hard break
    stripped = text.strip(" ")
    if stripped != text:
        lead = len(text) - len(text.lstrip(" "))
        trail = len(text) - len(text.rstrip(" "))
        text = "&#32;" * lead + stripped + "&#32;" * trail
    return text


def md_code(value: Any) -> str:
    """`value` in a monospace span (a path, a query): `<code>` with escaped content. Markdown code spans cannot be
    used, because they show character references literally and a backtick in the value would end them."""
    return f"<code>{md(value)}</code>"


def md_lines(value: Any) -> str:
    """Multi-line library text (a note, a description, a first paragraph): each line escaped, line breaks kept as
    hard breaks, nothing else."""
    if value is None:
        return ""
    return "<br>".join(md(line) for line in str(value).splitlines())


def html_text(value: Any) -> str:
    """`value` as text inside an HTML element or attribute (gr.HTML, a toast message); same escaping as `md`."""
    return md(value)


def md_join(values: Iterable[Any], separator: str = ", ") -> str:
    """Several library values, each escaped, joined by a separator the caller trusts."""
    return separator.join(md(value) for value in values)
