"""A hostile library in headless Chromium: nothing leaves the loopback address and no library markup is rendered.

The library (tests/ui/hostile_names.py) has markup in every name, folder, EXIF value, ID3 tag, document title and
body; each payload would load something from example.com, run a handler or show a bold marker word if the page
rendered it. The test walks every tab, selects every hostile file, opens Why, A/B, the Skipped panel, the
document views, a training report and the Settings roots, and after each step checks:

- every request the browser made (counted through the context, so popups and workers count too) went to the
  loopback address; a request to anywhere else is aborted and recorded;
- no Content-Security-Policy violation was reported (the CSP blocks remote loads before they become requests,
  so a violation is an attempted remote load), neither by the `securitypolicyviolation` event nor in the console;
- no dialog opened and no payload set `window.__pwned` (alert/confirm/prompt are replaced to set it);
- the DOM holds no injected element: no attribute that loads from outside the loopback address, no event handler
  attribute, no frame, object, embed, base or meta refresh, no marker word made bold;
- the hostile names are shown literally as text.

The self-test at the end proves the detectors see a remote image, a fetch, a navigation and injected markup.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.ui import hostile_names as hostile
from tests.ui.browser import browser_page, screenshot
from tests.ui.conftest import start_app

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

WAIT = 30_000  # ms: the longest any single wait of this test may take
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
LOCAL_SCHEMES = {"data", "blob", "about", "chrome-error"}

# Runs in every frame before the page's own scripts.
INIT_JS = """
(() => {
  window.__cspViolations = [];
  window.__pwned = false;
  const record = (event) => window.__cspViolations.push(
    `${event.violatedDirective} blocked ${event.blockedURI} (${event.sourceFile || ''}:${event.lineNumber || ''})`);
  document.addEventListener('securitypolicyviolation', record, true);
  for (const name of ['alert', 'confirm', 'prompt', 'print']) {
    window[name] = (...args) => { window.__pwned = `${name}(${args.join(', ')})`; };
  }
})();
"""

# Everything in the DOM that library markup could have made. Returns one line per finding.
DETECT_JS = """
({markers, documentMarkers}) => {
  const found = [];
  const loopback = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);
  const where = (el) => { const owner = el.closest('[id]'); return owner ? '#' + owner.id : '(no id)'; };
  const show = (el) => `${where(el)}: ${el.outerHTML.slice(0, 200)}`;
  const resolve = (value) => { try { return new URL(value.trim(), location.href); } catch (e) { return null; } };
  const remote = (value) => {  // would loading this value leave the loopback address (or run script)?
    const url = resolve(value);
    if (url === null || ['data:', 'blob:', 'about:'].includes(url.protocol)) return false;
    if (['javascript:', 'vbscript:'].includes(url.protocol)) return true;
    return !loopback.has(url.hostname);
  };
  const candidates = (value) => value.split(',').map((part) => part.trim().split(/\\s+/)[0]).filter(Boolean);
  const cssUrls = (css) => [...css.matchAll(/url\\(\\s*['"]?([^'")]+)['"]?\\s*\\)|@import\\s+['"]([^'"]+)['"]/gi)]
    .map((match) => match[1] || match[2]);
  const LOADING = ['src', 'data', 'poster', 'background', 'action', 'formaction', 'xlink:href', 'codebase',
                   'archive', 'lowsrc', 'dynsrc', 'longdesc', 'manifest', 'icon', 'usemap', 'classid'];
  const LISTS = ['srcset', 'imagesrcset', 'ping'];
  const inertLinks = [];
  for (const el of document.querySelectorAll('*')) {
    const tag = el.tagName.toLowerCase();
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase(), value = attr.value;
      if (name.startsWith('on')) { found.push(`event handler ${name}: ${show(el)}`); continue; }
      if (LOADING.includes(name) && remote(value)) found.push(`remote ${name}: ${show(el)}`);
      if (LISTS.includes(name) && candidates(value).some(remote)) found.push(`remote ${name}: ${show(el)}`);
      if (name === 'style' && cssUrls(value).some(remote)) found.push(`remote url() in style: ${show(el)}`);
      if (name === 'href') {
        const url = resolve(value);
        const scripted = url !== null && ['javascript:', 'vbscript:'].includes(url.protocol);
        if (tag !== 'a' && tag !== 'area') {
          if (remote(value)) found.push(`remote href on <${tag}>: ${show(el)}`);
        } else if (scripted) {
          found.push(`script link: ${show(el)}`);
        } else if (remote(value) && value.includes('example.com')) {
          // A document's own links stay in the rendered view by design: inert until clicked, opened in a new
          // tab without a referrer. Anywhere else a link to example.com came from a name or a tag.
          const sanitised = el.closest('#text-rendered') && el.getAttribute('target') === '_blank'
            && /noopener/.test(el.getAttribute('rel') || '') && /noreferrer/.test(el.getAttribute('rel') || '');
          if (sanitised) inertLinks.push(value); else found.push(`remote link: ${show(el)}`);
        }
      }
    }
  }
  for (const el of document.querySelectorAll('style')) {
    if (cssUrls(el.textContent || '').some(remote)) found.push(`remote url() in <style>: ${show(el)}`);
  }
  // Gradio's page has its own <base href="./"> in the head and scripts beside <gradio-app>; inside the app's
  // content nothing of these may appear.
  const forbidden = 'iframe, frame, frameset, object, embed, applet, portal, body meta[http-equiv], '
    + 'gradio-app script, gradio-app link, gradio-app meta, gradio-app base, gradio-app foreignObject';
  for (const el of document.querySelectorAll(forbidden)) found.push(`<${el.tagName.toLowerCase()}>: ${show(el)}`);
  for (const el of document.querySelectorAll('base')) {
    if (!(el.parentElement === document.head && el.getAttribute('href') === './')) found.push(`<base>: ${show(el)}`);
  }
  for (const el of document.querySelectorAll('b, strong, em, i, u, mark, s, del, ins, big, small')) {
    const text = (el.textContent || '').trim();
    for (const marker of markers) {
      if (!text.startsWith(marker)) continue;
      if (documentMarkers.includes(marker) && el.closest('#text-rendered')) continue;  // a rendered document
      found.push(`marker ${marker} made <${el.tagName.toLowerCase()}>: ${show(el)}`);
    }
  }
  return {found, inertLinks, title: document.title};
}
"""


def is_loopback_url(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    return (parts.hostname or "") in LOOPBACK_HOSTS


@dataclass
class Watch:
    """Everything the page does that could leave the machine or run library code, recorded from the start."""

    requests: list[str] = field(default_factory=list)  # every request of the context
    remote: list[str] = field(default_factory=list)  # non-loopback requests, each aborted
    sockets: list[str] = field(default_factory=list)
    console_csp: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    popups: list[str] = field(default_factory=list)
    inert_links: set[str] = field(default_factory=set)
    steps: list[str] = field(default_factory=list)

    @classmethod
    def install(cls, page: Any) -> "Watch":
        watch = cls()
        page.set_default_timeout(WAIT)  # no action or wait of the walk can hang longer than this
        context = page.context
        context.add_init_script(INIT_JS)
        context.on("request", lambda request: watch.requests.append(request.url))
        context.route("**/*", watch._route)
        page.on("websocket", lambda socket: watch.sockets.append(socket.url))
        page.on("console", watch._console)
        page.on("dialog", watch._dialog)
        page.on("popup", lambda popup: watch.popups.append(popup.url))
        return watch

    def _route(self, route: Any) -> None:
        url = route.request.url
        try:
            if is_loopback_url(url):
                route.continue_()
            else:
                self.remote.append(url)
                route.abort("blockedbyclient")
        except Exception:  # noqa: BLE001 - the page went away meanwhile: nothing to continue
            pass

    def _console(self, message: Any) -> None:
        text = message.text
        if "Content Security Policy" in text or "Refused to" in text:
            self.console_csp.append(text)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        try:
            dialog.dismiss()
        except Exception:  # noqa: BLE001
            pass

    def page_state(self, page: Any) -> dict[str, Any]:
        state = page.evaluate("() => ({csp: window.__cspViolations || [], pwned: window.__pwned})")
        detected = page.evaluate(DETECT_JS, {"markers": list(hostile.MARKERS), "documentMarkers": ["EvilDoc"]})
        self.inert_links.update(detected["inertLinks"])
        return {**state, **detected}

    def check(self, page: Any, step: str) -> None:
        """The assertions of every step: nothing remote, no CSP violation, no script ran, nothing injected."""
        state = self.page_state(page)
        problems = {
            "requests that left the loopback address": self.remote,
            "web sockets off loopback": [url for url in self.sockets if not is_loopback_url(url)],
            "CSP violations (attempted remote loads)": state["csp"],
            "CSP messages in the console": self.console_csp,
            "dialogs": self.dialogs,
            "popups": self.popups,
            "injected elements": state["found"],
        }
        problems = {what: items for what, items in problems.items() if items}
        if state["pwned"]:
            problems["library script ran"] = [str(state["pwned"])]
        if state["title"] != "Anagnorisis":
            problems["page title changed"] = [state["title"]]
        assert not problems, f"after step {step!r}: {problems}"
        self.steps.append(step)


# ---------------------------------------------------------------------------------------------- page helpers


def text_of(page: Any, selector: str) -> str:
    return str(page.evaluate("(s) => { const e = document.querySelector(s); return e ? e.innerText : ''; }",
                             selector))


BUSY = "/(queue: ?\\d+\\/\\d+|processing) \\| \\d|^\\s*\\d+(\\.\\d+)?s\\s*$/m"  # Gradio's progress text over a component being updated


def wait_for(page: Any, script: str, arg: Any, selector: str, what: str, timeout: int) -> str:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(script, arg=arg, timeout=timeout)
    except PlaywrightTimeout:
        raise AssertionError(f"{selector} never {what} in {timeout} ms; it says {text_of(page, selector)!r}") from None
    return text_of(page, selector)


def wait_text(page: Any, selector: str, wanted: str, timeout: int = WAIT) -> str:
    """Wait until the element's text contains `wanted` (and no progress text covers it); its text."""
    script = ("([s, w]) => { const e = document.querySelector(s); if (!e) return false;"
              f" const t = e.innerText; return t.includes(w) && !{BUSY}.test(t); }}")
    return wait_for(page, script, [selector, wanted], selector, f"showed {wanted!r}", timeout)




