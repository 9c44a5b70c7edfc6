"""A fifth media kind, registered in one place (the kinds registry), is accepted by the CLI, scanned, searchable
with its own sort keys, and listed in Settings and in the app's tabs (SPEC §13)."""
from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any, Iterator

import pytest

from anagnorisis.kinds import MediaError, MediaKind, Probe, kind_names, register, unregister

KIND = "drawings"


def read_drawing(path: Path) -> Probe:
    """Width and height of an SVG drawing, from its root element."""
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError) as error:
        raise MediaError(f"not a readable SVG drawing: {error}") from None
    if not root.tag.endswith("svg"):
        raise MediaError("not an SVG drawing")
    try:
        return Probe({"width": int(root.get("width", "")), "height": int(root.get("height", ""))})
    except ValueError:
        raise MediaError("an SVG drawing without a whole-number width and height") from None


@pytest.fixture
def drawings_kind() -> Iterator[MediaKind]:
    kind_names()  # the built-in kinds first, so the fifth comes after them as a user's plug-in would
    kind = register(MediaKind(name=KIND, extensions=frozenset({".svg"}), encoder="siglip",
                              fallback_encoder="basic-image", read_metadata=read_drawing,
                              extra_sorts=("resolution", "proportion"), noun=("drawing", "drawings"),
                              default_model="google/siglip-base-patch16-224", tab=None))
    try:
        yield kind
    finally:
        unregister(KIND)


def svg(path: Path, width: int, height: int) -> Path:
    path.write_text(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
                    f'<rect width="{width}" height="{height}" fill="teal"/></svg>', encoding="utf-8")
    return path


def cli(data: Path, *argv: str) -> tuple[int, dict[str, Any]]:
    from anagnorisis.cli import run

    out, err = io.StringIO(), io.StringIO()
    code = run(["--data-dir", str(data), "--json", *argv], stdout=out, stderr=err)
    return code, json.loads(out.getvalue() or "{}")


def test_a_fifth_kind_is_accepted_scanned_searched_and_listed(drawings_kind: MediaKind, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANAGNORISIS_OFFLINE", "1")
    folder = tmp_path / "drawings"
    folder.mkdir()
    svg(folder / "wide harbour.svg", 400, 100)
    svg(folder / "tall lighthouse.svg", 100, 300)
    svg(folder / "small square.svg", 50, 50)
    (folder / "broken.svg").write_text("<svg width='1'", encoding="utf-8")
    data = tmp_path / "data"

    code, added = cli(data, "library", "add", KIND, str(folder))
    assert code == 0 and {"kind": KIND, "path": str(folder.resolve()), "from_config": False} in added["roots"]

    code, report = cli(data, "scan", KIND)
    assert code == 0
    assert report["new"] == 3
    assert [bad["path"].endswith("broken.svg") for bad in report["bad"]] == [True]

    code, found = cli(data, "search", KIND, "--sort", "resolution")
    assert code == 0 and found["total"] == 3
    assert [Path(item["path"]).name for item in found["results"]] == [
        "wide harbour.svg", "tall lighthouse.svg", "small square.svg"]
    code, found = cli(data, "search", KIND, "--sort", "proportion", "--order", "asc")
    assert [Path(item["path"]).name for item in found["results"]][0] == "tall lighthouse.svg"
    code, refused = cli(data, "search", KIND, "--sort", "length")
    assert code == 2 and "does not apply to drawings" in refused["error"]["message"]
    code, found = cli(data, "search", KIND, "lighthouse", "--mode", "name")
    assert code == 0 and [Path(item["path"]).name for item in found["results"]][:1] == ["tall lighthouse.svg"]

    drawing = str(folder / "wide harbour.svg")
    code, rated = cli(data, "rate", drawing, "8")
    assert code == 0 and rated["record"]["kind"] == KIND and rated["record"]["user_rating"] == 8
    code, found = cli(data, "search", KIND, "--rated")
    assert [Path(item["path"]).name for item in found["results"]] == ["wide harbour.svg"]

    code, refused = cli(data, "scan", "sculptures")
    assert code == 2 and "drawings" in refused["error"]["message"]  # the error lists the kinds there are


def test_a_fifth_kind_has_its_settings_and_is_listed_in_the_settings_tab(drawings_kind: MediaKind, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import gradio as gr

    from anagnorisis.config import load_settings, noun, settings_table, ui_settings
    from anagnorisis.embed.registry import known_models
    from anagnorisis.ui.app import build_app, tab_names

    names = {setting.name for setting in settings_table()}
    assert {"drawings_model", "drawings_roots"} <= names and "drawings_model" in ui_settings()
    monkeypatch.setenv("ANAGNORISIS_DRAWINGS_MODEL", "openai/clip-vit-base-patch32")
    assert load_settings({}).model_for(KIND) == "openai/clip-vit-base-patch32"
    assert noun(KIND, 2) == "drawings"
    assert "Settings" in tab_names() and len(tab_names()) == 7  # no tab of its own: tab=None

    folder = tmp_path / "drawings"
    folder.mkdir()
    svg(folder / "one.svg", 10, 10)
    monkeypatch.setenv("ANAGNORISIS_OFFLINE", "1")
    app = build_app(str(tmp_path / "data"), drawings_roots=[str(folder)])
    try:
        from anagnorisis.ui.settings import roots_table

        dropdowns = [block for block in app.blocks.values() if isinstance(block, gr.Dropdown)]
        kind_menus = [menu for menu in dropdowns if menu.label in ("Kind", "Media kind")]
        assert kind_menus and all(KIND in [value for _label, value in menu.choices] for menu in kind_menus)
        assert [KIND, str(folder.resolve()), "settings"] in roots_table(app.context)
        assert any(row["kind"] == KIND for row in known_models(app.context.settings))  # the models it can use
    finally:
        app.context.session.store.close()
