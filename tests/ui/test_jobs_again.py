"""A scan or embed asked for while one runs is not dropped: it runs right after, with every kind asked meanwhile."""
from __future__ import annotations

import time
from pathlib import Path

from anagnorisis.cli import open_library
from anagnorisis.config import load_settings
from anagnorisis.library.scan import scan
from anagnorisis.session import Session
from anagnorisis.ui.context import AppContext
from tests.ui.conftest import make_photos


def embedded(ctx: AppContext, kind: str) -> int:
    return ctx.session.store.read(lambda c: c.execute(
        "SELECT count(DISTINCT e.content_hash) FROM embeddings e JOIN files f USING (content_hash)"
        " WHERE f.kind = ?", [kind]).fetchone()[0])


def test_an_embed_asked_for_while_one_runs_runs_after_it(tmp_path: Path) -> None:
    make_photos(tmp_path / "photos", 3)
    notes = tmp_path / "notes"
    notes.mkdir()
    for index, text in enumerate(("tomatoes and compost", "sailing at dawn")):
        (notes / f"note {index}.md").write_text(f"# Note {index}\n\n{text}\n", encoding="utf-8")
    settings = load_settings({"data_dir": str(tmp_path / "data"), "images_roots": [str(tmp_path / "photos")],
                              "text_roots": [str(notes)]})
    store = open_library(settings)
    try:
        scan(store, None)
        ctx = AppContext(settings, Session(settings, store))
        with ctx.jobs.gpu_lock:  # the first embed waits here, running, while the text is asked for
            first = ctx.start_embed(["images"])
            assert ctx.start_embed(["text"]) is first  # the running one answers; text is not dropped
        deadline = time.monotonic() + 120
        while (embedded(ctx, "images"), embedded(ctx, "text")) != (3, 2) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (embedded(ctx, "images"), embedded(ctx, "text")) == (3, 2)
        while ctx.jobs.get("embed").state == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ctx.again == {}
    finally:
        store.close()
