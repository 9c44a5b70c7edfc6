"""The sort keys: each key's value per record, the reason shown for it, and the ranking by it.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from anagnorisis.search.vector_index import VectorIndex
from anagnorisis.recommend.scores import MIN_RATING_FOR_SCORE, parse_timestamp, recommendation_scores
from anagnorisis.search.draw import MIN_STRENGTH, NO_VALUE_STRENGTH, order_by_values, rank_strengths
from anagnorisis.search.duplicates import rank_duplicates
from anagnorisis.search.request import Floats, Record, SearchRequest, Ranking, registered_kind


def rank_by_sort(
    records: Sequence[Record],
    sort: str,
    request: SearchRequest,
    *,
    index: VectorIndex | None = None,
    duplicate_threshold: float | None = None,
) -> Ranking:
    """The ranking for a sort key (a canonical, validated one) over the filtered records."""
    descending = request.order == "desc"
    if sort == "duplicates":
        return rank_duplicates(records, descending, index, duplicate_threshold)
    if sort == "unrated-first":
        return _rank_unrated_first(records, descending)
    values, reason = _sort_values(records, sort, request)
    paths = [str(record.get("path", "")) for record in records]
    order = order_by_values(values, paths, descending)
    has_value = ~np.isnan(values)
    strengths = rank_strengths(order, has_value)
    if descending and sort in ("rating", "recommendation"):  # value-based strengths (SPEC §4)
        by_value = np.maximum(MIN_RATING_FOR_SCORE, values) / 10.0 if sort == "rating" else values
        strengths = np.where(has_value, np.maximum(np.nan_to_num(by_value), MIN_STRENGTH), NO_VALUE_STRENGTH)
    scores = [None if math.isnan(v) else float(v) for v in values]
    return Ranking(list(records), order, strengths, scores, lambda i: reason(records[i], values[i]))


def _sort_values(records: Sequence[Record], sort: str, request: SearchRequest) -> tuple[Floats, Callable[[Record, float], str]]:
    """The value of each record under a plain sort key (NaN = no value) and the reason writer for it."""
    if sort == "recommendation":
        return recommendation_scores(records, request.kind), lambda r, v: f"recommendation {v:.3f}"
    if sort == "random":
        values = np.random.default_rng(request.seed).random(len(records))
        return values, lambda r, v: f"random order (seed {request.seed})"
    extract, reason = _VALUE_KEYS[sort]
    if sort == "length" and registered_kind(request.kind).length == "characters":
        extract, reason = _text_length, _text_length_reason
    values = np.array([_finite(extract(record)) for record in records], dtype=np.float64)
    return values, reason


def _rank_unrated_first(records: Sequence[Record], descending: bool) -> Ranking:
    """Unrated files newest first, then rated ones by their rating (both reversed by --order asc)."""
    paths = [str(record.get("path", "")) for record in records]
    unrated = np.array([record.get("user_rating") is None for record in records], dtype=bool)
    dates = np.array([_finite(_date(record)) for record in records], dtype=np.float64)
    ratings = np.array([_finite(record.get("user_rating")) for record in records], dtype=np.float64)
    date_order = order_by_values(dates, paths, descending)
    rating_order = order_by_values(ratings, paths, descending)
    order = np.concatenate([date_order[unrated[date_order]], rating_order[~unrated[rating_order]]])
    strengths = rank_strengths(order, np.ones(len(records), dtype=bool))
    scores: list[float | None] = [None if u else float(r) for u, r in zip(unrated, ratings)]

    def reason(i: int) -> str:
        return f"unrated, {_date_reason(records[i], dates[i])}" if unrated[i] else _rating_reason(records[i], ratings[i])

    return Ranking(list(records), order, strengths, scores, reason)


def _finite(value: Any) -> float:
    """A float, NaN for missing or non-numeric values."""
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def _metadata(record: Record) -> Mapping[str, Any]:
    metadata = record.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _rating(record: Record) -> float | None:
    own = record.get("user_rating")
    return own if own is not None else record.get("model_rating")


def _width_height(record: Record) -> tuple[float, float]:
    metadata = _metadata(record)
    return _finite(metadata.get("width")), _finite(metadata.get("height"))


def _resolution(record: Record) -> float:
    width, height = _width_height(record)
    return width * height if width > 0 and height > 0 else math.nan


def _proportion(record: Record) -> float:
    width, height = _width_height(record)
    return width / height if width > 0 and height > 0 else math.nan


def _duration(record: Record) -> float:
    return _finite(_metadata(record).get("duration"))


def _text_length(record: Record) -> float:
    metadata = _metadata(record)
    chars = _finite(metadata.get("chars"))
    return chars if not math.isnan(chars) else _finite(metadata.get("lines"))


_YEAR_ONLY = re.compile(r"^\d{4}$")


_YEAR_MONTH = re.compile(r"^\d{4}-\d{2}$")


_EXIF_DATE = re.compile(r"^(\d{4}):(\d{2}):(\d{2})(.*)$")


def parse_metadata_date(value: Any) -> float | None:
    """Epoch seconds from a tag or EXIF date: ISO-8601 (with or without offset), 'YYYY:MM:DD hh:mm:ss', a year
    or 'YYYY-MM'; naive times are read as UTC."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) and value > 3000 else parse_metadata_date(str(int(value)))
    text = str(value).strip()
    if _YEAR_ONLY.match(text):
        text += "-01-01"
    elif _YEAR_MONTH.match(text):
        text += "-01"
    exif = _EXIF_DATE.match(text)
    if exif:
        text = f"{exif[1]}-{exif[2]}-{exif[3]}{exif[4]}"
    return parse_timestamp(text)


