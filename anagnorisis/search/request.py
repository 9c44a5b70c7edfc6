"""A search request and its result (SPEC §1 `search`): options, validation, errors, the JSON document.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt



Record = Mapping[str, Any]


Floats = npt.NDArray[np.float64]


Order = npt.NDArray[np.int64]


TextEncoder = Callable[[str], npt.ArrayLike]


PathEncoder = Callable[[str], "npt.ArrayLike | None"]


MODES = ("auto", "name", "meaning", "similar")


ORDERS = ("desc", "asc")


SORT_KEYS = (
    "rating", "model-rating", "recommendation", "most-uncertain", "file-size", "length", "resolution",
    "proportion", "date", "random", "unrated-first", "duplicates",
)


DEFAULT_SORT = "date"  # with no QUERY and no --sort (SPEC §1)


DEFAULT_LIMIT = 24


# Sort keys that need a property only some kinds have; every other key applies to every kind.
KIND_SPECIFIC_SORTS = frozenset({"length", "resolution", "proportion"})


class UsageError(ValueError):
    """A request that cannot be served as asked; the message says what to change (CLI exit status 2)."""


class MeaningSearchUnavailable(UsageError):
    """Meaning search was asked of an encoder without a text tower (the basic feature encoders)."""


class SearchError(RuntimeError):
    """A valid request that cannot be served now (e.g. the file is not embedded yet); CLI exit status 1."""


@dataclass(frozen=True)
class SearchRequest:
    """The options of ``search KIND [QUERY]``, with the CLI's names and defaults (SPEC §1)."""

    kind: str
    query: str | None = None
    mode: str = "auto"
    sort: str | None = None
    order: str = "desc"
    temperature: float = 0.0
    seed: int = 0
    offset: int = 0
    limit: int = DEFAULT_LIMIT
    folder: str | None = None
    rated: bool | None = None
    rating: tuple[float, float] | str | None = None
    model_rating: tuple[float, float] | str | None = None
    ext: str | Sequence[str] | AbstractSet[str] | None = None


