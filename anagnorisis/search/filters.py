"""Filters of a search: folder, rated/unrated, rating ranges, extensions.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence


from anagnorisis.search.request import Record, SearchRequest


def apply_filters(records: Sequence[Record], request: SearchRequest) -> list[Record]:
    """The records passing --folder, --rated/--unrated, --rating, --model-rating and --ext (a validated request)."""
    tests: list[Callable[[Record], bool]] = []
    if request.folder:
        tests.append(_folder_test(request.folder))
    if request.rated is not None:
        wanted = bool(request.rated)
        tests.append(lambda r: (r.get("user_rating") is not None) == wanted)
    if request.rating is not None:
        tests.append(_range_test("user_rating", request.rating))  # type: ignore[arg-type]
    if request.model_rating is not None:
        tests.append(_range_test("model_rating", request.model_rating))  # type: ignore[arg-type]
    if request.ext:
        extensions = request.ext
        tests.append(lambda r: os.path.splitext(str(r.get("path", "")))[1].lower() in extensions)
    return [record for record in records if all(test(record) for test in tests)]


def _folder_test(folder: str) -> Callable[[Record], bool]:
    """A folder is absolute, or relative to the library root; it matches itself and everything below it."""
    expanded = os.path.expanduser(folder)
    if os.path.isabs(expanded):
        prefix = os.path.normpath(expanded)
        return lambda r: _is_under(str(r.get("path", "")), prefix)
    relative = os.path.normpath(expanded).strip(os.sep)
    if relative in ("", "."):
        return lambda r: True
    return lambda r: _is_under(str(r.get("relative_path", "")), relative)


def _is_under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip(os.sep) + os.sep)


def _range_test(key: str, bounds: tuple[float, float]) -> Callable[[Record], bool]:
    low, high = bounds
    return lambda r: r.get(key) is not None and low <= float(r[key]) <= high

