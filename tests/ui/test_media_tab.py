"""The media tabs are built in two steps (render: typed handles; listen: the events) over one shared skeleton
(ui/media_tab.py), and the app builds every tab through them."""
from __future__ import annotations

from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Iterator

import gradio as gr
import pytest

from anagnorisis.ui import app, images, media_tab, music, text, train, videos
from anagnorisis.ui.context import AppContext, Loader
from tests.ui.test_learn import context_over

MEDIA_TABS = (images, music, text, videos)


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[AppContext]:
    context = context_over(tmp_path / "data")
    try:
        yield context
    finally:
        context.session.store.close()


def public_events(blocks: gr.Blocks) -> list[Any]:
    return [dependency for dependency in blocks.fns.values() if dependency.api_visibility != "private"]


@pytest.mark.parametrize("module", MEDIA_TABS, ids=lambda module: module.__name__.rsplit(".", 1)[-1])
def test_a_media_tab_renders_typed_handles_and_listen_wires_them_to_a_loader(ctx: AppContext, module: Any) -> None:
    kind = module.KIND
    with gr.Blocks() as blocks:
        handles = module.render(ctx)
        assert not blocks.fns  # render builds, it wires nothing
        loader = module.listen(ctx, handles)
    assert is_dataclass(handles) and isinstance(handles.media, media_tab.MediaHandles)
    shared = handles.media
    assert shared.kind == kind and shared.summary.elem_id == f"{kind}-summary"
    assert shared.slider.elem_id == f"{kind}-rating" and shared.saved.elem_id == f"{kind}-saved"
    assert shared.rate_next.elem_id == f"{kind}-rate-next" and shared.why_text.elem_id == f"{kind}-why"
    assert shared.ab.panel.elem_id == f"{kind}-ab" and shared.skipped.accordion.elem_id == f"{kind}-skipped-panel"
    assert all(getattr(handles, f.name) is not None for f in fields(handles))
    assert isinstance(loader, Loader) and loader.outputs == shared.search_outputs()
    assert loader.inputs == shared.search_inputs() and loader.inputs[6] is shared.pager.page
    assert [also.fn for also in loader.also] == [shared.skipped.refresh]
    assert len(blocks.fns) > 20
    assert not public_events(blocks) or module is music  # only music's /play endpoint is an API
    if module is music:
        assert [dependency.api_name for dependency in public_events(blocks)] == ["play"]


def test_the_app_builds_a_tab_through_render_then_listen(ctx: AppContext) -> None:
    with gr.Blocks():
        assert isinstance(app.render_tab(train, ctx), Loader)
        assert isinstance(app.render_tab(images, ctx), Loader)


def test_a_file_action_with_nothing_selected_asks_for_a_selection(ctx: AppContext) -> None:
    assert images.file_action(ctx, images.View([]), None, "trash", "") == "Select an image first."
    refused = media_tab.act_on_file(ctx, "images", str(ctx.settings.data_dir) + "/absent.jpg", "rename", "x.jpg")
    assert refused.startswith("not done: ")
