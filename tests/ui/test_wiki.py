"""Every wiki page renders and every link in it resolves."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from anagnorisis.ui.wiki import LINK, WIKI_DIR, page_title, pages, render_page
from tests.ui.browser import browser_page
from tests.ui.conftest import RunningApp

SPEC_TOPICS = ("getting-started", "images", "music", "text", "videos", "training", "search", "privacy", "cli",
               "docker", "migrating", "faq")


def heading_slugs(path: Path) -> set[str]:
    headings = [line.lstrip("#").strip() for line in path.read_text().splitlines() if line.startswith("#")]
    return {re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_the_wiki_has_every_page_the_spec_lists() -> None:
    stems = {path.stem for path in WIKI_DIR.glob("*.md")}
    assert set(SPEC_TOPICS) <= stems


def test_every_link_between_pages_resolves_and_renders_as_a_page_name() -> None:
    for title, path in pages().items():
        text = path.read_text(encoding="utf-8")
        for match in LINK.finditer(text):
            assert (WIKI_DIR / match.group(2)).is_file(), f"{path.name} links to a missing {match.group(2)}"
            if match.group(3):
                assert match.group(3)[1:] in heading_slugs(WIKI_DIR / match.group(2)), match.group(0)
        rendered = render_page(path)
        assert ".md)" not in rendered, f"{title}: a wiki link was left as a file link"
        assert page_title(path) == title


def test_the_readme_links_the_wiki() -> None:
    readme = (WIKI_DIR.parent / "README.md").read_text()
    assert "wiki/index.md" in readme


@pytest.mark.browser
def test_a_link_between_pages_opens_that_page_in_the_tab(running_app: RunningApp, tmp_path: Path) -> None:
    training = WIKI_DIR / "training.md"
    with browser_page(tmp_path) as page:
        page.goto(running_app.owner_url)
        page.get_by_role("tab", name="Wiki").click()
        page.locator("#wiki-body a", has_text="Training the taste model").click()
        page.wait_for_function(
            f"document.querySelector('#wiki-body h1').innerText.trim() === {page_title(training)!r}", timeout=15_000)
        assert page.locator("#wiki-pages input:checked").get_attribute("value") == page_title(training)
        assert page.url.rstrip("/") == running_app.url.rstrip("/")  # the link did not leave the page
