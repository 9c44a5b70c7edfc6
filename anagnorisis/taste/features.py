"""Features beyond the embedding (SPEC §6, §10): what a file says about itself, as named groups of columns.

A file's fields are a plain dict read from the store (`files.metadata` as scanned, the folder names of its
path, its plays): `{"genre": "Jazz, Soul", "artist": "Wansti", "year": 1994, "folder": ["live", "1994"],
"full_plays": 3, "skips": 0}`. FIELD_GROUPS turns them into named groups of columns:

- categorical fields (genre, artist, album, camera, folder) become multi-hot columns, one per value that at
  least MIN_CATEGORY_COUNT of the fitting files carry (a value seen on one or two rated files teaches
  nothing that generalises and would only be memorised);
- numbers (year, length) become a standardised value, its square (taste is often for a middle era, not a
  trend) and a column saying the number is missing;
- play history (full plays, skips) becomes log(1 + count) of each.

Every column is standardised over the fitting files (mean 0, sd 1), so a block of zeros means "as an average
file": a model given no fields predicts as if they were average. taste/train.py decides per group, by
cross-validation, whether it is kept (a group is only as good as it proves to be).

Play history also gives weak ratings (`weak_ratings`): a file the user never rated but played or skipped
gets a rating label below the weight of a real one.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

FieldRow = Mapping[str, Any]

# A categorical value becomes a column only when at least this many of the fitting (rated) files carry it.
MIN_CATEGORY_COUNT = 3
# At most this many columns per categorical group (the most frequent values): bounds the cost at 10k ratings.
MAX_CATEGORIES = 100
# Multi-valued fields ("Rock, Pop", "Action|Comedy") are split on these.
_VALUE_SEPARATORS = re.compile(r"\s*[,;|/]\s*")
_YEAR = re.compile(r"(\d{4})")


@dataclass(frozen=True)
class GroupSpec:
    """A named group: the fields it reads (first present wins, or all of them for `categories`) and how."""

    name: str
    fields: tuple[str, ...]
    how: str  # "categories", "number", "year", "counts"


FIELD_GROUPS: tuple[GroupSpec, ...] = (
    GroupSpec("genre", ("genre", "genres"), "categories"),
    GroupSpec("artist", ("artist", "album_artist"), "categories"),
    GroupSpec("album", ("album",), "categories"),
    GroupSpec("camera", ("camera",), "categories"),
    GroupSpec("folder", ("folder",), "categories"),
    GroupSpec("year", ("year", "date"), "year"),
    GroupSpec("length", ("duration",), "number"),
    GroupSpec("plays", ("full_plays", "skips"), "counts"),
)

# -- play history as weak ratings ------------------------------------------------------------------
# A file the user did not rate but played gets a weak label: the user's mean rating moved by one standard
# deviation of their ratings times the net share of full plays, (full - skips) / (full + skips): skipped
# only -> mean - 1 sd, played through only -> mean + 1 sd. Its weight, relative to a real rating (1), grows with
# the evidence up to WEAK_RATING_WEIGHT at WEAK_FULL_EVENTS plays or skips: a skip can mean "not now", a full
# play "left running", so even many of them count for less than a third of one rating the user gave.
WEAK_RATING_WEIGHT = 0.3
WEAK_FULL_EVENTS = 3


def weak_ratings(y: np.ndarray, plays: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(label, weight) per row from plays (rows x [full plays, skips]); NaN label / 0 weight where the row is
    rated (a real rating always wins) or never played."""
    y = np.asarray(y, dtype=np.float64)
    labels, weights = np.full(len(y), np.nan), np.zeros(len(y))
    rated = np.isfinite(y)
    if plays is None or not rated.any() or len(plays) != len(y):
        return labels, weights
    full, skips = np.asarray(plays, dtype=np.float64).T
    events = full + skips
    weak = ~rated & (events > 0)
    if not weak.any():
        return labels, weights
    mean, sd = float(y[rated].mean()), max(float(y[rated].std()), 1.0)
    net = (full[weak] - skips[weak]) / events[weak]
    labels[weak] = np.clip(mean + net * sd, 0.0, 10.0)
    weights[weak] = WEAK_RATING_WEIGHT * np.minimum(events[weak], WEAK_FULL_EVENTS) / WEAK_FULL_EVENTS
    return labels, weights


def plays_of(fields: Sequence[FieldRow] | None, n: int) -> np.ndarray | None:
    """(n, 2) full plays and skips from the field rows; None when no row has any."""
    if not fields:
        return None
    plays = np.array([[_count(row.get("full_plays")), _count(row.get("skips"))] for row in fields], dtype=np.float64)
    return plays if len(plays) == n and plays.any() else None


# -- encoding --------------------------------------------------------------------------------------

