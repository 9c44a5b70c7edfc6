"""Search and sort over file records (SPEC §1 `search`, §4): name, meaning and similar-to queries, the sort keys,
filters, temperature sampling and paging. Pure functions over records and a ``VectorIndex``; no database, no UI.

``run_search(request, records, index=..., encode_text=...)`` returns the page of ``search --json``.
Errors: ``UsageError`` (the CLI exits 2) for a request that cannot mean anything — unknown sort key, a key that
does not apply to the kind, ``--sort`` with a QUERY, ratings outside 0–10, meaning search without a text tower;
``SearchError`` (exit 1) for a request that is fine but cannot be served now (the file has no embedding yet).
"""
from __future__ import annotations

from collections.abc import Sequence


from anagnorisis.search.chunk_index import ChunkIndex
from anagnorisis.search.vector_index import VectorIndex
from anagnorisis.search.draw import draw_order
from anagnorisis.search.filters import apply_filters
from anagnorisis.search.query import rank_by_query, resolve_mode
from anagnorisis.search.request import (
    DEFAULT_SORT, PathEncoder, Record, SearchRequest, SearchResult, TextEncoder, validate_request,
)
from anagnorisis.search.sorts import rank_by_sort


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
        ranking = rank_by_query(mode, request, pool, filtered, index, encode_text, vector_of_path, chunks)
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