def caption_names(page: Any, kind: str, count: int) -> list[str]:
    """The file names a gallery's captions show ("name · rating…"), in the gallery's order."""
    captions = page.locator(f"#{kind}-gallery .caption-label").all_inner_texts()
    assert len(captions) == count, captions
    return [caption.split(" · ")[0] for caption in captions]


def open_tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click(timeout=WAIT)


def shown_literally(page: Any, texts: list[str]) -> list[str]:
    """The texts the page does not show as they are (innerText: what a person sees)."""
    body = str(page.evaluate("() => document.body.innerText"))
    return [text for text in texts if text not in body]


def open_skipped(page: Any, kind: str, bad_name: str) -> str:
    panel = page.locator(f"#{kind}-skipped-panel")
    panel.get_by_text("Skipped files (", exact=False).first.click(timeout=WAIT)
    listed = wait_text(page, f"#{kind}-skipped", bad_name)
    assert "not in the library" in listed, listed
    return listed


def open_ab(page: Any, kind: str, side_selector: str) -> tuple[str, str]:
    page.locator(f"#{kind}-ab").get_by_text("Which do you prefer?").click(timeout=WAIT)
    page.wait_for_selector(f"#{kind}-ab-a {side_selector}", timeout=WAIT)
    page.wait_for_selector(f"#{kind}-ab-b {side_selector}", timeout=WAIT)
    a = wait_text(page, f"#{kind}-ab-a-name", " · ")
    b = wait_text(page, f"#{kind}-ab-b-name", " · ")
    return a, b