@dataclass
class _Group:
    name: str
    how: str
    fields: tuple[str, ...]
    values: list[str] = field(default_factory=list)  # categories: the vocabulary
    centre: float = 0.0  # numbers: mean and sd of the value over the fitting rows
    spread: float = 1.0
    column_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    column_sd: np.ndarray = field(default_factory=lambda: np.ones(0))

    def raw(self, rows: Sequence[FieldRow]) -> np.ndarray:
        if self.how == "categories":
            index = {value: i for i, value in enumerate(self.values)}
            out = np.zeros((len(rows), len(self.values)), dtype=np.float64)
            for r, row in enumerate(rows):
                for value in _categories(row, self.fields):
                    if value in index:
                        out[r, index[value]] = 1.0
            return out
        if self.how == "counts":
            return np.log1p(np.array([[_count(row.get(name)) for name in self.fields] for row in rows],
                                     dtype=np.float64).reshape(len(rows), len(self.fields)))
        numbers = np.array([_number(row, self.fields, self.how) for row in rows], dtype=np.float64)
        present = np.isfinite(numbers)
        z = np.where(present, (numbers - self.centre) / self.spread, 0.0)
        return np.stack([z, z * z, (~present).astype(np.float64)], axis=1)

    def columns(self) -> int:
        return len(self.column_mean)


@dataclass
class FieldEncoder:
    """Fitted field groups: rows of fields -> (rows, columns) standardised matrix, and each group's columns."""

    groups: list[_Group]

    @classmethod
    def fit(cls, rows: Sequence[FieldRow], specs: Sequence[GroupSpec] = FIELD_GROUPS) -> "FieldEncoder":
        """Groups that the fitting rows (the rated files) give at least one informative column."""
        groups = []
        for spec in specs:
            group = _Group(spec.name, spec.how, spec.fields)
            if spec.how == "categories":
                group.values = _vocabulary(rows, spec.fields)
                if not group.values:
                    continue
            elif spec.how in ("number", "year"):
                numbers = np.array([_number(row, spec.fields, spec.how) for row in rows], dtype=np.float64)
                present = numbers[np.isfinite(numbers)]
                if len(present) < MIN_CATEGORY_COUNT or present.std() == 0:
                    continue
                group.centre, group.spread = float(present.mean()), float(present.std())
            raw = group.raw(rows)
            sd = raw.std(axis=0)
            if not (sd > 0).any():
                continue
            keep = sd > 0
            group.column_mean, group.column_sd = raw.mean(axis=0), np.where(keep, sd, 1.0)
            group.column_sd[~keep] = np.inf  # a constant column encodes to 0
            groups.append(group)
        return cls(groups)

    @property
    def names(self) -> list[str]:
        return [group.name for group in self.groups]

    @property
    def width(self) -> int:
        return sum(group.columns() for group in self.groups)

    def encode(self, rows: Sequence[FieldRow]) -> np.ndarray:
        """(rows, width) float32: every kept group's standardised columns, in order."""
        blocks = [(group.raw(rows) - group.column_mean) / group.column_sd for group in self.groups]
        return (np.hstack(blocks) if blocks else np.zeros((len(rows), 0))).astype(np.float32)

    def only(self, names: Sequence[str]) -> "FieldEncoder":
        return FieldEncoder([group for group in self.groups if group.name in names])

    def describe(self) -> str:
        return ", ".join(f"{group.name} ({group.columns()} column{'s' if group.columns() != 1 else ''})"
                         for group in self.groups)

    def state(self) -> dict[str, Any]:
        """Nested dicts of arrays, numbers and lists of strings (what taste/persist.py saves)."""
        return {"order": self.names,
                "groups": {g.name: {"how": g.how, "fields": list(g.fields), "values": list(g.values),
                                    "centre": g.centre, "spread": g.spread, "column_mean": g.column_mean,
                                    "column_sd": g.column_sd} for g in self.groups}}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "FieldEncoder":
        groups = [(name, state["groups"][name]) for name in state["order"]]
        return cls([_Group(str(name), str(g["how"]), tuple(g["fields"]), list(g["values"]), float(g["centre"]),
                           float(g["spread"]), np.asarray(g["column_mean"], dtype=np.float64),
                           np.asarray(g["column_sd"], dtype=np.float64)) for name, g in groups])


def _vocabulary(rows: Sequence[FieldRow], fields: tuple[str, ...]) -> list[str]:
    counts: dict[str, int] = {}
    for row in rows:
        for value in _categories(row, fields):
            counts[value] = counts.get(value, 0) + 1
    frequent = [value for value, count in counts.items() if count >= MIN_CATEGORY_COUNT]
    return sorted(frequent, key=lambda value: (-counts[value], value))[:MAX_CATEGORIES]


def _categories(row: FieldRow, fields: tuple[str, ...]) -> set[str]:
    """The row's values of these fields, split and case-folded ("Rock, Pop" -> {"rock", "pop"})."""
    found: set[str] = set()
    for name in fields:
        value = row.get(name)
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if item is None:
                continue
            for part in _VALUE_SEPARATORS.split(str(item)):
                part = " ".join(part.split()).casefold()
                if part:
                    found.add(part)
    return found


def _number(row: FieldRow, fields: tuple[str, ...], how: str) -> float:
    for name in fields:
        value = row.get(name)
        if value is None or isinstance(value, bool):
            continue
        if how == "year":
            found = _YEAR.search(str(value))
            if found and 1000 <= int(found.group(1)) <= 2999:
                return float(found.group(1))
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            return math.log1p(max(number, 0.0)) if how == "number" else number
    return math.nan


def _count(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) and number > 0 else 0.0
