"""Search and sort over file records (SPEC §1 `search`, §4): name, meaning and similar-to queries, the sort keys,
filters, temperature sampling and paging. Pure functions over records and a ``VectorIndex``; no database, no UI.

``run_search(request, records, index=..., encode_text=...)`` returns the JSON document of ``search --json``.
Errors: ``UsageError`` (the CLI exits 2) for a request that cannot mean anything — unknown sort key, a key that
does not apply to the kind, ``--sort`` with a QUERY, ratings outside 0–10, meaning search without a text tower;
``SearchError`` (exit 1) for a request that is fine but cannot be served now (the file has no embedding yet).
"""
from __future__ import annotations

import math
import os
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz, process

from anagnorisis.search.chunk_index import ChunkIndex, PassageScores
from anagnorisis.search.vector_index import VectorIndex
from anagnorisis.recommend.scores import MIN_RATING_FOR_SCORE, parse_timestamp, recommendation_scores

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

# Cosine at or above which two files count as duplicates, per encoder (matched as a prefix of the model id).
# Learned encoders place re-encodes, crops and resizes of one picture/track at 0.93-0.99; the basic feature
# encoders are much less discriminative (unrelated photos of one scene type reach 0.95), so they need more.
DUPLICATE_THRESHOLDS: dict[str, float] = {
    "basic-image": 0.99,
    "basic-audio": 0.995,
    "google/siglip": 0.95,
    "laion/clap": 0.97,
}
DEFAULT_DUPLICATE_THRESHOLD = 0.95
DUPLICATES_EXACT_MAX_ITEMS = 20_000  # above this many embedded files, duplicate pairs come from an IVF range search

NAME_MIN_SCORE = 65.0  # fuzzy score (0-100) below which a name is not a match: unrelated names score 30-60
PATH_WEIGHT = 0.9  # a match in the folders counts 90 % of the same match in the file's own name
TOKEN_SCALE = 0.95  # word-order-free matches count slightly less than the same characters in order
PARTIAL_MIN_LENGTH_RATIO = 1.5  # a substring match counts once the text is this many times the query's length
NO_VALUE_STRENGTH = 1e-9  # SPEC §4: an item without a value is drawn with this strength at T > 0
MIN_STRENGTH = 1e-300  # floor that keeps log() finite for a zero score (a song played a second ago)


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
class _Ranking:
    """Candidates of one search, their T = 0 order, their strengths for sampling, and how to explain them."""

    items: list[Record]
    order: Order  # indices into items, best first in the chosen order
    strengths: Floats  # s in (0, 1] per item (SPEC §4), used only at T > 0
    scores: list[float | None]
    reasons: Callable[[int], str]
    total: int | None = None  # candidates in all, when only the top of them were fetched (ANN, one page)


# ---------------------------------------------------------------------------------------------- the entry point


def run_search(
    request: SearchRequest,
    records: Sequence[Record],
    *,
    index: VectorIndex | None = None,
    encode_text: TextEncoder | None = None,
    vector_of_path: PathEncoder | None = None,
    duplicate_threshold: float | None = None,
    chunks: ChunkIndex | None = None,
) -> SearchResult:
    """Search or sort ``records`` (the present files) as ``request`` asks and return one page.

    ``index`` holds the active model's vectors of this kind; ``encode_text`` turns a query into a vector in the same
    space (None when the encoder has no text tower); ``vector_of_path`` embeds a file that is not indexed (optional);
    ``chunks`` holds the chunk vectors of texts: meaning search then scores a file by the smooth maximum of its
    chunk cosines (SPEC §2), and a file without chunk vectors by the cosine of its file vector.

    - With a QUERY the mode decides the candidates: name → files whose name matches (fuzzy score ≥ 0.65);
      meaning/similar → every filtered file with a vector (``total``), ranked by cosine. Similar-to leaves the
      query file itself out; its identical copies stay, explained as "identical content".
    - Without one, every filtered file is listed by the sort key (default ``date``); ``duplicates`` lists only
      files in a group. Ties go by path; files without a value come last in both orders.
    - ``temperature`` > 0 replaces the order by a draw (``draw_order``) reproducible by ``seed``, so pages of one
      seed join up. ``not_indexed`` counts the kind's files without a vector in ``index``.
    """
    request = validate_request(request)
    pool = [record for record in records if record.get("kind", request.kind) == request.kind]
    mode = resolve_mode(request, pool, encode_text) if request.query is not None else None
    filtered = apply_filters(pool, request)
    if mode is None:
        sort = request.sort or DEFAULT_SORT
        ranking = rank_by_sort(filtered, sort, request, index=index, duplicate_threshold=duplicate_threshold)
    else:
        sort = None
        ranking = _rank_by_query(mode, request, pool, filtered, index, encode_text, vector_of_path, chunks)
    order = draw_order(ranking.strengths, request.temperature, request.seed) if request.temperature > 0 else ranking.order
    page = order[request.offset : request.offset + request.limit]
    results = [
        {**ranking.items[i], "score": ranking.scores[i], "reason": ranking.reasons(int(i))} for i in page.tolist()
    ]
    return SearchResult(
        kind=request.kind, query=request.query, mode=mode, sort=sort, order=request.order,
        temperature=request.temperature, seed=request.seed, offset=request.offset, limit=request.limit,
        total=ranking.total if ranking.total is not None else len(order),
        not_indexed=count_not_indexed(pool, index, mode), results=results,
    )


