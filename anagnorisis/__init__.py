"""Anagnorisis: a local, private recommendation system for your own media."""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def build_app(*args: Any, **kwargs: Any) -> Any:
    """The Gradio app (imported lazily so the CLI never pays for Gradio)."""
    from anagnorisis.ui.app import build_app as _build_app

    return _build_app(*args, **kwargs)


__all__ = ["build_app", "__version__"]
