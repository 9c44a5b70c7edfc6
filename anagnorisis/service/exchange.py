"""Ratings, plays and A/B choices in and out: export, import, and the original app's database."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from anagnorisis.service.errors import BadRequest, Failed
from anagnorisis.service.library import check_kind


def export(session: Any, path: str) -> dict[str, Any]:
    from anagnorisis.store.exchange import ExchangeError, ExchangeWriteError, export_file

    try:
        return export_file(session.store, Path(path))
    except ExchangeWriteError as error:
        raise Failed(str(error)) from None
    except ExchangeError as error:
        raise BadRequest(str(error)) from None


def import_export(session: Any, path: str) -> dict[str, Any]:
    from anagnorisis.store.exchange import ExchangeError, import_file

    try:
        result = import_file(session.store, Path(path))
    except ExchangeError as error:
        raise Failed(str(error)) from None
    session.invalidate()
    return result


def import_anagnorisis(session: Any, db: str, *, maps: list[tuple[str, str]],
                       media_dirs: dict[str, str]) -> dict[str, Any]:
    """Merge the original app's project.db: `maps` rewrite path prefixes, `media_dirs` say where a kind's
    relative paths start."""
    from anagnorisis.store.importer import NotAnAnagnorisisDatabase, import_anagnorisis as merge

    try:
        result = merge(session.store, Path(db), session.data_dir, maps=maps,
                       media_dirs={check_kind(kind): folder for kind, folder in media_dirs.items()})
    except NotAnAnagnorisisDatabase as error:
        raise Failed(str(error)) from None
    session.invalidate()
    return result