@dataclass
class SearchResult:
    """What ``search --json`` prints; ``results`` are the records of the page plus ``score`` and ``reason``."""

    kind: str
    query: str | None
    mode: str | None
    sort: str | None
    order: str
    temperature: float
    seed: int
    offset: int
    limit: int
    total: int
    not_indexed: int
    results: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of SPEC §1 (bytes-valued keys such as ``path_bytes`` are left out)."""
        return {
            "kind": self.kind, "query": self.query, "mode": self.mode, "sort": self.sort, "order": self.order,
            "temperature": self.temperature, "seed": self.seed, "offset": self.offset, "limit": self.limit,
            "total": self.total, "not_indexed": self.not_indexed,
            "results": [_json_safe(item) for item in self.results],
        }


@dataclass
class Ranking:
    """Candidates of one search, their T = 0 order, their strengths for sampling, and how to explain them."""

    items: list[Record]
    order: Order  # indices into items, best first in the chosen order
    strengths: Floats  # s in (0, 1] per item (SPEC §4), used only at T > 0
    scores: list[float | None]
    reasons: Callable[[int], str]
    total: int | None = None  # candidates in all, when only the top of them were fetched (ANN, one page)


def validate_request(request: SearchRequest) -> SearchRequest:
    """The request with canonical values (sort key with hyphens, parsed ranges), or UsageError."""
    kind = request.kind
    if not registered_kind(kind):
        from anagnorisis.kinds.registry import kind_names

        raise UsageError(f"unknown kind {kind!r}; expected one of {', '.join(kind_names())}")
    mode = (request.mode or "auto").strip().lower()
    if mode not in MODES:
        raise UsageError(f"unknown mode {request.mode!r}; expected one of {', '.join(MODES)}")
    order = (request.order or "desc").strip().lower()
    if order not in ORDERS:
        raise UsageError(f"unknown order {request.order!r}; expected desc or asc")
    query = request.query.strip() if request.query is not None else None
    query = query or None
    sort = canonical_sort_key(request.sort, kind) if request.sort not in (None, "") else None
    if sort is not None and query is not None:
        raise UsageError("--sort cannot be combined with a QUERY: a query ranks by how well files match it "
                         "(use filters to narrow it, or drop the QUERY to sort)")
    return replace(
        request, mode=mode, order=order, query=query, sort=sort,
        temperature=_non_negative_float(request.temperature, "temperature"),
        seed=_non_negative_int(request.seed, "seed"), offset=_non_negative_int(request.offset, "offset"),
        limit=_non_negative_int(request.limit, "limit"),
        rating=parse_rating_range(request.rating, "--rating"),
        model_rating=parse_rating_range(request.model_rating, "--model-rating"),
        ext=_extensions(request.ext),
    )


def canonical_sort_key(key: str, kind: str) -> str:
    """``key`` with spaces/underscores read as hyphens; UsageError if unknown or not applicable to ``kind``."""
    canonical = re.sub(r"[\s_]+", "-", key.strip().lower())
    if canonical not in SORT_KEYS:
        raise UsageError(f"unknown sort key {key!r}; expected one of {', '.join(SORT_KEYS)}")
    if canonical in KIND_SPECIFIC_SORTS and canonical not in sorts_of_kind(kind):
        usable = ", ".join(sorted(sorts_of_kind(kind) & KIND_SPECIFIC_SORTS)) or "none"
        raise UsageError(f"sort key {canonical!r} does not apply to {kind} (kind-specific keys there: {usable})")
    return canonical


def sorts_of_kind(kind: str) -> frozenset[str]:
    """The kind-specific sort keys of a kind, as the kinds registry describes it (``extra_sorts``)."""
    registered = registered_kind(kind)
    return frozenset(registered.extra_sorts) & KIND_SPECIFIC_SORTS if registered else frozenset()


def registered_kind(name: str) -> Any:
    from anagnorisis.kinds.registry import get_kind  # lazy: registering kinds imports their decoders

    try:
        return get_kind(name)
    except KeyError:
        return None


def parse_rating_range(value: tuple[float, float] | str | None, option: str = "--rating") -> tuple[float, float] | None:
    """``"MIN:MAX"`` (either side may be empty) or a pair → (min, max) within 0–10, or UsageError."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, str):
            low_text, sep, high_text = value.partition(":")
            if not sep:
                low_text = high_text = value
            low = float(low_text) if low_text.strip() else 0.0
            high = float(high_text) if high_text.strip() else 10.0
        else:
            low, high = (float(part) for part in value)
    except (TypeError, ValueError):
        raise UsageError(f"{option} {value!r}: expected MIN:MAX, e.g. 7:10") from None
    if not (0.0 <= low <= high <= 10.0):
        raise UsageError(f"{option} {value!r}: ratings go from 0 to 10 and MIN must not exceed MAX")
    return low, high


def _non_negative_float(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"--{name} {value!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise UsageError(f"--{name} must be 0 or more, not {value!r}")
    return number


def _non_negative_int(value: Any, name: str) -> int:
    try:
        number = int(value)
        whole = not isinstance(value, bool) and (isinstance(value, str) or number == value)
    except (TypeError, ValueError):
        whole = False
    if not whole or number < 0:
        raise UsageError(f"--{name} must be a whole number, 0 or more, not {value!r}")
    return number


def _extensions(value: str | Sequence[str] | AbstractSet[str] | None) -> frozenset[str] | None:
    if value is None or value == "":
        return None
    parts = value.split(",") if isinstance(value, str) else list(value)
    extensions = frozenset("." + part.strip().lower().lstrip(".") for part in parts if part.strip().lstrip("."))
    return extensions or None


def _json_safe(item: Mapping[str, Any]) -> dict[str, Any]:
    """A copy fit for json.dumps: bytes values left out, numpy scalars as Python numbers, NaN as null."""
    safe: dict[str, Any] = {}
    for key, value in item.items():
        if isinstance(value, (bytes, bytearray, memoryview)):
            continue
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        safe[key] = value
    return safe