def count_not_indexed(pool: Sequence[Record], index: VectorIndex | None, mode: str | None) -> int:
    """Files of the kind with no vector for the active model (all of them for a query search without an index)."""
    if index is None:
        return len(pool) if mode in ("meaning", "similar") else 0
    return sum(1 for record in pool if record.get("content_hash") not in index)


# ------------------------------------------------------------------------------------------------- validation


def validate_request(request: SearchRequest) -> SearchRequest:
    """The request with canonical values (sort key with hyphens, parsed ranges), or UsageError."""
    kind = request.kind
    if not _registered_kind(kind):
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
    registered = _registered_kind(kind)
    return frozenset(registered.extra_sorts) & KIND_SPECIFIC_SORTS if registered else frozenset()


def _registered_kind(name: str) -> Any:
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


# --------------------------------------------------------------------------------------------------- filters


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


# ------------------------------------------------------------------------------------------------- temperature


def draw_order(strengths: npt.ArrayLike, temperature: float, seed: int) -> Order:
    """A random order drawn without replacement with p ∝ s^(1/T) (SPEC §4), reproducible by seed.

    Exponential race (equivalent to the Gumbel-top-k trick): item i finishes at E_i / w_i with E_i ~ Exp(1) and
    w_i = s_i^(1/T); the earliest finisher is item i with probability w_i / Σw, and by memorylessness the rest of
    the race is the same draw over the remaining items. Sorting log(E_i) − log(s_i)/T orders all n items in
    O(n log n) and never forms s^(1/T), which underflows for small T.
    """
    s = np.maximum(np.asarray(strengths, dtype=np.float64), MIN_STRENGTH)
    if temperature <= 0:
        raise ValueError("draw_order needs a temperature above 0; T = 0 is the plain sort")
    race = np.random.default_rng(seed).standard_exponential(len(s))
    with np.errstate(divide="ignore"):
        keys = np.log(race) - np.log(s) / temperature
    return np.argsort(keys, kind="stable").astype(np.int64)


def rank_strengths(order: Order, has_value: npt.NDArray[np.bool_]) -> Floats:
    """s = (n − rank) / n along the chosen order; items without a value get 1e-9 (SPEC §4)."""
    count = len(order)
    strengths = np.full(count, NO_VALUE_STRENGTH, dtype=np.float64)
    ranks = np.empty(count, dtype=np.float64)
    ranks[order] = np.arange(count)
    strengths[has_value] = (count - ranks[has_value]) / max(count, 1)
    return strengths


# ----------------------------------------------------------------------------------------------------- sorting


def order_by_values(values: Floats, paths: Sequence[str], descending: bool) -> Order:
    """Items with a value by value (ties by path), then the items without one (NaN) by path, in both orders."""
    path_rank = np.empty(len(paths), dtype=np.int64)
    path_rank[sorted(range(len(paths)), key=paths.__getitem__)] = np.arange(len(paths))
    has = ~np.isnan(values)
    with_value = np.flatnonzero(has)
    keys = -values[with_value] if descending else values[with_value]
    first = with_value[np.lexsort((path_rank[with_value], keys))]
    without = np.flatnonzero(~has)
    rest = without[np.argsort(path_rank[without], kind="stable")]
    return np.concatenate([first, rest]).astype(np.int64)


