"""Query searches: file names (fuzzy), meaning (a text query's vector) and similar-to (a file's vector).
"""
from __future__ import annotations

import os
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz, process

from anagnorisis.search.chunk_index import ChunkIndex, PassageScores
from anagnorisis.search.vector_index import VectorIndex
from anagnorisis.search.draw import order_by_values, rank_strengths
from anagnorisis.search.request import (
    Floats, MeaningSearchUnavailable, Order, PathEncoder, Record, SearchError, SearchRequest, TextEncoder,
    UsageError, Ranking,
)


NAME_MIN_SCORE = 65.0  # fuzzy score (0-100) below which a name is not a match: unrelated names score 30-60


PATH_WEIGHT = 0.9  # a match in the folders counts 90 % of the same match in the file's own name


TOKEN_SCALE = 0.95  # word-order-free matches count slightly less than the same characters in order


PARTIAL_MIN_LENGTH_RATIO = 1.5  # a substring match counts once the text is this many times the query's length


def resolve_mode(request: SearchRequest, pool: Sequence[Record], encode_text: TextEncoder | None) -> str:
    """auto → similar for an existing file path, else meaning with a text tower, else name; explicit modes stay."""
    if request.mode != "auto":
        return request.mode
    assert request.query is not None
    if os.path.isfile(os.path.expanduser(request.query)) or _record_for_path(request.query, pool, False) is not None:
        return "similar"
    return "meaning" if encode_text is not None else "name"


def rank_by_query(mode: str, request: SearchRequest, pool: Sequence[Record], filtered: list[Record],
                   index: VectorIndex | None, encode_text: TextEncoder | None,
                   vector_of_path: PathEncoder | None, chunks: ChunkIndex | None = None) -> Ranking:
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
                    same_content: str | None = None, chunks: ChunkIndex | None = None) -> Ranking:
    """Rank the filtered records by cosine to ``query_vector``; files with no vector are not candidates.

    The similar-to file itself is left out (its identical copies stay, marked "identical content"). At T = 0 in
    descending order only the page's worth of hashes is fetched (exact or ANN); at T > 0 or ascending, every
    candidate is scored exactly, as the draw needs every strength. With ``chunks``, a file's score is the smooth
    maximum of its chunk cosines instead (``_chosen_by_passages``).
    """
    if index is None or not len(index):
        return Ranking([], np.zeros(0, np.int64), np.zeros(0), [], lambda i: "")
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

    return Ranking(items, order, strengths, [float(c) for c in cosines], reason, total=total)


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


def rank_by_name(records: Sequence[Record], query: str, *, descending: bool = True) -> Ranking:
    """Fuzzy name match: the file's own name counts fully, its path (folders and name) at PATH_WEIGHT; accents,
    case and separators (_ - . / and spaces) do not matter; typos, word order and partial names are tolerated."""
    wanted = normalise_name(query)
    names = [normalise_name(os.path.splitext(os.path.basename(str(r.get("path", ""))))[0]) for r in records]
    folders = [normalise_name(os.path.splitext(str(r.get("relative_path") or r.get("path", "")))[0]) for r in records]
    if not records or not wanted:
        return Ranking([], np.zeros(0, np.int64), np.zeros(0), [], lambda i: "")
    name_scores = fuzzy_scores(wanted, names)
    path_scores = fuzzy_scores(wanted, folders) * PATH_WEIGHT
    combined = np.maximum(name_scores, path_scores).astype(np.float64)
    matched = np.flatnonzero(combined >= NAME_MIN_SCORE)
    items = [records[i] for i in matched.tolist()]
    scores = combined[matched] / 100.0
    from_name = name_scores[matched] >= path_scores[matched]
    order = order_by_values(scores, [str(r.get("path", "")) for r in items], descending)
    strengths = rank_strengths(order, np.ones(len(items), bool))
    return Ranking(items, order, strengths, [float(s) for s in scores],
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

