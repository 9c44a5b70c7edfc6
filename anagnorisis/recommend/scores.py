"""The recommendation ("radio") score of SPEC §5: rating × skip history × time since last played.

Pure functions over file records (the dicts of ``store.records.present_files``); nothing here touches the database.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

Record = Mapping[str, Any]
Scores = npt.NDArray[np.float64]

NEUTRAL_RATING = 5.0  # R for every file when the scored set has no user rating at all (SPEC §5)
MIN_RATING_FOR_SCORE = 0.1  # a 0 rating still leaves a tiny chance, so radio at a temperature can play it
SKIP_OFFSET = 5.0  # plays minus skips is shifted by this before the sigmoid: a fresh file sits at sigmoid(1)
SKIP_SCALE = 5.0  # and divided by this: every five net skips move the logit by one, so no file ever drops to 0


def sigmoid(x: npt.ArrayLike) -> Scores:
    """The logistic function, elementwise."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def recommendation_scores(records: Sequence[Record], kind: str) -> Scores:
    """One score per record, SPEC §5: R_adj · S_skip · S_time over the set of records passed in.

    For kinds without plays (images, text) the score is R_adj · sigmoid(1): only the rating matters.
    """
    if not records:
        return np.zeros(0, dtype=np.float64)
    rating_part = adjusted_ratings(records)
    if not is_played(kind):
        return rating_part * float(sigmoid(1.0))
    return rating_part * skip_factors(records) * time_factors(records)


def is_played(kind: str) -> bool:
    """Whether files of a kind are played, so that plays, skips and last-played times mean something."""
    from anagnorisis.kinds.registry import find_kind

    media_kind = find_kind(kind)
    return bool(media_kind and media_kind.played)


def effective_ratings(records: Sequence[Record]) -> Scores:
    """R: the user's rating, else the model's, else the mean user rating of the set (5 when nobody rated)."""
    user = [_number(record.get("user_rating")) for record in records]
    rated = [value for value in user if value is not None]
    fallback = float(np.mean(rated)) if rated else NEUTRAL_RATING
    ratings = np.empty(len(records), dtype=np.float64)
    for i, (record, own) in enumerate(zip(records, user)):
        model = _number(record.get("model_rating"))
        ratings[i] = own if own is not None else model if model is not None else fallback
    return ratings


def adjusted_ratings(records: Sequence[Record]) -> Scores:
    """R_adj = (max(0.1, R) / 10)²: squaring makes a 9 twice as likely as a 6.4, not just 40 % more."""
    return (np.maximum(MIN_RATING_FOR_SCORE, effective_ratings(records)) / 10.0) ** 2


def skip_factors(records: Sequence[Record]) -> Scores:
    """S_skip = sigmoid((5 + full_plays − skips) / 5); missing counts are zero."""
    plays = np.array([_number(record.get("full_plays")) or 0.0 for record in records], dtype=np.float64)
    skips = np.array([_number(record.get("skips")) or 0.0 for record in records], dtype=np.float64)
    return sigmoid((SKIP_OFFSET + plays - skips) / SKIP_SCALE)


def time_factors(records: Sequence[Record]) -> Scores:
    """S_time: played files ranked by last play, newest rank 0, ties share their average rank; rank / (N − 1).

    A file never played gets 1, and so does the only file of a set of one.
    """
    count = len(records)
    factors = np.ones(count, dtype=np.float64)
    if count <= 1:
        return factors
    played_at = [parse_timestamp(record.get("last_played")) for record in records]
    played = [i for i, moment in enumerate(played_at) if moment is not None]
    if played:
        newest_first = -np.array([played_at[i] for i in played], dtype=np.float64)
        from scipy.stats import rankdata  # imported here: scipy.stats costs ~0.8 s at app start

        ranks = rankdata(newest_first, method="average") - 1.0  # 0-based; equal times share the mean rank
        factors[played] = ranks / (count - 1)
    return factors


def parse_timestamp(value: Any) -> float | None:
    """Epoch seconds from an ISO-8601 string, a datetime or a number; naive times are read as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    return None


def _number(value: Any) -> float | None:
    """A finite float, or None for a missing or non-numeric value."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