def rank_by_sort(
    records: Sequence[Record],
    sort: str,
    request: SearchRequest,
    *,
    index: VectorIndex | None = None,
    duplicate_threshold: float | None = None,
) -> _Ranking:
    """The ranking for a sort key (a canonical, validated one) over the filtered records."""
    descending = request.order == "desc"
    if sort == "duplicates":
        return _rank_duplicates(records, descending, index, duplicate_threshold)
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
    return _Ranking(list(records), order, strengths, scores, lambda i: reason(records[i], values[i]))


def _sort_values(records: Sequence[Record], sort: str, request: SearchRequest) -> tuple[Floats, Callable[[Record, float], str]]:
    """The value of each record under a plain sort key (NaN = no value) and the reason writer for it."""
    if sort == "recommendation":
        return recommendation_scores(records, request.kind), lambda r, v: f"recommendation {v:.3f}"
    if sort == "random":
        values = np.random.default_rng(request.seed).random(len(records))
        return values, lambda r, v: f"random order (seed {request.seed})"
    extract, reason = _VALUE_KEYS[sort]
    if sort == "length" and _registered_kind(request.kind).length == "characters":
        extract, reason = _text_length, _text_length_reason
    values = np.array([_finite(extract(record)) for record in records], dtype=np.float64)
    return values, reason


def _rank_unrated_first(records: Sequence[Record], descending: bool) -> _Ranking:
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

    return _Ranking(list(records), order, strengths, scores, reason)


def _rank_duplicates(records: Sequence[Record], descending: bool, index: VectorIndex | None,
                     threshold: float | None) -> _Ranking:
    """Groups of near-identical files, biggest group first, members adjacent; files in no group are left out."""
    threshold = duplicate_threshold_for(index.model_id if index is not None else "") if threshold is None else threshold
    groups, best_similarity = duplicate_groups(records, index, threshold)
    if not descending:
        groups = groups[::-1]
    items: list[Record] = []
    scores: list[float | None] = []
    labels: list[str] = []
    for number, group in enumerate(groups, start=1):
        for member in group:
            items.append(records[member])
            scores.append(best_similarity.get(member, 1.0))
            labels.append(f"duplicate group {number} ({len(group)} files), similarity {scores[-1]:.3f}")
    order = np.arange(len(items), dtype=np.int64)
    return _Ranking(items, order, rank_strengths(order, np.ones(len(items), bool)), scores, lambda i: labels[i])


def duplicate_threshold_for(model_id: str) -> float:
    """The duplicate cosine threshold of an encoder (longest matching prefix in DUPLICATE_THRESHOLDS)."""
    matches = [prefix for prefix in DUPLICATE_THRESHOLDS if model_id.startswith(prefix)]
    return DUPLICATE_THRESHOLDS[max(matches, key=len)] if matches else DEFAULT_DUPLICATE_THRESHOLD