def answer_ab(page: Any, kind: str) -> str:
    page.click(f"#{kind}-ab-prefer-a", timeout=WAIT)
    return wait_text(page, f"#{kind}-ab-status", "saved: A over B")


def ab_and_skipped(page: Any, watch: Watch, kind: str, side_selector: str, bad_name: str) -> None:
    """The tab's A/B question, answered, then its Skipped panel: each checked for leaks."""
    open_ab(page, kind, side_selector)
    watch.check(page, f"{kind}: A/B question")
    answer_ab(page, kind)
    watch.check(page, f"{kind}: A/B answered")
    open_skipped(page, kind, bad_name)
    watch.check(page, f"{kind}: skipped panel")


def why(page: Any, kind: str, name: str) -> str:
    """Press "Why this rating?" for the selected file; the explanation names it."""
    page.click(f"#{kind}-why-button", timeout=WAIT)
    explained = wait_text(page, f"#{kind}-why", f"Why this rating: {name}")
    assert "Your nearest rated files" in explained, explained  # a table of rated files, by name
    return explained


# ---------------------------------------------------------------------------------------------- the walk


def walk_images(page: Any, watch: Watch, library: hostile.HostileLibrary) -> None:
    open_tab(page, "Images")
    expected = len(library.image_names) + len(library.plain_images)
    page.wait_for_function(f"document.querySelectorAll('#images-gallery img').length === {expected}",
                           timeout=WAIT)
    watch.check(page, "images: gallery")
    assert shown_literally(page, library.image_names) == []  # the gallery captions
    seen: dict[str, str] = {}
    for index, name in enumerate(caption_names(page, "images", expected)):
        page.locator("#images-gallery img").nth(index).click(timeout=WAIT)
        details = wait_text(page, "#images-details", name)
        watch.check(page, f"images: selected {name}")
        if name not in library.image_names:
            continue  # a plain image, there to be rated
        seen[name] = details
        why(page, "images", name)
        watch.check(page, f"images: why {name}")
    assert sorted(seen) == sorted(library.image_names), sorted(seen)
    exif = seen[hostile.IMAGE_NAMES[3]]
    assert hostile.EXIF_MAKE in exif and hostile.EXIF_MODEL in exif, exif  # the EXIF values, as text
    assert hostile.IMAGES_ROOT in exif and hostile.IMAGE_FOLDER in seen[hostile.IMAGE_IN_FOLDER]
    screenshot(page, "hostile-images")

    a, b = open_ab(page, "images", "img")
    watch.check(page, "images: A/B question")
    said = answer_ab(page, "images")
    assert a.split(" · ")[0] in said and b.split(" · ")[0] in said, (a, b, said)
    watch.check(page, "images: A/B answered")
    open_skipped(page, "images", hostile.BAD_IMAGE)
    watch.check(page, "images: skipped panel")
    screenshot(page, "hostile-images-panels")