def _date(record: Record) -> float | None:
    """The date of a file: its metadata date (EXIF or tag), else its modification time."""
    dated = parse_metadata_date(_metadata(record).get("date"))
    return dated if dated is not None else _finite(record.get("mtime"))


def _format_number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _rating_reason(record: Record, value: float) -> str:
    if math.isnan(value):
        return "no rating yet"
    own = record.get("user_rating") is not None
    return f"rating {_format_number(value)} ({'yours' if own else 'model'})"


def _model_rating_reason(record: Record, value: float) -> str:
    if math.isnan(value):
        return "no model rating yet"
    return f"model rating {value:.1f}{' (stale)' if record.get('model_rating_stale') else ''}"


def _uncertainty_reason(record: Record, value: float) -> str:
    return "no uncertainty yet" if math.isnan(value) else f"uncertainty {value:.2f}"


def _size_reason(record: Record, value: float) -> str:
    if math.isnan(value):
        return "size unknown"
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return ""


def _duration_reason(record: Record, value: float) -> str:
    if math.isnan(value):
        return "length unknown"
    minutes, seconds = divmod(round(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"length {hours}:{minutes:02d}:{seconds:02d}" if hours else f"length {minutes}:{seconds:02d}"


def _text_length_reason(record: Record, value: float) -> str:
    if math.isnan(value):
        return "length unknown"
    unit = "characters" if _metadata(record).get("chars") is not None else "lines"
    return f"length {int(value):,} {unit}"


def _resolution_reason(record: Record, value: float) -> str:
    width, height = _width_height(record)
    return "resolution unknown" if math.isnan(value) else f"{int(width)}×{int(height)}"


def _proportion_reason(record: Record, value: float) -> str:
    width, height = _width_height(record)
    return "proportion unknown" if math.isnan(value) else f"proportion {value:.2f} ({int(width)}×{int(height)})"


def _date_reason(record: Record, value: float) -> str:
    if math.isnan(value):
        return "date unknown"
    day = datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%d")
    return f"dated {day}" if parse_metadata_date(_metadata(record).get("date")) is not None else f"modified {day}"


_VALUE_KEYS: dict[str, tuple[Callable[[Record], Any], Callable[[Record, float], str]]] = {
    "rating": (_rating, _rating_reason),
    "model-rating": (lambda r: r.get("model_rating"), _model_rating_reason),
    "most-uncertain": (lambda r: r.get("uncertainty"), _uncertainty_reason),
    "file-size": (lambda r: r.get("size"), _size_reason),
    "length": (_duration, _duration_reason),
    "resolution": (_resolution, _resolution_reason),
    "proportion": (_proportion, _proportion_reason),
    "date": (_date, _date_reason),
}