def duplicate_groups(records: Sequence[Record], index: VectorIndex | None, threshold: float) -> tuple[list[list[int]], dict[int, float]]:
    """Connected groups (indices into records) of files sharing content or with cosine ≥ threshold.

    Biggest group first (ties: the group whose first path sorts first); inside a group the largest file comes
    first, then by path. Also returns each member's best similarity to another member of its group.
    """
    parent = list(range(len(records)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    best: dict[int, float] = {}
    by_hash: dict[Any, list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        if record.get("content_hash"):
            by_hash[record["content_hash"]].append(i)
    for members in by_hash.values():  # identical content: similarity 1
        for member in members[1:]:
            parent[find(member)] = find(members[0])
        if len(members) > 1:
            best.update({member: 1.0 for member in members})
    if index is not None and len(index):
        hashes = list(by_hash)
        positions = index.positions(hashes)
        present = positions >= 0
        owner_of_position = {int(p): by_hash[h][0] for h, p, ok in zip(hashes, positions, present) if ok}
        first, second, similarity = index.similar_pairs(positions[present], threshold,
                                                        exact_max=DUPLICATES_EXACT_MAX_ITEMS)
        for a, b, sim in zip(first.tolist(), second.tolist(), similarity.tolist()):
            left, right = owner_of_position[a], owner_of_position[b]
            parent[find(left)] = find(right)
            for member in (*by_hash[records[left]["content_hash"]], *by_hash[records[right]["content_hash"]]):
                best[member] = max(best.get(member, -1.0), min(sim, 1.0))
    grouped: dict[int, list[int]] = defaultdict(list)
    for i in range(len(records)):
        grouped[find(i)].append(i)
    groups = [sorted(members, key=lambda i: (-(records[i].get("size") or 0), str(records[i].get("path", ""))))
              for members in grouped.values() if len(members) > 1]
    groups.sort(key=lambda members: (-len(members), str(records[members[0]].get("path", ""))))
    return groups, best


# ------------------------------------------------------------------------------------------------ query modes


def resolve_mode(request: SearchRequest, pool: Sequence[Record], encode_text: TextEncoder | None) -> str:
    """auto → similar for an existing file path, else meaning with a text tower, else name; explicit modes stay."""
    if request.mode != "auto":
        return request.mode
    assert request.query is not None
    if os.path.isfile(os.path.expanduser(request.query)) or _record_for_path(request.query, pool, False) is not None:
        return "similar"
    return "meaning" if encode_text is not None else "name"


def _rank_by_query(mode: str, request: SearchRequest, pool: Sequence[Record], filtered: list[Record],
                   index: VectorIndex | None, encode_text: TextEncoder | None,
                   vector_of_path: PathEncoder | None, chunks: ChunkIndex | None = None) -> _Ranking:
    assert request.query is not None
    if mode == "name":
        return rank_by_name(filtered, request.query, descending=request.order == "desc")
    if mode == "meaning":
        if encode_text is None:
            raise MeaningSearchUnavailable(
                f"meaning search is unavailable for {request.kind}: the active encoder"
                f"{' (' + index.model_id + ')' if index is not None and index.model_id else ''} is a basic feature "
                "encoder with no text tower. Search by file name (--mode name), find files like a given one "
                f"(--mode similar PATH), or download the {request.kind} model (`models download {request.kind}`).")
        query_vector = np.asarray(encode_text(request.query), dtype=np.float32).reshape(-1)
        return _rank_by_vector(query_vector, filtered, index, request, "meaning match", exclude_path=None,
                               chunks=chunks)
    target = _record_for_path(request.query, pool, True)
    vector = _vector_of_file(request.query, target, index, vector_of_path, request.kind)
    exclude = str(target["path"]) if target is not None else os.path.abspath(os.path.expanduser(request.query))
    return _rank_by_vector(vector, filtered, index, request, "similarity", exclude_path=exclude,
                           same_content=target.get("content_hash") if target is not None else None)


def _record_for_path(query: str, pool: Sequence[Record], root_relative: bool) -> Record | None:
    """The record whose path is ``query`` (absolute, or relative to the working directory; with
    ``root_relative``, also relative to its library root, as an explicit --mode similar may give it)."""
    absolute = os.path.normpath(os.path.abspath(os.path.expanduser(query)))
    relative = os.path.normpath(query) if root_relative else None
    for record in pool:
        if str(record.get("path", "")) in (query, absolute) or record.get("relative_path") == relative:
            return record
    return None


def _vector_of_file(query: str, target: Record | None, index: VectorIndex | None,
                    vector_of_path: PathEncoder | None, kind: str) -> npt.NDArray[np.float32]:
    """The similar-to query vector: the file's stored vector, else one computed by ``vector_of_path``."""
    if target is not None and index is not None:
        stored = index.vector(str(target.get("content_hash")))
        if stored is not None:
            return stored
    path = str(target["path"]) if target is not None else os.path.abspath(os.path.expanduser(query))
    if target is None and not os.path.isfile(path):
        raise UsageError(f"{query}: no such file in the {kind} library, so there is nothing to find files similar to")
    computed = vector_of_path(path) if vector_of_path is not None else None
    if computed is None:
        if target is None:
            raise UsageError(f"{query} is not under any {kind} library root (see `library list`)")
        raise SearchError(f"{path} has no embedding for the active model yet; run `embed {kind}` and try again")
    return np.asarray(computed, dtype=np.float32).reshape(-1)


def _rank_by_vector(query_vector: npt.NDArray[np.float32], filtered: list[Record], index: VectorIndex | None,
                    request: SearchRequest, label: str, *, exclude_path: str | None,
                    same_content: str | None = None, chunks: ChunkIndex | None = None) -> _Ranking:
    """Rank the filtered records by cosine to ``query_vector``; files with no vector are not candidates.

    The similar-to file itself is left out (its identical copies stay, marked "identical content"). At T = 0 in
    descending order only the page's worth of hashes is fetched (exact or ANN); at T > 0 or ascending, every
    candidate is scored exactly, as the draw needs every strength. With ``chunks``, a file's score is the smooth
    maximum of its chunk cosines instead (``_chosen_by_passages``).
    """
    if index is None or not len(index):
        return _Ranking([], np.zeros(0, np.int64), np.zeros(0), [], lambda i: "")
    if len(query_vector) != index.dim:
        raise SearchError(f"the query vector has {len(query_vector)} dimensions but the index of "
                          f"{index.model_id or 'this model'} has {index.dim}")
    by_hash: dict[str, list[Record]] = defaultdict(list)
    for record in filtered:
        if str(record.get("path", "")) != exclude_path:
            by_hash[str(record.get("content_hash"))].append(record)
    hashes = [h for h in by_hash if h in index]
    positions = index.positions(hashes)
    wanted = request.offset + request.limit
    passages: Callable[[str], str | None] = lambda content_hash: None
    if chunks is not None:
        chosen, passages = _chosen_by_passages(query_vector, hashes, positions, index, chunks, request, label)
    elif request.temperature > 0 or request.order == "asc" or wanted >= len(hashes):
        hash_scores = index.scores(query_vector, positions)
        chosen = [(h, float(s)) for h, s in zip(hashes, hash_scores.tolist())]
    else:
        mask = np.zeros(len(index), dtype=bool)
        mask[positions] = True
        found, found_scores = index.search(query_vector, wanted, allowed_mask=mask)
        chosen = [(index.hashes[p], float(s)) for p, s in zip(found.tolist(), found_scores.tolist())]
    items = [record for h, _ in chosen for record in by_hash[h]]
    cosines = np.array([s for h, s in chosen for _ in by_hash[h]], dtype=np.float64)
    paths = [str(record.get("path", "")) for record in items]
    order = order_by_values(cosines, paths, request.order == "desc")
    strengths = (1.0 + cosines) / 2.0
    if request.order == "asc":
        strengths = rank_strengths(order, np.ones(len(items), bool))
    total = sum(len(by_hash[h]) for h in hashes)  # every candidate with a vector, fetched or not

    def reason(i: int) -> str:
        content_hash = items[i].get("content_hash")
        if same_content and content_hash == same_content:
            return "identical content"
        return passages(str(content_hash)) or f"{label} {cosines[i]:.3f}"

    return _Ranking(items, order, strengths, [float(c) for c in cosines], reason, total=total)


def _chosen_by_passages(query_vector: npt.NDArray[np.float32], hashes: list[str], positions: Order,
                        index: VectorIndex, chunks: ChunkIndex, request: SearchRequest,
                        label: str) -> tuple[list[tuple[str, float]], Callable[[str], str | None]]:
    """(hash, score) of the candidates to list and the reason of a listed hash: the smooth maximum of the file's
    chunk cosines (SPEC §2), or the cosine of its file vector when it has no chunk vectors (embedded before they
    were kept). At T = 0 in descending order only the page's worth is kept, as the exact/ANN path does."""
    files = chunks.positions(hashes)
    has = files >= 0
    scores = np.empty(len(hashes), dtype=np.float64)
    passages = chunks.file_scores(query_vector, files[has])
    scores[has] = passages.smooth
    if not has.all():
        scores[~has] = index.scores(query_vector, positions[~has])
    wanted = request.offset + request.limit
    keep = np.arange(len(hashes))
    if request.temperature == 0 and request.order == "desc" and wanted < len(hashes):
        # Everything tied with the last wanted score stays, so ties are broken by path as on every page.
        cut = -np.partition(-scores, wanted - 1)[wanted - 1] if wanted > 0 else np.inf
        keep = np.flatnonzero(scores >= cut)
    slot = np.full(len(hashes), -1, dtype=np.int64)
    slot[np.flatnonzero(has)] = np.arange(int(has.sum()))
    listed = {hashes[i]: i for i in keep.tolist()}

    def reason(content_hash: str) -> str | None:
        i = listed.get(content_hash)
        return None if i is None else _passage_reason(label, float(scores[i]), passages, int(slot[i]))

    return [(hashes[i], float(scores[i])) for i in keep.tolist()], reason


def _passage_reason(label: str, score: float, passages: PassageScores, slot: int) -> str:
    """Why a text ranks where it does: its smooth-max score, its best passage's cosine and its passage count."""
    if slot < 0:
        return f"{label} {score:.3f} (whole-file vector: no passages stored yet; `embed` adds them)"
    count = int(passages.counts[slot])
    if count == 1:
        return f"{label} {score:.3f} (its one passage)"
    return (f"{label} {score:.3f} (smooth max of {count} passages; best passage {passages.best[slot]:.3f}, "
            f"passage {int(passages.best_chunk[slot]) + 1})")


def rank_by_name(records: Sequence[Record], query: str, *, descending: bool = True) -> _Ranking:
    """Fuzzy name match: the file's own name counts fully, its path (folders and name) at PATH_WEIGHT; accents,
    case and separators (_ - . / and spaces) do not matter; typos, word order and partial names are tolerated."""
    wanted = normalise_name(query)
    names = [normalise_name(os.path.splitext(os.path.basename(str(r.get("path", ""))))[0]) for r in records]
    folders = [normalise_name(os.path.splitext(str(r.get("relative_path") or r.get("path", "")))[0]) for r in records]
    if not records or not wanted:
        return _Ranking([], np.zeros(0, np.int64), np.zeros(0), [], lambda i: "")
    name_scores = fuzzy_scores(wanted, names)
    path_scores = fuzzy_scores(wanted, folders) * PATH_WEIGHT
    combined = np.maximum(name_scores, path_scores).astype(np.float64)
    matched = np.flatnonzero(combined >= NAME_MIN_SCORE)
    items = [records[i] for i in matched.tolist()]
    scores = combined[matched] / 100.0
    from_name = name_scores[matched] >= path_scores[matched]
    order = order_by_values(scores, [str(r.get("path", "")) for r in items], descending)
    strengths = rank_strengths(order, np.ones(len(items), bool))
    return _Ranking(items, order, strengths, [float(s) for s in scores],
                    lambda i: f"{'name' if from_name[i] else 'path'} match {scores[i]:.2f}")


def fuzzy_scores(query: str, texts: Sequence[str]) -> Floats:
    """0-100 similarity of a normalised query to each normalised text, tolerant of typos, word order and extra
    words. Like rapidfuzz's WRatio, but without its partial *token* ratios, which give any text sharing one word
    with the query 85.5 and so cannot tell "sunset beach 0012" from "beach beach 0359" for "sunst beach"."""
    def scores(scorer: Callable[..., float]) -> Floats:
        return process.cdist([query], texts, scorer=scorer, dtype=np.float32, workers=-1)[0].astype(np.float64)

    lengths = np.fromiter((len(text) for text in texts), dtype=np.float64, count=len(texts))
    longer = np.maximum(lengths, len(query)) / np.maximum(np.minimum(lengths, len(query)), 1.0)
    # A query found inside a much longer text counts less the longer the text (WRatio's scaling).
    partial_scale = np.where(longer < PARTIAL_MIN_LENGTH_RATIO, 0.0, np.where(longer <= 8.0, 0.9, 0.6))
    best = np.maximum(scores(fuzz.ratio), TOKEN_SCALE * scores(fuzz.token_set_ratio))
    best = np.maximum(best, TOKEN_SCALE * scores(fuzz.token_sort_ratio))
    if partial_scale.any():
        best = np.maximum(best, partial_scale * scores(fuzz.partial_ratio))
    return best


_SEPARATORS = re.compile(r"[\s_\-./\\]+")


def normalise_name(text: str) -> str:
    """Lower case, accents stripped (NFKD minus combining marks), separators folded into single spaces."""
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return _SEPARATORS.sub(" ", text.casefold()).strip()


# ------------------------------------------------------------------------------------------- values and reasons


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


__all__ = [
    "DUPLICATE_THRESHOLDS", "MODES", "ORDERS", "SORT_KEYS", "MeaningSearchUnavailable", "SearchError",
    "SearchRequest", "SearchResult", "UsageError", "apply_filters", "canonical_sort_key", "draw_order",
    "duplicate_groups", "normalise_name", "parse_rating_range", "rank_by_name", "run_search", "validate_request",
]
