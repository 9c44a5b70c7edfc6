"""The Gradio face: tabs, named endpoints, the owner lock. `build_app()` is the whole app as a Gradio Blocks."""
from __future__ import annotations

from typing import Any


def build_app(*args: Any, **kwargs: Any) -> Any:
    """The Gradio app over a data dir (Gradio loads on the first call, not on import)."""
    from anagnorisis.ui.app import build_app as build

    return build(*args, **kwargs)


__all__ = ["build_app"]
