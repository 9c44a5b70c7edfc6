"""Anagnorisis: a local, private recommendation system for your own media.

The core (kinds, library, store, embed, search, taste, recommend, media, service) never imports a face; the
faces are `anagnorisis.cli` and `anagnorisis.ui` (`from anagnorisis.ui import build_app` for a notebook)."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