def walk_music(page: Any, watch: Watch) -> None:
    open_tab(page, "Music")
    wait_text(page, "#music-table", hostile.ID3_TITLE)
    table = wait_text(page, "#music-table", hostile.ID3_TITLE_2)
    assert hostile.ID3_ARTIST in table and hostile.ID3_ALBUM in table, table  # tags shown as text
    watch.check(page, "music: table")
    tracks = ((hostile.ID3_TITLE, hostile.MUSIC_NAME, hostile.ID3_ARTIST),
              (hostile.ID3_TITLE_2, hostile.MUSIC_NAME_2, hostile.ID3_ARTIST_2))
    for title, name, artist in tracks:
        page.locator("#music-table [role=gridcell]", has_text=title).first.click(timeout=WAIT)
        wait_for(page, "(t) => { const e = document.querySelector('#music-player .music-title');"
                       " return e !== null && e.innerText === t; }", title, "#music-player", f"played {title!r}", WAIT)
        player = wait_text(page, "#music-player", name)  # the details line names the file
        assert artist in player, player
        assert page.locator("#music-player audio").count() == 1
        watch.check(page, f"music: playing {name}")
        why(page, "music", name)
        watch.check(page, f"music: why {name}")
    screenshot(page, "hostile-music")
    page.click("#music-play", timeout=WAIT)  # pause: nothing plays on while the walk goes on

    ab_and_skipped(page, watch, "music", "audio", hostile.BAD_MUSIC)
    screenshot(page, "hostile-music-panels")


def walk_text(page: Any, watch: Watch) -> None:
    open_tab(page, "Text")
    for name in (hostile.MD_NAME, hostile.HTML_NAME, hostile.TXT_NAME):
        page.locator("#text-table [role=gridcell]", has_text=name).first.wait_for(timeout=WAIT)
    watch.check(page, "text: list")
    documents = ((hostile.MD_NAME, hostile.MD_TITLE, "EvilDoc"), (hostile.HTML_NAME, hostile.HTML_TITLE, "EvilDoc"),
                 (hostile.TXT_NAME, "EvilTxt", "EvilTxt"))
    for name, title, body_word in documents:
        page.locator("#text-table [role=gridcell]", has_text=name).first.click(timeout=WAIT)
        details = wait_text(page, "#text-details", name)
        assert title in details, details  # the title (from the document) as text
        wait_text(page, "#text-rendered", body_word)
        watch.check(page, f"text: {name} rendered")
        page.get_by_role("tab", name="Raw", exact=True).click(timeout=WAIT)
        raw = wait_text(page, "#text-raw", body_word)
        assert (title if name != hostile.HTML_NAME else "example.com/srcset.png") in raw, raw  # markup as text
        watch.check(page, f"text: {name} raw")
        page.get_by_role("tab", name="Edit", exact=True).click(timeout=WAIT)
        page.wait_for_function("document.querySelector('#text-editor textarea').value.includes('example.com')",
                               timeout=WAIT)
        watch.check(page, f"text: {name} editor")
        page.get_by_role("tab", name="Rendered", exact=True).click(timeout=WAIT)
        why(page, "text", name)
        watch.check(page, f"text: why {name}")
        screenshot(page, f"hostile-text-{name.rsplit('.', 1)[1]}")
    ab_and_skipped(page, watch, "text", ".text-ab", hostile.BAD_TEXT)
    screenshot(page, "hostile-text")


def walk_videos(page: Any, watch: Watch) -> None:
    open_tab(page, "Videos")
    page.wait_for_function("document.querySelectorAll('#videos-gallery img').length === 2", timeout=WAIT)
    assert shown_literally(page, [hostile.VIDEO_NAME, hostile.VIDEO_NAME_2]) == []
    watch.check(page, "videos: gallery")
    seen = set()
    for index, name in enumerate(caption_names(page, "videos", 2)):
        page.locator("#videos-gallery img").nth(index).click(timeout=WAIT)
        wait_text(page, "#videos-details", name)
        wait_for(page, "() => document.querySelector('#videos-player video') !== null"  # the MKV is prepared first
                       " && !document.querySelector('#videos-player').innerText.includes('Preparing')",
                 None, "#videos-player", "held a video", WAIT)
        watch.check(page, f"videos: playing {name}")
        why(page, "videos", name)
        watch.check(page, f"videos: why {name}")
        seen.add(name)
    assert seen == {hostile.VIDEO_NAME, hostile.VIDEO_NAME_2}
    screenshot(page, "hostile-videos")
    ab_and_skipped(page, watch, "videos", "img", hostile.BAD_VIDEO)
    screenshot(page, "hostile-videos-panels")


def walk_train(page: Any, watch: Watch) -> None:
    open_tab(page, "Train")
    page.wait_for_selector("#train-start", state="visible", timeout=WAIT)
    page.fill("#train-budget input", "2")
    page.click("#train-start", timeout=WAIT)
    wait_for(page, "() => document.querySelector('#train-status').innerText.startsWith('Training')"
                   " || document.querySelector('#train-report').innerText.includes('won')",
             None, "#train-status", "started training", WAIT)  # torch imported, the training under way
    wait_text(page, "#train-report", "won")
    page.wait_for_function("document.querySelector('#train-versions').innerText.includes('✓')", timeout=WAIT)
    watch.check(page, "train: report")
    screenshot(page, "hostile-train")


def walk_wiki_and_settings(page: Any, watch: Watch, library: hostile.HostileLibrary) -> None:
    open_tab(page, "Wiki")
    page.wait_for_selector("#wiki-body", state="visible", timeout=WAIT)
    watch.check(page, "wiki")
    screenshot(page, "hostile-wiki")

    open_tab(page, "Settings")
    roots = wait_text(page, "#settings-roots", hostile.MUSIC_ROOT)
    assert str(library.images) in roots and str(library.music) in roots, roots  # the hostile roots, as text
    watch.check(page, "settings: roots")
    page.fill("#settings-folder textarea", hostile.ADD_ROOT_TYPED)
    page.click("#settings-add-root", timeout=WAIT)
    said = wait_text(page, "#settings-roots-message", "not added")
    assert hostile.ADD_ROOT_TYPED in said, said
    watch.check(page, "settings: a hostile folder typed and refused")
    screenshot(page, "hostile-settings")


def start_hostile_app(tmp_path: Path, library: hostile.HostileLibrary) -> tuple[Any, str]:
    return start_app(tmp_path / "data", library.images, music_roots=[str(library.music)],
                     text_roots=[str(library.text)], videos_roots=[str(library.videos)])


def test_a_hostile_library_makes_no_remote_request_and_injects_nothing_on_any_tab(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio-tmp"))
    library = hostile.make_hostile_library(tmp_path / "library")
    started = time.monotonic()
    app, url = start_hostile_app(tmp_path, library)
    try:
        session = app.context.session
        for kind, files in library.rated.items():  # Why lists rated neighbours by name; Train needs 5+ ratings
            for index, path in enumerate(files):
                session.rate(kind, str(path), float(2 + (index * 3) % 9))
        with browser_page(tmp_path) as page:
            watch = Watch.install(page)
            page.goto(url, timeout=WAIT)
            page.wait_for_selector("#images-gallery img", timeout=WAIT)
            watch.check(page, "opened")
            try:
                walk_images(page, watch, library)
                walk_music(page, watch)
                walk_text(page, watch)
                walk_videos(page, watch)
                walk_train(page, watch)
                walk_wiki_and_settings(page, watch, library)
            except Exception:
                # Injected markup can also break the page's own elements, so a wait fails first: report the leak
                # (if there is one) rather than the wait.
                watch.check(page, f"the step after {watch.steps[-1]!r}, which failed")
                raise
            assert shown_literally(page, [hostile.ADD_ROOT_TYPED]) == []
            watch.check(page, "end")
            total = len(watch.requests)
            print(f"\nhostile walk: {total} requests, {len(watch.remote)} left loopback, "
                  f"{len(watch.steps)} checked steps, {len(watch.inert_links)} inert document links, "
                  f"{time.monotonic() - started:.0f} s")
            assert total > 100, total  # the walk really happened
            assert [request for request in watch.requests if not is_loopback_url(request)] == []
            assert watch.inert_links <= {"http://example.com/link"}, watch.inert_links
    finally:
        app.close()
        time.sleep(0.2)


def test_the_detectors_see_a_remote_load_a_fetch_a_navigation_and_injected_markup(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The zeros above are not vacuous: on the same page, each kind of leak is caught."""
    from tests.media import write_png

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio-tmp"))
    photos = tmp_path / "photos"
    write_png(photos / hostile.IMAGE_NAMES[0])
    app, url = start_app(tmp_path / "data", photos)
    try:
        with browser_page(tmp_path) as page:
            watch = Watch.install(page)
            page.goto(url, timeout=WAIT)
            page.wait_for_selector("#images-gallery img", timeout=WAIT)
            watch.check(page, "clean page")  # nothing before the injections

            page.evaluate("""() => {
                const img = document.createElement('img');
                img.src = 'http://example.com/selftest.png';
                document.querySelector('#images-details').appendChild(img);
            }""")
            page.wait_for_function("window.__cspViolations.some((v) => v.includes('example.com/selftest.png'))",
                                   timeout=WAIT)
            fetched = page.evaluate("() => fetch('http://example.com/x').then(() => 'loaded', (e) => 'failed')")
            assert fetched == "failed"
            page.wait_for_function("window.__cspViolations.some((v) => v.includes('example.com/x'))", timeout=WAIT)
            state = watch.page_state(page)
            assert any("remote src" in line and "selftest.png" in line for line in state["found"]), state["found"]

            page.evaluate("""() => {
                const box = document.querySelector('#images-details');
                box.insertAdjacentHTML('beforeend', '<b>EvilCam</b><span onclick="1">x</span><iframe></iframe>');
                box.insertAdjacentHTML('beforeend', '<div style="background:url(\\\\\\\\example.com\\\\c.png)">c</div>');
                window.alert('selftest');
            }""")
            found = watch.page_state(page)["found"]
            for what in ("marker EvilCam", "event handler onclick", "<iframe>", "remote url() in style"):
                assert any(line.startswith(what) for line in found), (what, found)
            assert watch.page_state(page)["pwned"] == "alert(selftest)"

            other = page.context.new_page()  # a navigation is not the CSP's business: the route aborts it
            with pytest.raises(Exception):
                other.goto("http://example.com/selftest-navigation", timeout=WAIT)
            other.close()
            assert "http://example.com/selftest-navigation" in watch.remote
            assert any("example.com" in url for url in watch.requests)
            with pytest.raises(AssertionError, match="left the loopback address"):
                watch.check(page, "after the injections")
    finally:
        app.close()
        time.sleep(0.2)
